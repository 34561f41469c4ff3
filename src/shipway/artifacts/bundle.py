"""The small-files layer: a deterministic tar, so unchanged files give an unchanged digest."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from shipway.artifacts.errors import ArtifactError, BadReferenceError, DigestMismatchError
from shipway.artifacts.layout import safe_relative_path

COPY_BYTES = 1024 * 1024
# The most files one model may hold (its layers and its bundle's files together). Each file costs the puller an
# inode and a few hundred bytes of memory while it is unpacked, and a pull's byte bounds do not see empty files:
# a 2 GB bundle of empty entries is four million of them. A model with more small files than this packs them in
# an archive of its own.
MAX_MODEL_FILES = 100_000


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
    """Unpack a bundle that holds exactly the expected files, refusing every member that is not a file or folder.

    tarfile's own extraction is not used: its `data` filter checks member names but, before Python
    3.11.13, not where a chain of links ends up (CVE-2025-4517). Here no link, device or fifo is
    ever created, each file is opened with O_NOFOLLOW and O_EXCL, and each folder is made by this
    code, so nothing can be written outside `destination` whatever the Python version.
    """
    # A folder entry is kept only when a listed file is in it, so the archive's entries are bounded by the list,
    # which the manifest's size bounds: entries past that bound are refused as they are read, before tarfile
    # holds millions of them in memory.
    folders = {str(parent) for name in expected for parent in PurePosixPath(name).parents if str(parent) != "."}
    bound = len(expected) + len(folders)
    with tarfile.open(archive_path, "r:") as archive:
        members = []
        for member in archive:
            if len(members) == bound:
                raise ArtifactError(
                    f"the small-files layer holds more entries than the {len(expected)} files its manifest lists "
                    "and their folders: nothing was extracted."
                )
            members.append(member)
            if member.isdir() and str(PurePosixPath(member.name)) not in folders:
                raise ArtifactError(
                    f"the small-files layer holds the folder {member.name!r}, which none of the files its manifest "
                    "lists is in: nothing was extracted."
                )
            if not (member.isreg() or member.isdir()):
                raise ArtifactError(
                    f"the small-files layer holds {member.name!r}, a {_kind(member)}: a model bundle may hold "
                    "only regular files and folders, so nothing was extracted."
                )
            try:
                safe_relative_path(member.name)
            except BadReferenceError:
                raise ArtifactError(
                    f"the small-files layer holds {member.name!r}, a path outside the model: nothing was extracted."
                ) from None
        names = sorted(str(PurePosixPath(member.name)) for member in members if member.isreg())
        if names != sorted(expected):
            raise DigestMismatchError(
                f"the small-files layer holds {names}, but its manifest lists {sorted(expected)}."
            )
        destination.mkdir(parents=True, exist_ok=True)
        for member in members:
            target = destination.joinpath(*PurePosixPath(member.name).parts)
            if member.isdir():
                _make_folders(destination, target)
                continue
            _make_folders(destination, target.parent)
            source = archive.extractfile(member)
            assert source is not None
            _write_new_file(source, target, 0o755 if member.mode & 0o100 else 0o644)
    return names


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"symbolic link to {member.linkname!r}"
    if member.islnk():
        return f"hard link to {member.linkname!r}"
    return {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
            tarfile.FIFOTYPE: "fifo"}.get(member.type, f"member of tar type {member.type!r}")


def _make_folders(root: Path, folder: Path) -> None:
    """Create `folder` under `root` one level at a time, refusing anything on the way that is not a real folder."""
    current = root
    for part in folder.relative_to(root).parts:
        current = current / part
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            if current.is_symlink() or not current.is_dir():
                raise ArtifactError(f"{current} already exists and is not a folder: nothing more was extracted.") from None


def _write_new_file(source: object, target: Path, mode: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        descriptor = os.open(target, flags, mode)
    except FileExistsError:
        raise ArtifactError(f"the small-files layer writes {target} twice: nothing more was extracted.") from None
    with os.fdopen(descriptor, "wb") as sink:
        while block := source.read(COPY_BYTES):  # type: ignore[attr-defined]
            sink.write(block)
