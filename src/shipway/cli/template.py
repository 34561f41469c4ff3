"""`shipway new-model`: bake the model-repo template into a new repository."""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from typing import Optional

import typer

from shipway.cli._common import console, former_name, guarded
from shipway.errors import ShipwayError

RUNTIMES = ("sklearn", "xgboost", "pytorch-triton", "llm-vllm")
ROLLOUTS = ("canary", "blue-green", "none")
CI_SYSTEMS = ("github", "gitlab")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_PACKAGE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_DESCRIPTION = re.compile(r"^[A-Za-z0-9 .,;:()_/'-]{1,200}$")
# The same rule as the template's pre_gen hook: an OCI registry host, optionally with a path prefix.
_REGISTRY = re.compile(r"^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?(/[a-z0-9]([-a-z0-9._]*[a-z0-9])?)*$")
DEFAULT_REGISTRY = "registry.example.com"
# A version or version specifier, e.g. 0.1.0, ==0.1.0, >=0.1,<0.2.
_VERSION = re.compile(r"^(?:(?:==|>=|<=|~=|!=|<|>)?[0-9][0-9A-Za-z.+!*-]*,?)+$")


class TemplateInputError(ShipwayError):
    """An input the template refuses; exit code 2."""

    exit_code = 2


def template_dir() -> Path:
    """The model-repo template, shipped inside the package (src/shipway/templates/model-repo in a checkout)."""
    return Path(__file__).resolve().parents[1] / "templates" / "model-repo"


def shipway_requirement(spec: str | None) -> str:
    """The requirement line a baked repo installs Shipway (with its model tools) from.

    SPEC is a version (the default: this Shipway's, from PyPI), a local folder or wheel, or a URL pip
    understands (git+https://..., https://.../shipway-X.whl).
    """
    from shipway import __version__

    name = "shipway[model]"
    spec = (__version__ if spec is None else spec).strip()
    if not spec or any(character.isspace() for character in spec) or spec.startswith("-"):
        raise TemplateInputError(f"--shipway-spec {spec!r} is not a version, path or URL")
    if _VERSION.match(spec):
        return f"{name}{spec}" if spec[0] in "=<>!~" else f"{name}=={spec}"
    if "://" in spec:
        return f"{name} @ {spec}"
    from shipway.files import target_path

    path = target_path(spec)
    if path.is_dir() and (path / "pyproject.toml").is_file() or path.is_file() and path.suffix == ".whl":
        return f"{name} @ {path.as_uri()}"
    raise TemplateInputError(f"--shipway-spec {spec!r} is neither a version, a Shipway checkout or wheel, "
                             "nor a URL; e.g. 0.1.0, ../shipway, dist/shipway-0.1.0-py3-none-any.whl or "
                             "git+https://github.com/shipway-dev/shipway@v0.1.0")


def _check(name: str, team: str, package: str, description: str, runtime: str, rollout: str, ci: str,
           registry: str = DEFAULT_REGISTRY) -> None:
    """Refuse inputs before cookiecutter renders them: it treats every value as a Jinja template."""
    from shipway.spec.model import MAX_NAME_LENGTH

    for field, value in (("name", name), ("team", team)):
        if not _DNS_LABEL.match(value):
            raise TemplateInputError(
                f"--{field} {value!r} is not a DNS-1123 label: use 1-63 lower-case letters, digits and '-', "
                "starting and ending with a letter or digit"
            )
        # model.yaml's name and team follow the ModelSpec's rule, or the baked repo could never be promoted.
        if len(value) > MAX_NAME_LENGTH or not value[0].isalpha():
            raise TemplateInputError(
                f"--{field} {value!r} is not a model or team name: start with a letter and use at most "
                f"{MAX_NAME_LENGTH} characters, as model.yaml requires"
            )
    if not _PACKAGE.match(package) or keyword.iskeyword(package):
        raise TemplateInputError(f"--package {package!r} is not a valid Python package name (lower-case, digits, '_'; not a keyword)")
    if not _DESCRIPTION.match(description):
        raise TemplateInputError("--description may hold only letters, digits, spaces and . , ; : ( ) _ / ' -")
    if not _REGISTRY.match(registry):
        raise TemplateInputError(f"--registry {registry!r} is not an OCI registry and path prefix, "
                                 "e.g. registry.example.com or registry.example.com/team-prefix")
    for field, value, allowed in (("runtime", runtime, RUNTIMES), ("rollout", rollout, ROLLOUTS), ("ci", ci, CI_SYSTEMS)):
        if value not in allowed:
            raise TemplateInputError(f"--{field} {value!r} is not one of {', '.join(allowed)}")


