"""The node's model cache: verified blobs by digest, and pulled models beside them, under a size bound.

One folder per node (a hostPath or local volume the platform manages), shared by every model pod there. A blob
enters `blobs/sha256/<hex>` only by a rename after its bytes hashed to its digest while they streamed, so the
cache never holds, and never serves, a blob it has not verified. Pulled models live in `models/`, their large
files hard links to the blobs, so a model costs its bytes once. Per-digest locks make concurrent pods on a
node download a blob once; the others wait and then link it. When a download would take the cache past its
bound, the least recently used models are evicted first, skipping any in use by a pull, used within
`keep_recent_s`, or published: the CSI node plugin (shipway.artifacts.csi) bind-mounts a model folder into
pods and records each publication in `publications/` before it pulls, and eviction checks those records under
the model's own lock, so a mounted model is never removed. Eviction renames a model aside under that lock
before it removes it, and a publish checks the model is there and mounts it under the same lock: a pod never
mounts a half-removed model. Every publish and unpublish marks its model used. What killed runs left (staging
folders, partial blobs) is removed by `sweep` once no live process holds its lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from shipway.artifacts.layout import MARKER_FILE, is_digest
from shipway.artifacts.locking import exclusive, held_by_someone, remove, try_exclusive

if TYPE_CHECKING:
    from shipway.artifacts.layout import Reference
    from shipway.artifacts.registry import BytesDone, RegistryClient

MODELS = "models"
PUBLICATIONS = "publications"


class NodeCache:
    """Verified blobs by digest on one node, with the models pulled from them, bounded in size."""

    def __init__(self, root: Path, max_bytes: int, keep_recent_s: float = 3600.0) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.keep_recent_s = keep_recent_s
        self.blobs = root / "blobs" / "sha256"
        self.models = root / MODELS
        self.incoming = root / "incoming"
        self.locks = root / "locks"
        self.publications = root / PUBLICATIONS
        for folder in (self.blobs, self.models, self.incoming, self.locks, self.publications):
            folder.mkdir(parents=True, exist_ok=True)

    def model_folder(self, manifest_digest: str) -> Path:
        """Where a pull through this cache puts the model a manifest digest names."""
        if not is_digest(manifest_digest):
            raise ValueError(f"not a sha256 digest: {manifest_digest!r}")
        return self.models / manifest_digest.replace(":", "-")

    def blob_path(self, digest: str) -> Path:
        """Where a verified blob lives."""
        if not is_digest(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.blobs / digest.removeprefix("sha256:")

    def has(self, digest: str, size: int) -> bool:
        """Whether the cache holds this verified blob."""
        try:
            return self.blob_path(digest).stat().st_size == size
        except FileNotFoundError:
            return False

    def fetch(self, client: RegistryClient, reference: Reference, digest: str, size: int, target: Path,
              done: BytesDone) -> bool:
        """Put the blob at `target` from the cache, downloading it into the cache first if need be.

        Returns whether it was downloaded. Waits while another process downloads the same blob.
        """
        blob = self.blob_path(digest)
        with exclusive(self.locks / f"{blob.name}.lock"):
            downloaded = self._ensure(client, reference, digest, size, done)
            _link_or_copy(blob, target)
        return downloaded

    def _ensure(self, client: RegistryClient, reference: Reference, digest: str, size: int,
                done: BytesDone) -> bool:
        """With the blob's lock held: download and verify it unless the cache has it; whether it downloaded."""
        blob = self.blob_path(digest)
        for leftover in self.incoming.glob(f"{blob.name}.*"):
            remove(leftover)
        if self.has(digest, size):
            done(size)
            return False
        remove(blob)
        self.make_room(size)
        incoming = self.incoming / f"{blob.name}.{secrets.token_hex(4)}"
        try:
            client.pull_blob(reference, digest, size, incoming, done)
            incoming.chmod(0o444)
            incoming.rename(blob)
        except BaseException:
            remove(incoming)
            raise
        return True

    def touch(self, model: Path) -> None:
        """Record that a model was just used, for least-recently-used eviction."""
        if model.parent == self.models:
            # The clock's own time, not the kernel's file time (a tick of a few ms): uses that close apart still order.
            now = time.time_ns()
            with contextlib.suppress(FileNotFoundError):  # evicted meanwhile: nothing to age
                os.utime(model / MARKER_FILE, ns=(now, now))

    def size(self) -> int:
        """Bytes the cache holds, each file counted once however many links it has."""
        seen: set[int] = set()
        total = 0
        for path in _files(self.root):
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue  # renamed or removed while the cache was walked (a record written, a blob moved in)
            if info.st_ino not in seen:
                seen.add(info.st_ino)
                total += info.st_size
        return total

    def make_room(self, incoming: int) -> None:
        """Evict until `incoming` more bytes fit: unused blobs first, then least recently used models."""
        with exclusive(self.locks / "evict.lock"):
            used = self.size()
            if used + incoming <= self.max_bytes:
                return
            used -= self._drop_unused_blobs(used + incoming - self.max_bytes)
            now = time.time()
            for model in sorted(self._models(), key=_last_used):
                if used + incoming <= self.max_bytes:
                    break
                if now - _last_used(model) < self.keep_recent_s:
                    continue
                retired = None
                with try_exclusive(self.models / f".{model.name}.lock") as free:
                    # Checked under the model's lock: a publisher records before it pulls or mounts (both under the
                    # lock). Renamed aside under it too, and removed after: a publish finds the whole model or none.
                    if free and model.name not in self.published_models():
                        retired = self.models / f".{model.name}.old-{secrets.token_hex(4)}"
                        model.rename(retired)
                if retired is not None:
                    remove(retired)
                used = self.size()
                used -= self._drop_unused_blobs(used + incoming - self.max_bytes)

    def room_for(self, incoming: int) -> bool:
        """Evict what may go to make room for `incoming` more bytes; whether they then fit under the bound.

        Blobs other pulls are still downloading are left out of the count: the incoming bytes may be those.
        """
        self.make_room(incoming)
        downloading = 0
        for path in self.incoming.iterdir():
            try:
                downloading += path.lstat().st_size
            except FileNotFoundError:
                pass
        return self.size() - downloading + incoming <= self.max_bytes

    def record_publication(self, key: str, manifest_digest: str, detail: dict[str, str]) -> None:
        """Record that the model of `manifest_digest` is (about to be) mounted somewhere; `key` names the mount."""
        record = self.publications / f"{key}.json"
        staging = self.publications / f".{key}.{secrets.token_hex(4)}"
        staging.write_text(json.dumps({**detail, "model": self.model_folder(manifest_digest).name}, sort_keys=True))
        staging.rename(record)

    def publication(self, key: str) -> dict[str, str] | None:
        """A publication's record, or None when there is none (or it is unreadable)."""
        try:
            record = json.loads((self.publications / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def publication_time(self, key: str) -> float:
        """When a publication's record was last written (now when there is none)."""
        try:
            return (self.publications / f"{key}.json").stat().st_mtime
        except FileNotFoundError:
            return time.time()

    def drop_publication(self, key: str) -> None:
        (self.publications / f"{key}.json").unlink(missing_ok=True)

    def publications_by_key(self) -> dict[str, dict[str, str]]:
        """Every publication record, by key."""
        found = {}
        for path in self.publications.glob("*.json"):
            record = self.publication(path.stem)
            if record is not None:
                found[path.stem] = record
        return found

    def published_models(self) -> set[str]:
        """The model folders (by name) some publication record names: eviction leaves them alone."""
        return {str(record.get("model")) for record in self.publications_by_key().values()}

    def sweep(self) -> list[Path]:
        """Remove what killed pulls left (staging folders, retired copies, partial blobs) when no live process
        holds the lock it was made under; the paths removed."""
        removed = []
        for path in self.models.iterdir():
            name = path.name.removeprefix(".")
            model = name.split(".partial-")[0].split(".old-")[0]
            if path.name.startswith(".") and model != name and not held_by_someone(self.models / f".{model}.lock"):
                remove(path)
                removed.append(path)
        for path in self.incoming.iterdir():
            if not held_by_someone(self.locks / f"{path.name.split('.')[0]}.lock"):
                remove(path)
                removed.append(path)
        for path in self.publications.glob(".*"):
            remove(path)
        return removed

    def _models(self) -> Iterator[Path]:
        return (path for path in self.models.iterdir() if path.is_dir() and not path.name.startswith("."))

    def _drop_unused_blobs(self, excess: int) -> int:
        """Remove blobs no model links to and no pull is placing, least recently used first, until `excess`
        bytes are freed (a model evicted, or a pod folder pulled with --cache removed, leaves its blobs
        unlinked); the bytes freed."""
        freed = 0
        unused = [(blob, info) for blob in list(self.blobs.iterdir())
                  if (info := blob.lstat()).st_nlink == 1]
        for blob, info in sorted(unused, key=lambda item: item[1].st_mtime):
            if freed >= excess:
                break
            with try_exclusive(self.locks / f"{blob.name}.lock") as free:
                if free:
                    blob.unlink(missing_ok=True)
                    freed += info.st_size
        return freed


def _last_used(model: Path) -> float:
    try:
        return (model / MARKER_FILE).stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _files(root: Path) -> Iterator[Path]:
    for folder, _, names in os.walk(root):
        for name in names:
            yield Path(folder) / name


def _link_or_copy(blob: Path, target: Path) -> None:
    """A hard link when the target is on the cache's filesystem and mount, else a copy."""
    try:
        os.link(blob, target)
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copyfile(blob, target)
