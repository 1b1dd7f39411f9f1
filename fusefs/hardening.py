"""Keeping the mount daemon's secrets out of core dumps and other users' reach.

The daemon holds the vault's keys for the whole mount (in pages the engine
excludes from core dumps, see ``crypto/secret_memory.rs``), and Python's
heap may still hold what cannot be wiped (a typed password's ``str``).
Before the password is read, the process is made non-dumpable
(``prctl(PR_SET_DUMPABLE, 0)``: no core dump, no ``ptrace`` attach and no
``/proc/PID/mem`` for processes of the same user, ``/proc/PID/*`` owned by
root) and its core size limit set to 0 (``RLIMIT_CORE``), which a forked
daemon inherits. Both are best effort: where the OS refuses, the mount
still works and the log says so.
"""

from __future__ import annotations

import ctypes
import logging
import resource

log = logging.getLogger("fusefs.hardening")

#: From <linux/prctl.h>.
PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def _libc() -> ctypes.CDLL:
    # The process's own symbols (libc among them), as fusefs.control does:
    # ctypes.util.find_library runs ldconfig in a subprocess, which cost the
    # mount command ~15 ms before the password was even read.
    return ctypes.CDLL(None, use_errno=True)


def protect_process() -> list[str]:
    """Make this process non-dumpable with no core file; what failed, in words."""
    problems = []
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError) as e:
        problems.append(f"cannot set RLIMIT_CORE to 0: {e}")
    try:
        if _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            problems.append(f"prctl(PR_SET_DUMPABLE, 0) failed: errno {ctypes.get_errno()}")
    except (OSError, AttributeError) as e:
        problems.append(f"prctl(PR_SET_DUMPABLE, 0) unavailable: {e}")
    for problem in problems:
        log.warning("%s", problem)
    return problems


def is_dumpable() -> bool:
    """``prctl(PR_GET_DUMPABLE)`` of this process."""
    return bool(_libc().prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
