"""The node's model cache: verified blobs by digest, one download per node, bounded by eviction."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shipway.artifacts.cache import NodeCache
from shipway.artifacts.errors import DigestMismatchError
from shipway.artifacts.layout import MARKER_FILE


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


class _Client:
    """Streams `blobs` as RegistryClient.pull_blob does: verify while writing, delete on mismatch."""

    def __init__(self, blobs: dict[str, bytes], delay_s: float = 0.0, corrupt: bool = False) -> None:
        self.blobs, self.delay_s, self.corrupt = blobs, delay_s, corrupt
        self.downloads: list[str] = []
        self.lock = threading.Lock()

    def pull_blob(self, _ref: Any, digest: str, size: int, target: Path, done: Any) -> None:
        with self.lock:
            self.downloads.append(digest)
        time.sleep(self.delay_s)
        data = b"tampered" if self.corrupt else self.blobs[digest]
        target.write_bytes(data)
        if _digest(data) != digest or len(data) != size:
            target.unlink()
            raise DigestMismatchError(f"blob {digest} is corrupt")
        done(size)


def _fetch(cache: NodeCache, client: _Client, data: bytes, target: Path) -> bool:
    return cache.fetch(client, None, _digest(data), len(data), target, lambda _: None)  # type: ignore[arg-type]


def test_a_blob_on_the_node_is_linked_not_downloaded(tmp_path: Path) -> None:
    data = os.urandom(4096)
    cache, client = NodeCache(tmp_path / "cache", 1 << 30), _Client({_digest(data): data})
    assert _fetch(cache, client, data, tmp_path / "first") is True
    assert _fetch(cache, client, data, tmp_path / "second") is False
    assert client.downloads == [_digest(data)]
    assert (tmp_path / "second").read_bytes() == data
    # One copy on disk, read-only: the pods' files are links to the verified blob.
    assert (tmp_path / "second").stat().st_ino == cache.blob_path(_digest(data)).stat().st_ino
    assert cache.blob_path(_digest(data)).stat().st_mode & 0o222 == 0


def test_concurrent_pods_on_one_node_download_once(tmp_path: Path) -> None:
    data = os.urandom(64 << 10)
    client = _Client({_digest(data): data}, delay_s=0.3)
    results: list[bool] = []

    def pod(index: int) -> None:
        cache = NodeCache(tmp_path / "cache", 1 << 30)
        results.append(_fetch(cache, client, data, tmp_path / f"pod-{index}"))

    pods = [threading.Thread(target=pod, args=(index,)) for index in range(4)]
    for thread in pods:
        thread.start()
    for thread in pods:
        thread.join(10)
    assert client.downloads == [_digest(data)]
    assert sorted(results) == [False, False, False, True]
    assert all((tmp_path / f"pod-{index}").read_bytes() == data for index in range(4))


def test_the_cache_never_holds_or_serves_an_unverified_blob(tmp_path: Path) -> None:
    data = os.urandom(4096)
    cache = NodeCache(tmp_path / "cache", 1 << 30)
    with pytest.raises(DigestMismatchError):
        _fetch(cache, _Client({}, corrupt=True), data, tmp_path / "pod")
    assert list(cache.blobs.iterdir()) == [] and list(cache.incoming.iterdir()) == []
    assert not (tmp_path / "pod").exists()
    # A blob file of the wrong size (a damaged disk, a half-written copy) is fetched again, not served.
    cache.blob_path(_digest(data)).write_bytes(data[:100])
    client = _Client({_digest(data): data})
    assert _fetch(cache, client, data, tmp_path / "pod") is True
    assert (tmp_path / "pod").read_bytes() == data


def test_what_a_killed_download_left_is_removed_by_the_next(tmp_path: Path) -> None:
    data = os.urandom(4096)
    cache = NodeCache(tmp_path / "cache", 1 << 30)
    leftover = cache.incoming / f"{cache.blob_path(_digest(data)).name}.dead0001"
    leftover.write_bytes(b"x" * 1000)
    _fetch(cache, _Client({_digest(data): data}), data, tmp_path / "pod")
    assert list(cache.incoming.iterdir()) == []


def _model(cache: NodeCache, client: _Client, data: bytes, name: str, age_s: float) -> Path:
    folder = cache.models / name
    folder.mkdir()
    _fetch(cache, client, data, folder / "weights.bin")
    (folder / MARKER_FILE).write_text("{}")
    used = time.time() - age_s
    os.utime(folder / MARKER_FILE, (used, used))
    return folder


def test_eviction_keeps_the_cache_under_its_bound_least_recently_used_first(tmp_path: Path) -> None:
    blobs = [os.urandom(100_000) for _ in range(4)]
    client = _Client({_digest(blob): blob for blob in blobs})
    cache = NodeCache(tmp_path / "cache", max_bytes=330_000, keep_recent_s=60)
    oldest = _model(cache, client, blobs[0], "sha256-a", age_s=3000)
    older = _model(cache, client, blobs[1], "sha256-b", age_s=2000)
    recent = _model(cache, client, blobs[2], "sha256-c", age_s=10)
    # A fourth model needs room: the least recently used goes, the recently used ones stay.
    _fetch(cache, client, blobs[3], tmp_path / "pod")
    assert not oldest.exists() and older.exists() and recent.exists()
    assert not cache.blob_path(_digest(blobs[0])).exists()
    assert cache.size() <= 330_000


def test_eviction_renames_a_model_aside_under_its_lock_before_removing_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that takes no lock (the plugin's size check reads the marker) finds a model whole or not at all: what
    eviction removes file by file is already renamed out of `models/<name>`, with the lock released."""
    import shipway.artifacts.cache as cache_module
    from shipway.artifacts.locking import held_by_someone

    blobs = [os.urandom(100_000) for _ in range(2)]
    client = _Client({_digest(blob): blob for blob in blobs})
    cache = NodeCache(tmp_path / "cache", max_bytes=150_000, keep_recent_s=0)
    model = _model(cache, client, blobs[0], "sha256-a", age_s=100)
    removed: list[tuple[str, bool, bool]] = []
    real_remove = cache_module.remove

    def remove(path: Path) -> None:
        if path.is_dir():
            removed.append((path.name, model.exists(), held_by_someone(cache.models / ".sha256-a.lock")))
        real_remove(path)

    monkeypatch.setattr(cache_module, "remove", remove)
    _fetch(cache, client, blobs[1], tmp_path / "pod")
    [(name, still_there, locked)] = removed
    assert name.startswith(".sha256-a.old-") and not still_there and not locked
    assert not [path for path in cache.models.iterdir() if path.name.startswith(".sha256-a.old-")]


