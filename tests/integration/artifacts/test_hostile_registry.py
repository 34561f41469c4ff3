"""Pulls and pushes against a registry that lies, stalls or redirects: each finding of issue #16 has a test here.

The fake registry (hostile_registry.py, aiohttp on 127.0.0.1) answers as a hostile or broken
registry would; every test states what the client must refuse and checks that nothing was left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from hostile_registry import (
    BEHAVIOUR_BOUND_S,
    FakeRegistry,
    bundle_layer,
    digest_of,
    file_layer,
    redirect_to,
    slow_body,
    tar_of,
)

from conftest import PASSWORD, USERNAME
from shipway.artifacts.auth import Credentials
from shipway.artifacts.errors import ArtifactError, AuthError
from shipway.artifacts.pull import pull
from shipway.artifacts.push import push
from shipway.artifacts.registry import RetryPolicy
from shipway.artifacts.transfer import TransferLimitError, TransferLimits

pytestmark = pytest.mark.integration

CREDENTIALS = Credentials(USERNAME, PASSWORD, source="test")
FAST_RETRY = RetryPolicy(attempts=2, first_delay_s=0.01, max_delay_s=0.01)
QUICK = TransferLimits(max_manifest_bytes=1 << 20, max_blob_bytes=1 << 30, deadline_s=3.0,
                       min_rate_bytes_s=4096.0, rate_window_s=1.0)
SRC = Path(__file__).resolve().parents[3] / "src"
# A test thread still running after this long means a transfer had no bound.
HANG_S = 15.0


def _pull(server: FakeRegistry, destination: Path, limits: TransferLimits = QUICK, tag: str = "1.0.0") -> object:
    return pull(server.ref(tag=tag), destination, plain_http=True, credentials=CREDENTIALS, retry=FAST_RETRY,
                limits=limits)


def _bounded(action) -> BaseException | None:
    """Run `action` in a thread; fail the test if it is still running after HANG_S; return what it raised."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            action()
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(HANG_S)
    assert not worker.is_alive(), f"the transfer was still running after {HANG_S} s: it has no deadline"
    assert time.monotonic() - started < HANG_S
    return outcome[0]


def _nothing_left(folder: Path, keep: set[str] = frozenset()) -> None:
    assert sorted(p.name for p in folder.iterdir() if p.name not in keep) == []


# --- finding 1: bundle members that are not regular files or folders ------------------------------


def _cve_2025_4517_bundle() -> tuple[bytes, list[str]]:
    """The CVE-2025-4517 pattern: a symlink chain longer than PATH_MAX, then a file written through it.

    tarfile's `data` filter resolves link targets with os.path.realpath, which gives up past PATH_MAX
    on Python before 3.11.13/3.12.11, so `escape/pwned` lands two folders above the destination.
    """
    component = "d" * 247
    steps = "abcdefghijklmnop"
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    path = ""
    for step in steps:
        folder = tarfile.TarInfo(os.path.join(path, component))
        folder.type = tarfile.DIRTYPE
        link = tarfile.TarInfo(os.path.join(path, step))
        link.type, link.linkname = tarfile.SYMTYPE, component
        members += [(folder, None), (link, None)]
        path = os.path.join(path, component)
    long_link = tarfile.TarInfo(os.path.join(*steps, "l" * 254))
    long_link.type, long_link.linkname = tarfile.SYMTYPE, "../" * len(steps)
    escape = tarfile.TarInfo("escape")
    escape.type, escape.linkname = tarfile.SYMTYPE, long_link.name + "/../" * 2
    members += [(long_link, None), (escape, None), (tarfile.TarInfo("escape/pwned"), b"owned\n")]
    names = sorted(info.name for info, _ in members)
    return tar_of(members), names


