"""Reading images out of objects the way runtimes and operators read them, and `shipway images list`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipway.cli import app
from shipway.images.inventory import BadImageReference, ImageRef, images_in, inventory, parse_image
from shipway.images.mirror import MirrorTarget

REPO = Path(__file__).resolve().parents[3]
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "expected"), [
    ("nginx", ImageRef("docker.io", "library/nginx", "latest")),
    ("nginx:1.25", ImageRef("docker.io", "library/nginx", "1.25")),
    ("bitnami/redis:7", ImageRef("docker.io", "bitnami/redis", "7")),
    ("docker.io/vllm/vllm-openai:v0.11.0", ImageRef("docker.io", "vllm/vllm-openai", "v0.11.0")),
    ("localhost:5000/a/b@" + DIGEST, ImageRef("localhost:5000", "a/b", None, DIGEST)),
    ("ghcr.io/x/y:1.0@" + DIGEST, ImageRef("ghcr.io", "x/y", "1.0", DIGEST)),
])
def test_references_normalise_as_the_container_runtime_reads_them(text: str, expected: ImageRef) -> None:
    assert parse_image(text) == expected
    assert parse_image(str(expected)) == expected, "the normal form parses back to itself"


@pytest.mark.parametrize("text", ["", "NGINX", "a b:1", "x:1@sha256:abc", "registry.io/x:"])
def test_what_is_not_an_image_is_refused_with_the_form_to_write(text: str) -> None:
    with pytest.raises(BadImageReference, match=r"\[REGISTRY/\]PATH\[:TAG\]"):
        parse_image(text)


def test_images_are_found_in_pods_custom_resources_nvidia_triplets_and_operator_flags() -> None:
    deployment = {"kind": "Deployment", "spec": {"template": {"spec": {
        "initContainers": [{"name": "init", "image": "busybox:1.36"}],
        "containers": [{"name": "operator", "image": "quay.io/prometheus-operator/prometheus-operator:v0.80.0",
                        "args": ["--prometheus-config-reloader=quay.io/prometheus-operator/config-reloader:v0.80.0",
                                 "--log-level=info"],
                        "env": [{"name": "SIDECAR", "value": "ghcr.io/x/sidecar@" + DIGEST},
                                {"name": "MODE", "value": "fast"}]}]}}}}
    prometheus = {"kind": "Prometheus", "spec": {"image": "quay.io/prometheus/prometheus:v3.5.0", "replicas": 1}}
    policy = {"kind": "ClusterPolicy", "spec": {"driver": {"repository": "nvcr.io/nvidia", "image": "driver",
                                                           "version": "570.1"},
                                                "toolkit": {"enabled": False, "repository": "nvcr.io/nvidia/k8s",
                                                            "image": "container-toolkit", "version": "v1.20.0"},
                                                "dcgm": {"image": "dcgm"}}}
    assert images_in(deployment) == ["busybox:1.36", "quay.io/prometheus-operator/prometheus-operator:v0.80.0",
                                     "quay.io/prometheus-operator/config-reloader:v0.80.0",
                                     "ghcr.io/x/sidecar@" + DIGEST]
    assert images_in(prometheus) == ["quay.io/prometheus/prometheus:v3.5.0"]
    assert images_in(policy) == ["nvcr.io/nvidia/driver:570.1"], "a switched-off component and a bare name run nothing"
    uses = inventory([("a", deployment), ("b", {"image": "busybox:1.36"}), ("c", policy)])
    busybox = next(use for use in uses if use.image.repository == "library/busybox")
    assert busybox.used_by == ["a", "b"] and len(uses) == 5


def test_the_mirror_name_keeps_registry_and_path_and_a_port_becomes_legal() -> None:
    target = MirrorTarget.parse("oci://registry.internal:5000/mirror")
    assert target.reference(parse_image("nginx:1.25")) == "registry.internal:5000/mirror/docker.io/library/nginx:1.25"
    assert target.repository(parse_image("localhost:5001/team/model:1")) == "mirror/localhost_5001/team/model"
    for bad in ("oci://", "oci://nohost/x", "oci://host.io/x@sha256:1"):
        with pytest.raises(Exception, match="oci://REGISTRY"):
            MirrorTarget.parse(bad)


def test_images_list_names_every_image_of_the_platform_and_what_it_could_not_read() -> None:
    result = CliRunner().invoke(app, ["images", "list", str(REPO / "blueprints" / "kind-dev.yaml"), "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    from shipway import catalog

    images = {entry["image"]: entry["usedBy"] for entry in listed["images"]}
    assert "model pods: artifact pull and sidecar" in images[catalog.SHIPWAY_IMAGE]
    assert images["docker.io/seldonio/mlserver:1.7.1-sklearn"] == ["runtime catalog: sklearn"]
    # The node cache's CSI registrar sidecar, by digest, so a mirror copies it too.
    assert images[catalog.CSI_NODE_DRIVER_REGISTRAR_IMAGE] == [
        "registry: DaemonSet shipway-cache/shipway-node-cache"]
    assert all(image == str(parse_image(image)) for image in images), "every name is normalised"


@pytest.mark.parametrize("example", ["kind-dev", "eks-prod", "gke-prod"])
def test_images_list_with_charts_reads_every_container_every_rendered_release_runs(
    example: str, chart_cache: Path
) -> None:
    from shipway.charts.cache import ChartCache
    from shipway.charts.engine import default_parse_cache
    from shipway.images.collect import platform_images
    from shipway.platform.synth import render_charts, run_program

    result = run_program(REPO / "blueprints" / f"{example}.yaml")
    render = render_charts(result, ChartCache(chart_cache), default_parse_cache())
    rendered = {done.release.name: done.objects() for done in render.rendered}
    found = platform_images(result)
    listed = {use.image for use in found.images}
    containers = {parse_image(container["image"]) for objects in rendered.values() for obj in objects
                  for container in _containers(obj)}
    assert containers, f"{example}: the charts rendered no container: nothing was checked"
    assert containers <= listed, sorted(map(str, containers - listed))
    assert {name.split(" ")[0].split("/")[1] for name in found.unread_releases} == {
        release.name for release, _ in render.absent}, "only releases whose chart is missing go unread"


def _containers(obj: object) -> list[dict]:
    found: list[dict] = []
    if isinstance(obj, dict):
        for key in ("initContainers", "containers"):
            found += [c for c in obj.get(key) or [] if isinstance(c, dict) and "image" in c]
        for value in obj.values():
            found += _containers(value)
    elif isinstance(obj, list):
        for item in obj:
            found += _containers(item)
    return found


def test_tables_never_cut_a_long_image_name(tmp_path: Path) -> None:
    mirror = "registry.internal.example.com:5000/mirror/ghcr.io/shipway-dev/shipway:0.1.0@sha256:" + "c" * 64
    blueprint = tmp_path / "mirrored.yaml"
    blueprint.write_text((REPO / "blueprints" / "kind-dev.yaml").read_text(encoding="utf-8")
                         + f"platform:\n  images:\n    shipway: {mirror}\n", encoding="utf-8")
    runner = CliRunner()
    for args in (["images", "list", str(blueprint), "--no-charts"], ["cluster-info", str(blueprint)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert mirror in result.stdout, f"`shipway {' '.join(args[:2])}` cut the name:\n{result.stdout}"


def test_images_mirror_refuses_a_prefix_that_is_a_team_repository() -> None:
    """In the platform's zot a team's identities own `<team>/**`: mirrored platform images there could be
    replaced by that team's push. The copy is refused before anything is sent (exit 2)."""
    blueprint = str(REPO / "blueprints" / "kind-dev.yaml")
    result = CliRunner().invoke(app, ["images", "mirror", blueprint, "--no-charts", "--to", "oci://localhost:5001/fraud"])
    assert result.exit_code == 2, result.output
    assert "repositories of team fraud (first fraud/docker.io/" in result.output
    assert "platform-mirror" in result.output and "Traceback" not in result.output
    # A prefix that merely starts like a team's name is the platform's (zot's glob is fraud/**, not fraud*).
    other = CliRunner().invoke(app, ["images", "mirror", blueprint, "--no-charts", "--to",
                                     "oci://localhost:5001/fraud-mirror"])
    assert other.exit_code == 1 and "render them with --charts" in other.output, other.output
    assert "repositories of team" not in other.output
