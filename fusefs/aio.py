"""trio adapters of the native functions.

:func:`encrypt_path` and :func:`decrypt_path` start a native job (a Rust OS
thread) and wait for it on a trio worker thread. Cancelling the awaiting task
cancels the job and waits, shielded, until the Rust thread has stopped and
cleaned up after itself, then lets :class:`trio.Cancelled` propagate; the
engine's usual rules hold (nothing at ``dst``; a v2 run cancelled after a
checkpoint keeps its side files for ``resume=True``).

:func:`encrypt_file` and :func:`decrypt_file` run the blocking file-object
functions on a trio worker thread. They cannot be interrupted: a cancelled
task waits for the call to finish.

Both families take exactly the arguments of their synchronous counterparts in
:mod:`fusefs`.
"""

from __future__ import annotations

import inspect
import os
from typing import IO, TYPE_CHECKING

import trio

from fusefs import _native

if TYPE_CHECKING:
    from fusefs._native import EncryptParams, Job, Key, ParallelismProfile, TelemetrySnapshot

__all__ = ["decrypt_file", "decrypt_path", "encrypt_file", "encrypt_path"]

# trio 0.23 renamed ``cancellable`` to ``abandon_on_cancel``; accept both.
_ABANDON_ON_CANCEL = (
    "abandon_on_cancel"
    if "abandon_on_cancel" in inspect.signature(trio.to_thread.run_sync).parameters
    else "cancellable"
)
#: How often a cancelled job is checked while it winds down.
_STOP_POLL_SECONDS = 0.005


async def encrypt_path(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    key: Key,
    params: EncryptParams | None = None,
    parallelism: ParallelismProfile | None = None,
    resume: bool = False,
) -> TelemetrySnapshot:
    """Encrypt file ``src`` into ``dst``; see :func:`fusefs.encrypt_path`."""
    job = _native.spawn_encrypt_path(
        os.fspath(src), os.fspath(dst), key, params, parallelism, resume
    )
    return await _wait(job)


async def decrypt_path(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    key: Key,
    parallelism: ParallelismProfile | None = None,
    resume: bool = False,
    checkpoint_bytes: int = _native.DEFAULT_CHECKPOINT_BYTES,
) -> TelemetrySnapshot:
    """Decrypt file ``src`` into ``dst``; see :func:`fusefs.decrypt_path`."""
    job = _native.spawn_decrypt_path(
        os.fspath(src), os.fspath(dst), key, parallelism, resume, checkpoint_bytes
    )
    return await _wait(job)


async def encrypt_file(
    src_obj: IO[bytes],
    dst_obj: IO[bytes],
    key: Key,
    params: EncryptParams | None = None,
    parallelism: ParallelismProfile | None = None,
) -> TelemetrySnapshot:
    """Encrypt between binary file objects; see :func:`fusefs.encrypt_file`. Not cancellable."""
    result: TelemetrySnapshot = await trio.to_thread.run_sync(
        _native.encrypt_file, src_obj, dst_obj, key, params, parallelism
    )
    return result


async def decrypt_file(
    src_obj: IO[bytes],
    dst_obj: IO[bytes],
    key: Key,
    parallelism: ParallelismProfile | None = None,
) -> TelemetrySnapshot:
    """Decrypt between binary file objects; see :func:`fusefs.decrypt_file`. Not cancellable."""
    result: TelemetrySnapshot = await trio.to_thread.run_sync(
        _native.decrypt_file, src_obj, dst_obj, key, parallelism
    )
    return result


async def _wait(job: Job) -> TelemetrySnapshot:
    """Await a job; on cancellation stop it before letting the cancellation through."""
    try:
        result: TelemetrySnapshot | None = await trio.to_thread.run_sync(
            job.wait, **{_ABANDON_ON_CANCEL: True}
        )
    except BaseException:
        if not job.done():
            # trio.Cancelled (or KeyboardInterrupt): the abandoned worker thread
            # is still in job.wait() and returns once the job stops.
            job.cancel()
            with trio.CancelScope(shield=True):
                while not job.done():
                    await trio.sleep(_STOP_POLL_SECONDS)
        raise
    if result is None:  # wait() without a timeout only returns on completion
        raise RuntimeError("job.wait() returned no telemetry")
    return result