def test_a_symlink_chain_bundle_is_refused_and_writes_nothing_outside(hostile, tmp_path: Path) -> None:
    server, _ = hostile
    archive, names = _cve_2025_4517_bundle()
    server.add_model([bundle_layer(archive, names)])
    root = tmp_path / "a" / "b"
    root.mkdir(parents=True)
    with pytest.raises(ArtifactError, match="symbolic link"):
        _pull(server, root / "model")
    assert not list(tmp_path.rglob("pwned")), "the bundle wrote a file outside the destination"
    _nothing_left(root)


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "fifo", "chardev"])
def test_every_member_that_is_not_a_file_or_folder_is_refused(hostile, tmp_path: Path, kind: str) -> None:
    server, _ = hostile
    member = tarfile.TarInfo("weights.bin")
    member.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE,
                   "chardev": tarfile.CHRTYPE}[kind]
    member.linkname = "config.json" if kind in ("symlink", "hardlink") else ""
    archive = tar_of([(tarfile.TarInfo("config.json"), b"{}"), (member, None)])
    server.add_model([bundle_layer(archive, ["config.json", "weights.bin"])])
    with pytest.raises(ArtifactError, match="only regular files and folders"):
        _pull(server, tmp_path / "model")
    _nothing_left(tmp_path)


# --- finding 2: sizes, deadlines, rates, credentials ---------------------------------------------


def test_a_huge_manifest_is_refused_while_it_streams(hostile, tmp_path: Path) -> None:
    server, _ = hostile
    server.manifest_behaviour = slow_body(400 << 20, 1 << 20, 0, server)  # 400 MiB, chunked, no length
    error = _bounded(lambda: _pull(server, tmp_path / "model"))
    assert isinstance(error, TransferLimitError) and "larger than 1048576 bytes" in str(error)
    # The client stopped reading at the cap; socket buffers let the server get a little further, not 400 MiB.
    assert server.bytes_sent < 64 << 20
    _nothing_left(tmp_path)


def test_a_manifest_announcing_a_huge_length_is_refused_before_its_body(hostile, tmp_path: Path) -> None:
    server, _ = hostile
    server.manifest_behaviour = slow_body(2 << 20, 1 << 20, 0.5, server, content_length=400 << 20)
    error = _bounded(lambda: _pull(server, tmp_path / "model"))
    assert isinstance(error, TransferLimitError)
    assert server.bytes_sent <= 2 << 20


def test_a_declared_size_of_10_to_the_15_is_refused_before_any_download(hostile, tmp_path: Path) -> None:
    server, _ = hostile
    endless = "sha256:" + "e" * 64
    server.behaviours[endless] = slow_body(256 << 20, 1 << 20, 0, server)
    server.add_model([file_layer("weights.bin", b"", size=10**15, digest=endless)])
    error = _bounded(lambda: _pull(server, tmp_path / "model", limits=TransferLimits()))
    assert isinstance(error, TransferLimitError) and "--max-blob-size" in str(error)
    assert not [seen for seen in server.seen if endless in seen.path], "the blob was requested"
    assert server.bytes_sent == 0
    _nothing_left(tmp_path)


def test_a_declared_size_beyond_the_free_disk_is_refused_before_any_download(hostile, tmp_path: Path) -> None:
    server, _ = hostile
    endless = "sha256:" + "f" * 64
    server.behaviours[endless] = slow_body(256 << 20, 1 << 20, 0, server)
    server.add_model([file_layer("weights.bin", b"", size=1 << 50, digest=endless)])
    limits = TransferLimits(max_blob_bytes=1 << 60)
    error = _bounded(lambda: _pull(server, tmp_path / "model", limits=limits))
    assert isinstance(error, TransferLimitError) and "free" in str(error)
    assert server.bytes_sent == 0
    _nothing_left(tmp_path)


