"""Writing a folder of generated files so that readers see the old one or the new one, never half of either."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath


def target_path(path: str | Path) -> Path:
    """The absolute path a write lands on: `~` expanded, relative to the working folder, symlinks followed.

    Following the links means a write through a symlinked folder (or to a symlinked file) replaces what
    the link points at, not the link, and every later comparison is between resolved paths.
    """
    return Path(path).expanduser().resolve()


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write one file beside its target and rename it into place, so a reader never sees half of it.

    The file gets the permissions a plain write would (mkstemp alone makes it owner-only), since
    reports, profiles and schemas are read by CI steps and people other than their writer.
    """
    path = target_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data.encode("utf-8") if isinstance(data, str) else data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_tree(files: Mapping[str, str], destination: str | Path) -> list[Path]:
    """Replace `destination` with exactly `files` (relative path -> text).

    The files are written to a temporary sibling, which is then renamed into place; files the
    previous output had and this one lacks disappear with it. If the swap fails, the previous
    output is put back whole.
    """
    destination = target_path(destination)
    for relative in files:
        parts = PurePosixPath(relative).parts
        if not parts or PurePosixPath(relative).is_absolute() or ".." in parts or "\\" in relative:
            raise ValueError(f"refusing to write {relative!r} outside {destination}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.chmod(staging, 0o755)  # mkdtemp makes it owner-only; generated output is for everyone
        if destination.exists():
            backup = destination.with_name(f".{destination.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            os.replace(destination, backup)
            try:
                os.replace(staging, destination)
            except BaseException:
                os.replace(backup, destination)
                raise
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(path for path in destination.rglob("*") if path.is_file())
