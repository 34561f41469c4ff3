"""The Route53 identities on EKS land on the service accounts the DNS controllers' real charts run as.

EKS Pod Identity hands a role to a namespace/service-account pair; a pair no pod runs as gives no pod any
credentials. So cert-manager v1.19.4 and external-dns 1.21.1 are rendered at their pins with eks-prod's values,
and the controller Deployments' service accounts are compared with the associations Shipway creates.
"""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import pytest

from shipway import catalog
from shipway.charts.engine import ReleaseInput, render_release
from shipway.render import eks as render_eks
from shipway.render import gateway
from shipway.spec import load_blueprint

ROOT = Path(__file__).resolve().parents[3]
VERSION = f"{catalog.KUBERNETES_VERSION}.0"


def _deployments(chart_cache: Path, release) -> list[dict]:
    chart = release.chart
    folder = chart_cache / f"{chart.name}-{chart.version}"
    if not folder.is_dir():
        pytest.skip(f"{folder.name} is not in the chart cache")
    given = ReleaseInput("gateway", release.name, chart.name, chart.version, chart.repo, release.namespace,
                         release.values)
    with helm.Chart.load(folder) as loaded:
        rendered = render_release(loaded, given, VERSION)
    return [obj for obj in rendered.objects() if obj["kind"] == "Deployment"]


def test_dns_identities_name_the_service_accounts_the_charts_run_as(chart_cache: Path) -> None:
    blueprint = load_blueprint(ROOT / "blueprints" / "eks-prod.yaml")
    releases = {release.name: release for release in gateway.render(blueprint).releases}
    identities = {identity.controller: identity for identity in render_eks.dns_identities(blueprint)}
    assert set(identities) == {"cert-manager", "external-dns"}
    for controller, identity in identities.items():
        release = releases[controller]
        assert release.namespace == identity.namespace
        deployments = _deployments(chart_cache, release)
        # cert-manager's chart also runs a webhook and a cainjector, each as its own account: the controller is
        # the one that solves challenges and is named after the release.
        [deployment] = [d for d in deployments if d["metadata"]["name"] == controller]
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == identity.service_account
        assert deployment["metadata"].get("namespace", release.namespace) == identity.namespace
    [container] = [d for d in _deployments(chart_cache, releases["external-dns"])][0]["spec"]["template"]["spec"][
        "containers"]
    assert "--zone-id-filter=Z0123456789ABCDEFGHIJ" in container["args"]
    assert {"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"} in container["env"]