def test_a_one_byte_per_second_blob_is_abandoned_at_the_minimum_rate(hostile, tmp_path: Path) -> None:
    server, _ = hostile
    data = os.urandom(64 << 10)
    layer, _ = file_layer("weights.bin", data)
    server.behaviours[layer["digest"]] = slow_body(len(data), 1, 1.0, server, content_length=len(data))
    server.add_model([(layer, data)])
    started = time.monotonic()
    error = _bounded(lambda: _pull(server, tmp_path / "model"))
    assert isinstance(error, TransferLimitError) and "--min-rate" in str(error)
    assert time.monotonic() - started < 2 * QUICK.rate_window_s + 2
    _nothing_left(tmp_path)


def test_a_blob_that_keeps_coming_is_stopped_by_the_deadline(hostile, tmp_path: Path) -> None:
    server, _ = hostile
    size = 200 << 20
    digest = "sha256:" + "c" * 64
    # 64 KiB every 10 ms: far above the minimum rate, far below what 200 MiB in 3 s needs.
    server.behaviours[digest] = slow_body(size, 64 << 10, 0.01, server, content_length=size)
    server.add_model([file_layer("weights.bin", b"", size=size, digest=digest)])
    started = time.monotonic()
    error = _bounded(lambda: _pull(server, tmp_path / "model"))
    assert isinstance(error, TransferLimitError) and "deadline" in str(error)
    assert time.monotonic() - started < QUICK.deadline_s + 2
    _nothing_left(tmp_path)


def test_a_redirect_to_blob_storage_carries_no_credentials(hostile, tmp_path: Path) -> None:
    server, storage = hostile
    data = os.urandom(4096)
    layer, _ = file_layer("weights.bin", data)
    storage.blobs[layer["digest"]] = data
    server.behaviours[layer["digest"]] = redirect_to(f"{storage.url}/storage/{layer['digest']}")
    server.add_model([(layer, data)])
    _pull(server, tmp_path / "model")
    assert (tmp_path / "model" / "weights.bin").read_bytes() == data
    assert [seen.path for seen in storage.seen] == [f"/storage/{layer['digest']}"]
    assert all(seen.authorization is None for seen in storage.seen), storage.seen
    assert all(seen.authorization for seen in server.seen if seen.path != "/v2/")


def test_an_upload_location_on_another_host_gets_no_credentials(hostile, tmp_path: Path) -> None:
    server, storage = hostile
    server.upload_base = storage.url
    storage.uploads.update({f"u{i}": bytearray() for i in range(4)})
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(1024))
    push(model, server.ref(), plain_http=True, credentials=CREDENTIALS, retry=FAST_RETRY, limits=QUICK)
    assert {seen.method for seen in storage.seen} >= {"PUT"}
    assert all(seen.authorization is None for seen in storage.seen), storage.seen
    assert any(seen.authorization for seen in server.seen)


def test_a_foreign_host_asking_for_credentials_gets_none_and_the_push_fails(hostile, tmp_path: Path) -> None:
    server, storage = hostile
    storage.credentials = ("someone", "else")
    server.upload_base = storage.url
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w")
    with pytest.raises(AuthError, match="gets no credentials"):
        push(model, server.ref(), plain_http=True, credentials=CREDENTIALS, retry=FAST_RETRY, limits=QUICK)
    assert all(seen.authorization is None for seen in storage.seen)


def test_a_stalled_upload_is_abandoned_at_the_minimum_rate(hostile, tmp_path: Path) -> None:
    server, storage = hostile
    server.upload_base = storage.url

    async def stall(request):  # reads nothing, answers nothing, until the client gives up
        import asyncio

        await asyncio.sleep(10)
        raise ConnectionResetError

    storage.handle_upload = lambda request, upload: stall(request)
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(32 << 20))
    error = _bounded(lambda: push(model, server.ref(), plain_http=True, credentials=CREDENTIALS,
                                  retry=FAST_RETRY, limits=QUICK, chunk_bytes=32 << 20))
    assert isinstance(error, TransferLimitError), error
    assert digest_of(b"") not in server.blobs


