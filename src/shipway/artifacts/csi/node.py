"""The CSI Identity and Node services of the node model cache, on a unix socket.

NodePublishVolume, for an inline volume `{driver: models.shipway.dev, readOnly: true, volumeAttributes:
{artifact: oci://HOST/REPO@sha256:..., maxSize: 20Gi}, nodePublishSecretRef: <the team's pull Secret>}`:

1. refuses (INVALID_ARGUMENT) an artifact that is missing, named by tag, or on another registry than the
   one this node's cache pulls from; a writable or block publish; a target outside `<kubelet-dir>/pods/`;
2. asks the registry, with the pod's own credentials, for the manifest by digest: every publish, warm or
   cold, so a pod gets a model only if the registry would give it that model (401/403: PERMISSION_DENIED,
   404: NOT_FOUND; a Docker-Content-Digest naming another manifest: DATA_LOSS); the plugin keeps no credentials;
3. records the publication (NodeCache eviction then leaves the model alone), pulls the artifact into the
   cache's model folder for that digest unless it is there (one pull per digest, on a thread of its own:
   concurrent publishes download once; every blob verified by digest before it is kept), refusing one
   larger than `maxSize` or the whole cache (INVALID_ARGUMENT, FAILED_PRECONDITION: final, it never fits), or one
   that does not fit now because mounted models fill the cache (RESOURCE_EXHAUSTED: the kubelet retries);
4. creates the target folder (`.../mount`; the kubelet made its parent) and bind-mounts the model folder
   there read-only (nosuid, nodev), holding the model's lock from its check that the model is there through the
   mount (an eviction renames the model aside under that lock: a publish mounts the whole model or pulls it again),
   and marks the model used (as unpublish does), for least-recently-used eviction.

NodeUnpublishVolume unmounts, removes the target folder (never its parent, the kubelet's), then the record.
Both are idempotent.

What the kubelet does around these calls (kubernetes pkg/volume/csi: csi_plugin.go, csi_mounter.go,
csi_client.go, as read from recent stored versions, not from the v1.35.0 tag itself): each call is bounded by
csiTimeout (2 minutes); a call that ran out, or answered ABORTED, UNAVAILABLE or RESOURCE_EXHAUSTED, is "in
progress" to it and retried with exponential backoff (0.5 s doubling to 2 min 2 s).
A cold pull of a large model outlasts that bound, so a publish waits for its pull at most `publish_wait_s`
(under the bound) and then answers ABORTED ("pulling X of Y bytes"); the pull goes on, and a retry finds it
done. A call for a volume and target that another call is still publishing (or unpublishing) answers ABORTED
at once (the CSI spec's "Concurrency": the plugin MAY refuse secondary calls for a volume with ABORTED).
Publishes take at most half the worker threads; one past that answers at once (ABORTED with the progress of
its digest's pull, else UNAVAILABLE), so N pods waiting on one cold digest, or on a registry that does not
answer, never take every thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import grpc

from shipway import __version__
from shipway.artifacts.auth import Credentials, docker_config_credentials
from shipway.artifacts.cache import NodeCache
from shipway.artifacts.csi import DRIVER, messages
from shipway.artifacts.csi.mounts import (
    MS_NOEXEC,
    MountError,
    bind_read_only_at,
    is_mount_point,
    open_folder,
    unmount,
    unmount_at,
)
from shipway.artifacts.csi.pulls import PullJob, Pulls
from shipway.artifacts.errors import (
    ArtifactError,
    AuthError,
    BadReferenceError,
    DigestMismatchError,
    RegistryUnavailableError,
)
from shipway.artifacts.layout import MANIFEST_MEDIA_TYPE, Reference, parse_reference
from shipway.artifacts.locking import try_exclusive
from shipway.artifacts.pull import _check_manifest, installed_digest, lock_path, pull
from shipway.artifacts.registry import RegistryClient, RetryPolicy
from shipway.artifacts.transfer import TransferLimitError, TransferLimits

log = logging.getLogger("shipway.csi")

ARTIFACT = "artifact"
MAX_SIZE = "maxSize"
ATTRIBUTES = (ARTIFACT, MAX_SIZE)
# oci:// and a host (at most 253 characters and a port), a repository (the distribution spec's 255), @sha256:<64>.
MAX_REFERENCE = 6 + 259 + 1 + 255 + 72
# What the kubelet adds to an inline volume's attributes (podInfoOnMount, ephemeral): read by nobody here.
KUBELET_ATTRIBUTE_PREFIX = "csi.storage.k8s.io/"
PULL_SECRET_KEY = ".dockerconfigjson"
# gRPC calls run on these threads; publishes take at most half of them (the rest stay free for other calls).
WORKERS = 32
# Pulls run on threads of their own; more digests than this wait their turn.
PULL_WORKERS = 4
# The kubelet bounds every CSI call by csiTimeout, 2 minutes (kubernetes pkg/volume/csi/csi_plugin.go).
KUBELET_CSI_TIMEOUT_S = 120.0
# How long a publish waits for a pull before answering ABORTED: under the kubelet's bound, so it hears how far
# the pull got instead of running out, with room left for the credential check and the mount.
PUBLISH_WAIT_S = KUBELET_CSI_TIMEOUT_S - 20.0
# A publication record that is not mounted, that no call is working on, and that no publish has rewritten for this
# long is one the kubelet stopped asking about (a pod that went away after an ABORTED publish, with no unpublish):
# it stops pinning its model. The kubelet retries a publish at least every 2 min 2 s (its backoff's cap), and each
# attempt rewrites the record, so a pod still waiting for a pull keeps its record.
STALE_RECORD_S = 600.0
REAP_EVERY_S = 60.0
# How old the cache's byte count in the stats line may be, in seconds.
USED_BYTES_TTL_S = 30.0
# How often a waiting publish looks whether the kubelet gave up on it (then its thread is freed).
_WAIT_SLICE_S = 0.2
# How often a publish tries the model's lock while a pull or an eviction holds it.
_LOCK_POLL_S = 0.05
# mount_flags a publish may ask for: those a read-only, nosuid, nodev bind mount has anyway (a read-only mount
# updates no access times) and noexec, which the plugin adds. Any other (rw, exec, suid, dev, context=...) would
# weaken the mount or cannot be set on a bind mount, so it is refused. fs_type is accepted and unused: the
# volume is a folder of the node cache's filesystem, not a device to format.
MOUNT_FLAGS_IN_EFFECT = ("ro", "nosuid", "nodev", "noatime", "nodiratime", "relatime")
MOUNT_FLAGS_ADDED = {"noexec": MS_NOEXEC}
# The longest answer the plugin gives. gRPC carries it in a trailer, and clients cap received metadata (grpc's hard
# limit is 16 KiB: past it the kubelet gets RESOURCE_EXHAUSTED, which it retries forever, instead of the answer);
# the log takes the same line on every retry. A tenant's value is echoed cut to SHOWN characters, so the hint that
# follows it survives.
MAX_MESSAGE = 2000
SHOWN = 100


class CsiError(Exception):
    """A request the plugin refuses, with the gRPC status code the kubelet gets and what to fix."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        message = _cut(message, MAX_MESSAGE)
        super().__init__(message)
        self.code = code
        self.message = message


