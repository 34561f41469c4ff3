"""Pull a Shipway model artifact into a directory, verifying every digest on the way."""

from __future__ import annotations

import json
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from shipway.artifacts.auth import Credentials
from shipway.artifacts.bundle import MAX_MODEL_FILES, extract_bundle
from shipway.artifacts.cache import NodeCache
from shipway.artifacts.errors import ArtifactError, DigestMismatchError
from shipway.artifacts.layout import (
    ANNOTATION_BUNDLE_FILES,
    ANNOTATION_TITLE,
    ARTIFACT_TYPE,
    BUNDLE_MEDIA_TYPE,
    CONFIG_MEDIA_TYPE,
    MARKER_FILE,
    Reference,
    is_digest,
    parse_reference,
    safe_relative_path,
)
from shipway.artifacts.locking import exclusive, remove
from shipway.artifacts.progress import Progress, no_progress
from shipway.artifacts.registry import BytesDone, RegistryClient, RetryPolicy
from shipway.artifacts.transfer import TransferLimitError, TransferLimits


@dataclass(frozen=True)
class PullResult:
    """What a pull wrote: the files, the manifest digest they were verified against, and the bytes fetched."""

    reference: Reference
    manifest_digest: str
    destination: Path
    files: tuple[str, ...]
    bytes_fetched: int
    up_to_date: bool
    seconds: float


def _check_manifest(raw: bytes, reference: Reference) -> dict[str, Any]:
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise ArtifactError(f"{reference} has a manifest that is not JSON.") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict):
        raise ArtifactError(f"{reference} has a manifest that is not an OCI image manifest.")
    config_type = manifest.get("config", {}).get("mediaType")
    if manifest.get("artifactType") != ARTIFACT_TYPE and config_type != CONFIG_MEDIA_TYPE:
        raise ArtifactError(
            f"{reference} is not a Shipway model (artifactType {manifest.get('artifactType')!r}, "
            f"config {config_type!r}); push it with `shipway model push`."
        )
    layers = manifest.get("layers", [])
    if not isinstance(layers, list):
        raise ArtifactError(f"{reference} has a manifest whose layers are not a list.")
    # Digests become file names and URLs on the way down: each must be sha256 and hex, and each size a count.
    for descriptor in [manifest.get("config"), *layers]:
        _check_descriptor(descriptor, reference)
    titles = [(layer.get("annotations") or {}).get(ANNOTATION_TITLE, "") for layer in layers]
    for title in titles:
        if not isinstance(title, str):
            raise ArtifactError(f"{reference} has a layer titled {title!r}: a title is a file name.")
        safe_relative_path(title)
    if len(set(titles)) != len(titles):
        raise ArtifactError(f"{reference} names the same file in two layers: {sorted(titles)}.")
    files = sum(len(_bundle_files(layer, reference)) if layer.get("mediaType") == BUNDLE_MEDIA_TYPE else 1
                for layer in layers)
    if files > MAX_MODEL_FILES:
        raise ArtifactError(f"{reference} holds {files} files, more than the {MAX_MODEL_FILES} a model may hold: "
                            "pack its small files in an archive of its own. Nothing was downloaded.")
    return manifest  # type: ignore[no-any-return]


def _check_descriptor(descriptor: Any, reference: Reference) -> None:
    """Refuse a config or layer descriptor whose digest or size could not have been pushed by Shipway."""
    if not isinstance(descriptor, dict):
        raise ArtifactError(f"{reference} has a manifest with a malformed config or layer: {descriptor!r}.")
    digest, size = descriptor.get("digest"), descriptor.get("size")
    if not is_digest(digest):
        raise ArtifactError(f"{reference} lists a blob with digest {digest!r}: expected sha256: and 64 hex digits.")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ArtifactError(f"{reference} lists blob {digest} with size {size!r}: expected a byte count.")
    if not isinstance(descriptor.get("annotations") or {}, dict):
        raise ArtifactError(f"{reference} lists blob {digest} with annotations that are not a mapping.")


def _bundle_files(layer: dict[str, Any], reference: Reference) -> list[str]:
    """The file names a small-files layer's annotation promises, each a safe relative path."""
    text = (layer.get("annotations") or {}).get(ANNOTATION_BUNDLE_FILES, "[]")
    try:
        names = json.loads(text)
    except (TypeError, ValueError):
        names = None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ArtifactError(f"{reference} has a small-files layer whose file list is not a JSON list of names.")
    for name in names:
        safe_relative_path(name)
    return names


