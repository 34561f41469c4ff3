"""The Shipway image: what its Dockerfile promises, and that its dependency list covers what its commands import."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from shipway.artifacts.layout import init_container_args

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
REQUIREMENTS = REPO / "requirements-image.txt"
LOCK = REPO / "requirements-image.lock"

# The modules the image's commands run: `shipway model pull` (init container), `shipway sidecar`, the node plugin.
IMAGE_COMMANDS = {
    ("shipway", "model", "pull"): ["shipway.cli", "shipway.cli.artifacts", "shipway.artifacts.pull"],
    ("shipway", "sidecar"): ["shipway.cli", "shipway.cli.sidecar", "shipway.sidecar.server"],
    # The node model cache's CSI plugin (the DaemonSet in shipway-cache): grpcio and protobuf.
    ("shipway", "model", "csi-node"): ["shipway.cli", "shipway.cli.artifacts", "shipway.artifacts.csi.node"],
}
# What the image must never carry: the deploy-time SDKs.
FORBIDDEN = ("pulumi", "pulumi-kubernetes", "pulumi-aws", "pulumi-eks", "pulumi-gcp", "boto3", "google-cloud")


def image_requirements() -> list[Requirement]:
    lines = [line.split("#")[0].strip() for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines()]
    return [Requirement(line) for line in lines if line]


def project_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = [project["dependencies"], *project.get("optional-dependencies", {}).values()]
    return {Requirement(line).name.lower(): Requirement(line) for group in groups for line in group}


def test_the_dockerfile_is_multi_stage_pinned_by_digest_and_runs_as_a_numeric_non_root_user() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base and re.fullmatch(r"python:[\w.-]+@sha256:[0-9a-f]{64}", base.group(1)), "base image is not pinned"
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert stages == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"], stages
    users = re.findall(r"^USER (\d+):(\d+)$", text, re.MULTILINE)
    assert users and all(int(uid) > 0 and int(gid) > 0 for uid, gid in users), "the last stage must set USER uid:gid"
    final = text.rsplit("\nFROM ", 1)[1]
    assert "USER" in final and "PYTHONDONTWRITEBYTECODE=1" in final, "the run stage must not write bytecode"
    assert "--no-deps ." in text and "--require-hashes -r requirements-image.lock" in text


def test_image_requirements_carry_pyprojects_specifiers_and_no_deploy_sdk() -> None:
    declared = project_requirements()
    for requirement in image_requirements():
        name = requirement.name.lower()
        assert name in declared, f"{name} is in requirements-image.txt but not in pyproject.toml"
        assert requirement.specifier == declared[name].specifier, (
            f"{name}: requirements-image.txt says {requirement.specifier}, pyproject.toml {declared[name].specifier}")
        assert not name.startswith(FORBIDDEN), f"{name} has no place in the image"


def test_the_lock_pins_every_image_requirement_with_hashes() -> None:
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    pinned: dict[str, Version] = {}
    hashed: dict[str, int] = {}
    current = ""
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.split(" ")[0].partition("==")
            assert version, f"requirements-image.lock: {line!r} is not pinned with =="
            current = canonicalize_name(name)
            pinned[current], hashed[current] = Version(version), 0
        elif line.strip().startswith("--hash=sha256:"):
            hashed[current] += 1
    assert pinned and all(count > 0 for count in hashed.values()), "every pin needs its hashes"
    for requirement in image_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is in requirements-image.txt but not in the lock: regenerate it"
        assert requirement.specifier.contains(pinned[name]), (
            f"the lock pins {name}=={pinned[name]}, outside requirements-image.txt's {requirement.specifier}")
    # The lock is the closure of the requirements: nothing the image's commands import is missing from it.
    closure = {canonicalize_name(name) for name in _distribution_closure(image_requirements())}
    assert closure <= {canonicalize_name(name) for name in pinned}


def test_the_rendered_pods_run_only_commands_the_image_is_checked_for() -> None:
    pulled = tuple(init_container_args("registry.example/team/model@sha256:" + "0" * 64)[:3])
    assert pulled in IMAGE_COMMANDS
    from shipway.delivery import render

    sidecar_source = Path(render.__file__).read_text(encoding="utf-8")
    assert '["shipway", "sidecar"' in sidecar_source and ("shipway", "sidecar") in IMAGE_COMMANDS


def _distribution_closure(requirements: list[Requirement]) -> set[str]:
    """The distributions pip installs for these requirements: them and everything they require."""
    from importlib import metadata

    seen: set[str] = set()
    queue = [requirement.name for requirement in requirements]
    while queue:
        name = queue.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                queue.append(requirement.name)
    return seen


def test_image_requirements_cover_every_module_the_image_commands_import() -> None:
    """Import the commands' modules with every distribution the image lacks hidden, as in the image."""
    from importlib import metadata

    installed = _distribution_closure(image_requirements())
    owners = metadata.packages_distributions()
    allowed = sorted({top for top, dists in owners.items()
                      if any(dist.lower().replace("_", "-") in installed for dist in dists)} | {"shipway"})
    hidden = sorted({top for top in owners if top not in allowed and top not in sys.stdlib_module_names})
    modules = sorted({module for imports in IMAGE_COMMANDS.values() for module in imports})
    probe = (
        "import importlib, importlib.abc, json, sys\n"
        f"hidden = set({hidden!r})\n"
        "class Absent(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in hidden:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (not in the image)', name=name)\n"
        "sys.meta_path.insert(0, Absent())\n"
        f"for module in {modules!r}: importlib.import_module(module)\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 0, f"an image command needs what requirements-image.txt does not install:\n{run.stderr}"
    imported = set(json.loads(run.stdout))
    assert {"aiohttp", "numpy", "oras", "grpc"} <= imported, "the probe did not import the image's commands"
    deploy_time = {top for top in imported for dist in owners.get(top, []) if dist.lower().startswith(FORBIDDEN)}
    assert not deploy_time, f"the image's commands import deploy-time SDKs: {sorted(deploy_time)}"


@pytest.mark.skipif(sys.platform != "linux", reason="the release file test reads a package folder")
def test_a_released_package_names_the_image_by_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shipway
    from shipway import catalog

    assert catalog.shipway_image() == f"{catalog.SHIPWAY_IMAGE_REPOSITORY}:{shipway.__version__}"
    package = tmp_path / "shipway"
    package.mkdir()
    (package / "__init__.py").write_text(f"__version__ = {shipway.__version__!r}\n", encoding="utf-8")
    digest = "sha256:" + "ab" * 32
    fork = "ghcr.io/a-fork/shipway"
    (package / catalog.RELEASE_FILE).write_text(json.dumps({"image": {"repository": fork, "digest": digest}}),
                                                encoding="utf-8")
    from importlib import resources

    from shipway.errors import ShipwayError

    monkeypatch.setattr(resources, "files", lambda name: package)
    # The repository the release pushed to is recorded too: a fork's wheel names the fork's image.
    assert catalog.shipway_image() == f"{fork}:{shipway.__version__}@{digest}" == catalog.SHIPWAY_IMAGE
    for damaged in ('{"image": {"repository": "x", "digest": "latest"}}', '{"image": {"digest": "sha256:' + "a" * 64
                    + '"}}', "not json"):
        (package / catalog.RELEASE_FILE).write_text(damaged, encoding="utf-8")
        with pytest.raises(ShipwayError, match="reinstall Shipway"):
            catalog.shipway_image()


def _containers(objects: list[dict]) -> list[dict]:
    pod = next(obj for obj in objects if obj["kind"] == "Rollout")["spec"]["template"]["spec"]
    return [*pod["initContainers"], *pod["containers"]]


def test_a_blueprint_can_name_a_mirrored_shipway_image_for_every_model_pod(tmp_path: Path) -> None:
    from shipway import catalog
    from shipway.delivery.render import render
    from shipway.render.profile import platform_profile
    from shipway.spec import load_blueprint, load_model_spec

    source = (REPO / "blueprints" / "kind-dev.yaml").read_text(encoding="utf-8")
    mirror = "registry.internal:5000/mirror/shipway:0.1.0@sha256:" + "c" * 64
    mirrored = tmp_path / "mirrored.yaml"
    mirrored.write_text(source + f"platform:\n  images:\n    shipway: {mirror}\n", encoding="utf-8")
    spec = load_model_spec(REPO / "tests" / "unit" / "delivery" / "models" / "canary-sklearn.yaml")

    default = _containers(render(spec, platform_profile(load_blueprint(REPO / "blueprints" / "kind-dev.yaml")),
                                 "staging"))
    shipway_containers = [c for c in default if c["image"] == catalog.SHIPWAY_IMAGE]
    assert {c["name"] for c in shipway_containers} >= {"fetch-model"} and len(shipway_containers) == 2

    chosen = _containers(render(spec, platform_profile(load_blueprint(mirrored)), "staging"))
    assert [c["image"] for c in chosen if c["name"] in {s["name"] for s in shipway_containers}] == [mirror, mirror]


@pytest.mark.parametrize("reference", ["shipway", "Registry.io/shipway:1", "shipway:1@sha256:abc", "a b:1"])
def test_a_malformed_shipway_image_is_refused_at_its_line(tmp_path: Path, reference: str) -> None:
    from shipway.errors import SpecError
    from shipway.spec import load_blueprint

    source = (REPO / "blueprints" / "kind-dev.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(source + f"platform:\n  images:\n    shipway: {reference!r}\n", encoding="utf-8")
    with pytest.raises(SpecError) as raised:
        load_blueprint(bad)
    problem = raised.value.problems[0]
    assert problem.path == "platform.images.shipway" and problem.line == source.count("\n") + 3, problem
