"""Every pinned Helm chart and image Shipway installs, in one place, one version each.

Bump a pin here and nowhere else; a test fails if any release bypasses this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    """A Helm chart pinned to one version."""

    name: str
    repo: str
    version: str

    @property
    def is_oci(self) -> bool:
        """Whether the chart lives in an OCI registry rather than an HTTP chart repo."""
        return self.repo.startswith("oci://")

    @property
    def ref(self) -> str:
        """The chart reference as `helm install` takes it."""
        return f"{self.repo}/{self.name}" if self.is_oci else self.name


ARGO_CD = Chart("argo-cd", "https://argoproj.github.io/argo-helm", "10.1.1")
ARGO_ROLLOUTS = Chart("argo-rollouts", "https://argoproj.github.io/argo-helm", "2.41.0")
KUBE_PROMETHEUS_STACK = Chart("kube-prometheus-stack", "https://prometheus-community.github.io/helm-charts", "88.5.3")
GPU_OPERATOR = Chart("gpu-operator", "https://helm.ngc.nvidia.com/nvidia", "v26.7.0")
NVIDIA_DEVICE_PLUGIN = Chart("nvidia-device-plugin", "https://nvidia.github.io/k8s-device-plugin", "0.20.0")
DCGM_EXPORTER = Chart("dcgm-exporter", "https://nvidia.github.io/dcgm-exporter/helm-charts", "4.8.2")
FAKE_GPU_OPERATOR = Chart("fake-gpu-operator", "oci://ghcr.io/run-ai/fake-gpu-operator", "0.2.0")
ZOT = Chart("zot", "https://zotregistry.dev/helm-charts", "0.1.122")
KSERVE_CRD = Chart("kserve-crd", "oci://ghcr.io/kserve/charts", "v0.17.1")
# The KServe controller chart is named kserve-resources from v0.17.0 (kserve/kserve #5190).
KSERVE = Chart("kserve-resources", "oci://ghcr.io/kserve/charts", "v0.17.1")
CERT_MANAGER = Chart("cert-manager", "https://charts.jetstack.io", "v1.19.4")
KARPENTER_CRD = Chart("karpenter-crd", "oci://public.ecr.aws/karpenter", "1.14.1")
KARPENTER = Chart("karpenter", "oci://public.ecr.aws/karpenter", "1.14.1")
CLUSTER_AUTOSCALER = Chart("cluster-autoscaler", "https://kubernetes.github.io/autoscaler", "9.59.0")
METRICS_SERVER = Chart("metrics-server", "https://kubernetes-sigs.github.io/metrics-server", "3.13.1")
# Envoy Gateway; its in-tree `crds` subchart installs the Gateway API CRDs (experimental channel) at
# GATEWAY_API_VERSION, so the Gateway API needs no release of its own.
ENVOY_GATEWAY = Chart("gateway-helm", "oci://docker.io/envoyproxy", "v1.9.0")
EXTERNAL_DNS = Chart("external-dns", "https://kubernetes-sigs.github.io/external-dns", "1.21.1")

CHARTS: dict[str, Chart] = {
    chart.name: chart
    for chart in (
        ARGO_CD, ARGO_ROLLOUTS, KUBE_PROMETHEUS_STACK, GPU_OPERATOR, NVIDIA_DEVICE_PLUGIN, DCGM_EXPORTER,
        FAKE_GPU_OPERATOR, ZOT, KSERVE_CRD, KSERVE, CERT_MANAGER, KARPENTER_CRD, KARPENTER, CLUSTER_AUTOSCALER,
        METRICS_SERVER, ENVOY_GATEWAY, EXTERNAL_DNS,
    )
}

# The one Kubernetes minor every target runs and every object is validated against: in upstream support
# until 2027-02-28 and in EKS standard support until 2027-03-27; GKE offers it on its release channels.
# Bumping it moves the kind node image, the EKS cluster, GKE's minimum master version and validation together.
KUBERNETES_VERSION = "1.35"
# The kind release that creates dev clusters (the smoke workflow installs it through `shipway cluster-info`),
# and its node image for that minor, by digest as kind's release notes require.
KIND_VERSION = "v0.33.0"
KIND_NODE_IMAGE = "kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0"

# The Gateway API release whose CRDs ENVOY_GATEWAY installs; a test holds the chart to it.
GATEWAY_API_VERSION = "v1.6.1"

# Argo Rollouts' Gateway API traffic router (argoproj-labs/rollouts-plugin-trafficrouter-gatewayapi): the name
# Rollouts look it up by, and the image an init container copies its binary from (upstream publishes no checksum
# for the release binaries, so it is not downloaded at controller start).
ROLLOUTS_GATEWAY_PLUGIN = "argoproj-labs/gatewayAPI"
ROLLOUTS_GATEWAY_PLUGIN_IMAGE = "ghcr.io/argoproj-labs/rollouts-plugin-trafficrouter-gatewayapi:v0.15.0"

# kubernetes-csi/node-driver-registrar, the sidecar that registers the node model cache's CSI plugin with the
# kubelet. Pinned by digest: registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.13.0 is
# sha256:d7138bcc..., as dell/csm-operator at tag v1.12.1 pins it in samples/ocp/1.8.1/storage_csm_powerflex_v2131.yaml
# (line 58, the digest-pinned copy of config/samples/storage_v1_csm_powerflex.yaml line 58 at tag v1.8.1, which
# names v2.13.0). Other public manifests (an OpenEBS LVM test script, Dockerfiles that COPY the binary from
# the image) name the same tag with the same digest.
CSI_NODE_DRIVER_REGISTRAR_IMAGE = (
    "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.13.0"
    "@sha256:d7138bcc3aa5f267403d45ad4292c95397e421ea17a0035888850f424c7de25d"
)

# The Shipway image: the sidecar, the artifact-pull init container and the platform's Shipway services
# run from it. The release workflow builds and signs the image first, then writes its digest into
# RELEASE_FILE inside the package it publishes, so a released Shipway renders the image by digest; a
# source checkout has no such file and renders the version's tag.
SHIPWAY_IMAGE_REPOSITORY = "ghcr.io/shipway-dev/shipway"
RELEASE_FILE = "release.json"


def shipway_image() -> str:
    """The Shipway image this Shipway runs: by digest when released, else by the version's tag."""
    import json
    from importlib import resources

    from shipway import __version__
    from shipway.errors import ShipwayError

    release = resources.files("shipway") / RELEASE_FILE
    if not release.is_file():
        return f"{SHIPWAY_IMAGE_REPOSITORY}:{__version__}"
    try:
        image = json.loads(release.read_text(encoding="utf-8"))["image"]
        repository, digest = image["repository"], image["digest"]
    except (ValueError, KeyError, TypeError):
        raise ShipwayError(f"{release} does not name the released image (image.repository, image.digest): "
                           "reinstall Shipway") from None
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", str(digest)) or not re.fullmatch(r"[a-z0-9./_:-]+", str(repository)):
        raise ShipwayError(f"{release}: image {repository!r}@{digest!r} is not REPOSITORY@sha256:<64 hex>; "
                           "reinstall Shipway")
    return f"{repository}:{__version__}@{digest}"


def __getattr__(name: str) -> str:
    # SHIPWAY_IMAGE is read when first used, so a damaged release file is reported by the command that
    # needs the image, as a clear error, rather than as a traceback when any command imports the catalog.
    if name == "SHIPWAY_IMAGE":
        return shipway_image()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# The Prometheus stack's release name; its ServiceMonitor selector label matches it.
PROMETHEUS_RELEASE = "kube-prometheus-stack"
