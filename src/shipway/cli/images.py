"""`shipway images list|mirror`: the images a platform runs, and copies of them for air-gapped sites."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipway.cli._common import (
    BadOption,
    ChartsOption,
    NoChartsOption,
    console,
    err_console,
    guarded,
    print_uncut,
)

if TYPE_CHECKING:
    from shipway.images.inventory import ImageRef
    from shipway.images.mirror import MirrorTarget

images_app = typer.Typer(help="The images a platform and its models run: list them, or copy them to a mirror.",
                         no_args_is_help=True)


class ListFormat(str, Enum):
    """How `images list` prints."""

    table = "table"
    json = "json"
    plain = "plain"


Blueprint = Annotated[Path, typer.Argument(help="Blueprint YAML file.")]


def _platform_images(blueprint: Path, charts: Path | None, no_charts: bool):  # noqa: ANN202 - PlatformImages
    from rich.status import Status

    from shipway.charts.cache import chosen_dir
    from shipway.images.collect import platform_images
    from shipway.platform.synth import render_charts_if_cached, run_program

    with Status(f"synthesising {blueprint} to find its images", console=err_console) as status:
        result = run_program(blueprint)
        cache = chosen_dir(charts, no_charts)
        if cache is not None:
            status.update(f"rendering {blueprint}'s releases through the charts in {cache}")
        render_charts_if_cached(result, cache)
        return platform_images(result)


@images_app.command("list")
def list_command(
    blueprint: Blueprint,
    charts: ChartsOption = None,
    no_charts: NoChartsOption = False,
    output_format: ListFormat = typer.Option(ListFormat.table, "--format", help="table, json, or plain (one a line)."),
) -> None:
    """List every image the platform and its models will run, with what runs each."""
    with guarded():
        found = _platform_images(blueprint, charts, no_charts)
        if output_format is ListFormat.json:
            typer.echo(json.dumps({"images": [{"image": str(use.image), "usedBy": use.used_by} for use in found.images],
                                   "unreadReleases": found.unread_releases}, indent=2))
            return
        if output_format is ListFormat.plain:
            typer.echo("\n".join(str(use.image) for use in found.images))
        else:
            from rich.table import Table

            table = Table(title=f"{len(found.images)} images of {blueprint}")
            # An image name is copied and pasted: never cut or wrapped; the uses wrap instead.
            table.add_column("image", no_wrap=True)
            table.add_column("used by")
            for use in found.images:
                table.add_row(str(use.image), "\n".join(use.used_by))
            print_uncut(table)
        if found.unread_releases:
            from shipway.charts.cache import PULL_HINT

            err_console.print("[yellow]not read[/] (their charts set images only a chart render shows): "
                              + ", ".join(found.unread_releases) + f"; {PULL_HINT}")


@images_app.command("mirror")
def mirror_command(
    blueprint: Annotated[Path | None, typer.Argument(help="Blueprint whose images to copy.")] = None,
    charts: ChartsOption = None,
    no_charts: NoChartsOption = False,
    to: str = typer.Option(..., "--to", help="Mirror registry and path prefix: oci://HOST or oci://HOST/PREFIX."),
    image: list[str] = typer.Option([], "--image", help="Copy this image too (repeatable); needed without a blueprint."),
    plain_http: bool = typer.Option(False, "--plain-http", envvar="SHIPWAY_PLAIN_HTTP",
                                    help="Speak HTTP to the mirror (a local registry)."),
    insecure_registry: list[str] = typer.Option(
        [], "--insecure-registry", help="A source registry host to speak HTTP to (repeatable)."),
) -> None:
    """Copy images to a mirror with every digest kept: an index with all its platforms, manifests byte for byte.

    The mirror's copy of REGISTRY/PATH:TAG is HOST/PREFIX/REGISTRY/PATH:TAG.

    Mirror credentials: SHIPWAY_REGISTRY_USERNAME and SHIPWAY_REGISTRY_PASSWORD, or a docker config.

    Sources are read anonymously, or with the docker config's credentials.
    """
    with guarded():
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        from shipway.artifacts.auth import resolve_credentials
        from shipway.artifacts.registry import RegistryClient
        from shipway.errors import ShipwayError
        from shipway.images.inventory import parse_image
        from shipway.images.mirror import MirrorTarget, mirror_image

        target = MirrorTarget.parse(to)
        found = _platform_images(blueprint, charts, no_charts) if blueprint else None
        wanted = [use.image for use in found.images] if found else []
        wanted += [parsed for parsed in map(parse_image, image) if parsed not in wanted]
        if blueprint is not None:
            _refuse_team_repositories(blueprint, to, target, wanted)
        if found is not None and found.unread_releases:
            raise ShipwayError("these releases' images cannot be read without their charts, so a mirror would "
                               f"miss them: {', '.join(found.unread_releases)}; render them with --charts")
        if not wanted:
            raise ShipwayError("nothing to mirror: give a blueprint, or images with --image")
        client = RegistryClient(target.host, plain_http=plain_http, credentials=resolve_credentials())
        done = []
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), console=err_console,
                      transient=True) as bars:
            overall = bars.add_task(f"mirroring {len(wanted)} images to {to}", total=len(wanted))
            blob = bars.add_task("", total=None)

            def progress(what: str, so_far: int, total: int) -> None:
                bars.update(blob, description=what, completed=so_far, total=total)

            for source in wanted:
                done.append(mirror_image(source, target, client, insecure=frozenset(insecure_registry),
                                         progress=progress))
                bars.advance(overall)
        for result in done:
            console.print(f"{result.source} -> {result.target}  "
                          f"({result.manifests} manifests, {result.blobs_sent} blobs sent, {result.bytes_sent} bytes)")


def _refuse_team_repositories(blueprint: Path, to: str, target: MirrorTarget, wanted: list[ImageRef]) -> None:
    """Refuse copies that would land in a team's repositories: in the platform's zot, `<team>/**` belongs to the
    team's identities, whose push could then replace images the platform runs (exit 2)."""
    from shipway.render.registry import owning_team
    from shipway.spec import load_blueprint

    teams = [team.name for team in load_blueprint(blueprint).teams]
    clashes = sorted({(target.repository(image), owner) for image in wanted
                      if (owner := owning_team(target.repository(image), teams)) is not None})
    if clashes:
        repository, team = clashes[0]
        raise BadOption(f"Got --to {to}: {len(clashes)} images would land in repositories of team {team} "
                        f"(first {repository}), which the team's push identity may overwrite in the platform's "
                        f"registry. Choose a prefix whose first part is no team's name ({', '.join(teams)}), "
                        f"e.g. --to oci://{target.host}/platform-mirror")


def register(app: typer.Typer) -> None:
    """Add the images commands to the app."""
    app.add_typer(images_app, name="images")
