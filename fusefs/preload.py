"""Loading what serves a mount while the vault opens.

A mount's start is two long waits: the engine opening the vault (the
password's key derivation, then loading the metadata: a few hundred ms for
a vault of 100,000 files) and Python importing what serves the mount (trio,
pyfuse3, the file system: ~50-150 ms). The engine lets go of the GIL while
it opens, so the two overlap: :class:`Preload` imports in a thread while the
daemon's main thread opens the vault, and :meth:`Preload.wait` joins it.

The open stays on the main thread on purpose: glibc gives a second thread
a malloc arena of its own, which grows a page at a time, and the engine
loading 100,000 files' metadata there took 1.7× as long (measured:
~250 → ~450 ms). The thread is started after the fork (a process must not
fork with a second thread running) and has ended before the FUSE loop starts.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable


class Preload:
    """Import ``modules`` in a thread of its own, started at once."""

    def __init__(self, modules: Iterable[str]) -> None:
        self._modules = tuple(modules)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fusefs-preload", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for name in self._modules:
                importlib.import_module(name)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            self._failure = e

    def wait(self) -> None:
        """Return once every module is imported; raise what an import raised."""
        self._thread.join()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
