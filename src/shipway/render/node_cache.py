"""The node model cache: a CSI node plugin that owns a host folder per node and mounts models into pods.

Model pods run under Pod Security `restricted`, which forbids host paths but allows `csi` volumes
(kubernetes/pod-security-admission policy/check_restrictedVolumes.go). A model pod names the artifact by
digest in an inline (Ephemeral) `csi` volume of this driver; the kubelet asks the plugin on the pod's node
(`shipway model csi-node`, shipway.artifacts.csi) to publish it, with the pod's registry pull Secret. The
plugin checks those credentials with the registry on every publish, pulls and verifies the artifact into its
host folder once per node, and bind-mounts that model folder read-only into the pod: a warm start copies
nothing. The node-driver-registrar sidecar tells the kubelet where the plugin's socket is.
"""

from __future__ import annotations

from shipway import catalog
from shipway.render import common, registry
from shipway.render.common import Obj, metadata, namespace, shipway_image
from shipway.spec.blueprint import Blueprint, ZotRegistry

# The CSI driver name: the CSIDriver object, every model pod's volume and the plugin answer to it.
# shipway.artifacts.csi.DRIVER is the plugin's copy; a contract test holds the two equal.
DRIVER = "models.shipway.dev"
NAMESPACE = "shipway-cache"
NAME = "shipway-node-cache"
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "node-cache"}
# Inside the pod: the plugin's socket folder (the host's plugin folder, plugin_dir), the registrar's registration
# folder (the path node-driver-registrar writes its registration socket to) and the cache's host folder.
SOCKET_MOUNT = "/csi"
SOCKET_NAME = "csi.sock"
REGISTRATION_MOUNT = "/registration"
CACHE_MOUNT = "/cache"
# Node agents of the platform: evicted last under node pressure, like the kubelet's own plugins.
PRIORITY = "system-node-critical"
PLUGIN_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "512Mi"}}
# node-driver-registrar's health endpoint (--http-endpoint).
REGISTRAR_HEALTH_PORT = 9809
REGISTRAR_RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}
# GKE's most nodes in one cluster: the quota below must never stop the DaemonSet from covering a node.
GKE_MAX_NODES = 15000


def enabled(blueprint: Blueprint) -> bool:
    """Whether the blueprint runs the node cache."""
    return blueprint.registry.node_cache.enabled


def kubelet_dir(blueprint: Blueprint) -> str:
    """The kubelet's root folder on the nodes (registry.nodeCache.kubeletDir)."""
    return blueprint.registry.node_cache.kubelet_dir


def plugin_dir(blueprint: Blueprint) -> str:
    """Where the plugin's socket lives on the node: the kubelet's plugins folder, one folder per driver."""
    return f"{kubelet_dir(blueprint)}/plugins/{DRIVER}"


def plugin_args(blueprint: Blueprint) -> list[str]:
    """The plugin's command line (the image's entrypoint is `shipway`)."""
    args = ["model", "csi-node", "--endpoint", f"unix://{SOCKET_MOUNT}/{SOCKET_NAME}", "--dir", CACHE_MOUNT,
            "--max-size", blueprint.registry.node_cache.max_size, "--registry", registry.server(blueprint)]
    if isinstance(blueprint.registry, ZotRegistry):
        # The in-cluster zot serves plain HTTP on its cluster-local address.
        args.append("--plain-http")
    return [*args, "--node-id", "$(NODE_NAME)", "--kubelet-dir", kubelet_dir(blueprint)]


def csi_driver() -> Obj:
    """The CSIDriver: inline (Ephemeral) volumes only, nothing to attach, the pod's identity on every publish.

    fsGroupPolicy None: the kubelet must never chown or chmod the cache's shared, read-only model folders
    for a pod's fsGroup; the plugin makes them world-readable instead.
    """
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": metadata(DRIVER, labels=LABELS),
        "spec": {"attachRequired": False, "podInfoOnMount": True, "volumeLifecycleModes": ["Ephemeral"],
                 "fsGroupPolicy": "None", "requiresRepublish": False},
    }


def _host_path(name: str, path: str, kind: str) -> Obj:
    return {"name": name, "hostPath": {"path": path, "type": kind}}


