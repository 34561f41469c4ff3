"""The base install is the kind road; every other third-party import belongs to an extra, and says which.

pyproject.toml's dependencies and extras are read as written; `importlib.metadata` says which installed
distribution provides each module and what each distribution requires.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

from shipway.errors import EXTRA_OF_MODULE

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# Imported only where the module that brings them is: each is listed with that module's extra.
BROUGHT_BY = {"multidict": "aiohttp", "yarl": "aiohttp", "urllib3": "kubernetes", "google": "pulumi"}
OPTIONAL_EVEN_IN_AN_EXTRA = {"uvloop"}  # the sidecar uses it only when the runtime image already has it


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


@cache
def _closure(names: frozenset[str]) -> frozenset[str]:
    """The distributions these require, transitively, as installed here."""
    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        try:
            requirements = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requirements if "extra ==" not in r]
    return frozenset(found)


def _imports() -> set[str]:
    """Every top-level module the package imports."""
    found = set()
    for path in (ROOT / "src" / "shipway").rglob("*.py"):
        if "templates" in path.relative_to(ROOT / "src" / "shipway").parts:
            continue  # the model-repo template's code runs in the baked repo, with that repo's requirements
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"shipway", "__future__"}


def test_the_base_dependencies_hold_no_extras_module() -> None:
    base = _closure(frozenset(_name(r) for r in PROJECT["dependencies"]))
    providers = metadata.packages_distributions()
    leaked = {module for module in EXTRA_OF_MODULE
              if {_name(d) for d in providers.get(module, [])} & base}
    assert not leaked, f"the base install brings {leaked}; move them to their extra or drop them from EXTRA_OF_MODULE"


def test_every_extras_module_is_brought_by_that_extra() -> None:
    providers = metadata.packages_distributions()
    extras = PROJECT["optional-dependencies"]
    for module, extra in EXTRA_OF_MODULE.items():
        closure = _closure(frozenset(_name(r) for r in extras[extra]))
        dists = {_name(d) for d in providers.get(module, [])}
        assert dists & closure, f"{module} is mapped to the {extra} extra, which does not bring it"


def test_every_third_party_import_is_in_the_base_install_or_named_by_its_extra() -> None:
    base = _closure(frozenset(_name(r) for r in PROJECT["dependencies"]))
    providers = metadata.packages_distributions()
    for module in sorted(_imports() - OPTIONAL_EVEN_IN_AN_EXTRA):
        dists = {_name(d) for d in providers.get(module, [])}
        if module in EXTRA_OF_MODULE:
            continue
        if module in BROUGHT_BY and BROUGHT_BY[module] in EXTRA_OF_MODULE:
            continue
        assert dists & base, f"src imports {module} ({dists}), which neither the base install nor EXTRA_OF_MODULE covers"


def test_dev_brings_every_extra_the_tests_need() -> None:
    dev = {r for r in PROJECT["optional-dependencies"]["dev"] if r.startswith("shipway[")}
    assert dev == {"shipway[model,cluster,aws,gcp,charts]"}


def _blocked(modules: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a child whose imports of MODULES fail, as in an install without their extra."""
    code = (f"import sys; sys.modules.update(dict.fromkeys({modules!r})); sys.argv = ['shipway', *{list(args)!r}]; "
            "from shipway.cli import main; main()")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "COLUMNS": "200"})


def test_a_command_without_its_extra_names_the_extra(tmp_path: Path) -> None:
    data = tmp_path / "holdout.csv"
    data.write_text("y,a,b\n1,1,1\n0,0,0\n")
    gate = _blocked(["numpy", "pandas"], "gate", str(data), "--labels", "y", "--candidate", "a",
                    "--baseline", "b", "--metric", "accuracy", "-o", str(tmp_path / "g"))
    assert gate.returncode == 1, gate.stderr
    assert "needs the `model` extra" in gate.stderr and "pip install 'shipway[model]'" in gate.stderr
    assert "Traceback" not in gate.stderr
    eks = _blocked(["pulumi_aws", "pulumi_eks"], "synth", "blueprints/eks-prod.yaml", "-q",
                   "-o", str(tmp_path / "eks"))
    assert eks.returncode == 1 and "pip install 'shipway[aws]'" in eks.stderr, eks.stderr
    charts = _blocked(["helm_python"], "synth", "blueprints/kind-dev.yaml", "-q", "--charts", str(tmp_path),
                      "-o", str(tmp_path / "kind"))
    assert charts.returncode == 1 and "pip install 'shipway[charts]'" in charts.stderr, charts.stderr
    kind = _blocked(["pulumi_aws", "pulumi_eks", "pulumi_gcp", "numpy", "kubernetes", "testinfra"],
                    "validate", "blueprints/kind-dev.yaml")
    assert kind.returncode == 0, kind.stderr