def test_a_model_a_pull_is_using_is_not_evicted(tmp_path: Path) -> None:
    from shipway.artifacts.locking import exclusive

    blobs = [os.urandom(100_000) for _ in range(3)]
    client = _Client({_digest(blob): blob for blob in blobs})
    cache = NodeCache(tmp_path / "cache", max_bytes=250_000, keep_recent_s=0)
    busy = _model(cache, client, blobs[0], "sha256-busy", age_s=5000)
    idle = _model(cache, client, blobs[1], "sha256-idle", age_s=100)
    with exclusive(cache.models / ".sha256-busy.lock"):
        _fetch(cache, client, blobs[2], tmp_path / "pod")
    assert busy.exists() and not idle.exists()


def test_blobs_no_folder_links_any_more_are_evicted_least_recently_used_first(tmp_path: Path) -> None:
    """A pod folder pulled with --cache links its blobs; once it is gone they are unused: eviction among them
    is by last use, and only as many go as the incoming blob needs."""
    blobs = [os.urandom(100 << 10) for _ in range(3)]
    cache = NodeCache(tmp_path / "cache", 350 << 10)
    client = _Client({_digest(data): data for data in blobs})
    for index, (age, data) in enumerate(zip((300, 100, 200), blobs)):
        pod = tmp_path / f"pod-{index}"
        assert _fetch(cache, client, data, pod) is True
        pod.unlink()
        os.utime(cache.blob_path(_digest(data)), (time.time() - age,) * 2)
    incoming = os.urandom(100 << 10)
    client.blobs[_digest(incoming)] = incoming
    assert _fetch(cache, client, incoming, tmp_path / "pod-new") is True
    assert not cache.has(_digest(blobs[0]), len(blobs[0]))
    assert cache.has(_digest(blobs[1]), len(blobs[1])) and cache.has(_digest(blobs[2]), len(blobs[2]))
    assert cache.size() <= cache.max_bytes


