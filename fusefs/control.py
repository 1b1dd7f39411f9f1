"""Talking to a running mount: ``fusefs stats`` and ``fusefs umount``.

A mount daemon answers extended-attribute requests on its root directory
whose names start with ``fusefs.`` (no kernel namespace uses that prefix, so
no stored attribute can collide, and the kernel passes such names straight
to the file system); the daemon's side, and the table of requests, is
:mod:`fusefs.control_server`. No socket or pid file is needed: the mount
point itself is the address.

Before asking the daemon anything, the mount table (:mod:`fusefs.mounttable`)
says whether the path is a mount, a fusefs one, and whose: another user's
mount is refused by name here (the kernel would answer ``EACCES`` without
``allow_other``, and the daemon ``EPERM`` with it), and a dead one is named
as such.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from typing import Any

from fusefs import mounttable
from fusefs.exitcodes import ExitCode, QuietError

PREFIX = b"fusefs."
PID = b"fusefs.pid"
STATS = b"fusefs.stats"
COMPACT_AT_UNMOUNT = b"fusefs.compact"
SYNC = b"fusefs.sync"
REPORT = b"fusefs.report"


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
    if mounttable.find(path) is None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return "missing"
        except OSError as e:
            if e.errno == errno.ENOTCONN:  # through a symlink to a dead mount
                return "stale"
            raise
        if not stat.S_ISDIR(st.st_mode):
            return "not-dir"
        return "mounted" if os.path.ismount(path) else "dir"
    try:
        # stat() may be answered from the kernel's attribute cache even when
        # the daemon is gone; statfs always reaches the file system.
        os.statvfs(path)
    except OSError as e:
        if e.errno == errno.ENOTCONN:
            return "stale"
        if e.errno not in (errno.EACCES, errno.EPERM):  # EACCES: another user's mount
            raise
    return "mounted"


def user_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


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
    if e.errno in (errno.EPERM, errno.EACCES):
        entry = mounttable.find(mnt)
        owner = None if entry is None else entry.owner_uid
        if owner is not None and os.getuid() not in (0, owner):
            return MountError(
                f"{mnt} was mounted by {user_name(owner)}: only that user or root may do this",
                exit_code=exit_code,
            )
        if owner is not None and owner != os.getuid() and not reachable(mnt):
            return MountError(
                f"{mnt} was mounted by {user_name(owner)} without --allow-other: "
                "no other user can look inside it, root included",
                exit_code=exit_code,
            )
        return MountError(
            f"{mnt}: the daemon refused ({e.strerror}): its root directory must be readable "
            "(and, for --compact, writable) by you",
            exit_code=exit_code,
        )
    return MountError(f"{mnt}: {e.strerror}", exit_code=exit_code)


def require_mount(mnt: str) -> mounttable.MountEntry:
    """The mount table's entry of ``mnt``, a live fusefs mount of this user's
    (or any, for root); :class:`MountError` naming what it is otherwise."""
    state = mount_state(mnt)
    if state == "missing":
        raise MountError(f"{mnt} does not exist")
    entry = mounttable.find(mnt)
    if state == "stale":
        raise _not_ours(mnt, OSError(errno.ENOTCONN, "stale"))
    if state != "mounted" or entry is None:
        raise MountError(f"{mnt} is not mounted")
    if not entry.is_fusefs:
        raise MountError(f"{mnt} is not a fusefs mount (it is {entry.fstype})")
    owner = entry.owner_uid
    if owner is not None and os.getuid() not in (0, owner):
        raise MountError(
            f"{mnt} was mounted by {user_name(owner)}: only that user or root may do this"
        )
    return entry


def reachable(mnt: str) -> bool:
    """Whether this process may look inside the mount ``mnt`` (a FUSE mount
    without ``allow_other`` is closed to every other user, root included;
    the kernel refuses stat() with EACCES, while statfs() quietly answers
    an empty result)."""
    try:
        os.stat(mnt)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM):
            return False
        raise
    return True


def find_mount(path: str) -> str:
    """``path`` if it is a mount point; the mount point of the vault ``path``
    if it is a mounted vault; :class:`MountError` saying what it is otherwise."""
    if mounttable.find(path) is not None or not os.path.isfile(os.path.join(path, "fusefs.conf")):
        return path
    mounts = mounttable.mounts_of_vault(path)
    if not mounts:
        raise MountError(f"the vault {path} is not mounted")
    return mounts[-1].point


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
    whatever the reason, since what the mount holds is not durable. Asked
    by reading an attribute, which needs only read permission on the root
    directory (setting one would need write permission).
    """
    if is_read_only(mnt):
        return  # nothing to write back
    fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # syncfs also reports a writeback error nobody has seen since it
        # happened, on any file (the kernel keeps one per file system):
        # e.g. pages a full disk refused long ago, whose writer was told
        # at close. Those pages are gone either way; only a second failure
        # means that what is dirty now cannot reach the vault.
        if _libc().syncfs(fd) != 0 and _libc().syncfs(fd) != 0:
            raise _not_durable(mnt, ctypes.get_errno())
    finally:
        os.close(fd)
    try:
        os.getxattr(mnt, SYNC)
    except OSError as e:
        if e.errno in (errno.ENOTCONN, errno.ENODATA, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES):
            raise _not_ours(mnt, e, ExitCode.IO) from None
        raise _not_durable(mnt, e.errno or errno.EIO) from None


def ask_for_report(mnt: str, entry: mounttable.MountEntry) -> str | None:
    """A new empty file the daemon of ``mnt`` will write its final report to
    (:mod:`fusefs.control_server`), or None where it cannot be asked."""
    fd, path = tempfile.mkstemp(prefix="fusefs-umount-", suffix=".json")
    os.close(fd)
    try:
        owner = entry.owner_uid
        if owner is not None and owner != os.getuid():
            os.chown(path, owner, -1)  # root unmounting another user's mount
        os.setxattr(mnt, REPORT, os.fsencode(path))
    except OSError:
        os.unlink(path)
        return None
    return path


def read_report(path: str) -> dict[str, Any] | None:
    """The daemon's final report at ``path`` (then removed); None if it wrote none."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    try:
        report = json.loads(data) if data else None
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


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
