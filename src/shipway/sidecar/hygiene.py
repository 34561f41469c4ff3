"""What a proxy may pass on: headers that belong to the next hop, request ids fit for a header, targets."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from multidict import CIMultiDict

# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection and are never forwarded;
# the length is recomputed for the bytes actually sent, and the host is the runtime's.
HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade", "content-length", "host",
    }
)
# Longer ids (or ids with bytes a header cannot carry) travel as a digest of themselves.
MAX_HEADER_ID = 128
_DIGEST_PREFIX = "sha-"


def forwardable(headers: Mapping[str, str], keep_length: bool = False) -> CIMultiDict[str]:
    """The headers without hop-by-hop ones, and without any header the Connection header nominates.

    RFC 9110 7.6.1: a proxy must remove the fields a Connection header lists before forwarding.
    """
    nominated = {token.strip().lower() for value in _all(headers, "Connection") for token in value.split(",")}
    dropped = (HOP_BY_HOP | nominated) - ({"content-length"} if keep_length else set())
    return CIMultiDict((name, value) for name, value in headers.items() if name.lower() not in dropped)


def _all(headers: Mapping[str, str], name: str) -> Iterable[str]:
    getall = getattr(headers, "getall", None)
    return getall(name, []) if getall is not None else [v for k, v in headers.items() if k.lower() == name.lower()]


def header_safe_id(request_id: str) -> str:
    """The id as it travels in a header and keys a prediction: itself when short and printable, else a digest.

    Any id the runtime accepts is accepted here; feedback naming the original id matches, since
    it goes through the same function.
    """
    if 0 < len(request_id) <= MAX_HEADER_ID and request_id.isascii() and request_id.isprintable() \
            and " " not in request_id:
        return request_id
    digest = hashlib.blake2b(request_id.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return _DIGEST_PREFIX + digest


def origin_target(raw_target: str, parsed_path_qs: str) -> str:
    """The origin-form target (path and query) to send upstream, as received where it was one already.

    An absolute-form target (`POST http://host/v2/... HTTP/1.1`, RFC 9112 3.2.2) is reduced to the
    path and query aiohttp parsed out of it: the runtime behind a sidecar is the only origin it can mean.
    """
    if raw_target.startswith("/"):
        return raw_target
    return parsed_path_qs if parsed_path_qs.startswith("/") else "/" + parsed_path_qs
