"""`shipway kind-config`: one worker per pool, labels and taints by kubeadm patch, registry mirror, ports."""

from __future__ import annotations

import pytest
import yaml
from layer_support import REPO

from shipway.render import cluster, gateway, registry
from shipway.spec import load_blueprint


def test_kind_dev_config():
    blueprint = load_blueprint(REPO / "blueprints" / "kind-dev.yaml")
    config = cluster.kind_config(blueprint)
    control, *workers = config["nodes"]
    assert control["role"] == "control-plane"
    # The Envoy Service's NodePorts, which every node answers on, reach 127.0.0.1:8080 and :8443.
    assert {(m["containerPort"], m["hostPort"], m["listenAddress"]) for m in control["extraPortMappings"]} == {
        (gateway.KIND_NODE_PORTS[80], 8080, "127.0.0.1"), (gateway.KIND_NODE_PORTS[443], 8443, "127.0.0.1")}
    pools = [w["labels"]["shipway.dev/pool"] for w in workers]
    assert pools == ["system", "gpu-small", "gpu-large"]
    for worker in workers[1:]:
        [patch] = [yaml.safe_load(p) for p in worker["kubeadmConfigPatches"]]
        registration = patch["nodeRegistration"]
        assert patch["kind"] == "JoinConfiguration"
        assert "nvidia.com/gpu.present=true" in registration["kubeletExtraArgs"]["node-labels"]
        assert registration["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    [mirror] = config["containerdConfigPatches"]
    assert f'"{cluster.MIRROR_HOST}"' in mirror and f"localhost:{registry.KIND_NODE_PORT}" in mirror


@pytest.mark.parametrize("name", ["eks-prod", "gke-prod"])
def test_non_kind_blueprints_are_refused(name):
    with pytest.raises(ValueError, match="kind-config needs a kind cluster"):
        cluster.kind_config(load_blueprint(REPO / "blueprints" / f"{name}.yaml"))


def test_node_patches_match_the_kind_workers(kind_dev):
    # pulumi-kubernetes registers a NodePatch with kind Node.
    assert len(kind_dev.of_type("kubernetes:core/v1:NodePatch")) == 3
    patches = {p["metadata"]["name"]: p for p in kind_dev.kind("Node")}
    assert set(patches) == {"shipway-dev-worker", "shipway-dev-worker2", "shipway-dev-worker3"}
    assert "spec" not in patches["shipway-dev-worker"]
    assert patches["shipway-dev-worker2"]["spec"]["taints"][0]["key"] == "nvidia.com/gpu"
