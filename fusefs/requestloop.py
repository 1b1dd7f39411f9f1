"""The FUSE request loop: pyfuse3's own, on trio, minus a scheduler pass per request.

pyfuse3 3.5 reads kernel requests in its ``_session_loop``. Before each read
it takes a ``trio.Lock`` (so only one task waits on the FUSE device) and
awaits ``trio.lowlevel.wait_readable`` on the device. Both go through trio's
scheduler even when they need not wait: an uncontended ``Lock.acquire`` still
yields once, and ``wait_readable`` registers with epoll and yields until the
next run-loop pass. Measured on a mount answering ``statfs``, that is about
a fifth of a request's round trip.

pyfuse3 reaches trio only through its module attribute ``pyfuse3.trio``: the
seam ``pyfuse3.asyncio.enable()`` uses to put asyncio in trio's place.
:func:`install` puts there a namespace that *is* trio in everything except
those two primitives:

* the read lock is taken without yielding when it is free
  (:class:`ReadLock`);
* :func:`wait_readable` returns at once when a zero-timeout ``poll`` shows a
  request already queued, up to :data:`MAX_STREAK` times in a row; otherwise
  (nothing queued, or the streak is used up) it waits through trio as
  before;
* when requests come densely (the last wait through trio was short) and
  nothing else is ready to run, it first polls for up to
  :data:`SPIN_US` before it sleeps, as Go's scheduler spins before it parks
  (gocryptfs gets this from the Go runtime). A program waiting on this mount
  usually sends its next request within microseconds of our reply; caught
  while spinning, it costs no wakeup of a sleeping CPU, which in a VM is an
  exit to the hypervisor and, on a busy host, as long as the rest of the
  round trip: a ``statfs`` round trip of a bare pyfuse3 file system took
  46 µs without the spin and 24 µs with it (same VM, same minute). It
  never spins while work handed to a thread is out (:data:`in_flight`, an
  :class:`InFlight` the file system receives and enters around each such
  call), so that work's result is taken at once.

So the loop passes through trio's scheduler at least once every
:data:`MAX_STREAK` + 1 requests, and every other task (signals, ``--idle``,
results of work done in threads) gets its turn within two such passes (trio
runs each runnable task once per batch), at most :data:`SPIN_US` late.

Taking a request without trio is safe: the poll and the ``read`` pyfuse3
does next happen on trio's one thread with no ``await`` between them, and only
the holder of the read lock polls, so no other task can take the request
meanwhile. Set ``FUSEFS_REQUEST_LOOP=trio`` to run pyfuse3's loop unchanged
(for comparison).

Everything else pyfuse3 takes from ``trio`` falls through to trio itself, at
every level (``trio.lowlevel.current_task`` is trio's), so a trio name that a
new pyfuse3 starts to use cannot end the daemon with ``AttributeError``. What
cannot fall through is the shape of pyfuse3's loop the fast path relies on
(the lock, then ``wait_readable``, then a ``read`` with no ``await`` between):
:func:`install` puts the primitives in place only on the pyfuse3 versions
this was checked on (:data:`VERIFIED_PYFUSE3`), and otherwise leaves pyfuse3's
own loop with a warning in the log.
"""

from __future__ import annotations

import logging
import os
import select
import time
import types
from typing import Any

import trio

log = logging.getLogger("fusefs.requestloop")

#: pyfuse3 releases (``major.minor``) whose use of trio was checked against
#: this module: their ``_wait_fuse_readable`` takes ``trio.Lock`` and awaits
#: ``trio.lowlevel.wait_readable`` right before its ``read``, and the mount
#: tests and ``scripts/bench_fuse_floor.py`` ran on them (3.5.0). The pin in
#: pyproject.toml and scripts/setup.sh says the same.
VERIFIED_PYFUSE3 = ("3.5",)

#: Requests taken in a row without a pass through trio's scheduler.
MAX_STREAK = 32
#: How long to poll for the next request before sleeping, when requests
#: come densely (µs; ``FUSEFS_REQUEST_SPIN_US`` overrides, 0 turns it off).
DEFAULT_SPIN_US = 100


def _spin_us_from_env() -> int:
    """``FUSEFS_REQUEST_SPIN_US`` if it is a whole number, else the default."""
    text = os.environ.get("FUSEFS_REQUEST_SPIN_US", "").strip()
    return int(text) if text.isdigit() else DEFAULT_SPIN_US


SPIN_US = _spin_us_from_env()
#: A wait through trio shorter than this means requests come densely.
DENSE_NS = 1_000_000


