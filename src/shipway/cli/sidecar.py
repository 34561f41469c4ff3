"""`shipway sidecar` and `shipway drift profile`: the model-pod observability commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from shipway.cli._common import BadOption, console, guarded, host_port, run_service

if TYPE_CHECKING:
    from shipway.sidecar.metrics import SloThresholds

drift_app = typer.Typer(help="Drift reference profiles, and batch files checked against them.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add `sidecar` and the `drift` group to the app."""
    from shipway.cli.drift import check

    app.command("sidecar")(sidecar)
    drift_app.command("profile")(profile)
    drift_app.command("check")(check)
    app.add_typer(drift_app, name="drift")


def sidecar(
    listen: str = typer.Option("0.0.0.0:8080", "--listen", help="HOST:PORT the proxy serves on."),
    upstream: str = typer.Option(..., "--upstream", help="Base URL of the runtime, e.g. http://127.0.0.1:9000."),
    model: str = typer.Option(..., "--model", help="Model name, the `model` label of every metric."),
    version: str = typer.Option(..., "--version", help="Model version, the `version` label (canary vs stable)."),
    reference: Optional[Path] = typer.Option(
        None, "--reference", help="Reference profile JSON from `shipway drift profile`; without it, no drift."
    ),
    features: list[str] = typer.Option(
        [], "--feature", help="Feature of the reference profile to watch for drift (repeatable); default all."
    ),
    metrics_listen: str = typer.Option(
        "0.0.0.0:9091", "--metrics-listen", help="HOST:PORT serving /metrics and the probes /livez and /readyz."
    ),
    feedback_listen: str = typer.Option(
        "0.0.0.0:9092", "--feedback-listen", help="HOST:PORT taking delayed labels on /feedback."
    ),
    runtime_ready_path: str = typer.Option(
        "/v2/health/ready", "--runtime-ready-path",
        help="The runtime's readiness route, which /readyz reports (vLLM: /health).",
    ),
    window_rows: int = typer.Option(2000, "--window-rows", help="Rows in the sliding drift window."),
    accuracy_window: int = typer.Option(500, "--accuracy-window", help="Labels in the rolling accuracy."),
    min_labels: int = typer.Option(20, "--min-labels", help="Labels needed before accuracy is reported."),
    label_ttl: float = typer.Option(
        3600.0, "--label-ttl", help="Seconds a prediction waits for its delayed label before it is forgotten."
    ),
    pending_limit: int = typer.Option(100_000, "--pending-limit", help="Most predictions kept awaiting labels; 0 keeps none."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds to wait for the runtime per request."),
    slo_latency_p99_ms: Optional[float] = typer.Option(
        None, "--slo-latency-p99-ms", help="This model's p99 latency ceiling (ms); the platform default when absent."
    ),
    slo_error_rate: Optional[float] = typer.Option(
        None, "--slo-error-rate", help="This model's failed-request ceiling (0-1); the platform default when absent."
    ),
    slo_drift_psi: Optional[float] = typer.Option(
        None, "--slo-drift-psi", help="This model's feature PSI bound; the platform default when absent."
    ),
    slo_drift_min_rows: Optional[int] = typer.Option(
        None, "--slo-drift-min-rows", help="Drift window rows needed before drift may alert; default when absent."
    ),
    slo_accuracy_floor: Optional[float] = typer.Option(
        None, "--slo-accuracy-floor", help="This model's online accuracy floor (0-1); the default when absent."
    ),
) -> None:
    """Run the observability reverse proxy in front of a model runtime."""
    with guarded():
        from shipway.drift.profile import ReferenceProfile
        from shipway.sidecar.observer import ObserverSettings
        from shipway.sidecar.server import SidecarConfig, serve

        listen_host, listen_port = host_port(listen, "--listen", "0.0.0.0:8080")
        metrics_host, metrics_port = host_port(metrics_listen, "--metrics-listen", "0.0.0.0:9091")
        feedback_host, feedback_port = host_port(feedback_listen, "--feedback-listen", "0.0.0.0:9092")
        if not runtime_ready_path.startswith("/"):
            raise BadOption(f"--runtime-ready-path must start with '/', got {runtime_ready_path!r}")
        if not upstream.startswith(("http://", "https://")):
            raise BadOption(f"--upstream must be an http(s) URL, got {upstream!r}")
        if min(window_rows, accuracy_window) < 1 or pending_limit < 0 or label_ttl <= 0:
            raise BadOption("--window-rows, --accuracy-window and --label-ttl must be positive, "
                               "--pending-limit 0 or more (0 keeps no predictions for labels)")
        thresholds = _thresholds(slo_latency_p99_ms, slo_error_rate, slo_drift_psi, slo_drift_min_rows,
                                 slo_accuracy_floor)
        if len({listen_port, metrics_port, feedback_port}) < 3:
            raise BadOption(f"--listen, --metrics-listen and --feedback-listen need three different ports, "
                               f"got {listen}, {metrics_listen} and {feedback_listen}")
        if features and reference is None:
            raise BadOption("--feature needs --reference: drift is watched against the reference profile")
        config = SidecarConfig(
            listen_host=listen_host,
            listen_port=listen_port,
            metrics_host=metrics_host,
            metrics_port=metrics_port,
            feedback_host=feedback_host,
            feedback_port=feedback_port,
            runtime_ready_path=runtime_ready_path,
            upstream=upstream,
            model=model,
            version=version,
            profile=ReferenceProfile.load(reference) if reference else None,
            features=tuple(features),
            observer=ObserverSettings(
                window_rows=window_rows,
                accuracy_window=accuracy_window,
                min_labels=min_labels,
                pending_ttl_seconds=label_ttl,
                pending_limit=pending_limit,
            ),
            timeout_seconds=timeout,
            thresholds=thresholds,
        )

        try:
            import uvloop  # optional: a faster event loop when the runtime image already has it

            uvloop.install()
        except ImportError:
            pass
        console.print(
            f"sidecar {model}:{version} on {listen} -> {upstream}; metrics and probes on {metrics_listen},"
            f" feedback on {feedback_listen}",
            highlight=False,
        )
        run_service(lambda: serve(config))

def profile(
    data: Path = typer.Argument(..., help="Training features: a .csv or .parquet file."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the profile JSON."),
    features: list[str] = typer.Option([], "--feature", help="Feature column (repeatable); default all."),
    categorical: list[str] = typer.Option([], "--categorical", help="Treat this column as categorical."),
    prediction: Optional[str] = typer.Option(None, "--prediction", help="Column with the model's predictions."),
    bins: int = typer.Option(20, "--bins", help="Quantile bins per numeric feature."),
    max_psi: float = typer.Option(
        0.25, "--max-psi", help="Bound on any feature's PSI that `shipway drift check` applies (the platform's default)."
    ),
) -> None:
    """Build a drift reference profile from training features."""
    with guarded():
        from shipway.drift.data import profile_from_file

        if not (max_psi > 0 and max_psi != float("inf")):
            raise BadOption(f"--max-psi must be a positive number, got {max_psi}")
        built = profile_from_file(data, features, categorical, prediction, bins, max_psi)
        built.save(output)
    console.print(f"profile of {len(built.features)} features: {output}", highlight=False)


def _thresholds(latency_p99_ms: float | None, error_rate: float | None, drift_psi: float | None,
                drift_min_rows: int | None, accuracy_floor: float | None) -> SloThresholds:
    """The --slo-* flags, checked, as the sidecar's threshold gauges (latency in seconds, as Prometheus counts)."""
    from shipway.sidecar.metrics import SloThresholds

    bounds = (("--slo-latency-p99-ms", latency_p99_ms, False), ("--slo-error-rate", error_rate, True),
              ("--slo-drift-psi", drift_psi, False), ("--slo-drift-min-rows", drift_min_rows, False),
              ("--slo-accuracy-floor", accuracy_floor, True))
    for option, value, fraction in bounds:
        if value is not None and not (0 < value <= (1 if fraction else float("inf"))):
            allowed = "in (0, 1]" if fraction else "positive"
            raise BadOption(f"{option} must be {allowed}, got {value:g}")
    return SloThresholds(
        latency_p99_seconds=None if latency_p99_ms is None else latency_p99_ms / 1000,
        error_rate=error_rate,
        drift_psi=drift_psi,
        drift_min_rows=drift_min_rows,
        accuracy_floor=accuracy_floor,
    )

