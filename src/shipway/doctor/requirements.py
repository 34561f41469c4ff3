"""What a machine needs to stand up and drive Shipway: tools, minimum versions, resources."""

from __future__ import annotations

from dataclasses import dataclass

from shipway import catalog

GIB = 1024**3


@dataclass(frozen=True)
class ToolRequirement:
    """One command-line tool: how to read its version, the minimum, and how to install it."""

    name: str
    minimum: tuple[int, int, int]
    version_command: str
    purpose: str
    install_linux: str
    install_darwin: str
    kind_only: bool = False
    needed: bool = True

    @property
    def minimum_text(self) -> str:
        """The minimum version as people write it."""
        return "v" + ".".join(str(part) for part in self.minimum)

    def install(self, system: str, arch: str) -> str:
        """The install command for this system (`linux` or `darwin`) and CPU architecture."""
        template = self.install_darwin if system == "darwin" else self.install_linux
        return template.format(
            version=self.minimum_text,
            version_bare=self.minimum_text.removeprefix("v"),
            arch=_go_arch(arch),
            system=system,
        )


def _go_arch(arch: str) -> str:
    """Release assets are named by Go's architecture names, not uname's."""
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(arch, arch)


# The one table of minimums. Pulumi matches the SDK floor in pyproject; kubectl
# stays within one minor of the catalog's Kubernetes version (kubectl's version
# skew policy); kind is the release the catalog's node image was built for; helm
# is only for inspecting releases by hand, because Pulumi's helm.v3.Release
# embeds Helm itself.
_MINOR = int(catalog.KUBERNETES_VERSION.split(".")[1])
_KIND_MAJOR, _KIND_MINOR, _KIND_PATCH = (int(part) for part in catalog.KIND_VERSION.removeprefix("v").split("."))
TOOLS: tuple[ToolRequirement, ...] = (
    ToolRequirement(
        name="pulumi",
        minimum=(3, 130, 0),
        version_command="pulumi version",
        purpose="runs `pulumi up` on the platform stacks",
        install_linux="curl -fsSL https://get.pulumi.com | sh -s -- --version {version_bare}",
        install_darwin="brew install pulumi/tap/pulumi",
    ),
    ToolRequirement(
        name="kubectl",
        minimum=(1, _MINOR - 1, 0),
        version_command="kubectl version --client -o json",
        purpose="talks to the cluster",
        install_linux=(
            f'curl -fsSLo kubectl "https://dl.k8s.io/release/v{catalog.KUBERNETES_VERSION}.0'
            '/bin/{system}/{arch}/kubectl"'
            " && sudo install -m 0755 kubectl /usr/local/bin/kubectl"
        ),
        install_darwin="brew install kubectl",
    ),
    ToolRequirement(
        name="kind",
        minimum=(_KIND_MAJOR, _KIND_MINOR, _KIND_PATCH),
        version_command="kind version",
        purpose="creates the local dev cluster from `shipway kind-config`",
        install_linux=(
            "curl -fsSLo kind https://kind.sigs.k8s.io/dl/{version}/kind-{system}-{arch}"
            " && sudo install -m 0755 kind /usr/local/bin/kind"
        ),
        install_darwin="brew install kind",
        kind_only=True,
    ),
    ToolRequirement(
        name="docker",
        minimum=(24, 0, 0),
        version_command="docker --version",
        purpose="runs the kind nodes as containers",
        install_linux="sudo apt-get install -y docker.io (Debian/Ubuntu) or sudo dnf install -y moby-engine (Fedora)",
        install_darwin="brew install --cask docker, then start Docker Desktop",
        kind_only=True,
    ),
    ToolRequirement(
        name="helm",
        minimum=(3, 14, 0),
        version_command="helm version --short",
        purpose="inspects the platform's Helm releases by hand (Pulumi embeds Helm, so optional)",
        install_linux="curl -fsSL https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 | bash",
        install_darwin="brew install helm",
        needed=False,
    ),
)

# kind-dev runs a control plane, one worker per pool and the whole platform
# (Argo CD, kube-prometheus-stack, zot, Argo Rollouts) in containers on one host.
MIN_MEMORY_BYTES = 8 * GIB
MIN_DISK_FREE_BYTES = 20 * GIB
# Where Docker keeps kind's node images and volumes unless the engine says otherwise.
DEFAULT_DOCKER_ROOT = "/var/lib/docker"
# kubectl's own bound on each API request while probing a context.
CONTEXT_TIMEOUT_SECONDS = 5