def test_a_published_model_is_never_evicted_and_an_unpublished_one_is(tmp_path: Path) -> None:
    """The CSI plugin records a publication before it pulls; eviction checks the records under the model's lock."""
    blobs = [os.urandom(100_000) for _ in range(3)]
    client = _Client({_digest(blob): blob for blob in blobs})
    cache = NodeCache(tmp_path / "cache", max_bytes=250_000, keep_recent_s=0)
    mounted = _model(cache, client, blobs[0], "sha256-" + "a" * 64, age_s=5000)
    idle = _model(cache, client, blobs[1], "sha256-" + "b" * 64, age_s=100)
    cache.record_publication("pod-1", "sha256:" + "a" * 64, {"target_path": "/var/lib/kubelet/pods/1/x"})
    assert cache.published_models() == {mounted.name}
    _fetch(cache, client, blobs[2], tmp_path / "pod")
    assert mounted.exists() and not idle.exists()
    # Unpublished, it is the least recently used model and goes next.
    cache.drop_publication("pod-1")
    more = os.urandom(100_000)
    client.blobs[_digest(more)] = more
    _fetch(cache, client, more, tmp_path / "pod-2")
    assert not mounted.exists()


def test_the_sweep_removes_what_dead_pulls_left_and_spares_live_ones(tmp_path: Path) -> None:
    from shipway.artifacts.locking import exclusive

    cache = NodeCache(tmp_path / "cache", 1 << 30)
    dead_staging = cache.models / ".sha256-dead.partial-0001"
    live_staging = cache.models / ".sha256-live.partial-0002"
    dead_blob, live_blob = cache.incoming / ("d" * 64 + ".0001"), cache.incoming / ("e" * 64 + ".0002")
    for folder in (dead_staging, live_staging):
        folder.mkdir()
        (folder / "weights.bin").write_bytes(b"x" * 1000)
    for blob in (dead_blob, live_blob):
        blob.write_bytes(b"x" * 1000)
    model = cache.models / "sha256-done"
    model.mkdir()
    with exclusive(cache.models / ".sha256-live.lock"), exclusive(cache.locks / f"{'e' * 64}.lock"):
        removed = cache.sweep()
    assert sorted(removed) == sorted([dead_staging, dead_blob])
    assert live_staging.exists() and live_blob.exists() and model.exists()


def test_the_size_skips_a_file_removed_while_the_cache_is_walked(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Publishes write and drop records and blobs while another counts the cache: a file gone between the walk
    listing it and its lstat is not there, not an error (concurrent publishes had got INTERNAL from it)."""
    import shipway.artifacts.cache as cache_module

    cache = NodeCache(tmp_path / "cache", 2**20)
    (cache.models / "kept").write_bytes(b"x" * 10)
    vanished = cache.models / "vanished"
    real_files = cache_module._files

    def walk_then_remove(root: Path):
        listed = list(real_files(root)) + [vanished]
        yield from listed

    monkeypatch.setattr(cache_module, "_files", walk_then_remove)
    assert cache.size() == 10