# --- finding 3: debris of interrupted transfers ----------------------------------------------------


def _shipway(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "TMPDIR": str(tmp_path / "tmp"),
           "SHIPWAY_REGISTRY_USERNAME": USERNAME, "SHIPWAY_REGISTRY_PASSWORD": PASSWORD}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "shipway", "model", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for(condition, what: str, bound_s: float = 20.0) -> None:
    deadline = time.monotonic() + bound_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _debris(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def _slow_model(server: FakeRegistry) -> bytes:
    data = os.urandom(8 << 20)
    layer, _ = file_layer("weights.bin", data)
    server.behaviours[layer["digest"]] = slow_body(len(data), 64 << 10, 0.05, server, content_length=len(data))
    server.add_model([(layer, data)])
    return data


def _partial_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if ".partial-" in str(path) and path.is_file())


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
def test_a_pull_killed_midway_leaves_debris_only_until_the_next_run(hostile, tmp_path: Path,
                                                                       signal_name: str) -> None:
    """An init container killed mid-pull restarts into the same emptyDir: the restart must clean up first."""
    server, _ = hostile
    data = _slow_model(server)
    volume = tmp_path / "emptydir"
    volume.mkdir()
    first = _shipway(tmp_path, "pull", server.ref(), str(volume / "model"), "--plain-http")
    try:
        _wait_for(lambda: _partial_bytes(volume) > 256 << 10, "the first pull to write part of the blob")
        first.send_signal(getattr(signal, signal_name))
        first.wait(timeout=10)
    finally:
        first.kill()
    if signal_name == "SIGTERM":
        # Kubernetes stops a container with SIGTERM: the pull unwinds and removes its own debris.
        assert first.returncode == 130
        assert _debris(volume) == []
    else:
        assert any(".partial-" in name for name in _debris(volume)), _debris(volume)
    server.behaviours.clear()
    second = _shipway(tmp_path, "pull", server.ref(), str(volume / "model"), "--plain-http")
    output, _ = second.communicate(timeout=60)
    assert second.returncode == 0, output.decode()
    assert (volume / "model" / "weights.bin").read_bytes() == data
    assert _debris(volume) == [], "the next run left the killed run's debris"


@pytest.mark.slow
def test_a_push_killed_midway_leaves_its_scratch_only_until_the_next_run(hostile, tmp_path: Path) -> None:
    server, storage = hostile
    server.upload_base = storage.url

    async def stall(request):
        import asyncio

        await asyncio.sleep(BEHAVIOUR_BOUND_S)
        raise ConnectionResetError

    storage.handle_upload = lambda request, upload: stall(request)
    model = tmp_path / "model"
    model.mkdir()
    for index in range(32):
        (model / f"part-{index}.json").write_bytes(os.urandom(64 << 10))
    scratch = tmp_path / "tmp"
    first = _shipway(tmp_path, "push", str(model), server.ref(), "--plain-http")
    try:
        _wait_for(lambda: any(seen.method == "PATCH" for seen in storage.seen), "the first push to upload")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        first.kill()
    left = list(scratch.glob("shipway-push-*"))
    assert left and sum(p.stat().st_size for p in left[0].rglob("*")) > 1 << 20
    server.upload_base = None
    second = _shipway(tmp_path, "push", str(model), server.ref(), "--plain-http")
    output, _ = second.communicate(timeout=60)
    assert second.returncode == 0, output.decode()
    assert list(scratch.iterdir()) == [], "the next push left the killed push's scratch folder"


def test_a_live_push_scratch_folder_is_not_swept(tmp_path: Path) -> None:
    from shipway.artifacts.push import scratch_folder, sweep_scratch

    with scratch_folder(tmp_path) as live:
        (live / "bundle.tar").write_bytes(b"x")
        assert sweep_scratch(tmp_path) == []
        assert live.is_dir()
    assert list(tmp_path.iterdir()) == []
