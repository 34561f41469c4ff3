"""Pod Security `restricted` volume sources, as kubernetes/pod-security-admission states them.

policy/check_restrictedVolumes.go at tag v0.35.6, restrictedVolumes_1_0, lets a restricted pod use exactly
configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected and secret volumes
(its `case volume.X != nil: continue` list) and refuses every other source, hostPath first among them.
The node model cache's CSI volume is why this matters: model pods stay restricted with it.
"""

from __future__ import annotations

import pytest

from shipway.charts.pod_security import required_level, violations

RESTRICTED_POD = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                  "containers": [{"name": "c", "securityContext": {
                      "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}
ALLOWED = {
    "configMap": {"name": "x"}, "csi": {"driver": "models.shipway.dev", "readOnly": True},
    "downwardAPI": {"items": []}, "emptyDir": {}, "ephemeral": {"volumeClaimTemplate": {"spec": {}}},
    "image": {"reference": "registry.example.com/weights:1"}, "persistentVolumeClaim": {"claimName": "x"},
    "projected": {"sources": []}, "secret": {"secretName": "x"},
}
REFUSED = {"hostPath": {"path": "/var/lib/x"}, "nfs": {"server": "nfs", "path": "/"},
           "iscsi": {"targetPortal": "t", "iqn": "i", "lun": 0}, "gitRepo": {"repository": "r"}}


@pytest.mark.parametrize("source", sorted(ALLOWED))
def test_every_source_the_upstream_check_allows_passes_restricted(source: str) -> None:
    pod = {**RESTRICTED_POD, "volumes": [{"name": "v", source: ALLOWED[source]}]}
    assert violations({}, pod, "restricted") == []
    assert required_level({}, pod) == "restricted"


@pytest.mark.parametrize("source", sorted(REFUSED))
def test_other_sources_are_refused_by_restricted(source: str) -> None:
    pod = {**RESTRICTED_POD, "volumes": [{"name": "v", source: REFUSED[source]}]}
    assert "restricted volume types ['v']" in violations({}, pod, "restricted")
