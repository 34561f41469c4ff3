"""Blueprint commands: validate, synth, schema, kind-config."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from shipway.cli._common import ChartsOption, NoChartsOption, console, err_console, former_name, guarded, print_uncut

if TYPE_CHECKING:  # the CLI's start-up path imports neither rich.tree nor pulumi
    from rich.tree import Tree

    from shipway.platform.synth import SynthResult

SCHEMA_DIR = Path("blueprints/schema")


class OutputFormat(str, Enum):
    """How a command reports."""

    table = "table"
    json = "json"


class FactsFormat(str, Enum):
    """How cluster-info prints: a table, JSON, or KEY=value lines for $GITHUB_OUTPUT and shells."""

    table = "table"
    json = "json"
    env = "env"




def validate(
    blueprint: Path = typer.Argument(..., help="Blueprint YAML file."),
    output_format: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table or json."),
) -> None:
    """Load a blueprint, check its cross-field rules, then dry-run synth. Exit 0 if valid, 1 if not.

    Choices that are legal but likely wrong are reported as warnings and do not fail validation.
    """
    from shipway.errors import ShipwayError, SpecError

    problems: list[dict[str, object]] = []
    warnings: list[dict[str, object]] = []
    counts: dict[str, int] = {}
    stage = "synth"
    try:
        from shipway.platform.synth import run_program
        from shipway.spec import blueprint_warnings

        result = run_program(blueprint)
        counts = result.counts_by_layer()
        warnings = [_problem_dict(p) for p in blueprint_warnings(blueprint, result.blueprint)]
    except SpecError as error:
        stage = "load"
        problems = [_problem_dict(p) for p in error.problems]
    except ShipwayError as error:
        # A failure of the Pulumi program has no position in the blueprint.
        problems = [{"file": str(blueprint), "line": None, "column": None, "path": "", "message": str(error),
                     "hint": ""}]
    valid = not problems
    if output_format is OutputFormat.json:
        typer.echo(json.dumps({"blueprint": str(blueprint), "valid": valid, "failedAt": None if valid else stage,
                               "problems": problems, "warnings": warnings, "resourcesByLayer": counts}, indent=2))
    else:
        _print_problems(warnings, "yellow", "warning")
        if valid:
            total = sum(counts.values())
            console.print(f"[green]valid[/]: {blueprint} ({total} resources over {len(counts)} layers"
                          + (f", {len(warnings)} warning(s))" if warnings else ")"))
        else:
            _print_problems(problems, "red", "")
            err_console.print(f"[red]invalid[/]: {len(problems)} problem(s)")
    raise typer.Exit(0 if valid else 1)


def _problem_dict(problem: object) -> dict[str, object]:
    return {key: getattr(problem, key) for key in ("file", "line", "column", "path", "message", "hint")}


def _print_problems(problems: list[dict[str, object]], colour: str, label: str) -> None:
    from rich.markup import escape

    for problem in problems:
        where = (f"{problem['file']}:{problem['line']}:{problem['column']}" if problem["line"] is not None
                 else str(problem["file"]))
        path = f" {problem['path']}:" if problem["path"] else ""
        prefix = f" {label}:" if label else ""
        err_console.print(f"[bold]{escape(where)}[/]:{escape(path)}[{colour}]{prefix} "
                          f"{escape(str(problem['message']))}[/]")
        if problem["hint"]:
            err_console.print(f"    hint: {escape(str(problem['hint']))}")


def synth(
    blueprint: Path = typer.Argument(..., help="Blueprint YAML file."),
    out: Path = typer.Option(Path("synth.out"), "-o", "--output", help="Output folder (replaced atomically)."),
    out_former: Path | None = former_name("--out"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Skip the resource tree."),
    charts: ChartsOption = None,
    no_charts: NoChartsOption = False,
) -> None:
    """Run the real Pulumi program offline under the mock engine and write what `pulumi up` would register.

    With a chart cache, every Helm release is also rendered through its pinned chart with Helm's own
    engine, for the blueprint's Kubernetes version: rendered/ holds every object the releases create.
    """
    out = out_former or out
    with guarded():
        from rich.markup import escape
        from rich.status import Status

        from shipway.charts.cache import PULL_HINT, chosen_dir
        from shipway.platform.synth import render_charts_if_cached, run_program, write

        with Status(f"synthesising {blueprint} under the Pulumi mock engine", console=err_console) as status:
            result = run_program(blueprint)
            cache = chosen_dir(charts, no_charts)
            if cache is not None:
                status.update(f"rendering {blueprint}'s releases through the charts in {cache}")
            render_charts_if_cached(result, cache)
            files = write(result, out)
        if not quiet:
            print_uncut(_tree(result))
        if cache is not None and result.charts is None:
            err_console.print(f"[yellow]charts not rendered[/]: no chart cache at {escape(str(cache))}; "
                              f"{escape(PULL_HINT)}", highlight=False)
        elif result.charts is not None:
            rendered = result.charts
            err_console.print(f"rendered {len(rendered.rendered)} release(s), "
                              f"{rendered.summary()['objects']} objects, through the charts in "
                              f"{escape(str(cache))} for Kubernetes {rendered.kubernetes_version} "
                              f"in {rendered.seconds:.1f} s", highlight=False)
            if rendered.absent:
                err_console.print("[yellow]charts missing[/], so these releases are not rendered:", highlight=False)
                for _, absent in rendered.absent:
                    err_console.print(f"  {escape(str(absent))}", highlight=False)
                err_console.print(f"  hint: {escape(PULL_HINT)}", highlight=False)
        parts = "plan.json, platform.json, manifests/, releases/" + (", rendered/" if result.charts else "")
        console.print(f"wrote {len(files)} files to {out}/ ({parts})")


def _tree(result: SynthResult) -> Tree:
    from rich.tree import Tree

    from shipway.platform import LAYERS

    counts = result.counts_by_layer()
    root = Tree(f"[bold]{result.blueprint.metadata.name}[/] ({result.blueprint.cluster.kind}), "
                f"{sum(counts.values())} resources")
    for layer in LAYERS:
        branch = root.add(f"[cyan]{layer}[/] ({counts.get(layer, 0)})")
        for resource in result.resources:
            if resource.layer == layer and resource.custom:
                kind = resource.type.split(":")[-1]
                branch.add(f"{kind} [dim]{resource.name}[/]")
    return root


def schema(
    out: Path = typer.Option(SCHEMA_DIR, "-o", "--output", help="Folder for blueprint and model JSON Schemas."),
    out_former: Path | None = former_name("--out-dir"),
    check: bool = typer.Option(False, "--check", help="Exit 1 if a file differs instead of writing it."),
) -> None:
    """Write the blueprint and model.yaml JSON Schemas that editors use to complete and validate them."""
    out = out_former or out
    with guarded():
        from shipway.files import write_atomic
        from shipway.spec import blueprint_json_schema, model_json_schema, schema_text

        schemas = {"blueprint.schema.json": blueprint_json_schema(), "model.schema.json": model_json_schema()}
        stale = []
        for name, document in schemas.items():
            path, text = out / name, schema_text(document)
            if check:
                if not path.exists() or path.read_text(encoding="utf-8") != text:
                    stale.append(str(path))
                continue
            write_atomic(path, text)
            console.print(f"wrote {path}")
        if stale:
            err_console.print(f"[red]stale[/]: {', '.join(stale)} differ from the spec; run `shipway schema`")
            raise typer.Exit(1)
        if check:
            console.print(f"{', '.join(str(out / name) for name in schemas)} are up to date")


def kind_config(
    blueprint: Path = typer.Argument(..., help="Blueprint YAML file with `cluster.kind: kind`."),
    out: Path | None = typer.Option(None, "-o", "--output", help="Write here instead of standard output."),
    out_former: Path | None = former_name("--out"),
) -> None:
    """Write the kind cluster config: a control plane, one worker per pool with its labels and taints."""
    out = out_former or out
    with guarded():
        from shipway.errors import ShipwayError
        from shipway.render.cluster import kind_config as render_kind_config
        from shipway.files import write_atomic
        from shipway.spec import load_blueprint
        from shipway.yamlio import to_yaml

        loaded = load_blueprint(blueprint)
        if loaded.cluster.kind != "kind":
            raise ShipwayError(f"{blueprint}: cluster.kind is {loaded.cluster.kind}; kind-config needs "
                               "`cluster: {kind: kind}`")
        text = to_yaml(render_kind_config(loaded))
        if out is None:
            typer.echo(text, nl=False)
        else:
            write_atomic(out, text)
            err_console.print(f"wrote {out}; create the cluster with `kind create cluster --config {out}`")


def cluster_info(
    blueprint: Path = typer.Argument(..., help="Blueprint YAML file."),
    output_format: FactsFormat = typer.Option(FactsFormat.table, "--format", help="table, json or env."),
) -> None:
    """Print the names scripts share with the stack: cluster, kubeconfig context, node and Shipway images."""
    with guarded():
        from shipway.render.cluster import cluster_facts
        from shipway.spec import load_blueprint

        facts = cluster_facts(load_blueprint(blueprint))
        if output_format is FactsFormat.json:
            typer.echo(json.dumps(facts, indent=2))
        elif output_format is FactsFormat.env:
            typer.echo("\n".join(f"{key}={value}" for key, value in facts.items()))
        else:
            # Plain aligned lines, never a table: a digest cut to a terminal's width cannot be copied.
            width = max(map(len, facts))
            for key, value in facts.items():
                console.print(f"[bold]{key:<{width}}[/]  {value}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the blueprint commands to the app."""
    app.command("validate")(validate)
    app.command("synth")(synth)
    app.command("schema")(schema)
    app.command("kind-config")(kind_config)
    app.command("cluster-info")(cluster_info)
