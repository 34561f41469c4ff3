"""One OCI registry, spoken to through oras-py, plus what oras lacks for multi-gigabyte blobs.

oras-py's `Registry` supplies the HTTP session and the auth flows (basic, bearer
tokens, docker config files and credential helpers). Added here: bounded
retries with exponential backoff (oras sleeps 2 + 3**n seconds, over two
minutes in all), timeouts, pre-emptive basic auth (otherwise every chunk would
be sent twice, the first time only to collect a 401), chunked uploads that
report progress and restart cleanly after a failure, and downloads that hash
while they stream. A registry is not trusted: manifests and blobs are capped
while they stream, every transfer runs under a deadline and a minimum rate
(shipway.artifacts.transfer), and credentials go only to the registry's own
host, never to an upload Location or a redirect elsewhere.
"""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urljoin, urlsplit
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any, TypeVar

import oras.auth
import oras.container
import oras.provider
import requests
from requests.exceptions import ChunkedEncodingError, SSLError, Timeout
from requests.exceptions import ConnectionError as RequestsConnectionError

from shipway.artifacts.auth import Credentials
from shipway.artifacts.digest import format_digest
from shipway.artifacts.errors import (
    ArtifactError,
    AuthError,
    DigestMismatchError,
    RegistryUnavailableError,
)
from shipway.artifacts.layout import MANIFEST_MEDIA_TYPE, PASSWORD_ENV, USERNAME_ENV, Reference
from shipway.artifacts.transfer import (
    GuardedAdapter,
    MeteredBody,
    TransferLimitError,
    TransferLimits,
    guarded,
)
# RetryPolicy and TRANSIENT_STATUS live in shipway.retry (the retraining trigger uses them too); named here as before.
from shipway.retry import TRANSIENT_STATUS, RetryPolicy  # noqa: F401

# Bigger chunks mean fewer round trips; 32 MiB keeps peak memory far below the
# 300 MiB budget while reaching the registry's disk speed here.
DEFAULT_CHUNK_BYTES = 32 * 1024 * 1024
READ_BYTES = 4 * 1024 * 1024
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5

# Called with the bytes done so far for one blob.
BytesDone = Callable[[int], None]
T = TypeVar("T")

_oras_request = oras.provider.Registry.do_request.__wrapped__  # type: ignore[attr-defined]


class TransientError(Exception):
    """A failure worth retrying: connection lost, timeout, or a 5xx/429 answer."""


class _TimeoutSession(requests.Session):
    """A session that never waits for ever on a dead registry and follows no redirect by itself.

    Redirects are followed by RegistryClient, which decides per hop whether credentials may go along.
    """

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.default_timeout = timeout
        adapter = GuardedAdapter()
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.default_timeout)
        kwargs.setdefault("allow_redirects", False)
        return super().request(*args, **kwargs)


@dataclass
class _Upload:
    """Where a chunked upload session stands."""

    url: str
    offset: int = 0


