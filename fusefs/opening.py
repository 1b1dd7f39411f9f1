"""Opening the vault beside the daemon's own start-up.

A mount's start is two long waits in sequence: the engine opening the vault
(the password's key derivation, then loading the metadata: a few hundred
ms for a vault of 100,000 files) and Python loading what serves the mount
(trio, pyfuse3, the file system: ~50-150 ms). The engine lets go of the GIL
while it opens, so the two can overlap: :class:`Opening` starts the open in
a thread, the daemon imports meanwhile, and :meth:`Opening.result` waits for
the vault. The thread is started after the fork (a process must not fork
with a second thread running) and has ended before the FUSE loop starts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fusefs._native import Vault


class Opening:
    """``open_vault()`` running in a thread of its own, started at once."""

    def __init__(self, open_vault: Callable[[], Vault]) -> None:
        self._open = open_vault
        self._vault: Vault | None = None
        self._failure: BaseException | None = None
        self._taken = False
        self._thread = threading.Thread(target=self._run, name="fusefs-open", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._vault = self._open()
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            self._failure = e

    def result(self) -> Vault:
        """The open vault, once the open is done; raises what the open raised."""
        self._thread.join()
        self._taken = True
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        assert self._vault is not None
        return self._vault

    def abandon(self) -> None:
        """Start-up failed before :meth:`result` was called: wait for the
        open and close the vault it opened (its lock and unsynced state go
        with it, as after any failed start)."""
        if self._taken:
            return
        self._thread.join()
        self._taken = True
        if self._vault is not None:
            self._vault.close()
