"""`shipway render`, `shipway promote` and `shipway init-gitops`: a model's road into the GitOps repo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from shipway.cli._common import console, former_name, guarded

GATE_REPORT_DEFAULT = Path("build/gate/gate-report.json")


def register(app: typer.Typer) -> None:
    """Add render, promote and init-gitops to the app."""
    app.command("render")(render)
    app.command("promote")(promote)
    app.command("init-gitops")(init_gitops)


def _profile(path: Path) -> dict[str, Any]:
    from shipway.delivery.errors import BadProfile

    try:
        profile = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BadProfile(f"cannot read the platform profile {path}: {error.strerror}; "
                           "`shipway synth BLUEPRINT` writes platform.json") from None
    except ValueError as error:
        raise BadProfile(f"{path} is not JSON: {error}") from None
    kind = str(profile.get("apiVersion", "")) if isinstance(profile, dict) else ""
    if not kind.startswith("shipway.dev/platform-profile/"):
        raise BadProfile(f"{path} is not a Shipway platform profile (platform.json from `shipway synth`)")
    return profile


def render(
    model: Path = typer.Argument(..., help="The model's model.yaml (ModelSpec)."),
    platform: Path = typer.Option(..., "--platform", help="platform.json written by `shipway synth`."),
    env: str = typer.Option(..., "--env", help="Environment to render for, e.g. staging."),
    out: Optional[Path] = typer.Option(None, "-o", "--output", help="Folder to write one YAML file per object into."),
    out_former: Optional[Path] = former_name("--out"),
    stable_version: Optional[str] = typer.Option(
        None, "--stable-version", help="Version serving now, compared with this one by the canary analysis."
    ),
    artifact_digest: Optional[str] = typer.Option(
        None, "--artifact-digest", help="Name the artifact by this manifest digest (sha256:...), as `promote` "
        "commits it; else by the version's tag."
    ),
) -> None:
    """Render a model's Kubernetes objects for one environment of a platform."""
    out = out or out_former
    if out is None:
        raise typer.BadParameter("name the folder to write into", param_hint="'-o' / '--output'")
    with guarded():
        from shipway.delivery.promote import rendered_files
        from shipway.delivery.render import render as render_objects
        from shipway.spec import load_model_spec

        from shipway.files import write_tree

        spec = load_model_spec(model)
        files = rendered_files(render_objects(spec, _profile(platform), env, stable_version, artifact_digest))
        write_tree(files, out)  # objects a previous render had and this one lacks must not linger
        console.print(f"rendered {spec.name} {spec.version} for {env}: {len(files)} objects in {out}",
                      highlight=False, soft_wrap=True)


