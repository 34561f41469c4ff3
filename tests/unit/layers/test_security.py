"""Every workload Shipway itself emits runs restricted and states its resources."""

from __future__ import annotations

from typing import Any

from shipway.render import node_cache, registry, serving


def _containers(node: Any) -> list[dict]:
    """Container specs anywhere in an object: pod templates, serving runtimes."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found += [c for c in value if isinstance(c, dict) and "image" in c]
            else:
                found += _containers(value)
    elif isinstance(node, list):
        for item in node:
            found += _containers(item)
    return found


def _assert_restricted(security: dict, resources: dict, where: str) -> None:
    assert security.get("runAsNonRoot") is True, where
    assert security.get("allowPrivilegeEscalation") is False, where
    assert security.get("capabilities", {}).get("drop") == ["ALL"], where
    assert security.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
    assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
    assert "memory" in resources.get("limits", {}), where


def test_every_emitted_container_is_restricted(each_blueprint):
    containers = [(obj["metadata"]["name"], c) for obj in each_blueprint.objects for c in _containers(obj)]
    if each_blueprint.blueprint.serving.kserve:
        assert containers
    for owner, container in containers:
        security = container.get("securityContext", {})
        if (owner, container["name"]) == (node_cache.NAME, "plugin"):
            # The node cache's CSI plugin mounts models into pods' volumes with Bidirectional propagation,
            # which only a privileged container may do; its root stays read-only and its resources bounded.
            assert security["privileged"] is True and security["readOnlyRootFilesystem"] is True
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}
            continue
        if (owner, container["name"]) == (node_cache.NAME, "node-driver-registrar"):
            # Root, as the owner of the kubelet's plugins_registry folder it writes its socket to; no capability.
            assert security["runAsUser"] == 0 and security["capabilities"] == {"drop": ["ALL"]}
            security = {**security, "runAsNonRoot": True}
        _assert_restricted(security, container.get("resources", {}), owner)


def test_helm_values_for_shipway_run_containers_are_restricted(kind_dev):
    zot = kind_dev.releases[registry.RELEASE]["values"]
    _assert_restricted(zot["securityContext"], zot["resources"], "zot")
    assert zot["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    rollouts = kind_dev.releases["argo-rollouts"]["values"]
    _assert_restricted(rollouts["containerSecurityContext"], rollouts["controller"]["resources"], "argo-rollouts")


def test_runtime_catalog_runtimes_are_restricted():
    from shipway.spec.blueprint import DEFAULT_RUNTIMES

    for name, runtime in DEFAULT_RUNTIMES.items():
        [container] = serving.cluster_serving_runtime(name, runtime)["spec"]["containers"]
        _assert_restricted(container["securityContext"], container["resources"], name)
