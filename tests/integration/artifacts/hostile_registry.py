"""A registry that lies, stalls and redirects, on 127.0.0.1 (aiohttp), for the pull and push hardening tests.

It speaks just enough of the OCI distribution API for `shipway model push|pull`: the /v2/ probe,
manifests and blobs by digest or tag, and chunked uploads. Each blob may instead be answered by a
behaviour (a coroutine), and every request is recorded with its Authorization header, so that a
test can see who received credentials.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import tarfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from shipway.artifacts.layout import (
    ANNOTATION_BUNDLE_FILES,
    ANNOTATION_TITLE,
    ARTIFACT_TYPE,
    BUNDLE_MEDIA_TYPE,
    CONFIG_MEDIA_TYPE,
    FILE_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
)
from net_support import free_port

Behaviour = Callable[[web.Request], Awaitable[web.StreamResponse]]
# No behaviour may keep a connection open longer than this, so a test that fails cannot hang.
BEHAVIOUR_BOUND_S = 20.0


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    authorization: str | None


@dataclass
class FakeRegistry:
    """One aiohttp server on a free 127.0.0.1 port; `credentials` set means Basic auth is required."""

    credentials: tuple[str, str] | None = None
    manifests: dict[str, bytes] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    manifest_behaviour: Behaviour | None = None
    upload_base: str | None = None
    seen: list[Seen] = field(default_factory=list)
    uploads: dict[str, bytearray] = field(default_factory=dict)
    port: int = 0
    bytes_sent: int = 0
    # Repositories the credentials may not read: 403, as a registry with per-repository access control (zot's
    # accessControl) answers an identity it knows but does not let in.
    forbidden: set[str] = field(default_factory=set)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def ref(self, repository: str = "team/model", tag: str = "1.0.0") -> str:
        return f"oci://{self.host}/{repository}:{tag}"

    def add_model(self, layers: list[tuple[dict[str, Any], bytes]], tag: str = "1.0.0",
                  config: bytes = b"{}") -> bytes:
        """Store a Shipway manifest over the given (descriptor, blob) pairs; returns the manifest bytes."""
        self.blobs[digest_of(config)] = config
        for descriptor, blob in layers:
            self.blobs.setdefault(descriptor["digest"], blob)
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE, "artifactType": ARTIFACT_TYPE,
                    "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": digest_of(config), "size": len(config)},
                    "layers": [descriptor for descriptor, _ in layers]}
        raw = json.dumps(manifest).encode()
        self.manifests[tag] = raw
        self.manifests[digest_of(raw)] = raw
        return raw

    def authorised(self, request: web.Request) -> bool:
        if self.credentials is None:
            return True
        token = base64.b64encode(":".join(self.credentials).encode()).decode()
        return request.headers.get("Authorization") == f"Basic {token}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.method, request.path_qs, request.headers.get("Authorization")))
        if not self.authorised(request):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="fake"'})
        path = request.path
        if path == "/v2/":
            return web.json_response({})
        if any(path.startswith(f"/v2/{repository}/") for repository in self.forbidden):
            return web.Response(status=403)
        if "/manifests/" in path:
            reference = path.rsplit("/manifests/", 1)[1]
            if request.method == "PUT":
                raw = await request.read()
                self.manifests[reference] = raw
                return web.Response(status=201, headers={"Docker-Content-Digest": digest_of(raw)})
            if self.manifest_behaviour is not None and request.method == "GET":
                return await self.manifest_behaviour(request)
            raw = self.manifests.get(reference)
            if raw is None:
                return web.Response(status=404)
            headers = {"Content-Type": MANIFEST_MEDIA_TYPE, "Docker-Content-Digest": digest_of(raw)}
            return web.Response(body=raw if request.method == "GET" else None, headers=headers)
        if "/blobs/uploads/" in path and request.method == "POST":
            upload = f"u{len(self.uploads)}"
            self.uploads[upload] = bytearray()
            base = self.upload_base or self.url
            return web.Response(status=202, headers={"Location": f"{base}/upload/{upload}"})
        if path.startswith("/upload/"):
            return await self.handle_upload(request, path.removeprefix("/upload/"))
        if "/blobs/" in path or path.startswith("/storage/"):
            digest = path.rsplit("/", 1)[1]
            if digest in self.behaviours and request.method == "GET":
                return await self.behaviours[digest](request)
            blob = self.blobs.get(digest)
            if blob is None:
                return web.Response(status=404)
            return web.Response(body=blob if request.method == "GET" else None,
                                headers={"Content-Length": str(len(blob))})
        return web.Response(status=404)

    async def handle_upload(self, request: web.Request, upload: str) -> web.StreamResponse:
        if upload not in self.uploads:
            return web.Response(status=404)
        if request.method == "DELETE":
            del self.uploads[upload]
            return web.Response(status=204)
        self.uploads[upload] += await request.read()
        if request.method == "PATCH":
            return web.Response(status=202, headers={"Location": f"{self.url}/upload/{upload}"})
        data = bytes(self.uploads.pop(upload))
        self.blobs[request.query["digest"]] = data
        return web.Response(status=201)


def slow_body(total: int, block: int, interval_s: float, server: FakeRegistry,
              content_length: int | None = None) -> Behaviour:
    """A 200 whose body arrives `block` bytes every `interval_s` until `total` or the bound."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        if content_length is not None:
            response.content_length = content_length
        await response.prepare(request)
        started = time.monotonic()
        sent = 0
        try:
            while sent < total and time.monotonic() - started < BEHAVIOUR_BOUND_S:
                piece = b"\0" * min(block, total - sent)
                await response.write(piece)
                sent += len(piece)
                server.bytes_sent += len(piece)
                if interval_s:
                    await asyncio.sleep(interval_s)
        except (ConnectionResetError, RuntimeError):
            pass
        return response

    return behaviour


