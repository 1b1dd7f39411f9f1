"""The daemon's side of the control interface (the client is :mod:`fusefs.control`).

Requests arrive as extended attributes of the mount's root directory whose
names start with ``fusefs.``; :class:`fusefs.fs.VaultOperations` hands them
here. Reading needs read permission on the root directory, setting needs
write permission (the kernel checks both, as for any attribute outside the
``user.``/``trusted.``/``security.`` namespaces); past the kernel, every
request but ``fusefs.pid`` is refused to anyone but the user who mounted
and root (``EPERM``).

=============================  ==========================================================
``getxattr fusefs.pid``        the daemon's process id, decimal (anyone)
``getxattr fusefs.stats``      live telemetry, one JSON object; rates are since the
                               previous ``stats`` request
``getxattr fusefs.sync``       make everything written so far durable; ``ok``
``setxattr fusefs.compact``    ``1``: compact the vault after unmounting; ``0``: not
``setxattr fusefs.report``     a path: when the daemon is done (vault closed), it writes
                               what it did there as JSON (:meth:`ControlServer.final_report`)
=============================  ==========================================================

The report file must already exist, be a regular file (not a symlink), and
belong to the daemon's user: ``fusefs umount`` creates it, and reads it once
the daemon has exited, which is how it knows the daemon finished (a daemon
killed half-way writes nothing) and what compaction reclaimed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol

import pyfuse3

from fusefs import _native, control
from fusefs.hardening import is_dumpable

if TYPE_CHECKING:
    from fusefs._native import Vault

log = logging.getLogger("fusefs.control")

#: Requests that are no sign of use: polling them (``df``, desktop monitors,
#: ``fusefs stats``) does not keep an ``--idle`` mount alive.
PASSIVE_OPS = frozenset(["statfs"])
#: The requests :func:`is_passive` can find passive (every other one is use).
MAYBE_PASSIVE_OPS = PASSIVE_OPS | {"getxattr", "setxattr", "getattr"}
#: A stats reply is served again to requests within this time (see _stats_reply).
STATS_REUSE_SECONDS = 0.5


class Serving(Protocol):
    """What the control server reads of the mount's request handlers."""

    vault: Vault
    vault_dir: str
    read_only: bool
    ops: Counter[str]
    last_request: float
    started: float
    bytes_read: int
    bytes_written: int
    open_handles: int
    owner_uid: int


def is_passive(op: str, args: tuple[Any, ...]) -> bool:
    """Whether request ``op(*args)`` leaves the mount's idle time running."""
    if op in PASSIVE_OPS:
        return True
    if op in ("getxattr", "setxattr") and len(args) >= 2:
        return args[0] == pyfuse3.ROOT_INODE and bytes(args[1]).startswith(control.PREFIX)
    return op == "getattr" and bool(args) and args[0] == pyfuse3.ROOT_INODE


class ControlServer:
    def __init__(self, serving: Serving) -> None:
        self.serving = serving
        #: Compact the vault at unmount (``setxattr fusefs.compact 1``).
        self.compact_at_unmount = False
        self.report_path: str | None = None
        self._previous: tuple[float, dict[str, float]] = (time.monotonic(), {})
        self._reply: tuple[float, bytes] | None = None

    # --- requests ------------------------------------------------------------------------

    async def get(self, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        if name == control.PID:
            return str(os.getpid()).encode()
        self._require_owner(ctx)
        if name == control.STATS:
            return self._stats_reply()
        if name == control.SYNC:
            if not self.serving.read_only:
                import trio

                await trio.to_thread.run_sync(self.serving.vault.sync)
            return b"ok"
        raise pyfuse3.FUSEError(errno.ENODATA)

    async def set(self, name: bytes, value: bytes, ctx: pyfuse3.RequestContext) -> None:
        self._require_owner(ctx)
        if name == control.COMPACT_AT_UNMOUNT:
            self.compact_at_unmount = value.strip() not in (b"", b"0")
        elif name == control.REPORT:
            path = os.fsdecode(value)
            if not os.path.isabs(path):
                raise pyfuse3.FUSEError(errno.EINVAL)
            self.report_path = path
        else:
            raise pyfuse3.FUSEError(errno.EOPNOTSUPP)

    def _require_owner(self, ctx: pyfuse3.RequestContext) -> None:
        if ctx.uid not in (0, self.serving.owner_uid):
            raise pyfuse3.FUSEError(errno.EPERM)

    # --- stats ---------------------------------------------------------------------------

    def _stats_reply(self) -> bytes:
        # A reader does not know the size in advance: os.getxattr() asks with
        # a small buffer, then a bigger one after ERANGE. The probes of one
        # read get the same bytes (a new reply could be longer, and each
        # would restart the rates' interval).
        now = time.monotonic()
        if self._reply is None or now - self._reply[0] > STATS_REUSE_SECONDS:
            self._reply = (now, json.dumps(self.stats(), sort_keys=True).encode())
        return self._reply[1]

    def stats(self) -> dict[str, Any]:
        s = self.serving
        t = s.vault.telemetry().to_dict()
        now = time.monotonic()
        totals = {
            "requests": float(sum(s.ops.values())),
            "fuse_bytes_read": float(s.bytes_read),
            "fuse_bytes_written": float(s.bytes_written),
        }
        since, before = self._previous
        self._previous = (now, totals)
        seconds = max(now - since, 1e-9)
        return {
            "pid": os.getpid(),
            "vault": s.vault_dir,
            "read_only": s.read_only,
            "uptime_seconds": round(time.time() - s.started, 3),
            "idle_seconds": round(now - s.last_request, 3),
            "open_files": s.open_handles,
            "fuse_bytes_read": s.bytes_read,
            "fuse_bytes_written": s.bytes_written,
            "fuse_ops": dict(s.ops),
            "compact_at_unmount": self.compact_at_unmount,
            "rates": {
                "seconds": round(seconds, 3),
                **{
                    f"{k}_per_second": round((v - before.get(k, 0.0)) / seconds, 3)
                    for k, v in totals.items()
                },
            },
            "engine": t,
            # What opening the vault did (a torn log tail cut, snapshots
            # skipped, orphans reclaimed): see fusefs.reports.describe_opening.
            "opened": s.vault.bootstrap_report(),
            # Where the keys live (pages out of core dumps, locked in RAM
            # where RLIMIT_MEMLOCK allows) and whether the daemon is dumpable.
            "key_memory": {**_native.secret_memory_status(), "dumpable": is_dumpable()},
        }

    # --- the end of the mount ---------------------------------------------------------------

    def final_report(
        self, *, closed: bool, compaction: dict[str, Any] | None, error: str | None
    ) -> None:
        """Write what the daemon did to the file ``fusefs umount`` asked for, if it did."""
        if self.report_path is None:
            return
        report = {"closed": closed, "compaction": compaction, "error": error}
        try:
            fd = os.open(self.report_path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as e:
            log.warning("cannot write the unmount report to %s: %s", self.report_path, e)
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
                log.warning("not writing the unmount report to %s: not our file", self.report_path)
                return
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(report, sort_keys=True).encode())
        finally:
            os.close(fd)
