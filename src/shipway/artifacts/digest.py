"""sha256 digests of files, computed in bounded memory."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

from shipway.artifacts.errors import DigestMismatchError

READ_BYTES = 1024 * 1024


class _Hasher(Protocol):
    def hexdigest(self) -> str: ...


def format_digest(hasher: _Hasher) -> str:
    """An OCI digest string from a finished sha256 hasher."""
    return f"sha256:{hasher.hexdigest()}"


def file_digest(path: Path) -> tuple[str, int]:
    """The OCI digest and size of a file, read in 1 MiB blocks."""
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while block := stream.read(READ_BYTES):
            hasher.update(block)
            size += len(block)
    return format_digest(hasher), size


def verify_file(path: Path, digest: str, size: int) -> None:
    """Fail with a clear message unless a file has exactly this digest and size."""
    actual, actual_size = file_digest(path)
    if actual != digest or actual_size != size:
        raise DigestMismatchError(
            f"{path} is corrupt: expected {digest} ({size} bytes), found {actual} ({actual_size} bytes)."
        )