def _cut(text: str, limit: int = SHOWN) -> str:
    """`text`, or its first `limit` characters and how long it was: a tenant's value as an answer may echo it."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _listed(names: list[str], most: int = 5) -> list[str]:
    """Names a tenant chose (keys), as an answer lists them: the first few, each cut."""
    return [_cut(name) for name in names[:most]] + ([f"and {len(names) - most} more"] if len(names) > most else [])


@dataclass(frozen=True)
class NodeConfig:
    """The node's cache, the one registry it pulls from, and where the kubelet keeps pods."""

    cache: NodeCache
    registry: str
    node_id: str
    kubelet_dir: Path = Path("/var/lib/kubelet")
    plain_http: bool = False
    limits: TransferLimits = field(default_factory=TransferLimits)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    workers: int = WORKERS
    pull_workers: int = PULL_WORKERS
    publish_wait_s: float = PUBLISH_WAIT_S
    stale_record_s: float = STALE_RECORD_S
    reap_every_s: float = REAP_EVERY_S


@dataclass
class NodeStats:
    """What the plugin did since it started: publishes (and those the cache already held), the pulls that downloaded
    and the bytes they fetched; logged at INFO after every publish and unpublish (`describe`)."""

    published: int = 0
    hits: int = 0
    unpublished: int = 0
    refused: int = 0
    in_progress: int = 0
    downloads: int = 0
    bytes_downloaded: int = 0

    def describe(self, used_bytes: int, max_bytes: int) -> str:
        return (f"node cache: {self.published} published ({self.hits} already on the node), {self.unpublished} "
                f"unpublished, {self.downloads} downloads ({self.bytes_downloaded} bytes), {self.refused} refused, "
                f"{self.in_progress} answered in progress; {used_bytes} of {max_bytes} bytes used")


@dataclass(frozen=True)
class Artifact:
    """A publish request's volume attributes, checked."""

    reference: Reference
    max_bytes: int | None


