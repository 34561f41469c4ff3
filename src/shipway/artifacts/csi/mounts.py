"""Read-only bind mounts through mount(2) and umount2(2), and which paths are mount points (/proc/self/mountinfo).

The syscalls are called directly (ctypes), not through util-linux's mount(8): the error is an errno the plugin
can name, and the image needs no mount binary. A bind mount takes the source's mount flags; read-only needs
a second call, a remount of the bind (mount(2), "Creating a bind mount" and "Remounting an existing mount").
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


def bind_read_only(source: Path, target: Path, extra_flags: int = 0) -> None:
    """Mount `source` at `target` read-only, no setuid, no devices (and `extra_flags`, such as MS_NOEXEC);
    on failure nothing stays mounted."""
    _call(_libc.mount(os.fsencode(source), os.fsencode(target), None, MS_BIND, None),
          f"bind mount of {source} at {target}")
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | extra_flags
    try:
        _call(_libc.mount(None, os.fsencode(target), None, flags, None), f"read-only remount of {target}")
    except MountError:
        unmount(target)
        raise


def unmount(target: Path) -> None:
    """Unmount `target`, and anything stacked on it; a path that is no mount point is left as it is."""
    while is_mount_point(target):
        _call(_libc.umount2(os.fsencode(target), 0), f"unmount of {target}")


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
