"""Which images a platform will run, found in the objects that run them.

Images are read where Kubernetes and the operators read them: the containers of every pod template
(Deployments, DaemonSets, StatefulSets, Jobs, Argo Rollouts, bare Pods), image fields of custom
resources (`image: quay.io/...:v1` on a Prometheus), NVIDIA's repository/image/version triplets
(the GPU Operator's ClusterPolicy, skipping components with `enabled: false`), and image references passed to operators as flags or
environment (`--prometheus-config-reloader=quay.io/...`). The runtime catalog's images, which
model pods run, and the Shipway image are added from the platform profile.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from shipway.errors import ShipwayError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
POD_CONTAINER_KEYS = ("initContainers", "containers", "ephemeralContainers")

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:localhost|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+|[a-zA-Z0-9-]+:[0-9]+|[a-zA-Z0-9.-]+:[0-9]+)"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"
_REFERENCE = re.compile(rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
                        rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
# An image inside a flag or an env value: it must name its registry and a tag or digest to count.
_EMBEDDED = re.compile(rf"(?:^|=)((?:{_DOMAIN})/{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?)$")


class BadImageReference(ShipwayError):
    """A string that is not a container image reference."""

    exit_code = 2


@dataclass(frozen=True, order=True)
class ImageRef:
    """A container image reference, normalised as the container runtime reads it."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.registry}/{self.repository}{tag}{digest}"

    @property
    def api_host(self) -> str:
        """The host that serves the registry API (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What names the manifest: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"


def parse_image(text: str) -> ImageRef:
    """Parse an image reference the way a container runtime does (Docker Hub and `latest` by default)."""
    match = _REFERENCE.match(text.strip())
    if not match:
        raise BadImageReference(f'Got "{text}", which is not an image reference: write [REGISTRY/]PATH[:TAG][@sha256:DIGEST]')
    domain, path = match.group("domain"), match.group("path")
    if domain is None or ("." not in domain and ":" not in domain and domain != "localhost"):
        path = f"{domain}/{path}" if domain else path
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    tag = match.group("tag") or (None if match.group("digest") else "latest")
    return ImageRef(domain, path, tag, match.group("digest"))


@dataclass
class ImageUse:
    """One image and every place that runs it."""

    image: ImageRef
    used_by: list[str]


def _pod_images(node: Any) -> Iterator[str]:
    for key in POD_CONTAINER_KEYS:
        for container in node.get(key) or []:
            if isinstance(container, dict) and isinstance(container.get("image"), str):
                yield container["image"]


def images_in(obj: Any) -> list[str]:
    """Every image reference an object asks for, in the order it names them."""
    found: list[str] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            if node.get("enabled") is False:
                return  # an operator component switched off (NVIDIA's ClusterPolicy): it runs no image
            found.extend(_pod_images(node))
            triplet = [node.get(part) for part in ("repository", "image", "version")]
            if all(isinstance(part, str) and part for part in triplet):
                repository, image, version = triplet
                found.append(f"{repository}/{image}" + (version if version.startswith("@") else f":{version}"))
            for child_key, child in node.items():
                if child_key in POD_CONTAINER_KEYS:
                    for container in child or []:
                        if isinstance(container, dict):
                            walk({k: v for k, v in container.items() if k != "image"}, child_key)
                    continue
                walk(child, child_key)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
        elif isinstance(node, str):
            if key == "image" and _REFERENCE.match(node) and (":" in node or "@" in node):
                found.append(node)
            elif key in ("args", "command", "value"):
                embedded = _EMBEDDED.search(node)
                if embedded:
                    found.append(embedded.group(1))

    walk(obj)
    return found


def inventory(sources: Iterable[tuple[str, Any]]) -> list[ImageUse]:
    """Each distinct image (normalised) with the sources that use it, sorted by image."""
    uses: dict[ImageRef, list[str]] = {}
    for source, obj in sources:
        for text in images_in(obj):
            try:
                image = parse_image(text)
            except BadImageReference as error:
                raise BadImageReference(f"{source}: {error}") from None
            users = uses.setdefault(image, [])
            if source not in users:
                users.append(source)
    return [ImageUse(image, sorted(users)) for image, users in sorted(uses.items())]
