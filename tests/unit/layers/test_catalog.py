"""Every Helm release comes from the catalog, at the catalog's version."""

from __future__ import annotations

from shipway import catalog


def test_every_release_uses_a_catalog_pin(each_blueprint):
    assert each_blueprint.releases
    pins = {chart.ref: chart for chart in catalog.CHARTS.values()}
    for release in each_blueprint.releases.values():
        chart = pins[release["chart"]]
        assert release["version"] == chart.version
        if not chart.is_oci:
            assert release["repo"] == chart.repo


def test_oci_charts_are_referenced_by_full_ref():
    assert catalog.FAKE_GPU_OPERATOR.ref == "oci://ghcr.io/run-ai/fake-gpu-operator/fake-gpu-operator"
    assert catalog.KSERVE.ref == "oci://ghcr.io/kserve/charts/kserve-resources"


def test_http_chart_repositories_are_fetched_over_tls():
    # A chart fetched over plain http can be swapped in transit, and it runs with cluster privileges.
    for chart in catalog.CHARTS.values():
        assert chart.repo.startswith(("https://", "oci://")), f"{chart.name}: {chart.repo}"
