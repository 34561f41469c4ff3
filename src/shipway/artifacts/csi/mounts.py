"""Read-only bind mounts through mount(2) and umount2(2), and which paths are mount points (/proc/self/mountinfo).

The syscalls are called directly (ctypes), not through util-linux's mount(8): the error is an errno the plugin
can name, and the image needs no mount binary. A bind mount takes the source's mount flags; read-only needs
a second call, a remount of the bind (mount(2), "Creating a bind mount" and "Remounting an existing mount").

mount(2) and umount2(2) follow symbolic links in the paths they are given, and a path checked earlier can hold a
link by the time the call is made. So the plugin never mounts at a path: it walks to the target's folder from `/`
one name at a time with O_PATH|O_NOFOLLOW (a link anywhere on the way is ENOTDIR, and nothing is mounted), and
mounts through the descriptors it got (`/proc/self/fd/N`, which names exactly the folder opened, whatever has
been renamed or swapped since). An unmount names the mount point through its parent's descriptor with
UMOUNT_NOFOLLOW, so a link put there is never followed to another mount.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from pathlib import Path

# <sys/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8
# A folder, by descriptor only (no reads through it), never through a symbolic link at the name opened.
_FOLDER = os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
_MOUNTINFO = Path("/proc/self/mountinfo")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


class MountError(OSError):
    """mount(2) or umount2(2) refused; errno says why."""


def _call(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        hint = (" (the plugin needs CAP_SYS_ADMIN: run its container privileged)"
                if code in (errno.EPERM, errno.EACCES) else "")
        raise MountError(code, f"{what}: {os.strerror(code)}{hint}")


def open_folder(path: Path) -> int:
    """An O_PATH descriptor of the folder at absolute `path`, walked from `/` one name at a time without following
    a symbolic link; OSError (ENOTDIR for a link or a file on the way, ENOENT for a missing name) if not. The
    caller closes it."""
    if not path.is_absolute():
        raise ValueError(f"not an absolute path: {path}")
    descriptor = os.open("/", _FOLDER)
    try:
        for name in path.parts[1:]:
            if name in (".", ".."):
                raise OSError(errno.EINVAL, f"{path} holds {name!r}")
            inner = os.open(name, _FOLDER, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = inner
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _fd(descriptor: int) -> bytes:
    return f"/proc/self/fd/{descriptor}".encode()


def bind_read_only_at(source: Path, parent: int, name: str, extra_flags: int = 0) -> None:
    """Mount folder `source` at folder `name` of the folder descriptor `parent`, read-only, no setuid, no devices
    (and `extra_flags`, such as MS_NOEXEC); neither followed through a symbolic link (the source's own folder
    is resolved first, its last name is not); on failure nothing stays mounted."""
    where = f"{name} (in the folder the plugin opened)"
    source_folder = open_folder(Path(os.path.realpath(source.parent)) / source.name)
    try:
        target = os.open(name, _FOLDER, dir_fd=parent)
        try:
            _call(_libc.mount(_fd(source_folder), _fd(target), None, MS_BIND, None),
                  f"bind mount of {source} at {where}")
        finally:
            os.close(target)
    finally:
        os.close(source_folder)
    # The new mount's root, opened through the same parent: what the remount changes.
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | extra_flags
    try:
        mounted = os.open(name, _FOLDER, dir_fd=parent)
        try:
            _call(_libc.mount(None, _fd(mounted), None, flags, None), f"read-only remount of {where}")
        finally:
            os.close(mounted)
    except OSError:
        unmount_at(parent, name)
        raise


def unmount_at(parent: int, name: str) -> None:
    """Unmount what is mounted at folder `name` of the folder descriptor `parent`, never following a link there."""
    _call(_libc.umount2(_fd(parent) + b"/" + os.fsencode(name), UMOUNT_NOFOLLOW), f"unmount of {name}")


def unmount(target: Path) -> None:
    """Unmount `target`, and anything stacked on it; a path that is no mount point is left as it is. The target
    is named through its folder, walked without following links (OSError if one is on the way)."""
    if not is_mount_point(target):
        return
    parent = open_folder(target.parent)
    try:
        while is_mount_point(target):
            unmount_at(parent, target.name)
    finally:
        os.close(parent)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\ooo octal."""
    out, index = [], 0
    while index < len(field):
        if field[index] == "\\" and field[index + 1:index + 4].isdigit():
            out.append(chr(int(field[index + 1:index + 4], 8)))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return "".join(out)


def mount_points() -> set[str]:
    """Every path something is mounted at, as this process sees them (field 5 of proc(5)'s mountinfo)."""
    return {_unescape(line.split(" ")[4]) for line in _MOUNTINFO.read_text().splitlines() if line}


def is_mount_point(path: Path) -> bool:
    """Whether something is mounted at `path`; a bind mount on the same filesystem included, which
    os.path.ismount misses (it compares the device with the parent's)."""
    return os.path.realpath(path) in mount_points()