def held_body(data: bytes, release: threading.Event, server: FakeRegistry) -> Behaviour:
    """A 200 with the whole `data` as Content-Length that sends its first half, then holds the rest until
    `release` is set (or the bound): a pull that stays in flight exactly as long as a test needs."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_length = len(data)
        await response.prepare(request)
        half = len(data) // 2
        started = time.monotonic()
        try:
            await response.write(data[:half])
            server.bytes_sent += half
            while not release.is_set() and time.monotonic() - started < BEHAVIOUR_BOUND_S:
                await asyncio.sleep(0.02)
            await response.write(data[half:])
            server.bytes_sent += len(data) - half
        except (ConnectionResetError, RuntimeError):
            pass
        return response

    return behaviour


def after(release: threading.Event, then: Behaviour) -> Behaviour:
    """`then`, once `release` is set (or the bound): a registry that does not answer until the test lets it."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        while not release.is_set() and time.monotonic() - started < BEHAVIOUR_BOUND_S:
            await asyncio.sleep(0.02)
        return await then(request)

    return behaviour


def redirect_to(location: str) -> Behaviour:
    async def behaviour(request: web.Request) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": location})

    return behaviour


def tar_of(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                archive.addfile(info)
    return buffer.getvalue()


def bundle_layer(archive: bytes, names: list[str]) -> tuple[dict[str, Any], bytes]:
    return ({"mediaType": BUNDLE_MEDIA_TYPE, "digest": digest_of(archive), "size": len(archive),
             "annotations": {ANNOTATION_TITLE: "small-files.tar", ANNOTATION_BUNDLE_FILES: json.dumps(names)}},
            archive)


def file_layer(title: str, data: bytes, size: int | None = None, digest: str | None = None
               ) -> tuple[dict[str, Any], bytes]:
    return ({"mediaType": FILE_MEDIA_TYPE, "digest": digest or digest_of(data),
             "size": len(data) if size is None else size, "annotations": {ANNOTATION_TITLE: title}}, data)


def serve(*servers: FakeRegistry) -> Iterator[None]:
    """Run the servers on one event loop in a thread until the generator is closed."""
    loop = asyncio.new_event_loop()
    runners: list[web.AppRunner] = []
    ready = threading.Event()

    async def start() -> None:
        for server in servers:
            app = web.Application(client_max_size=1 << 30)
            app.router.add_route("*", "/{tail:.*}", server.handle)
            runner = web.AppRunner(app, handler_cancellation=True)
            await runner.setup()
            server.port = free_port()
            await web.TCPSite(runner, "127.0.0.1", server.port).start()
            runners.append(runner)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the fake registry did not start within 10 s")
    try:
        yield
    finally:
        async def stop() -> None:
            for runner in runners:
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=BEHAVIOUR_BOUND_S + 5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