class RegistryClient(oras.provider.Registry):
    """A registry host and its credentials, with streamed, verified blob transfer."""

    def __init__(
        self,
        host: str,
        plain_http: bool = False,
        credentials: Credentials | None = None,
        retry: RetryPolicy | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        timeout: tuple[float, float] = (10.0, 300.0),
        limits: TransferLimits | None = None,
    ) -> None:
        self.host = host
        self.credentials = credentials or Credentials()
        self.retry = retry or RetryPolicy()
        self.chunk_bytes = chunk_bytes
        self.timeout = timeout
        self.limits = limits or TransferLimits()
        self.base_url = f"{'http' if plain_http else 'https'}://{host}"
        session = _TimeoutSession(timeout)
        # As oras does: some registries set cookies and then expect CSRF tokens.
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self._bare_session = session
        challenge = self._with_retries(self._probe, f"GET {self.base_url}/v2/")
        # distribution with htpasswd answers a Basic challenge, which oras's token backend cannot meet.
        backend = "basic" if challenge.lower().startswith("basic") else "token"
        super().__init__(hostname=host, insecure=plain_http, auth_backend=backend)
        self.session = session
        self.auth.session = session
        if self.credentials.username and self.credentials.password:
            self.auth.set_basic_auth(self.credentials.username, self.credentials.password)
        else:
            configs = [str(self.credentials.docker_config)] if self.credentials.docker_config else None
            self.auth.load_configs(oras.container.Container("probe", registry=host), configs=configs)
        has_secret = bool(getattr(self.auth, "_basic_auth", None))
        if backend == "basic" and not has_secret:
            raise AuthError(
                f"{host} asks for credentials and none were found: pass --username and --password, "
                f"set {USERNAME_ENV} and {PASSWORD_ENV}, or log in with a docker config."
            )
        self._basic_header: dict[str, str] = self.auth.get_auth_header() if backend == "basic" else {}

    # --- requests -------------------------------------------------------

    def _probe(self) -> str:
        try:
            with guarded(self.limits, f"GET {self.base_url}/v2/", measure_rate=False):
                response = self._bare_session.get(f"{self.base_url}/v2/")
                response.close()
        except TransferLimitError:
            raise
        except SSLError as error:
            raise ArtifactError(
                f"TLS to {self.host} failed ({error}); for a local registry that speaks plain HTTP pass --plain-http."
            ) from None
        except (RequestsConnectionError, Timeout) as error:
            raise TransientError(type(error).__name__) from None
        if response.status_code in TRANSIENT_STATUS:
            raise TransientError(f"{response.status_code} {response.reason}")
        return response.headers.get("Www-Authenticate", "")

    def _with_retries(self, action: Callable[[], T], what: str) -> T:
        last: TransientError | None = None
        for attempt in range(self.retry.attempts):
            try:
                return action()
            except TransientError as error:
                last = error
                if attempt + 1 < self.retry.attempts:
                    time.sleep(self.retry.delay_s(attempt))
        raise RegistryUnavailableError(
            f"{what} failed {self.retry.attempts} times ({last}). Check that {self.host} is up, then rerun."
        )

    def is_own(self, url: str) -> bool:
        """Whether a URL is on the registry's own scheme, host and port: the only place credentials go."""
        own, other = urlsplit(self.base_url), urlsplit(url)
        return (other.scheme, other.netloc) == (own.scheme, own.netloc)

    def _send(self, url: str, method: str, data: Any, headers: dict[str, str], json: dict[str, Any] | None,
              stream: bool) -> requests.Response:
        """One request: authenticated on the registry's host, bare anywhere else."""
        if not self.is_own(url):
            return self.session.request(method, url, data=data, json=json, headers=headers, stream=stream)
        response = _oras_request(self, url, method, data, {**headers, **self._basic_header}, json, stream)
        if response.status_code == 401 and isinstance(self.auth, oras.auth.TokenAuth) and self.auth.token:
            # oras keeps a token whose scope may be pull-only; a push needs a new one.
            self.auth.token = None
            response = _oras_request(self, url, method, data, {**headers, **self._basic_header}, json, stream)
        return response

    def _request_once(
        self,
        url: str,
        method: str = "GET",
        data: bytes | MeteredBody | None = None,
        headers: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        headers = dict(headers or {})
        with guarded(self.limits, f"{method} {url.split('?')[0]}", measure_rate=False) as clock:
            try:
                response = self._send(url, method, data, headers, json, stream)
                for _ in range(MAX_REDIRECTS):
                    if response.status_code not in REDIRECT_STATUS or "Location" not in response.headers:
                        break
                    # Blob storage behind a redirect gets no credentials unless it is the registry itself.
                    url = urljoin(url, response.headers["Location"])
                    response.close()
                    if response.status_code == 303:
                        method, data = ("HEAD" if method == "HEAD" else "GET"), None
                    response = self._send(url, method, data, headers, json, stream)
            except SSLError as error:
                raise ArtifactError(
                    f"TLS to {self.host} failed ({error}); pass --plain-http for a plain-HTTP registry."
                ) from None
            except (RequestsConnectionError, Timeout, ChunkedEncodingError) as error:
                clock.raise_if_broken()
                raise TransientError(f"{method} {url.split('?')[0]}: {type(error).__name__}") from None
            except ValueError as error:
                raise AuthError(f"{self.host} asked for authentication that could not be given: {error}") from None
        if response.status_code in REDIRECT_STATUS:
            raise ArtifactError(f"{self.host} redirected {method} more than {MAX_REDIRECTS} times.")
        if response.status_code in (401, 403):
            where = self.host if self.is_own(url) else f"{urlsplit(url).netloc}, which gets no credentials,"
            raise AuthError(
                f"{where} refused {method} with {response.status_code} {response.reason} "
                f"using {self.credentials.source}: check the username and password."
            )
        if response.status_code in TRANSIENT_STATUS:
            raise TransientError(f"{method} {url.split('?')[0]}: {response.status_code} {response.reason}")
        return response

    def do_request(  # type: ignore[override]
        self,
        url: str,
        method: str = "GET",
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """One request with auth, retried with backoff on transient failures."""
        return self._with_retries(
            lambda: self._request_once(url, method, data, headers, json, stream), f"{method} {url}"
        )

    def _url(self, ref: Reference, kind: str, name: str = "") -> str:
        return f"{self.base_url}/v2/{ref.repository}/{kind}/{name}"

    def _location(self, response: requests.Response) -> str:
        location = response.headers.get("Location", "")
        if not location:
            raise ArtifactError(f"{self.host} opened an upload without a Location header ({response.status_code}).")
        return location if location.startswith("http") else f"{self.base_url}{location}"

    # --- blobs ----------------------------------------------------------

    def has_blob(self, ref: Reference, digest: str) -> bool:
        """True when the repository already holds this blob."""
        return self.do_request(self._url(ref, "blobs", digest), "HEAD").status_code == 200

    def push_blob(self, ref: Reference, path: Path, digest: str, size: int, done: BytesDone) -> bool:
        """Upload a file as a blob in chunks unless the repository has it; True when bytes were sent."""
        if self.has_blob(ref, digest):
            done(size)
            return False
        last: TransientError | None = None
        for attempt in range(self.retry.attempts):
            upload: _Upload | None = None
            try:
                with guarded(self.limits, f"upload of {path.name} ({digest})") as clock:
                    with clock.idle():
                        upload = _Upload(self._start_upload(ref))
                    self._send_chunks(upload, path, size, done)
                    # The registry may hash a large blob before it answers; the deadline still holds.
                    with clock.idle():
                        self._finish_upload(upload, digest)
                return True
            except TransientError as error:
                # A registry that restarted may have lost or truncated the session;
                # starting a new one is always correct, resuming is not.
                last = error
                self._abandon(upload)
                done(0)
                time.sleep(self.retry.delay_s(attempt))
                if self.has_blob(ref, digest):
                    done(size)
                    return True
            except BaseException:
                self._abandon(upload)
                raise
        raise RegistryUnavailableError(
            f"uploading {path.name} ({digest}) failed {self.retry.attempts} times ({last}). "
            f"Check that {self.host} is up and rerun: finished blobs are not sent again."
        )

    def _abandon(self, upload: _Upload | None) -> None:
        """Cancel an unfinished upload session, so the registry does not keep its partial bytes."""
        if upload is None:
            return
        try:
            with guarded(self.limits, "cancel of an upload", measure_rate=False):
                self._request_once(upload.url, "DELETE").close()
        except (ArtifactError, TransientError):
            pass

    def _start_upload(self, ref: Reference) -> str:
        response = self._request_once(
            self._url(ref, "blobs", "uploads/"), "POST", headers={"Content-Length": "0"}
        )
        if response.status_code != 202:
            raise ArtifactError(f"{self.host} would not start an upload: {_describe(response)}")
        return self._location(response)

    def _send_chunks(self, upload: _Upload, path: Path, size: int, done: BytesDone) -> None:
        with path.open("rb") as stream:
            stream.seek(upload.offset)
            while upload.offset < size:
                chunk = stream.read(min(self.chunk_bytes, size - upload.offset))
                if not chunk:
                    raise ArtifactError(f"{path} shrank while it was being pushed; push again once it is stable.")
                end = upload.offset + len(chunk) - 1
                headers = {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{upload.offset}-{end}",
                    "Content-Length": str(len(chunk)),
                }
                response = self._request_once(upload.url, "PATCH", data=MeteredBody(chunk), headers=headers)
                del chunk
                if response.status_code in (400, 404, 416):
                    raise TransientError(f"upload session lost: {_describe(response)}")
                if response.status_code != 202:
                    raise ArtifactError(f"{self.host} rejected a chunk of {path.name}: {_describe(response)}")
                upload.url = self._location(response)
                upload.offset = end + 1
                done(upload.offset)

    def _finish_upload(self, upload: _Upload, digest: str) -> None:
        separator = "&" if "?" in upload.url else "?"
        response = self._request_once(
            f"{upload.url}{separator}digest={digest}", "PUT", headers={"Content-Length": "0"}
        )
        if response.status_code == 400 and "DIGEST_INVALID" in response.text:
            raise DigestMismatchError(f"{self.host} computed a different digest than {digest}: the file changed while it was pushed.")
        if response.status_code in (404, 416):
            raise TransientError(f"upload session lost at commit: {_describe(response)}")
        if response.status_code != 201:
            raise ArtifactError(f"{self.host} would not commit blob {digest}: {_describe(response)}")

    def check_blob_size(self, ref: Reference, digest: str, size: int) -> None:
        """Refuse a blob the manifest says is larger than --max-blob-size, before a byte is fetched."""
        if size > self.limits.max_blob_bytes:
            raise TransferLimitError(
                f"{ref} lists blob {digest} of {size} bytes, more than the {self.limits.max_blob_bytes} bytes "
                "allowed (--max-blob-size); raise the limit if the model really is that large."
            )

    def pull_blob(self, ref: Reference, digest: str, size: int, target: Path, done: BytesDone) -> None:
        """Stream a blob into a file, checking its size and digest; a mismatch is a corrupt blob."""
        self.check_blob_size(ref, digest, size)
        try:
            self._with_retries(lambda: self._pull_blob_once(ref, digest, size, target, done), f"download of {digest}")
        except BaseException:
            target.unlink(missing_ok=True)
            raise

    def _pull_blob_once(self, ref: Reference, digest: str, size: int, target: Path, done: BytesDone) -> None:
        with guarded(self.limits, f"download of {digest}") as clock:
            try:
                self._stream_blob(ref, digest, size, target, done, clock.advance)
            except Exception:
                # A socket the watchdog shut down surfaces as whatever the HTTP stack makes of it.
                clock.raise_if_broken()
                raise
            clock.raise_if_broken()

    def _stream_blob(self, ref: Reference, digest: str, size: int, target: Path, done: BytesDone,
                     advance: Callable[[int], None]) -> None:
        hasher = hashlib.sha256()
        received = 0
        target.parent.mkdir(parents=True, exist_ok=True)
        response = self._request_once(self._url(ref, "blobs", digest), "GET", stream=True)

        def consume(block: bytes) -> None:
            hasher.update(block)
            sink.write(block)

        # Hashing and writing run on a second thread while the next block is received: both
        # release the GIL, so a pull is not capped by sha256 speed. One block is in flight at a
        # time, so memory stays at two blocks whatever the blob's size.
        with response, target.open("wb") as sink, ThreadPoolExecutor(max_workers=1) as writer:
            if response.status_code != 200:
                raise ArtifactError(f"{ref} lists blob {digest}, but {self.host} answers {_describe(response)}.")
            announced = response.headers.get("Content-Length", "")
            if announced.isdigit() and int(announced) > size:
                raise DigestMismatchError(
                    f"blob {digest} of {ref} is listed as {size} bytes, but {self.host} announces {announced}; "
                    "nothing was written."
                )
            pending: Future[None] | None = None
            try:
                for block in response.iter_content(READ_BYTES):
                    received += len(block)
                    advance(len(block))
                    if received > size:
                        break
                    if pending is not None:
                        pending.result()
                    pending = writer.submit(consume, block)
                    done(received)
            except (RequestsConnectionError, ChunkedEncodingError, Timeout) as error:
                done(0)
                raise TransientError(f"download of {digest} broke off: {type(error).__name__}") from None
            finally:
                if pending is not None:
                    pending.result()
        actual = format_digest(hasher)
        if received != size or actual != digest:
            target.unlink(missing_ok=True)
            raise DigestMismatchError(
                f"blob {digest} of {ref} is corrupt: expected {size} bytes, got "
                f"{'more than ' if received > size else ''}{received} bytes hashing to {actual}. "
                "The registry's copy is damaged; push the model again."
            )

    # --- manifests ------------------------------------------------------

    def manifest_digest(self, ref: Reference) -> str | None:
        """The digest the tag or digest currently names, or None when it names nothing."""
        response = self.do_request(
            self._url(ref, "manifests", ref.reference), "HEAD", headers={"Accept": MANIFEST_MEDIA_TYPE}
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ArtifactError(f"{self.host} could not say what {ref} names: {_describe(response)}")
        return response.headers.get("Docker-Content-Digest") or self.get_manifest(ref)[1]

    def get_manifest(self, ref: Reference, accept: str = MANIFEST_MEDIA_TYPE) -> tuple[bytes, str]:
        """The manifest's exact bytes and their digest, checked against a digest reference.

        The body is read in blocks and refused once it passes --max-manifest-size, so a hostile
        registry cannot make the client hold an arbitrarily large document.
        """
        cap = self.limits.max_manifest_bytes
        too_large = TransferLimitError(
            f"the manifest of {ref} is larger than {cap} bytes (--max-manifest-size): a Shipway manifest "
            "is a few kilobytes, so this registry is not serving a model."
        )

        def fetch() -> bytes:
            response = self._request_once(
                self._url(ref, "manifests", ref.reference), "GET", headers={"Accept": accept}, stream=True,
            )
            with response:
                if response.status_code == 404:
                    raise ArtifactError(f"{ref} does not exist: check the repository and tag.")
                if response.status_code != 200:
                    raise ArtifactError(f"{self.host} would not return {ref}: {_describe(response)}")
                announced = response.headers.get("Content-Length", "")
                if announced.isdigit() and int(announced) > cap:
                    raise too_large
                body = bytearray()
                try:
                    for block in response.iter_content(64 * 1024):
                        body += block
                        clock.advance(len(block))
                        if len(body) > cap:
                            raise too_large
                except (RequestsConnectionError, ChunkedEncodingError, Timeout) as error:
                    clock.raise_if_broken()
                    raise TransientError(f"manifest of {ref} broke off: {type(error).__name__}") from None
                return bytes(body)

        with guarded(self.limits, f"manifest of {ref}") as clock:
            raw = self._with_retries(fetch, f"GET manifest {ref}")
            clock.raise_if_broken()
        digest = format_digest(hashlib.sha256(raw))
        if ref.digest and digest != ref.digest:
            raise DigestMismatchError(f"the manifest of {ref} hashes to {digest}: the registry returned other content.")
        return raw, digest

    def put_manifest(self, ref: Reference, raw: bytes, media_type: str = MANIFEST_MEDIA_TYPE) -> str:
        """Store a manifest under the reference's tag (or digest); returns its digest."""
        response = self.do_request(
            self._url(ref, "manifests", ref.reference),
            "PUT",
            data=raw,
            headers={"Content-Type": media_type},
        )
        if response.status_code != 201:
            raise ArtifactError(f"{self.host} rejected the manifest for {ref}: {_describe(response)}")
        return format_digest(hashlib.sha256(raw))


def _describe(response: requests.Response) -> str:
    """A response's status and the registry's own error messages, for a user to read."""
    try:
        errors = response.json().get("errors", [])
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
    except ValueError:
        detail = ""
    return f"{response.status_code} {response.reason}" + (f" ({detail})" if detail else "")