def promote(
    model: Path = typer.Argument(..., help="The model's model.yaml (ModelSpec)."),
    gitops_repo: Path = typer.Option(..., "--gitops-repo", help="A local clone of the GitOps repo."),
    env: str = typer.Option(..., "--env", help="Environment to promote into."),
    version: Optional[str] = typer.Option(None, "--version", help="Version to promote; model.yaml's when absent."),
    platform: Optional[Path] = typer.Option(
        None, "--platform", help="platform.json; defaults to platform.json at the GitOps repo's root."
    ),
    gate_report: Optional[Path] = typer.Option(
        None, "--gate-report", help="gate-report.json; defaults to build/gate/gate-report.json beside model.yaml."
    ),
    no_gate: bool = typer.Option(
        False, "--no-gate", help="Promote without a gate report; the commit message records that none was run."
    ),
    push: bool = typer.Option(False, "--push", help="Push the branch to origin."),
    open_pr: bool = typer.Option(
        False, "--open-pr", help="Push, then open the pull request on GitHub with the token in GITHUB_TOKEN "
        "(API base: GITHUB_API_URL, else https://api.github.com)."
    ),
    force: bool = typer.Option(False, "--force", help="Promote to the last environment without the one before."),
    artifact_digest: Optional[str] = typer.Option(
        None, "--artifact-digest", help="The version's manifest digest (sha256:...); else the version's tag is "
        "resolved against the registry (credentials: SHIPWAY_REGISTRY_USERNAME/PASSWORD or a docker config)."
    ),
    registry_address: Optional[str] = typer.Option(
        None, "--registry-address", help="Where this machine reaches the platform registry, when not at the "
        "address pods use (e.g. through the gateway); the committed reference keeps the pods' address."
    ),
    plain_http: bool = typer.Option(
        False, "--plain-http", envvar="SHIPWAY_PLAIN_HTTP", show_envvar=True,
        help="Speak HTTP to the registry when resolving the digest (local registries)."
    ),
) -> None:
    """Commit a model version into the GitOps repo on a branch ready for a pull request.

    Pods pull the artifact by digest: the version's tag is resolved to its manifest digest now and the
    digest is committed, so a tag moved later never changes what runs.
    """
    with guarded():
        import os

        from shipway.delivery.promote import next_step, open_pull_request, read_gate_report, source_commit
        from shipway.delivery.promote import promote as promote_model
        from shipway.spec import load_model_spec

        token = os.environ.get("GITHUB_TOKEN", "")
        if open_pr and not token:
            raise typer.BadParameter("needs a GitHub token in GITHUB_TOKEN", param_hint="'--open-pr'")

        spec = load_model_spec(model)
        if version is not None:
            spec = spec.with_version(version)
        from shipway.files import target_path

        profile = _profile(platform or target_path(gitops_repo) / "platform.json")
        report = gate_report
        if report is None and (model.parent / GATE_REPORT_DEFAULT).is_file():
            report = model.parent / GATE_REPORT_DEFAULT
        verdict = read_gate_report(report, no_gate=no_gate)
        if artifact_digest is None:
            from shipway.artifacts.auth import resolve_credentials
            from shipway.delivery.promote import check_gate_verdict, resolve_artifact_digest

            check_gate_verdict(verdict, spec)
            artifact_digest = resolve_artifact_digest(spec, profile, registry_address, plain_http,
                                                      resolve_credentials())
        done = promote_model(spec, profile, gitops_repo, env, verdict, push=push or open_pr, force=force,
                             source=source_commit(model.resolve().parent), artifact_digest=artifact_digest)
        if not done.changed:
            console.print(f"{spec.name} {spec.version} is already promoted to {env} ({done.folder}); nothing to do",
                          highlight=False, soft_wrap=True)
            return
        pushed = "; pushed" if done.pushed else ""
        console.print(f"committed {spec.name} {spec.version} to {done.folder} on branch {done.branch} "
                      f"(gate: {done.gate.result}){pushed}", highlight=False, soft_wrap=True)
        if open_pr:
            opened = open_pull_request(gitops_repo, done, token, os.environ.get("GITHUB_API_URL") or None)
            state = "already open" if opened.existed else "opened"
            console.print(f"pull request #{opened.number} {state}: {opened.url}", highlight=False, soft_wrap=True)
        else:
            console.print(f"next: {next_step(gitops_repo, done)}", highlight=False, soft_wrap=True)


def init_gitops(
    directory: Path = typer.Argument(..., help="Folder to create the GitOps repository in."),
    platform: Optional[Path] = typer.Option(
        None, "--platform", help="platform.json: its environments and GitOps root shape the layout; copied in."
    ),
) -> None:
    """Create a GitOps repository in the layout the platform's ApplicationSet expects."""
    with guarded():
        from shipway.delivery.gitops_repo import init_gitops as create

        profile = _profile(platform) if platform else None
        text = platform.read_text(encoding="utf-8") if platform else None
        written = create(directory, profile, text)
        console.print(f"created the GitOps repository {directory} ({len(written)} files, first commit made)",
                      highlight=False, soft_wrap=True)