class InFlight:
    """Work a file system handed to threads that has not finished yet.

    The file system enters it around each such call (``with in_flight:``);
    while any is out, the loop does not spin, so the work's completion is
    picked up at once.
    """

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> None:
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        self.count -= 1


#: The loop's counter of work out in threads: the mount hands it to its file
#: system (one loop per process: pyfuse3 has one session).
in_flight = InFlight()


class ReadLock:
    """pyfuse3's read lock: a ``trio.Lock`` that is taken without yielding when free."""

    def __init__(self) -> None:
        self._lock = trio.Lock()

    async def __aenter__(self) -> None:
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


class _Readiness:
    """A zero-timeout poll of one descriptor, and the current streak."""

    def __init__(self) -> None:
        self.fd = -1
        self.poller = select.poll()
        self.streak = 0
        self.dense = False

    def queued(self, fd: int) -> bool:
        if fd != self.fd:
            self.poller = select.poll()
            self.poller.register(fd, select.POLLIN)
            self.fd = fd
        return any(ev & select.POLLIN for _, ev in self.poller.poll(0))


_readiness = _Readiness()


async def wait_readable(fd: int) -> None:
    """Return once ``fd`` is readable, through trio's scheduler at least every
    :data:`MAX_STREAK` + 1 calls."""
    r = _readiness
    if r.streak < MAX_STREAK:
        if r.queued(fd) or (r.dense and _spin(r, fd)):
            r.streak += 1
            return
    r.streak = 0
    start = time.perf_counter_ns()
    await trio.lowlevel.wait_readable(fd)
    r.dense = time.perf_counter_ns() - start < DENSE_NS


def _spin(r: _Readiness, fd: int) -> bool:
    """Poll ``fd`` for up to :data:`SPIN_US` if nothing else is waiting to run."""
    if SPIN_US <= 0 or in_flight.count:
        return False
    # (Tasks of trio's current batch that have not run yet are not counted
    # as runnable here: they may wait, at most SPIN_US.)
    st = trio.lowlevel.current_statistics()
    if st.tasks_runnable or st.run_sync_soon_queue_size:
        return False
    # Never past a timer of another task (``--idle``, a sleep).
    spin_ns = min(SPIN_US * 1000, st.seconds_to_next_deadline * 1e9)
    deadline = time.perf_counter_ns() + spin_ns
    while time.perf_counter_ns() < deadline:
        if r.queued(fd):
            return True
    return False


class _Fallthrough(types.ModuleType):
    """A module that is ``target`` except for the attributes set on it."""

    def __init__(self, target: types.ModuleType, **overrides: Any) -> None:
        super().__init__(target.__name__, target.__doc__)
        self.__dict__.update(overrides, _fallthrough_target=target)

    def __getattr__(self, name: str) -> Any:
        # Only names not set on this module reach here.
        return getattr(self.__dict__["_fallthrough_target"], name)


def trio_for_pyfuse3() -> types.ModuleType:
    """The module pyfuse3 uses as ``trio``: trio, with the two fast primitives."""
    lowlevel = _Fallthrough(trio.lowlevel, wait_readable=wait_readable)
    return _Fallthrough(trio, Lock=ReadLock, lowlevel=lowlevel)


def verified(pyfuse3_version: str) -> bool:
    """Whether the fast primitives were checked on this pyfuse3 version."""
    return any(
        pyfuse3_version == v or pyfuse3_version.startswith(v + ".") for v in VERIFIED_PYFUSE3
    )


def install() -> bool:
    """Give pyfuse3 the fast primitives (unless ``FUSEFS_REQUEST_LOOP=trio``).

    Returns whether they are in place. On a pyfuse3 version not in
    :data:`VERIFIED_PYFUSE3` they are not: pyfuse3 runs its own loop, and a
    warning says so in the log. Must run before ``pyfuse3.main()`` (pyfuse3
    creates its read lock on first use).
    """
    import pyfuse3

    if os.environ.get("FUSEFS_REQUEST_LOOP") == "trio" or not hasattr(pyfuse3, "trio"):
        return False
    version = str(getattr(pyfuse3, "__version__", "unknown"))
    if not verified(version):
        log.warning(
            "pyfuse3 %s: the fast request loop was verified on pyfuse3 %s only; "
            "running pyfuse3's own loop",
            version,
            ", ".join(VERIFIED_PYFUSE3),
        )
        return False
    pyfuse3.trio = trio_for_pyfuse3()
    return True
