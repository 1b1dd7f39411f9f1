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
  before. So the loop passes through trio's scheduler at least once every
  :data:`MAX_STREAK` + 1 requests, and every other task (signals,
  ``--idle``, results of work done in threads) gets its turn within two such
  passes (trio runs each runnable task once per batch).

Taking a request without trio is safe: the poll and the ``read`` pyfuse3
does next happen on trio's one thread with no ``await`` between them, and only
the holder of the read lock polls, so no other task can take the request
meanwhile. Set ``FUSEFS_REQUEST_LOOP=trio`` to run pyfuse3's loop unchanged
(for comparison).
"""

from __future__ import annotations

import os
import select
import types
from typing import Any

import trio

#: Requests taken in a row without a pass through trio's scheduler.
MAX_STREAK = 32


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

    def queued(self, fd: int) -> bool:
        if fd != self.fd:
            self.poller = select.poll()
            self.poller.register(fd, select.POLLIN)
            self.fd = fd
        return any(ev & select.POLLIN for _, ev in self.poller.poll(0))


_readiness = _Readiness()


async def wait_readable(fd: int) -> None:
    """Return once ``fd`` is readable, through trio's scheduler at least every
    :data:`MAX_STREAK` calls."""
    r = _readiness
    if r.streak < MAX_STREAK and r.queued(fd):
        r.streak += 1
        return
    r.streak = 0
    await trio.lowlevel.wait_readable(fd)


def trio_for_pyfuse3() -> Any:
    """The namespace pyfuse3 uses as ``trio``: trio, with the two fast primitives."""
    lowlevel = types.SimpleNamespace(
        current_trio_token=trio.lowlevel.current_trio_token,
        current_task=trio.lowlevel.current_task,
        notify_closing=trio.lowlevel.notify_closing,
        wait_readable=wait_readable,
    )
    return types.SimpleNamespace(
        Lock=ReadLock,
        lowlevel=lowlevel,
        open_nursery=trio.open_nursery,
        ClosedResourceError=trio.ClosedResourceError,
        from_thread=trio.from_thread,
    )


def install() -> bool:
    """Give pyfuse3 the fast primitives (unless ``FUSEFS_REQUEST_LOOP=trio``).

    Returns whether they are in place. Must run before ``pyfuse3.main()``
    (pyfuse3 creates its read lock on first use).
    """
    import pyfuse3

    if os.environ.get("FUSEFS_REQUEST_LOOP") == "trio" or not hasattr(pyfuse3, "trio"):
        return False
    pyfuse3.trio = trio_for_pyfuse3()
    return True
