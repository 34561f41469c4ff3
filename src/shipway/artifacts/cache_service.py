"""The node cache service (`shipway model cache-serve`): one per node, serving verified blobs to that node's model pods.

Model pods may not mount host paths (their namespaces enforce Pod Security `restricted`), so the node's
cache folder belongs to this service, which runs in its own platform namespace. A pod's init container
asks it for blobs over HTTP, in the registry's own protocol, `GET /v2/<registry>/<repository>/blobs/<digest>`,
forwarding the pull identity it would have used on the registry.

Isolation: the cache serves a blob only to a requester the registry itself would serve it to. Before every
answer it asks the registry, `HEAD /v2/<repository>/blobs/<digest>` with the requester's own credentials,
and answers what the registry answered (401, 403, 404) unless that was 200. It talks to one registry only,
the one it was started for; a request naming another gets 404. On a miss it downloads the blob, once per
node under the cache's per-digest lock, with the requester's credentials, and serves it only after its bytes
hashed to its digest (NodeCache). It keeps no credentials.

The CSI node plugin (shipway.artifacts.csi, `shipway model csi-node`) serves the same cache without this
copy: Pod Security `restricted` allows `csi` volumes, so a pod mounts the node's verified model folder
read-only instead of receiving every byte into its own emptyDir (a warm start is a credential check and a
bind mount). This service and `model pull --node-cache` stay for pods that do not use that volume.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

from aiohttp import web

from shipway.artifacts.auth import Credentials
from shipway.artifacts.cache import NodeCache
from shipway.artifacts.errors import ArtifactError, AuthError, RegistryUnavailableError
from shipway.artifacts.layout import NODE_CACHE_PORT, Reference, is_digest
from shipway.artifacts.registry import RegistryClient, RetryPolicy
from shipway.artifacts.transfer import TransferLimits

PORT = NODE_CACHE_PORT
REALM = 'Basic realm="shipway-node-cache"'
READ_BYTES = 4 * 2**20
# Blocking work (registry calls, lock waits, disk reads) runs on these threads; waiters on one blob's lock
# hold a thread each, so there are enough for every pod a node runs.
WORKERS = 64
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")


@dataclass(frozen=True)
class CacheServiceConfig:
    """Where the cache lives, how large it may grow, and the one registry it serves blobs from."""

    cache: NodeCache
    registry: str
    plain_http: bool = False
    limits: TransferLimits = field(default_factory=TransferLimits)
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass
class CacheStats:
    """What the service did since it started: blobs downloaded from the registry, served, and refused."""

    downloads: int = 0
    served: int = 0
    refused: int = 0
    served_bytes: int = 0


class CacheService:
    """The aiohttp application and the state behind it."""

    def __init__(self, config: CacheServiceConfig) -> None:
        self.config = config
        self.stats = CacheStats()
        self.executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="node-cache")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/stats", self.stats_view)
        app.router.add_get("/v2/", self.version_check)
        app.router.add_route("GET", "/v2/{name:.+}/blobs/{digest}", self.blob)
        app.router.add_route("HEAD", "/v2/{name:.+}/blobs/{digest}", self.blob)
        return app

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def stats_view(self, _request: web.Request) -> web.Response:
        return web.json_response(vars(self.stats))

    async def version_check(self, request: web.Request) -> web.Response:
        """The registry protocol's probe: ask for Basic credentials, which the pull then forwards."""
        if _credentials(request) is None:
            return _error(401, "UNAUTHORIZED", "forward the registry's credentials")
        return web.json_response({})

    async def blob(self, request: web.Request) -> web.StreamResponse:
        name, digest = request.match_info["name"], request.match_info["digest"]
        registry, _, repository = name.partition("/")
        if registry != self.config.registry or not _REPOSITORY.match(repository):
            return _error(404, "NAME_UNKNOWN", f"this cache serves {self.config.registry} only")
        if not is_digest(digest):
            return _error(400, "DIGEST_INVALID", "expected sha256: and 64 hex digits")
        credentials = _credentials(request)
        if credentials is None:
            self.stats.refused += 1
            return _error(401, "UNAUTHORIZED", "forward the registry's credentials")
        reference = Reference(self.config.registry, repository, None, digest)
        loop = asyncio.get_running_loop()
        try:
            client, size = await loop.run_in_executor(self.executor, self._authorize, credentials, reference)
        except AuthError:
            self.stats.refused += 1
            return _error(403, "DENIED", "the registry refuses this blob to these credentials")
        except (RegistryUnavailableError, ArtifactError) as error:
            return _error(502, "UNAVAILABLE", str(error))
        if size is None:
            self.stats.refused += 1
            return _error(404, "BLOB_UNKNOWN", "the registry has no such blob in this repository")
        headers = {"Docker-Content-Digest": digest, "Content-Type": "application/octet-stream"}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(size)})
        try:
            handle, downloaded = await loop.run_in_executor(
                self.executor, self.config.cache.open_blob, client, reference, digest, size, lambda _: None)
        except ArtifactError as error:
            return _error(502, "UNAVAILABLE", str(error))
        self.stats.downloads += downloaded
        return await self._send(request, handle, size, headers)

    def _authorize(self, credentials: Credentials, reference: Reference) -> tuple[RegistryClient, int | None]:
        """Ask the registry, as the requester, whether it would serve this blob; its size if so."""
        client = RegistryClient(self.config.registry, plain_http=self.config.plain_http, credentials=credentials,
                                retry=self.config.retry, limits=self.config.limits)
        url = f"{client.base_url}/v2/{reference.repository}/blobs/{reference.digest}"
        response = client.do_request(url, "HEAD")
        response.close()
        length = response.headers.get("Content-Length", "")
        if response.status_code != 200 or not length.isdigit():
            return client, None
        size = int(length)
        client.check_blob_size(reference, str(reference.digest), size)
        return client, size

    async def _send(self, request: web.Request, handle: BinaryIO, size: int,
                    headers: dict[str, str]) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        response = web.StreamResponse(headers=headers)
        response.content_length = size
        with handle:
            await response.prepare(request)
            transport = request.transport
            if transport is None:
                raise ConnectionResetError("the pod went away")
            try:
                # The kernel copies the file to the socket, as aiohttp's own FileResponse does.
                await loop.sendfile(transport, handle, 0, size)
            except NotImplementedError:
                while block := await loop.run_in_executor(self.executor, handle.read, READ_BYTES):
                    await response.write(block)
        await response.write_eof()
        self.stats.served += 1
        self.stats.served_bytes += size
        return response


def _credentials(request: web.Request) -> Credentials | None:
    """The requester's Basic credentials, or None when it sent none (or something else)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, colon, password = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not (colon and username and password):
        return None
    return Credentials(username, password, source="the requester's forwarded credentials")


def _error(status: int, code: str, message: str) -> web.Response:
    headers = {"WWW-Authenticate": REALM} if status == 401 else {}
    return web.json_response({"errors": [{"code": code, "message": message}]}, status=status, headers=headers)


async def serve(config: CacheServiceConfig, host: str, port: int) -> None:
    """Run until cancelled (Ctrl-C or SIGTERM in the CLI)."""
    service = CacheService(config)
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        service.executor.shutdown(wait=False, cancel_futures=True)
