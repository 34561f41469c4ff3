"""`shipway charts pull` from an OCI registry: Debian's docker-registry on 127.0.0.1, the chart pushed with
Helm's own OCI client from the shared chart cache."""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import pytest

from shipway.catalog import Chart
from shipway.charts.pull import ChartPullError, pull

pytestmark = pytest.mark.integration


def test_pull_from_an_oci_registry_unpacks_the_pinned_chart(registry, chart_cache: Path, tmp_path: Path) -> None:
    archive = helm.package(chart_cache / "zot-0.1.122", destination=tmp_path / "dist")
    helm.push(archive, f"oci://{registry.host}/charts", plain_http=True)
    pulled = pull(Chart("zot", f"oci://{registry.host}/charts", "0.1.122"), tmp_path / "cache", plain_http=True)
    assert pulled.verified == "OCI manifest" and pulled.digest.startswith("sha256:")
    with helm.Chart.load(pulled.folder) as chart:
        assert (chart.name, chart.version) == ("zot", "0.1.122")
    with pytest.raises(ChartPullError, match="cannot pull"):
        pull(Chart("zot", f"oci://{registry.host}/charts", "9.9.9"), tmp_path / "cache", plain_http=True)
    assert not (tmp_path / "cache" / "zot-9.9.9").exists()