def parse_attributes(attributes: Mapping[str, str], registry: str) -> Artifact:
    """The artifact (by digest, on `registry`) and the size bound a volume's attributes name; CsiError if not."""
    unknown = sorted(key for key in attributes if key not in ATTRIBUTES and not key.startswith(KUBELET_ATTRIBUTE_PREFIX))
    if unknown:
        raise _invalid(f"unknown volumeAttributes {_listed(unknown)}: {DRIVER} takes {list(ATTRIBUTES)}")
    text = attributes.get(ARTIFACT, "")
    example = f"oci://{registry}/TEAM/MODEL@sha256:<64 hex digits>"
    if not text:
        raise _invalid(f"volumeAttributes.{ARTIFACT} is missing: name the model by digest, e.g. {example}")
    if len(text) > MAX_REFERENCE:
        raise _invalid(f"volumeAttributes.{ARTIFACT} {_cut(text)!r} is longer than a reference by digest can be "
                       f"({MAX_REFERENCE} characters): name the model by digest, e.g. {example}")
    try:
        reference = parse_reference(text)
    except BadReferenceError as error:
        raise _invalid(f"volumeAttributes.{ARTIFACT}: {error}") from None
    if reference.tag is not None or reference.digest is None:
        raise _invalid(f"volumeAttributes.{ARTIFACT} {text!r} names a tag: a tag can move, so the node cache takes "
                       f"a digest only, e.g. {example} (`shipway promote` commits the digest)")
    if reference.registry != registry:
        raise _invalid(f"volumeAttributes.{ARTIFACT} {text!r} is on {reference.registry}; this node's cache pulls "
                       f"from {registry} only")
    max_bytes = None
    if MAX_SIZE in attributes:
        from shipway.spec.base import quantity_value

        try:
            max_bytes = int(quantity_value(attributes[MAX_SIZE]))
        except ValueError:
            max_bytes = 0
        if max_bytes <= 0:
            raise _invalid(f"volumeAttributes.{MAX_SIZE} {_cut(attributes[MAX_SIZE])!r}: expected a size such as 20Gi")
    return Artifact(reference, max_bytes)


def check_target(target_path: str, kubelet_dir: Path) -> Path:
    """The target folder, resolved, if it lies inside a pod's folder under `<kubelet_dir>/pods/`; CsiError if not.

    `..` is refused as written; symbolic links anywhere on the path are resolved first, so one pointing out
    of the pods folder is refused too.
    """
    pods = Path(os.path.realpath(kubelet_dir / "pods"))
    where = f"a folder under {kubelet_dir / 'pods'}/<pod uid>/ (where the kubelet puts a pod's volumes)"
    if not target_path or not target_path.startswith("/"):
        raise _invalid(f"target_path {target_path!r} is not an absolute path: expected {where}")
    if ".." in PurePosixPath(target_path).parts:
        raise _invalid(f"target_path {target_path!r} contains '..': expected {where}")
    resolved = Path(os.path.realpath(target_path))
    if not resolved.is_relative_to(pods) or len(resolved.relative_to(pods).parts) < 2:
        raise _invalid(f"target_path {target_path!r} resolves to {resolved}, outside any pod: expected {where}")
    return resolved


def registry_credentials(secrets: Mapping[str, str], registry: str) -> Credentials:
    """The pod's pull credentials for `registry`, from its nodePublishSecretRef's `.dockerconfigjson`.

    Keys the kubelet itself puts in `secrets` (since 1.35 a CSIDriver with serviceAccountTokenInSecrets gets
    `csi.storage.k8s.io/serviceAccount.tokens` there instead of in volume_context) are not the Secret's.
    """
    secrets = {key: value for key, value in secrets.items() if not key.startswith(KUBELET_ATTRIBUTE_PREFIX)}
    if not secrets:
        return Credentials(source="no nodePublishSecretRef")
    if PULL_SECRET_KEY not in secrets:
        raise _invalid(f"the nodePublishSecretRef Secret has keys {_listed(sorted(secrets))} and no "
                       f"{PULL_SECRET_KEY}: name the team's kubernetes.io/dockerconfigjson pull Secret")
    try:
        return docker_config_credentials(secrets[PULL_SECRET_KEY], registry, "the nodePublishSecretRef Secret")
    except AuthError as error:
        raise _invalid(str(error)) from None


def mount_flags(flags: list[str]) -> int:
    """The extra mount(2) flags a publish's volume_capability.mount.mount_flags ask for; CsiError if one cannot be
    honoured."""
    extra = 0
    for flag in flags:
        if flag in MOUNT_FLAGS_ADDED:
            extra |= MOUNT_FLAGS_ADDED[flag]
        elif flag not in MOUNT_FLAGS_IN_EFFECT:
            raise _invalid(f"mount flag {_cut(flag)!r} cannot be honoured: {DRIVER} bind-mounts the model read-only "
                           f"and takes only {sorted([*MOUNT_FLAGS_IN_EFFECT, *MOUNT_FLAGS_ADDED])}")
    return extra


def publication_key(volume_id: str, target: Path) -> str:
    """One publication's name: the volume and the folder it is mounted at."""
    return hashlib.sha256(f"{volume_id}\0{target}".encode()).hexdigest()


def _invalid(message: str) -> CsiError:
    return CsiError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _in_progress(what: str) -> CsiError:
    """ABORTED, the CSI spec's answer to a call for a volume with an operation pending; the kubelet retries it."""
    return CsiError(grpc.StatusCode.ABORTED, f"{what}; the kubelet retries (ABORTED: an operation is pending for "
                                             "the volume)")