def installed_digest(destination: Path) -> str | None:
    """The manifest digest a finished pull recorded in the directory, if any."""
    try:
        return str(json.loads((destination / MARKER_FILE).read_text())["manifest_digest"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def lock_path(destination: Path) -> Path:
    """The lock every pull into `destination` holds, so that two never interleave and leftovers are dead."""
    return destination.parent / f".{destination.name}.lock"


def leftovers(destination: Path) -> list[Path]:
    """What killed pulls into `destination` left beside it: staging folders and retired copies."""
    prefixes = (f".{destination.name}.partial-", f".{destination.name}.old-")
    if not destination.parent.is_dir():
        return []
    return sorted(path for path in destination.parent.iterdir() if path.name.startswith(prefixes))


def pull(
    target: str,
    destination: Path,
    *,
    force: bool = False,
    plain_http: bool = False,
    credentials: Credentials | None = None,
    retry: RetryPolicy | None = None,
    progress: Progress = no_progress,
    limits: TransferLimits | None = None,
    cache: NodeCache | None = None,
) -> PullResult:
    """Download into a hidden temporary sibling of `destination`, verify, then rename it into place.

    Under a lock beside `destination`: what killed runs left there is removed first, and a pull
    that waited for another pull of the same artifact finds it done. With a node cache, blobs
    come from the cache when it holds them and go into it otherwise (the CSI node plugin pulls
    into the cache's model folder this way; that lock is the per-digest lock its publishes share).
    """
    reference = parse_reference(target)
    started = time.perf_counter()
    client = RegistryClient(reference.registry, plain_http=plain_http, credentials=credentials, retry=retry,
                            limits=limits)
    raw, digest = client.get_manifest(reference)
    manifest = _check_manifest(raw, reference)
    for descriptor in [manifest["config"], *manifest.get("layers", [])]:
        client.check_blob_size(reference, descriptor["digest"], descriptor["size"])
    destination.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(lock_path(destination)):
        for path in leftovers(destination):
            remove(path)
        if destination.exists():
            if installed_digest(destination) == digest:
                if cache is not None:
                    cache.touch(destination)
                return PullResult(reference, digest, destination, (), 0, True, time.perf_counter() - started)
            if not force:
                raise ArtifactError(
                    f"{destination} already exists and holds something else: pass --force to replace it."
                )
        fetcher = _Fetcher(client, cache)
        _check_space(manifest, destination.parent, reference, fetcher)
        pinned = reference.with_digest(digest)
        # A sibling, so the final rename stays on one filesystem and is atomic.
        staging = destination.parent / f".{destination.name}.partial-{secrets.token_hex(4)}"
        staging.mkdir()
        try:
            files = _fetch_layers(fetcher, pinned, manifest, staging, progress)
            config = manifest["config"]
            config_path = staging / ".shipway-config.json"
            fetcher.fetch(pinned, config["digest"], config["size"], config_path, lambda _: None)
            marker: dict[str, Any] = {"manifest_digest": digest, "manifest": manifest}
            if cache is None or destination.parent != cache.models:
                # A node cache's model folder is shared by every repository that holds this digest (the CSI plugin
                # mounts it into any team's pod), so it records only what is the same for all of them.
                marker["reference"] = str(reference)
            marker["config"] = json.loads(config_path.read_bytes())
            config_path.unlink()
            (staging / MARKER_FILE).write_text(json.dumps(marker, indent=2, sort_keys=True))
            _swap_into_place(staging, destination)
        except BaseException:
            remove(staging)
            raise
        if cache is not None:
            cache.touch(destination)
    return PullResult(reference, digest, destination, tuple(files), fetcher.fetched, False,
                      time.perf_counter() - started)


class _Fetcher:
    """Puts one blob at a path: from the node cache when it has it, else from the registry."""

    def __init__(self, client: RegistryClient, cache: NodeCache | None) -> None:
        self.client = client
        self.cache = cache
        self.fetched = 0

    def needed(self, digest: str, size: int) -> int:
        """Bytes this blob will take on the destination's disk."""
        return 0 if self.cache is not None and self.cache.has(digest, size) else size

    def fetch(self, reference: Reference, digest: str, size: int, target: Path, done: BytesDone) -> None:
        """Write the blob's verified bytes at `target`."""
        if self.cache is None:
            self.client.pull_blob(reference, digest, size, target, done)
            self.fetched += size
            return
        downloaded = self.cache.fetch(self.client, reference, digest, size, target, done)
        self.fetched += size if downloaded else 0


def _check_space(manifest: dict[str, Any], folder: Path, reference: Reference, fetcher: _Fetcher) -> None:
    """Refuse, before anything is written, an artifact whose blobs cannot fit on the destination's disk."""
    needed = sum(fetcher.needed(d["digest"], d["size"]) for d in [manifest["config"], *manifest.get("layers", [])])
    # A bundle is unpacked beside its archive, so its bytes count twice.
    needed += sum(layer["size"] for layer in manifest.get("layers", []) if layer.get("mediaType") == BUNDLE_MEDIA_TYPE)
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise TransferLimitError(
            f"{reference} needs {needed} bytes, and {folder} has {free} free: nothing was written. "
            "Give the model volume more room, or check that the manifest's sizes are real."
        )


def _fetch_layers(
    fetcher: _Fetcher, reference: Reference, manifest: dict[str, Any], staging: Path, progress: Progress
) -> list[str]:
    files: list[str] = []
    for layer in manifest.get("layers", []):
        annotations = layer.get("annotations") or {}
        title = str(safe_relative_path(annotations[ANNOTATION_TITLE]))
        digest, size = layer["digest"], int(layer["size"])
        label = f"pull {title}"

        def done(count: int, label: str = label, size: int = size) -> None:
            progress(label, count, size)

        if layer.get("mediaType") == BUNDLE_MEDIA_TYPE:
            archive = staging / f".bundle-{digest.removeprefix('sha256:')}.tar"
            fetcher.fetch(reference, digest, size, archive, done)
            files += extract_bundle(archive, staging, _bundle_files(layer, reference))
            archive.unlink()
        else:
            target = staging.joinpath(*PurePosixPath(title).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            fetcher.fetch(reference, digest, size, target, done)
            files.append(title)
    if len(set(files)) != len(files):
        raise DigestMismatchError(f"{reference} holds some files twice: {sorted(files)}.")
    return sorted(files)


def _swap_into_place(staging: Path, destination: Path) -> None:
    """Rename the verified directory into place; an old copy is moved aside first, then removed."""
    if not destination.exists():
        staging.rename(destination)
        return
    retired = destination.parent / f".{destination.name}.old-{secrets.token_hex(4)}"
    destination.rename(retired)
    staging.rename(destination)
    remove(retired)
