"""Talking to a running mount: ``fusefs stats`` and ``fusefs umount``.

A mount daemon answers extended-attribute requests on its root directory
whose names start with ``fusefs.`` (no kernel namespace uses that prefix, so
no stored attribute can collide, and the kernel passes such names straight
to the file system). No socket or pid file is needed: the mount point
itself is the address, and a mount that is not ours, or a dead one, says so
with its errno.

=============================  =====================================================
``getxattr fusefs.pid``        the daemon's process id, decimal
``getxattr fusefs.stats``      live telemetry, one JSON object
``setxattr fusefs.compact``    ``1``: compact the vault after unmounting; ``0``: not
``setxattr fusefs.sync``       make everything written so far durable now
=============================  =====================================================

Setting needs the mounting user or root.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import shutil
import subprocess
import time
from typing import Any

from fusefs.exitcodes import ExitCode, QuietError

PREFIX = b"fusefs."
PID = b"fusefs.pid"
STATS = b"fusefs.stats"
COMPACT_AT_UNMOUNT = b"fusefs.compact"
SYNC = b"fusefs.sync"


class MountError(QuietError):
    """A mount point that cannot be used or reached; ``str()`` is one line for users.

    Ends a command with exit status MOUNT, or IO where what a mount holds
    could not be made durable (:func:`sync`).
    """

    def __init__(
        self, message: str, *, stale: bool = False, exit_code: ExitCode = ExitCode.MOUNT
    ) -> None:
        super().__init__(message, exit_code)
        self.stale = stale


def mount_state(path: str) -> str:
    """``"missing"``, ``"not-dir"``, ``"stale"`` (a dead FUSE mount), ``"mounted"`` or ``"dir"``."""
    try:
        os.stat(path)
        if not os.path.isdir(path):
            return "not-dir"
        if not os.path.ismount(path):
            return "dir"
        # stat() may be answered from the kernel's attribute cache even when
        # the daemon is gone; statfs always reaches the file system.
        os.statvfs(path)
        return "mounted"
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        if e.errno == errno.ENOTCONN:
            return "stale"
        raise


def _get(mnt: str, name: bytes) -> bytes:
    try:
        return os.getxattr(mnt, name)
    except OSError as e:
        raise _not_ours(mnt, e) from None


def _set(mnt: str, name: bytes, value: bytes) -> None:
    try:
        os.setxattr(mnt, name, value)
    except OSError as e:
        raise _not_ours(mnt, e) from None


def _not_ours(mnt: str, e: OSError, exit_code: ExitCode = ExitCode.MOUNT) -> MountError:
    if e.errno == errno.ENOTCONN:
        return MountError(
            f"{mnt} is a dead mount (its daemon is gone); run 'fusefs umount {mnt}'",
            stale=True,
            exit_code=exit_code,
        )
    if e.errno in (errno.ENODATA, errno.EOPNOTSUPP, errno.ENOTSUP):
        return MountError(f"{mnt} is not a fusefs mount", exit_code=exit_code)
    if e.errno == errno.EPERM:
        return MountError(
            f"{mnt}: only the user who mounted it (or root) may do this", exit_code=exit_code
        )
    return MountError(f"{mnt}: {e.strerror}", exit_code=exit_code)


def require_mount(mnt: str) -> None:
    """Raise :class:`MountError` unless ``mnt`` is a live mount point."""
    state = mount_state(mnt)
    if state == "missing":
        raise MountError(f"{mnt} does not exist")
    if state == "stale":
        raise _not_ours(mnt, OSError(errno.ENOTCONN, "stale"))
    if state != "mounted":
        raise MountError(f"{mnt} is not mounted")


def daemon_pid(mnt: str) -> int:
    require_mount(mnt)
    return int(_get(mnt, PID))


def stats(mnt: str) -> dict[str, Any]:
    require_mount(mnt)
    result: dict[str, Any] = json.loads(_get(mnt, STATS))
    return result


def set_compact_at_unmount(mnt: str, on: bool) -> None:
    _set(mnt, COMPACT_AT_UNMOUNT, b"1" if on else b"0")


def sync(mnt: str) -> None:
    """Write back the kernel's dirty pages of ``mnt``, then make the vault durable.

    Raises :class:`MountError` naming the reason (e.g. the vault's disk is
    full) if the daemon cannot persist what it holds; its exit status is IO
    whatever the reason, since what the mount holds is not durable.
    """
    if is_read_only(mnt):
        return  # nothing to write back; the kernel refuses setxattr anyway
    fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc().syncfs(fd) != 0:
            raise _not_durable(mnt, ctypes.get_errno())
    finally:
        os.close(fd)
    try:
        os.setxattr(mnt, SYNC, b"1")
    except OSError as e:
        if e.errno in (errno.ENOTCONN, errno.ENODATA, errno.EOPNOTSUPP, errno.EPERM):
            raise _not_ours(mnt, e, ExitCode.IO) from None
        raise _not_durable(mnt, e.errno or errno.EIO) from None


def _not_durable(mnt: str, code: int) -> MountError:
    return MountError(
        f"{mnt}: the vault cannot be made durable ({os.strerror(code)}); it stays mounted "
        "and keeps what it holds: fix the cause (e.g. free space on the vault's disk) and retry",
        exit_code=ExitCode.IO,
    )


def is_read_only(mnt: str) -> bool:
    return bool(os.statvfs(mnt).f_flag & os.ST_RDONLY)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def kernel_unmount(mnt: str, *, lazy: bool = False) -> None:
    """Detach ``mnt`` (``fusermount3 -u``); :class:`MountError` with the reason if refused."""
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if tool is None:
        raise MountError("fusermount3 is not installed (Debian package fuse3)")
    args = [tool, "-u"] + (["-z"] if lazy else []) + [mnt]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "refused"
        if "busy" in reason.lower():
            raise MountError(f"{mnt} is busy: a process has a file or directory open in it")
        raise MountError(f"cannot unmount {mnt}: {reason}")


def wait_for_exit(pid: int, timeout: float | None = None) -> bool:
    """Wait until process ``pid`` is gone; False on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.005
    while process_alive(pid):
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    return True


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False