def _status_of(error: ArtifactError) -> grpc.StatusCode:
    if isinstance(error, AuthError):
        return grpc.StatusCode.PERMISSION_DENIED
    if isinstance(error, TransferLimitError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(error, RegistryUnavailableError):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(error, DigestMismatchError):
        return grpc.StatusCode.DATA_LOSS
    return grpc.StatusCode.FAILED_PRECONDITION


class NodePlugin:
    """The plugin's state and the CSI calls it answers; `handlers` adapts them to gRPC."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.stats = NodeStats()
        self._stats_lock = threading.Lock()
        self.pulls = Pulls(config.pull_workers)
        # The calls in flight, by publication key (volume and target): what each is doing, for a second call's answer.
        self._calls: dict[str, Callable[[], str]] = {}
        self._calls_lock = threading.Lock()
        # Publishes may take at most half the worker threads, whatever holds them up (a registry that does not
        # answer, a pull still going): the other half stays free for probes, capabilities and unpublishes.
        self._publish_slots = threading.BoundedSemaphore(max(1, config.workers // 2))
        # A manifest may be 4 MiB (--max-manifest-size), about 16 MiB once parsed: publishes read and parse at most
        # as many at once as pulls do, so 16 pods naming a 4 MiB manifest cannot hold 16 of them (measured: the
        # plugin's peak went from 393 to 244 MiB of its 512Mi limit).
        self._manifest_reads = threading.BoundedSemaphore(max(1, config.pull_workers))
        # The cache's bytes for the log line, walked at most every USED_BYTES_TTL_S: a walk costs about 0.2 s per
        # 100,000 files, which a warm publish (milliseconds) must not pay each time.
        self._used: tuple[float, int] | None = None
        self.recover()
        self._closed = threading.Event()
        threading.Thread(target=self._reap_until_closed, name="csi-reaper", daemon=True).start()

    def close(self) -> None:
        """Stop the reaper thread."""
        self._closed.set()

    def _reap_until_closed(self) -> None:
        while not self._closed.wait(self.config.reap_every_s):
            try:
                self.reap()
            except OSError as error:
                log.warning("looking for stale publication records: %s", error)

    def reap(self) -> None:
        """Drop the records of publications the kubelet stopped asking about: not mounted, no call working on them,
        not rewritten for stale_record_s. Left alone, such a record (an ABORTED publish whose pod went away
        without an unpublish) would pin its model against eviction until the plugin restarts."""
        cache = self.config.cache
        for key, record in cache.publications_by_key().items():
            # Under the calls' lock: a publish takes its key before it writes the record and mounts, so a record
            # with no call on it is not about to be mounted.
            with self._calls_lock:
                if key in self._calls or time.time() - cache.publication_time(key) < self.config.stale_record_s:
                    continue
                if not is_mount_point(Path(record.get("target_path", "/nonexistent"))):
                    log.info("dropped the publication record of %s: not mounted, and the kubelet stopped asking",
                             record.get("target_path"))
                    cache.drop_publication(key)

    def recover(self) -> None:
        """On start: remove what a killed run left, and the records of publications that never got mounted."""
        for path in self.config.cache.sweep():
            log.info("removed %s, left by a killed pull", path)
        for key, record in self.config.cache.publications_by_key().items():
            if not is_mount_point(Path(record.get("target_path", "/nonexistent"))):
                self.config.cache.drop_publication(key)
        for model in self.config.cache.models.iterdir():
            if not model.name.startswith(".") and _forget_repository(self.config.cache, model):
                log.info("%s no longer names the repository that first pulled it", model)

    # --- Identity -------------------------------------------------------

    def get_plugin_info(self, _request: Any) -> Any:
        return messages.GetPluginInfoResponse(name=DRIVER, vendor_version=__version__)

    def get_plugin_capabilities(self, _request: Any) -> Any:
        # No controller: an ephemeral inline volume is published on its node only.
        return messages.GetPluginCapabilitiesResponse()

    def probe(self, _request: Any) -> Any:
        return messages.ProbeResponse(ready={"value": self.config.cache.models.is_dir()})

    # --- Node -----------------------------------------------------------

    def node_get_capabilities(self, _request: Any) -> Any:
        return messages.NodeGetCapabilitiesResponse()

    def node_get_info(self, _request: Any) -> Any:
        return messages.NodeGetInfoResponse(node_id=self.config.node_id)

    def node_publish_volume(self, request: Any, active: Callable[[], bool] = lambda: True) -> Any:
        """Publish; `active` says whether the caller still waits for the answer (gRPC's context.is_active)."""
        try:
            hit = self._publish(request, active)
        except CsiError as error:
            with self._stats_lock:
                if error.code == grpc.StatusCode.ABORTED:
                    self.stats.in_progress += 1
                else:
                    self.stats.refused += 1
            self._log_stats()
            raise
        with self._stats_lock:
            self.stats.published += 1
            self.stats.hits += hit
        self._log_stats()
        return messages.NodePublishVolumeResponse()

    def _log_stats(self) -> None:
        """One line an operator reading the plugin's log sees cache use by: what `NodeStats` counted, and the
        cache's bytes against its bound."""
        cache = self.config.cache
        now = time.monotonic()
        if self._used is None or now - self._used[0] > USED_BYTES_TTL_S:
            self._used = (now, cache.size())
        with self._stats_lock:
            line = self.stats.describe(self._used[1], cache.max_bytes)
        log.info("%s", line)

    def _publish(self, request: Any, active: Callable[[], bool]) -> bool:
        """Publish; whether the model was on the node already."""
        config = self.config
        if not request.volume_id:
            raise _invalid("volume_id is empty")
        if request.volume_capability.WhichOneof("access_type") == "block":
            raise _invalid(f"{DRIVER} publishes a folder: use it as a filesystem volume, not a block device")
        if not request.readonly:
            raise _invalid(f"{DRIVER} publishes read-only: set readOnly: true on the pod's csi volume")
        extra_flags = mount_flags(list(request.volume_capability.mount.mount_flags))
        artifact = parse_attributes(request.volume_context, config.registry)
        target = check_target(request.target_path, config.kubelet_dir)
        credentials = registry_credentials(request.secrets, config.registry)
        key = publication_key(request.volume_id, target)
        with self._one_call(key, "a publish of this volume is in progress: checking the pod's credentials"):
            if not self._publish_slots.acquire(blocking=False):
                job = self.pulls.running(str(artifact.reference.digest))
                if job is not None:
                    raise _in_progress(f"a publish of this volume is in progress: {job.describe()} of "
                                       f"{artifact.reference} into the node cache, with as many publishes under way "
                                       "as the plugin takes at once")
                raise CsiError(grpc.StatusCode.UNAVAILABLE,
                               f"{DRIVER} on this node already runs as many publishes as it takes at once (asking "
                               f"{config.registry} or waiting for pulls); the kubelet retries")
            try:
                return self._publish_at(request.volume_id, key, artifact, target, credentials, extra_flags, active)
            finally:
                self._publish_slots.release()

    @contextlib.contextmanager
    def _one_call(self, key: str, doing: str) -> Iterator[None]:
        """Volume and target `key` for this call alone: a call while another still works on them (a kubelet retry
        after its deadline, an unpublish during a pull) is answered ABORTED at once, and only the call holding the
        key looks at or changes what is mounted there (no stacked mounts, no mount after an unpublish)."""
        with self._calls_lock:
            if key in self._calls:
                raise _in_progress(self._calls[key]())
            self._calls[key] = lambda: doing
        try:
            yield
        finally:
            with self._calls_lock:
                del self._calls[key]

    def _publish_at(self, volume_id: str, key: str, artifact: Artifact, target: Path, credentials: Credentials,
                    extra_flags: int, active: Callable[[], bool]) -> bool:
        """Publish at `target`, the call holding `key`; whether the model was on the node already."""
        cache = self.config.cache
        reference = artifact.reference
        digest = str(reference.digest)
        client = self._authorize(reference, credentials)
        model = cache.model_folder(digest)
        if is_mount_point(target):
            if _same_folder(target, model) and cache.publication(key) is not None:
                cache.touch(model)
                return True
            raise CsiError(grpc.StatusCode.ALREADY_EXISTS,
                           f"{target} already has something else mounted; unpublish it first")
        if not target.parent.is_dir():
            raise CsiError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"{target.parent} does not exist: the kubelet creates the target's parent before it "
                           "publishes, and the plugin creates only the target itself")
        size = self._check_size(client, reference, model, artifact.max_bytes)
        cache.record_publication(key, digest, {"volume_id": volume_id, "target_path": str(target)})
        try:
            # From here eviction leaves the model alone (the record), except an eviction that checked the records
            # before it was written: that one renames the model aside under the model's lock, and the mount below
            # checks for the model under that lock, so a publish that loses that race pulls the model again.
            for attempt in range(2):
                hit = installed_digest(model) == digest
                if not hit:
                    if attempt:
                        size = self._check_size(client, reference, model, artifact.max_bytes)
                    job = self.pulls.join(digest, size, lambda job: self._pull(reference, credentials, model,
                                                                               artifact.max_bytes, job))
                    with self._calls_lock:
                        self._calls[key] = lambda: f"a publish of this volume is in progress: {job.describe()}"
                    self._wait_for(job, reference, active)
                if self._mount_installed(model, digest, target, extra_flags, reference, active):
                    log.info("published %s at %s", reference, target)
                    return hit
            raise _in_progress(f"{model}, the node cache's copy of {reference}, was evicted while this publish was "
                               "mounting it, twice")
        except CsiError as error:
            if error.code not in (grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED):
                cache.drop_publication(key)  # still pulling: the record keeps the model from eviction till the retry
            raise
        except BaseException:
            cache.drop_publication(key)
            raise

    def _mount_installed(self, model: Path, digest: str, target: Path, extra_flags: int, reference: Reference,
                         active: Callable[[], bool]) -> bool:
        """Mount the model at the target if it is installed, and mark it used; False if it is not (evicted). Under
        the model's lock, which a pull and an eviction hold: the model is whole from the check through the mount."""
        with self._model_lock(model, reference, active):
            if installed_digest(model) != digest:
                log.info("%s, the node cache's copy of %s, was evicted before it was mounted: pulling it again",
                         model, reference)
                return False
            self._mount(model, target, extra_flags)
            self.config.cache.touch(model)
        return True

    @contextlib.contextmanager
    def _model_lock(self, model: Path, reference: Reference, active: Callable[[], bool]) -> Iterator[None]:
        """The model's lock, waited for at most publish_wait_s while the caller waits too (a pull of the model holds
        it as long as it pulls; an eviction, only to rename the model aside)."""
        deadline = time.monotonic() + self.config.publish_wait_s
        while True:
            with try_exclusive(lock_path(model)) as held:
                if held:
                    yield
                    return
            if not active():
                raise CsiError(grpc.StatusCode.CANCELLED, f"the caller gave up waiting to mount {reference}")
            if time.monotonic() >= deadline:
                raise _in_progress(f"a publish of this volume is in progress: waiting for {model}, the node cache's "
                                   f"copy of {reference}, which a pull or an eviction of it holds")
            time.sleep(_LOCK_POLL_S)

    def _mount(self, model: Path, target: Path, extra_flags: int) -> None:
        """Create the target and bind-mount the model there, through descriptors walked to it without following a
        link: check_target's answer may be minutes old (a pull), and mount(2) follows links in its target."""
        changed = (f"{target} changed after it was checked: its folder is gone, or a symbolic link or a file is "
                   "on the way, so the plugin mounted nothing (the kubelet's folders hold no links)")
        try:
            parent = open_folder(target.parent)
        except OSError as error:
            raise CsiError(grpc.StatusCode.FAILED_PRECONDITION, f"{changed}: {error.strerror}") from None
        try:
            created = False
            try:
                os.mkdir(target.name, 0o755, dir_fd=parent)
                created = True
            except FileExistsError:
                pass
            try:
                bind_read_only_at(model, parent, target.name, extra_flags)
            except BaseException as error:
                if created:
                    os.rmdir(target.name, dir_fd=parent)
                if isinstance(error, OSError) and not isinstance(error, MountError):
                    if not model.is_dir() or model.is_symlink():
                        raise CsiError(grpc.StatusCode.ABORTED,
                                       f"{model}, the node cache's copy of the model, is gone or not a folder "
                                       f"({error.strerror}), so the plugin mounted nothing; the kubelet retries, "
                                       "and the retry pulls it again") from None
                    raise CsiError(grpc.StatusCode.FAILED_PRECONDITION, f"{changed}: {error.strerror}") from None
                raise
            # Re-checked after the mount: the folder the descriptors named is still the target (not renamed away).
            if not (is_mount_point(target) and _same_folder(target, model)):
                unmount_at(parent, target.name)
                raise CsiError(grpc.StatusCode.FAILED_PRECONDITION, changed)
        finally:
            os.close(parent)

    def _wait_for(self, job: PullJob, reference: Reference, active: Callable[[], bool]) -> None:
        """Wait for the pull at most publish_wait_s, while the caller waits too; ABORTED if it is still pulling."""
        deadline = time.monotonic() + self.config.publish_wait_s
        while not job.finished.wait(max(0.0, min(_WAIT_SLICE_S, deadline - time.monotonic()))):
            if not active():
                raise CsiError(grpc.StatusCode.CANCELLED,
                               f"the caller gave up waiting for {reference}; its pull goes on")
            if time.monotonic() >= deadline:
                raise _in_progress(f"a publish of this volume is in progress: {job.describe()} of {reference} into "
                                   "the node cache")
        if job.error is not None:
            raise job.error

    def _authorize(self, reference: Reference, credentials: Credentials) -> RegistryClient:
        """Ask the registry, as the pod, for the manifest by digest (HEAD): the pod gets only what it may pull."""
        config = self.config
        try:
            client = RegistryClient(config.registry, plain_http=config.plain_http, credentials=credentials,
                                    retry=config.retry, limits=config.limits)
            found = client.manifest_digest(reference)
        except AuthError as error:
            raise CsiError(grpc.StatusCode.PERMISSION_DENIED,
                           f"{config.registry} refused {reference} to the pod's credentials ({credentials.source}): "
                           f"{error} Give the pod the pull Secret of the team that owns the model.") from None
        except ArtifactError as error:
            raise CsiError(_status_of(error), f"asking {config.registry} for {reference}: {error}") from None
        if found is None:
            raise CsiError(grpc.StatusCode.NOT_FOUND,
                           f"{config.registry} has no {reference}: check the digest (`shipway promote` commits it)")
        if found != reference.digest:
            # A yes about another manifest is no yes about this one (a proxy or registry that answers by tag, or lies).
            raise CsiError(grpc.StatusCode.DATA_LOSS,
                           f"{config.registry} answered the HEAD of {reference} with Docker-Content-Digest "
                           f"{_cut(found)}, another manifest: the plugin mounts nothing the registry did not confirm "
                           "by its own digest. Check the registry (or a proxy in front of it)")
        return client

    def _check_size(self, client: RegistryClient, reference: Reference, model: Path, max_bytes: int | None) -> int:
        """Refuse an artifact larger than the volume's maxSize or the whole cache, before a byte is pulled; its
        size."""
        cache = self.config.cache
        manifest = _marker_manifest(model, str(reference.digest))  # None if not installed (or evicted meanwhile)
        installed = manifest is not None
        with self._manifest_reads:
            try:
                if manifest is None:
                    raw, _ = client.get_manifest(reference, accept=MANIFEST_MEDIA_TYPE)
                    manifest = _check_manifest(raw, reference)
                    del raw
            except ArtifactError as error:
                raise CsiError(_status_of(error), f"reading the manifest of {reference}: {error}") from None
            blobs = [(str(d["digest"]), int(d["size"])) for d in [manifest["config"], *manifest.get("layers", [])]]
            del manifest
        size = sum(blob_size for _, blob_size in blobs)
        # Larger than a bound is final (INVALID_ARGUMENT, FAILED_PRECONDITION): the kubelet takes RESOURCE_EXHAUSTED
        # for "in progress" and would retry a publish that can never fit, forever.
        for bound, code, what, fix in (
                (max_bytes, grpc.StatusCode.INVALID_ARGUMENT, f"the volume's {MAX_SIZE}",
                 "raise the model's spec.resources.model_storage (the render makes it the volume's maxSize)"),
                (cache.max_bytes, grpc.StatusCode.FAILED_PRECONDITION, "the whole node cache (--max-size)",
                 "raise registry.nodeCache.maxSize in the blueprint (or give the pool's nodes larger disks)")):
            if bound is not None and size > bound:
                raise CsiError(code, f"{reference} is {size} bytes, more than the {bound} bytes {what} allows, so it "
                                     f"can never be published here: {fix}")
        if installed or self.pulls.running(str(reference.digest)) is not None:
            return size
        # The blobs the node lacks. A small-files bundle's archive stays beside the files unpacked from it only until
        # eviction wants room: nothing links it, so it goes first.
        needed = sum(blob_size for digest, blob_size in blobs if not cache.has(digest, blob_size))
        if not cache.room_for(needed):
            raise CsiError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"the node cache cannot take {reference} now ({needed} bytes more): models that running "
                           f"pods on this node mount fill it, up to its {cache.max_bytes} bytes (--max-size). The "
                           "kubelet retries this publish on this node until those pods unmount enough of them (it "
                           "does not move the pod); to fit more models at once, raise registry.nodeCache.maxSize in "
                           "the blueprint")
        return size

    def _pull(self, reference: Reference, credentials: Credentials, model: Path, max_bytes: int | None,
              job: PullJob) -> None:
        limits = self.config.limits
        if max_bytes is not None and max_bytes < limits.max_blob_bytes:
            limits = TransferLimits(limits.max_manifest_bytes, max_bytes, limits.deadline_s, limits.min_rate_bytes_s,
                                    limits.rate_window_s)
        try:
            result = pull(str(reference), model, force=True, plain_http=self.config.plain_http,
                          credentials=credentials, retry=self.config.retry, limits=limits, cache=self.config.cache,
                          progress=job.progress)
        except ArtifactError as error:
            raise CsiError(_status_of(error), f"pulling {reference} into the node cache: {error}") from None
        if not result.up_to_date:
            # Once, as the model enters the cache, not on every mount: a walk of 100,000 files took 0.23 s.
            _world_readable(model)
            with self._stats_lock:
                self.stats.downloads += 1
                self.stats.bytes_downloaded += result.bytes_fetched
            log.info("pulled %s into %s: %d bytes from the registry", reference, model, result.bytes_fetched)

    def node_unpublish_volume(self, request: Any) -> Any:
        if not request.volume_id:
            raise _invalid("volume_id is empty")
        target = check_target(request.target_path, self.config.kubelet_dir)
        key = publication_key(request.volume_id, target)
        with self._one_call(key, "an unpublish of this volume is in progress"):
            try:
                unmount(target)
            except MountError:
                raise
            except OSError as error:
                raise CsiError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"{target} changed after it was checked: a symbolic link or a file is on the way "
                               f"({error.strerror}), so the plugin unmounted nothing") from None
            try:
                target.rmdir()
            except FileNotFoundError:
                pass
            except OSError as error:
                raise CsiError(grpc.StatusCode.INTERNAL,
                               f"{target} is unmounted but could not be removed ({error.strerror}); it holds "
                               "files nobody mounted there: look at it, remove it, and the kubelet's retry "
                               "succeeds") from None
            cache = self.config.cache
            record = cache.publication(key)
            if record is not None:
                cache.touch(cache.models / str(record.get("model")))  # used until now: eviction ages it from here
            cache.drop_publication(key)
        with self._stats_lock:
            self.stats.unpublished += 1
        log.info("unpublished %s", target)
        self._log_stats()
        return messages.NodeUnpublishVolumeResponse()