def daemon_set(blueprint: Blueprint) -> Obj:
    """One plugin pod per node, every pool included: the plugin and node-driver-registrar."""
    cache = blueprint.registry.node_cache
    pods = f"{kubelet_dir(blueprint)}/pods"
    plugin = {
        "name": "plugin", "image": shipway_image(blueprint), "args": plugin_args(blueprint),
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "HOME", "value": "/tmp"}],
        # Privileged: the plugin bind-mounts model folders into pods' volume paths under the kubelet's pods
        # folder, and mount(2) there, with Bidirectional propagation back to the host, needs it (the kubelet
        # refuses Bidirectional propagation in a container that is not privileged). It runs only here, in the
        # one namespace listed in common.POD_SECURITY_EXCEPTIONS, with a read-only root and bounded resources.
        "securityContext": {"privileged": True, "runAsUser": 0, "runAsNonRoot": False,
                            "readOnlyRootFilesystem": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "resources": {key: dict(value) for key, value in PLUGIN_RESOURCES.items()},
        "volumeMounts": [
            {"name": "socket-dir", "mountPath": SOCKET_MOUNT},
            {"name": "pods-dir", "mountPath": pods, "mountPropagation": "Bidirectional"},
            {"name": "cache", "mountPath": CACHE_MOUNT},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    registrar = {
        "name": "node-driver-registrar", "image": catalog.CSI_NODE_DRIVER_REGISTRAR_IMAGE,
        "args": [f"--csi-address={SOCKET_MOUNT}/{SOCKET_NAME}",
                 f"--kubelet-registration-path={plugin_dir(blueprint)}/{SOCKET_NAME}",
                 f"--http-endpoint=:{REGISTRAR_HEALTH_PORT}"],
        # /healthz fails while the registrar's registration socket is gone (node-driver-registrar v2.13.0
        # README, "Health Check with the http server"), e.g. after the kubelet's plugins_registry folder was
        # wiped: the restart registers again. The kubelet's probes reach a pod on its own node whatever the
        # NetworkPolicies say.
        "ports": [{"name": "healthz", "containerPort": REGISTRAR_HEALTH_PORT, "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "healthz"}, "initialDelaySeconds": 5,
                          "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        # Root, because it creates its registration socket in the kubelet's root-owned plugins_registry folder
        # and connects to the plugin's root-owned socket; as their owner it needs no capability for either.
        "securityContext": {"runAsUser": 0, "runAsNonRoot": False, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "resources": {key: dict(value) for key, value in REGISTRAR_RESOURCES.items()},
        "volumeMounts": [{"name": "socket-dir", "mountPath": SOCKET_MOUNT},
                         {"name": "registration-dir", "mountPath": REGISTRATION_MOUNT}],
    }
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": metadata(NAME, NAMESPACE, LABELS),
        "spec": {
            "selector": {"matchLabels": dict(LABELS)},
            # A restarting plugin leaves mounted models in place; pods starting meanwhile wait for it.
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    # Neither container calls the API server: the kubelet calls them, through the sockets.
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "priorityClassName": PRIORITY,
                    # Model pods run on every pool, tainted GPU pools included, and need the plugin there.
                    "tolerations": [{"operator": "Exists"}],
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [plugin, registrar],
                    "volumes": [
                        _host_path("socket-dir", plugin_dir(blueprint), "DirectoryOrCreate"),
                        _host_path("registration-dir", f"{kubelet_dir(blueprint)}/plugins_registry", "Directory"),
                        _host_path("pods-dir", pods, "Directory"),
                        _host_path("cache", cache.path, "DirectoryOrCreate"),
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }


def render(blueprint: Blueprint) -> tuple[list[Obj], list[Obj]]:
    """The cache's namespace, its CSIDriver and DaemonSet; nothing when the blueprint turns it off."""
    if not enabled(blueprint):
        return [], []
    objects = [csi_driver(), daemon_set(blueprint)]
    if blueprint.cluster.kind == "gke":
        objects.append(common.critical_pods_quota(NAMESPACE, f"{NAME}-critical-pods", GKE_MAX_NODES))
    return [namespace(NAMESPACE)], objects
