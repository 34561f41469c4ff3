"""`shipway retrain-trigger`: the service Alertmanager sends drift and accuracy alerts to."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from shipway.cli._common import console, guarded, host_port, http_url, run_service
from shipway.errors import ShipwayError


def register(app: typer.Typer) -> None:
    """Add `retrain-trigger` to the app."""
    app.command("retrain-trigger")(retrain_trigger)


def retrain_trigger(
    listen: str = typer.Option("0.0.0.0:8080", "--listen", help="HOST:PORT serving /alerts, /healthz and /metrics."),
    github_api: str = typer.Option("https://api.github.com", "--github-api", help="GitHub API base URL."),
    gitlab_url: str = typer.Option("https://gitlab.com", "--gitlab-url", help="GitLab base URL."),
    kube_api: str | None = typer.Option(
        None, "--kube-api", help="Kubernetes API URL; the pod's service account API when absent."
    ),
    kube_token_file: Path | None = typer.Option(None, "--kube-token-file", help="Bearer token file for --kube-api."),
    attempts: int = typer.Option(4, "--attempts", min=1, max=10, help="Tries per trigger before it is a failure."),
    backoff: float = typer.Option(2.0, "--backoff", min=0.0, help="Seconds before the second try; doubles each time."),
    allowed: Path | None = typer.Option(
        None, "--allowed", help="The platform's allow-list (JSON: team namespace -> team and the repositories it "
                                "may start); without it every trigger is refused."),
) -> None:
    """Start model repositories' retraining pipelines from Alertmanager's drift and accuracy alerts.

    Tokens come from the environment: SHIPWAY_GITHUB_TOKEN and SHIPWAY_GITLAB_TOKEN.
    """
    with guarded():
        import logging

        from shipway.render.retrain import GITHUB_TOKEN_ENV, GITLAB_TOKEN_ENV
        from shipway.retrain.service import TriggerConfig, in_cluster, load_allowed, serve
        from shipway.retry import RetryPolicy

        host, port = host_port(listen, "--listen", "0.0.0.0:8080")
        github_api = http_url(github_api, "--github-api", "https://github.example.com/api/v3")
        gitlab_url = http_url(gitlab_url, "--gitlab-url", "https://gitlab.example.com")
        if kube_api is not None:
            kube_api = http_url(kube_api, "--kube-api", "https://kubernetes.default.svc")
            token = kube_token_file.read_text(encoding="utf-8").strip() if kube_token_file else None
            api, ca = kube_api.rstrip("/"), None
        else:
            api, token, ca = in_cluster()
            if not api:
                raise ShipwayError("no Kubernetes API: run in the cluster (the model's retrain ConfigMap is read "
                                   "through it), or pass --kube-api")
        github, gitlab = os.environ.get(GITHUB_TOKEN_ENV), os.environ.get(GITLAB_TOKEN_ENV)
        if not (github or gitlab):
            raise ShipwayError(f"no trigger credentials: set {GITHUB_TOKEN_ENV} or {GITLAB_TOKEN_ENV}")
        config = TriggerConfig(listen_host=host, listen_port=port, github_api=github_api,
                               gitlab_url=gitlab_url, github_token=github, gitlab_token=gitlab, kube_api=api,
                               kube_token=token, kube_ca=ca,
                               retry=RetryPolicy(attempts=attempts, first_delay_s=backoff, max_delay_s=60.0),
                               allowed=load_allowed(allowed) if allowed is not None else {})
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

        console.print(f"retrain trigger on {listen}/alerts; Kubernetes API {api}", highlight=False)
        run_service(lambda: serve(config))