def _marker_manifest(model: Path, digest: str) -> dict[str, Any] | None:
    """The manifest a finished pull of `digest` recorded in the model folder; None if the folder holds no such pull
    (never pulled, or evicted: eviction renames the folder away, so it is whole or absent)."""
    import json

    from shipway.artifacts.layout import MARKER_FILE

    try:
        marker = json.loads((model / MARKER_FILE).read_text())
        if marker["manifest_digest"] != digest:
            return None
        return dict(marker["manifest"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _forget_repository(cache: NodeCache, model: Path) -> bool:
    """Rewrite the marker of a model an older plugin pulled without the repository it recorded (the folder is mounted
    into any team's pod that names the digest), keeping the marker's age for eviction; whether it did. Skipped
    while a pull or a publish holds the model."""
    import json

    from shipway.artifacts.layout import MARKER_FILE

    marker_path = model / MARKER_FILE
    with try_exclusive(lock_path(model)) as held:
        try:
            marker = json.loads(marker_path.read_text())
            times = marker_path.stat()
        except (OSError, ValueError):
            return False
        if not held or not isinstance(marker, dict) or "reference" not in marker:
            return False
        del marker["reference"]
        # Written beside the blobs being downloaded (swept on start if a kill leaves it), then renamed over the marker:
        # a pod reading it sees the old or the new one, whole.
        staging = cache.incoming / f"marker-{model.name}"
        staging.write_text(json.dumps(marker, indent=2, sort_keys=True))
        staging.chmod(0o444)
        os.utime(staging, ns=(times.st_atime_ns, times.st_mtime_ns))
        staging.rename(marker_path)
    return True


def _same_folder(mounted: Path, model: Path) -> bool:
    try:
        one, other = mounted.stat(), model.stat()
    except FileNotFoundError:
        return False
    return (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino)


def _world_readable(model: Path) -> None:
    """Every file readable and every folder searchable by any user (pods run as any uid); none writable."""
    for folder, names, files in os.walk(model):
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            if stat.S_IMODE(os.lstat(path).st_mode) != 0o444:
                os.chmod(path, 0o444)


def handlers(plugin: NodePlugin) -> grpc.GenericRpcHandler:
    """The Identity and Node methods as one gRPC handler; any other method is UNIMPLEMENTED."""
    calls: dict[str, Callable[[Any, grpc.ServicerContext], Any]] = {
        name: (lambda request, _context, call=call: call(request)) for name, call in {
            "GetPluginInfo": plugin.get_plugin_info, "GetPluginCapabilities": plugin.get_plugin_capabilities,
            "Probe": plugin.probe, "NodeGetCapabilities": plugin.node_get_capabilities,
            "NodeGetInfo": plugin.node_get_info, "NodeUnpublishVolume": plugin.node_unpublish_volume,
        }.items()
    }
    calls["NodePublishVolume"] = lambda request, context: plugin.node_publish_volume(request, context.is_active)
    methods = {}
    for path, (request_class, response_class) in messages.method_paths().items():
        methods[path] = grpc.unary_unary_rpc_method_handler(
            _answering(calls[path.rpartition("/")[2]]), request_deserializer=request_class.FromString,
            response_serializer=response_class.SerializeToString)

    class Handler(grpc.GenericRpcHandler):
        def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
            return methods.get(handler_call_details.method)

    return Handler()


def _answering(call: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
    """A CSI call as a gRPC method: a CsiError becomes its status; anything else INTERNAL, never a silent OK."""
    def method(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return call(request, context)
        except CsiError as error:
            log.warning("%s: %s", error.code.name, error.message)
            context.abort(error.code, error.message)
        except MountError as error:
            log.error("%s", error)
            context.abort(grpc.StatusCode.INTERNAL, _cut(str(error), MAX_MESSAGE))
        except Exception as error:
            log.exception("unexpected failure")
            context.abort(grpc.StatusCode.INTERNAL, _cut(f"{type(error).__name__}: {error}", MAX_MESSAGE))
    return method


def endpoint_path(endpoint: str) -> Path:
    """The socket path of a `unix:///path` endpoint (the CSI convention); ValueError if it is none."""
    if not endpoint.startswith("unix://") or not endpoint.removeprefix("unix://").startswith("/"):
        raise ValueError(endpoint)
    return Path(endpoint.removeprefix("unix://"))


def start(config: NodeConfig, socket: Path) -> tuple[grpc.Server, NodePlugin]:
    """Serve the plugin on a unix socket (a stale socket file from a killed run is replaced); started."""
    plugin = NodePlugin(config)
    socket.parent.mkdir(parents=True, exist_ok=True)
    socket.unlink(missing_ok=True)
    server = grpc.server(ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="csi"),
                         handlers=[handlers(plugin)])
    server.add_insecure_port(f"unix://{socket}")
    server.start()
    return server, plugin


def serve_until(config: NodeConfig, socket: Path, stop: threading.Event, grace_s: float = 10.0) -> None:
    """Serve until `stop` is set, then let calls in flight finish (up to `grace_s`) and remove the socket."""
    server, plugin = start(config, socket)
    try:
        stop.wait()
    finally:
        server.stop(grace_s).wait()
        plugin.close()
        socket.unlink(missing_ok=True)