def bake(
    output_dir: Path,
    name: str,
    team: str,
    runtime: str = "sklearn",
    rollout: str = "canary",
    ci: str = "github",
    description: str = "A model served by the Shipway platform",
    package: str | None = None,
    template: Path | None = None,
    registry: str = DEFAULT_REGISTRY,
    shipway_spec: str | None = None,
) -> Path:
    """Bake the template into OUTPUT_DIR/NAME and return that path; nothing is written under $HOME."""
    import tempfile

    from cookiecutter.exceptions import CookiecutterException, FailedHookException, OutputDirExistsException
    from cookiecutter.main import cookiecutter

    from shipway import __version__
    from shipway.files import target_path

    output_dir = target_path(output_dir)
    package = package or name.replace("-", "_")
    _check(name, team, package, description, runtime, rollout, ci, registry)
    requirement = shipway_requirement(shipway_spec)
    context = {
        "model_name": name,
        "team": team,
        "description": description,
        "package_name": package,
        "runtime": runtime,
        "rollout": rollout,
        "ci": ci,
        "registry": registry,
        # The repo's CI installs the Shipway that baked it (or the source chosen at bake time), not whatever
        # an index serves under the name.
        "_shipway_version": __version__,
        "_shipway_requirement": requirement,
    }
    with tempfile.TemporaryDirectory(prefix="shipway-cookiecutter-") as scratch:
        config = Path(scratch) / "config.yaml"
        # cookiecutter otherwise writes a replay file and clones under $HOME.
        config.write_text(f"replay_dir: {scratch}/replay\ncookiecutters_dir: {scratch}/cookiecutters\n")
        try:
            baked = cookiecutter(
                str(template or template_dir()),
                no_input=True,
                extra_context=context,
                output_dir=str(output_dir),
                config_file=str(config),
            )
        except OutputDirExistsException:
            raise TemplateInputError(f"{Path(output_dir) / name} already exists; choose another name or directory") from None
        except FailedHookException as error:
            raise TemplateInputError(f"the template refused the inputs: {error}") from None
        except CookiecutterException as error:
            raise ShipwayError(f"baking the template failed: {error}") from None
    return Path(baked)


def register(app: typer.Typer) -> None:
    """Add the `new-model` command to the app."""
    app.command("new-model")(new_model)


def new_model(
    name: str = typer.Argument(..., help="Model name (DNS-1123 label), also the new directory's name."),
    team: str = typer.Option(..., "--team", help="Owning team (DNS-1123 label)."),
    runtime: str = typer.Option("sklearn", "--runtime", help="sklearn, xgboost, pytorch-triton or llm-vllm."),
    rollout: str = typer.Option("canary", "--rollout", help="canary, blue-green or none."),
    ci: str = typer.Option("github", "--ci", help="github or gitlab."),
    description: str = typer.Option("A model served by the Shipway platform", "--description"),
    package: str = typer.Option("", "--package", help="Python package name; default: the name with '_' for '-'."),
    output_dir: Path = typer.Option(Path("."), "-o", "--output", help="Folder the new repository is created in."),
    output_dir_former: Optional[Path] = former_name("--output-dir"),
    registry: str = typer.Option(
        DEFAULT_REGISTRY, "--registry",
        help="OCI registry and path prefix CI pushes the model to and the pods pull it from, e.g. the platform's.",
    ),
    shipway_spec: Optional[str] = typer.Option(
        None, "--shipway-spec",
        help="Where the repo installs Shipway from: a version on PyPI (default: this one), a checkout, a wheel, "
        "or a URL such as git+https://github.com/shipway-dev/shipway@v0.1.0.",
    ),
) -> None:
    """Create a model repository from the template: code, tests, model.yaml and the CI road to production."""
    output_dir = output_dir_former or output_dir
    with guarded():
        baked = bake(output_dir, name, team, runtime, rollout, ci, description, package or None, registry=registry,
                     shipway_spec=shipway_spec)
    console.print(f"created {baked}", highlight=False)
    console.print("next: cd into it, then `make install` and `make all`", highlight=False)
