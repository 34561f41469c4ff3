"""The small-files layer: a deterministic tar, so unchanged files give an unchanged digest."""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from shipway.artifacts.errors import DigestMismatchError


def write_bundle(files: Sequence[tuple[str, Path]], target: Path) -> None:
    """Write (title, path) pairs to an uncompressed tar with fixed owners, times and modes."""
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        for title, path in sorted(files):
            info = tarfile.TarInfo(title)
            info.size = path.stat().st_size
            # Only the executable bit survives: owners and times would change the digest on every build.
            info.mode = 0o755 if path.stat().st_mode & 0o100 else 0o644
            info.mtime = 0
            with path.open("rb") as stream:
                archive.addfile(info, stream)


def extract_bundle(archive_path: Path, destination: Path, expected: Sequence[str]) -> list[str]:
    """Unpack a bundle with tarfile's `data` filter and check it holds exactly the expected files."""
    with tarfile.open(archive_path, "r:") as archive:
        names = sorted(member.name for member in archive.getmembers())
        if names != sorted(expected):
            raise DigestMismatchError(
                f"the small-files layer holds {names}, but its manifest lists {sorted(expected)}."
            )
        # The data filter refuses absolute paths, '..', links out of the tree and device files.
        archive.extractall(destination, filter="data")
    return [str(PurePosixPath(name)) for name in names]
