"""Copy images to another registry byte for byte, so every digest (index, manifests, blobs) is kept.

A multi-platform index is copied with every platform's manifest, each manifest with its config and
layers. Manifests are stored exactly as the source served them, so `image@sha256:...` names the same
content in the mirror. Blobs stream through a temporary file, verified against their digest on the
way down; the target is asked first, so a rerun sends only what is missing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from shipway.artifacts.auth import Credentials
from shipway.artifacts.errors import ArtifactError, BadReferenceError
from shipway.artifacts.layout import Reference
from shipway.artifacts.registry import RegistryClient
from shipway.images.inventory import ImageRef

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT = ", ".join(sorted(INDEX_TYPES | MANIFEST_TYPES))

# Told what is being copied, bytes done, bytes in all.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class MirrorTarget:
    """Where copies go: a registry host and an optional path prefix (oci://HOST[/PREFIX])."""

    host: str
    prefix: str = ""

    @classmethod
    def parse(cls, text: str) -> MirrorTarget:
        """Read oci://HOST[/PREFIX]; the host is explicit, as in every Shipway registry reference."""
        body = text.removeprefix("oci://").strip("/")
        host, _, prefix = body.partition("/")
        if not host or not ("." in host or ":" in host or host == "localhost") or any(c in body for c in "@ "):
            raise BadReferenceError(f'Got "{text}": write oci://REGISTRY[/PREFIX], e.g. oci://registry.internal:5000/mirror')
        return cls(host, prefix)

    def repository(self, image: ImageRef) -> str:
        """The mirror's repository for an image: the prefix, then the source registry and path, so names never collide.

        A port cannot stand in a repository path, so registry.local:5000 becomes registry.local_5000.
        """
        registry = image.registry.lower().replace(":", "_")
        return "/".join(part for part in (self.prefix, registry, image.repository) if part)

    def reference(self, image: ImageRef) -> str:
        """The image's name in the mirror, with its tag and digest."""
        tag = f":{image.tag}" if image.tag else ""
        return f"{self.host}/{self.repository(image)}{tag}"


@dataclass
class Mirrored:
    """One image copied: where to, its digest, and what had to be sent."""

    source: ImageRef
    target: str
    digest: str
    manifests: int
    blobs_sent: int
    bytes_sent: int


def get_manifest(client: RegistryClient, ref: Reference) -> tuple[bytes, str, str]:
    """A manifest or index: its exact bytes, digest and media type, checked against a digest reference."""
    raw, digest = client.get_manifest(ref, accept=ACCEPT)
    try:
        document = json.loads(raw)
    except ValueError:
        raise ArtifactError(f"{client.host} answered {ref} with something that is not JSON.") from None
    if not isinstance(document, dict):
        raise ArtifactError(f"{client.host} answered {ref} with JSON that is not a manifest.")
    # OCI makes mediaType optional; an index is the document that lists manifests.
    media_type = document.get("mediaType") or (OCI_INDEX if "manifests" in document else OCI_MANIFEST)
    if media_type not in INDEX_TYPES | MANIFEST_TYPES:
        raise ArtifactError(f"{ref} is a {media_type}, not an image manifest or index.")
    return raw, digest, media_type


class _Copy:
    """One image's copy: the clients, the repositories on both sides, and what was sent."""

    def __init__(self, source: RegistryClient, source_ref: Reference, target: RegistryClient, target_ref: Reference,
                 scratch: Path, progress: Progress) -> None:
        self.source, self.source_ref = source, source_ref
        self.target, self.target_ref = target, target_ref
        self.scratch, self.progress = scratch, progress
        self.manifests = self.blobs_sent = self.bytes_sent = 0

    def manifest(self, raw: bytes, media_type: str, name: str) -> None:
        document: dict[str, Any] = json.loads(raw)
        if media_type in INDEX_TYPES:
            for child in document.get("manifests", []):
                child_raw, child_digest, child_type = get_manifest(
                    self.source, self.source_ref.with_digest(child["digest"]))
                self.manifest(child_raw, child_type, child_digest)
        else:
            for blob in [document["config"], *document.get("layers", [])]:
                if blob.get("urls"):
                    continue  # a non-distributable layer: registries serve it from its own URLs
                self.blob(blob["digest"], int(blob["size"]))
        self.target.put_manifest(replace(self.target_ref, tag=name, digest=None), raw, media_type)
        self.manifests += 1

    def blob(self, digest: str, size: int) -> None:
        if self.target.has_blob(self.target_ref, digest):
            return
        path = self.scratch / digest.replace(":", "-")
        label = f"{self.source_ref.repository} {digest[7:19]}"
        try:
            self.source.pull_blob(self.source_ref, digest, size, path, lambda done: self.progress(label, done, size * 2))
            self.target.push_blob(self.target_ref, path, digest, size,
                                  lambda done: self.progress(label, size + done, size * 2))
        finally:
            path.unlink(missing_ok=True)
        self.blobs_sent += 1
        self.bytes_sent += size


def mirror_image(image: ImageRef, to: MirrorTarget, target: RegistryClient, source: RegistryClient | None = None,
                 insecure: frozenset[str] = frozenset(), progress: Progress = lambda *_: None) -> Mirrored:
    """Copy one image (every platform of an index) to the mirror, under its tag, keeping every digest."""
    source = source or RegistryClient(image.api_host, plain_http=image.api_host in insecure,
                                      credentials=Credentials())
    source_ref = Reference(image.api_host, image.repository, image.tag, image.digest)
    target_ref = Reference(to.host, to.repository(image), image.tag, None)
    raw, digest, media_type = get_manifest(source, source_ref)
    with tempfile.TemporaryDirectory(prefix="shipway-mirror-") as scratch:
        copy = _Copy(source, source_ref, target, target_ref, Path(scratch), progress)
        copy.manifest(raw, media_type, image.tag or digest)
    return Mirrored(image, f"{to.reference(image)}@{digest}", digest, copy.manifests, copy.blobs_sent,
                    copy.bytes_sent)
