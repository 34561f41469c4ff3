"""`shipway charts pull` against a chart repository served on 127.0.0.1, and `shipway diff` of two synths.

The repository is built with Helm's own packager and indexer from a chart in the shared cache; nothing
reaches the network.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import helm_python as helm
import pytest
from typer.testing import CliRunner

from shipway.catalog import Chart
from shipway.charts.diff import diff
from shipway.charts.pull import ChartPullError, pull
from shipway.cli import app

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def repository(chart_cache: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP chart repository holding zot 0.1.122, on a free port of 127.0.0.1."""
    served = tmp_path / "repo"
    served.mkdir()
    helm.package(chart_cache / "zot-0.1.122", destination=served)
    helm.repo_index_generate(served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_pull_fetches_checks_and_unpacks_a_chart_that_renders_as_the_original(
        repository: tuple[str, Path], chart_cache: Path, tmp_path: Path) -> None:
    url, _ = repository
    pulled = pull(Chart("zot", url, "0.1.122"), tmp_path / "cache")
    assert pulled.folder == tmp_path / "cache" / "zot-0.1.122" and pulled.verified == "index digest"
    values = {"persistence": True, "serviceHeadless": {"enabled": True}}
    with helm.Chart.load(pulled.folder) as fetched, helm.Chart.load(chart_cache / "zot-0.1.122") as original:
        assert fetched.render(values, name="zot", namespace="r") == original.render(values, name="zot", namespace="r")
    again = pull(Chart("zot", url, "0.1.122"), tmp_path / "cache")
    assert again.verified == "already in the cache"


def test_an_archive_that_is_not_what_the_index_publishes_is_refused(repository: tuple[str, Path],
                                                                   tmp_path: Path) -> None:
    url, served = repository
    archive = served / "zot-0.1.122.tgz"
    archive.write_bytes(archive.read_bytes() + b"\0")  # the index still holds the original's sha256
    with pytest.raises(ChartPullError, match="is not the .* that .*index.yaml publishes"):
        pull(Chart("zot", url, "0.1.122"), tmp_path / "cache")
    assert not (tmp_path / "cache" / "zot-0.1.122").exists()


def test_a_version_the_repository_does_not_list_is_named(repository: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = repository
    with pytest.raises(ChartPullError, match="lists no zot 9.9.9"):
        pull(Chart("zot", url, "9.9.9"), tmp_path / "cache")


def test_pull_refuses_a_chart_the_catalog_does_not_pin(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["charts", "pull", "nginx", "--charts", str(tmp_path)])
    assert result.exit_code == 2 and "not in the catalog: nginx" in result.output  # bad input


def _synth(out: Path, blueprint: Path, chart_cache: Path) -> None:
    result = CliRunner().invoke(app, ["synth", str(blueprint), "-o", str(out), "-q", "--charts", str(chart_cache)])
    assert result.exit_code == 0, result.output


def test_diff_names_the_objects_and_fields_a_blueprint_change_touches(chart_cache: Path, tmp_path: Path) -> None:
    blueprint = ROOT / "blueprints" / "kind-dev.yaml"
    changed = tmp_path / "kind-dev.yaml"
    text = blueprint.read_text()
    assert "\nregistry:" not in text  # the default zot, 200Gi
    changed.write_text(text + "registry: {type: zot, storageSize: 300Gi}\n")
    _synth(tmp_path / "a", blueprint, chart_cache)
    _synth(tmp_path / "b", changed, chart_cache)
    assert diff(tmp_path / "a", tmp_path / "a") == []
    entries = {(e.kind, e.key): e for e in diff(tmp_path / "a", tmp_path / "b")}
    release = entries[("release", "shipway-registry/zot")]
    assert [(c.path, c.before, c.after) for c in release.changes] == [("values.pvc.storage", "200Gi", "300Gi")]
    statefulset = next(e for (kind, key), e in entries.items() if key.startswith("StatefulSet shipway-registry/zot"))
    assert [c.path for c in statefulset.changes] == [
        "spec.volumeClaimTemplates[0].spec.resources.requests.storage"]
    result = CliRunner().invoke(app, ["diff", str(tmp_path / "a"), str(tmp_path / "b"), "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["changed"] == len(entries) and report["added"] == report["removed"] == 0
    same = CliRunner().invoke(app, ["diff", str(tmp_path / "a"), str(tmp_path / "a")])
    assert same.exit_code == 0 and "0 added, 0 removed, 0 changed" in same.output


def test_diff_of_a_folder_that_is_no_synth_output_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["diff", str(tmp_path), str(tmp_path)])
    assert result.exit_code == 2 and "is not a synth output" in result.output and "Traceback" not in result.output
