"""Push a model directory or file as a Shipway OCI artifact."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from hashlib import sha256
from pathlib import Path

from shipway.artifacts.auth import Credentials
from shipway.artifacts.bundle import write_bundle
from shipway.artifacts.digest import file_digest
from shipway.artifacts.errors import ArtifactError, BadReferenceError, TagExistsError
from shipway.artifacts.layout import (
    ANNOTATION_BUNDLE_FILES,
    ANNOTATION_TITLE,
    ARTIFACT_TYPE,
    BUNDLE_MEDIA_TYPE,
    CONFIG_MEDIA_TYPE,
    DRIFT_PROFILE_DEFAULT_NAME,
    MANIFEST_MEDIA_TYPE,
    MARKER_FILE,
    ModelMetadata,
    Reference,
    layer_media_type,
    parse_reference,
)
from shipway.artifacts.locking import exclusive, held_by_someone, remove
from shipway.artifacts.progress import Progress, no_progress
from shipway.artifacts.registry import DEFAULT_CHUNK_BYTES, RegistryClient, RetryPolicy
from shipway.artifacts.transfer import TransferLimits

BUNDLE_TITLE = "small-files.tar"
SCRATCH_PREFIX = "shipway-push-"
SCRATCH_LOCK = ".lock"
# A scratch folder without its lock file is either being created right now or was left by a run killed
# in that instant; after this long it is the latter.
UNLOCKED_GRACE_S = 60.0


@dataclass(frozen=True)
class Layer:
    """One blob of the artifact, with where its bytes are on disk."""

    media_type: str
    title: str
    path: Path
    digest: str
    size: int
    files: tuple[str, ...] = ()

    def descriptor(self) -> dict[str, object]:
        """The OCI descriptor for the manifest."""
        annotations = {ANNOTATION_TITLE: self.title}
        if self.files:
            annotations[ANNOTATION_BUNDLE_FILES] = json.dumps(list(self.files))
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, "annotations": annotations}


@dataclass(frozen=True)
class PushResult:
    """What a push did: the manifest digest, and which blobs were sent or already there."""

    reference: Reference
    manifest_digest: str
    uploaded: tuple[Layer, ...]
    skipped: tuple[Layer, ...]
    unchanged: bool
    seconds: float

    @property
    def bytes_uploaded(self) -> int:
        """Bytes actually sent to the registry."""
        return sum(layer.size for layer in self.uploaded)


def collect_files(source: Path) -> list[tuple[str, Path]]:
    """The (title, path) pairs to push: the file itself, or every regular file under a directory."""
    if source.is_file():
        return [(source.name, source)]
    if not source.is_dir():
        raise ArtifactError(f"{source} does not exist: give a model directory or a single file.")
    pairs = []
    for path in sorted(source.rglob("*")):
        title = path.relative_to(source).as_posix()
        if path.is_symlink():
            raise ArtifactError(f"{path} is a symbolic link: copy the file it points to into the model instead.")
        if path.is_file() and title != MARKER_FILE:
            pairs.append((title, path))
    if not pairs:
        raise ArtifactError(f"{source} holds no files to push.")
    return pairs


def plan_layers(
    files: list[tuple[str, Path]], drift_profile: str | None, workdir: Path, progress: Progress = no_progress
) -> list[Layer]:
    """Hash large files and the drift profile into layers of their own; tar the rest into one bundle."""
    layers: list[Layer] = []
    small: list[tuple[str, Path]] = []
    for title, path in files:
        media_type = layer_media_type(title, path.stat().st_size, drift_profile)
        if media_type == BUNDLE_MEDIA_TYPE:
            small.append((title, path))
            continue
        progress(f"hash {title}", 0, path.stat().st_size)
        digest, size = file_digest(path)
        progress(f"hash {title}", size, size)
        layers.append(Layer(media_type, title, path, digest, size))
    if small:
        bundle = workdir / BUNDLE_TITLE
        write_bundle(small, bundle)
        digest, size = file_digest(bundle)
        titles = tuple(sorted(title for title, _ in small))
        layers.append(Layer(BUNDLE_MEDIA_TYPE, BUNDLE_TITLE, bundle, digest, size, titles))
    return layers


def build_manifest(layers: list[Layer], config: Layer, metadata: ModelMetadata) -> bytes:
    """The manifest's exact bytes: sorted keys and no spaces, so equal content gives an equal digest."""
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": config.media_type, "digest": config.digest, "size": config.size},
        "layers": [layer.descriptor() for layer in layers],
    }
    annotations = metadata.annotations()
    if annotations:
        manifest["annotations"] = annotations
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def _write_config(layers: list[Layer], metadata: ModelMetadata, workdir: Path) -> Layer:
    files = sorted(
        [{"path": layer.title, "digest": layer.digest, "size": layer.size} for layer in layers if not layer.files]
        + [{"path": title, "bundle": layer.digest} for layer in layers for title in layer.files],
        key=lambda entry: str(entry["path"]),
    )
    document = {"model": {k: v for k, v in vars(metadata).items() if v}, "files": files}
    path = workdir / "config.json"
    path.write_bytes(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
    digest, size = file_digest(path)
    return Layer(CONFIG_MEDIA_TYPE, "config.json", path, digest, size)


def _drift_profile_title(source: Path, files: list[tuple[str, Path]], drift_profile: Path | None) -> str | None:
    """The drift profile's title inside the artifact, adding it to `files` when it lives outside the source."""
    if drift_profile is None:
        default = [title for title, _ in files if title == DRIFT_PROFILE_DEFAULT_NAME]
        return default[0] if default else None
    resolved = drift_profile.resolve()
    for title, path in files:
        if path.resolve() == resolved:
            return title
    if not drift_profile.is_file():
        raise ArtifactError(f"drift profile {drift_profile} is not a file.")
    if any(title == drift_profile.name for title, _ in files):
        raise ArtifactError(f"drift profile {drift_profile} clashes with {drift_profile.name} in {source}.")
    files.append((drift_profile.name, drift_profile))
    return drift_profile.name


def push(
    source: Path,
    target: str,
    *,
    metadata: ModelMetadata | None = None,
    drift_profile: Path | None = None,
    force: bool = False,
    plain_http: bool = False,
    credentials: Credentials | None = None,
    retry: RetryPolicy | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Progress = no_progress,
    limits: TransferLimits | None = None,
) -> PushResult:
    """Push a model: refuse to move an existing tag unless forced, send only blobs the registry lacks."""
    reference = parse_reference(target)
    if reference.tag is None:
        raise BadReferenceError(f"Got {target}: a push needs a version tag, not a digest.")
    started = time.perf_counter()
    files = collect_files(source)
    drift_title = _drift_profile_title(source, files, drift_profile)
    metadata = metadata or ModelMetadata()
    if metadata.version is None:
        metadata = replace(metadata, version=reference.tag)
    client = RegistryClient(
        reference.registry, plain_http=plain_http, credentials=credentials, retry=retry, chunk_bytes=chunk_bytes,
        limits=limits,
    )
    with scratch_folder() as workdir:
        layers = plan_layers(files, drift_title, workdir, progress)
        config = _write_config(layers, metadata, workdir)
        raw = build_manifest(layers, config, metadata)
        digest = f"sha256:{sha256(raw).hexdigest()}"
        existing = client.manifest_digest(reference)
        if existing == digest:
            return PushResult(reference, digest, (), tuple(layers), True, time.perf_counter() - started)
        if existing is not None and not force:
            raise TagExistsError(
                f"{reference} already names {existing}, and this model is {digest}. "
                "Version tags are immutable: push a new version, or pass --force to overwrite."
            )
        uploaded: list[Layer] = []
        skipped: list[Layer] = []
        for layer in [*layers, config]:
            label = f"push {layer.title}"

            def done(count: int, label: str = label, size: int = layer.size) -> None:
                progress(label, count, size)

            sent = client.push_blob(reference, layer.path, layer.digest, layer.size, done)
            (uploaded if sent else skipped).append(layer)
        client.put_manifest(reference, raw)
    return PushResult(reference, digest, tuple(uploaded), tuple(skipped), False, time.perf_counter() - started)


@contextlib.contextmanager
def scratch_folder(parent: Path | None = None) -> Iterator[Path]:
    """A private temporary folder, locked while this push lives; what killed pushes left is removed first."""
    parent = Path(parent or tempfile.gettempdir())
    sweep_scratch(parent)
    workdir = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=parent))
    try:
        with exclusive(workdir / SCRATCH_LOCK):
            yield workdir
    finally:
        remove(workdir)


def sweep_scratch(parent: Path) -> list[Path]:
    """Remove this user's push scratch folders whose push is dead (its lock is free); the folders removed."""
    removed = []
    now = time.time()
    for folder in parent.glob(f"{SCRATCH_PREFIX}*"):
        try:
            info = folder.lstat()
        except FileNotFoundError:
            continue
        if not folder.is_dir() or folder.is_symlink() or info.st_uid != os.getuid():
            continue
        lock = folder / SCRATCH_LOCK
        if lock.exists():
            if held_by_someone(lock):
                continue
        elif now - info.st_mtime < UNLOCKED_GRACE_S:
            continue
        remove(folder)
        removed.append(folder)
    return removed

