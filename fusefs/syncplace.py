"""Where an fsync runs: on the request thread while syncs are quick, in a worker when they are not.

Handing a call to a trio worker thread and taking its result back costs two
wake-ups of a sleeping thread and trio's bookkeeping: about 200 µs on the
reference VMs (2 vCPUs; ``trio.to_thread.run_sync`` of a function that does
nothing, in a loop). A sync of a vault on tmpfs or on a disk with a fast
write cache takes less than that, so there the hop would be most of an
fsync's cost, a cost the peers (Go's and libfuse's threads) do not pay.

But while a call runs on the request thread no other request is answered,
and a sync can take milliseconds (a busy disk, a disk without a write
cache, a network block device). So the mount keeps a moving average of how
long its syncs took and runs a sync on the request thread only while that
average is below :data:`INLINE_MAX_SECONDS`; otherwise it runs in a worker
thread and other requests go on meanwhile. Every sync is timed where it
runs, so the choice follows the storage: one slow sync moves the average
past the bound at once (weight :data:`WEIGHT`), and a run of quick ones
brings it back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: Syncs averaging less than this run on the request thread (seconds).
INLINE_MAX_SECONDS = 0.001
#: Weight of the newest sync in the moving average.
WEIGHT = 0.125


class SyncPlacement:
    """The moving average of sync times and the choice it makes."""

    __slots__ = ("average",)

    def __init__(self) -> None:
        self.average = 0.0

    @property
    def inline(self) -> bool:
        """Whether the next sync should run on the request thread."""
        return self.average < INLINE_MAX_SECONDS

    def timed(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn(*args)`` and count how long it took (also when it fails)."""
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.note(time.perf_counter() - start)

    def note(self, seconds: float) -> None:
        # Called from worker threads too: a float update under the GIL; a
        # lost update only delays the average by one sync.
        self.average += (seconds - self.average) * WEIGHT
