"""The life of a mount: checks, the background daemon, serving, clean shutdown.

``fusefs mount`` checks what it can cheaply in front (mount point, vault
directory, password source), then forks. The child (the daemon) starts a new
session, opens the vault, mounts, and reports over a pipe either ``OK`` or
the one-line error and exit code that ended it; the parent prints that and
exits, so the command returns only once the mount is ready (or has failed).
Forking happens before any thread exists (trio, the engine's workers), which
is what makes it safe.

Shutdown is always the same path, whatever starts it (``fusefs umount``,
``fusermount3 -u``, SIGTERM/SIGINT/SIGHUP to the daemon, ``--idle``): the
kernel is asked to unmount first, so it writes back every dirty page
through this daemon; the FUSE loop then ends; background compaction stops;
the vault is compacted if that was requested; the vault is closed, which
makes everything durable; the daemon exits 0.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fusefs import control, daemonlog, mounttable
from fusefs.exitcodes import ExitCode, QuietError
from fusefs.reports import NEW_VAULT_NOTE, describe_compaction, describe_opening

if TYPE_CHECKING:
    from fusefs._native import Vault
    from fusefs.fs import VaultOperations

log = logging.getLogger("fusefs.mount")

#: Kernel read-ahead for the mount (KiB): big sequential reads arrive as
#: requests of up to 1 MiB instead of 128 KiB.
READ_AHEAD_KB = 1024
#: Writeback requests the kernel may have in flight at once.
MAX_BACKGROUND = 32
#: Share of the system's dirty-page limit this mount may use (%). The kernel
#: gives a FUSE mount 1 % by default (a few MiB), which throttles every
#: large write to a crawl; this daemon is trusted to write back promptly.
MAX_DIRTY_RATIO = 100
#: What only the daemon imports, while the vault opens (:func:`serve`).
SERVING_MODULES = ("trio", "pyfuse3", "fusefs.requestloop", "fusefs.fs")
#: How often compaction and the flush of unsynced changes are considered (ms).
COMPACTION_TICK_MS = 1000
FLUSH_INTERVAL_MS = 5000


@dataclass
class MountOptions:
    vault_dir: str
    mountpoint: str
    read_only: bool = False
    allow_other: bool = False
    idle_seconds: float | None = None
    log_file: str | None = None
    foreground: bool = False
    #: Mount flags for the kernel from ``-o`` (nosuid, nodev, noexec).
    kernel_flags: frozenset[str] = frozenset()


def check_mountpoint(mnt: str) -> None:
    """Refuse a mount point that is missing, not a directory, not empty, or mounted."""
    state = control.mount_state(mnt)
    if state == "missing":
        raise control.MountError(f"mount point {mnt} does not exist")
    if state == "not-dir":
        raise control.MountError(f"mount point {mnt} is not a directory")
    if state == "stale":
        raise control.MountError(
            f"mount point {mnt} is a dead mount (its daemon is gone); "
            f"run 'fusefs umount {mnt}' first",
            stale=True,
        )
    if state == "mounted":
        raise control.MountError(f"mount point {mnt} is already a mount point")
    try:
        with os.scandir(mnt) as entries:
            if next(entries, None) is not None:
                raise control.MountError(f"mount point {mnt} is not empty")
    except PermissionError:
        raise control.MountError(f"mount point {mnt}: permission denied") from None


def fuse_options(opts: MountOptions) -> set[str]:
    # df and /proc/mounts show the vault as the source (as gocryptfs does);
    # libfuse splits options at commas, so those are escaped.
    source = opts.vault_dir.replace("\\", "\\\\").replace(",", "\\,")
    options = {f"fsname={source}", "subtype=fusefs", "default_permissions", "noatime"}
    options.add("ro" if opts.read_only else "rw")
    if opts.allow_other:
        options.add("allow_other")
    return options | opts.kernel_flags


def mount(
    opts: MountOptions,
    open_vault: Callable[[], Vault],
    describe: Callable[[BaseException], tuple[str, ExitCode]],
) -> None:
    """Mount and serve in front (``opts.foreground``) or in a daemon; return when ready.

    ``open_vault`` opens the vault (in the daemon); ``describe`` turns an
    exception that ended startup into (one-line message, exit code).
    Raises :class:`QuietError` when the mount did not come up.
    """
    if opts.foreground:
        _configure_logging(opts, foreground=True)
        try:
            serve(opts, open_vault, on_ready=lambda: None)
        except QuietError:
            raise
        except BaseException as e:  # noqa: BLE001 - reported as one line
            raise QuietError(*describe(e)) from e
        return

    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything this process holds goes to the permanent generation, which
    # the daemon's garbage collector never walks: a walk writes to every
    # object, so every page the daemon shares with this process would be
    # copied (each copy a fault and, with the daemon's second thread, a TLB
    # flush on every CPU) while the daemon opens the vault.
    gc.freeze()
    pid = os.fork()
    if pid == 0:  # the daemon
        os.close(read_fd)
        code = _daemon(opts, open_vault, describe, write_fd)
        os._exit(code)
    os.close(write_fd)
    report = _read_all(read_fd)
    os.close(read_fd)
    if report.startswith(b"OK"):
        return
    if report.startswith(b"ERR "):
        _, code_text, message = report.decode("utf-8", "replace").rstrip("\n").split(" ", 2)
        raise QuietError(message, ExitCode(int(code_text)))  # type: ignore[call-arg]
    # Reap it if it is already gone, so no zombie outlives this process.
    os.waitpid(pid, os.WNOHANG)
    raise QuietError("the mount daemon exited during startup", ExitCode.ERROR)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


def _daemon(
    opts: MountOptions,
    open_vault: Callable[[], Vault],
    describe: Callable[[BaseException], tuple[str, ExitCode]],
    ready_fd: int,
) -> int:
    os.setsid()
    os.chdir("/")

    place: daemonlog.LogPlace | None = None

    def ready() -> None:
        os.write(ready_fd, b"OK\n")
        os.close(ready_fd)
        _detach_stdio(place.file if place is not None else None)

    try:
        place = _configure_logging(opts, foreground=False)
        serve(opts, open_vault, on_ready=ready)
        return 0
    except BaseException as e:  # noqa: BLE001 - the daemon reports, never raises
        message, code = (e.message, e.exit_code) if isinstance(e, QuietError) else describe(e)
        log.error("mount ended with an error: %s", message)
        if place is not None and code in (ExitCode.MOUNT, ExitCode.IO, ExitCode.ERROR):
            message += f" (log: {place.where})"
        try:
            os.write(ready_fd, f"ERR {code} {message}\n".encode())
            os.close(ready_fd)
        except OSError:  # already reported ready: this is a failure after startup
            pass
        return code


def _detach_stdio(log_file: str | None) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    if log_file is None:
        os.dup2(devnull, 2)
    else:
        fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(fd, 2)
        os.close(fd)
    os.close(devnull)


def _configure_logging(opts: MountOptions, *, foreground: bool) -> daemonlog.LogPlace:
    """Log where :mod:`fusefs.daemonlog` says; a log that cannot be opened ends the mount."""
    try:
        return daemonlog.configure(opts.vault_dir, opts.log_file, foreground=foreground)
    except daemonlog.LogError as e:
        raise control.MountError(str(e), exit_code=ExitCode.IO) from e


def serve(
    opts: MountOptions, open_vault: Callable[[], Vault], on_ready: Callable[[], None]
) -> None:
    """Open the vault, mount, call ``on_ready``, serve until unmounted, close cleanly.

    What serves the mount is imported in a thread while the vault opens (the
    command that forked this daemon imports none of it): see
    :mod:`fusefs.preload`.
    """
    from fusefs.preload import Preload

    preload = Preload(SERVING_MODULES)
    try:
        vault = open_vault()
    except BaseException:
        with contextlib.suppress(BaseException):
            preload.wait()  # the open's failure is the one to report
        raise
    try:
        preload.wait()
    except BaseException:
        vault.close()
        raise
    import trio

    trio.run(_serve, opts, vault, on_ready)


async def _serve(opts: MountOptions, vault: Vault, on_ready: Callable[[], None]) -> None:
    """The mount's life on one exit stack, as s3ql's: each resource registers
    its cleanup where it is acquired, so whatever ends the mount (the kernel's
    unmount, a crash of the loop, a failure half-way through startup) undoes
    exactly what was done, in reverse: the tasks and signal handlers end, the
    FUSE session closes (unmounting if the loop did not end by an unmount),
    background compaction stops, the vault is compacted if asked, and closed.
    """
    import pyfuse3
    import trio

    from fusefs import requestloop
    from fusefs.fs import VaultOperations

    # Resolved now: once mounted, looking at the mount point waits for this
    # daemon, which serves nothing until the loop runs.
    real_mountpoint = os.path.realpath(opts.mountpoint)
    async with contextlib.AsyncExitStack() as stack:
        _log_key_memory()
        opened = vault.bootstrap_report()
        for line in describe_opening(opened):
            log.warning("%s: %s", opts.vault_dir, line)
        for note in opened.get("local_state_notes", []):
            if str(note).endswith(NEW_VAULT_NOTE):
                log.info("%s: %s", opts.vault_dir, note)
        ops = VaultOperations(
            vault, opts.vault_dir, read_only=opts.read_only, in_flight=requestloop.in_flight
        )
        # What the end of the mount did, for `fusefs umount` (written last).
        end = _End()
        stack.callback(_report_end, ops, end)
        stack.callback(_close_vault, vault, end)
        stack.callback(_compact_at_unmount, vault, ops, end)
        # Background compaction stops only once the FUSE session is closed
        # (below), so a loop that crashed is unmounted first: stopping it is
        # registered before the session, and is a no-op if it never started.
        stack.callback(vault.stop_compaction)

        _init_session(ops, opts)
        unmounted = False

        def close_session() -> None:
            # After a normal end the kernel has already unmounted; after a
            # crash of the loop, unmount here so no dead mount is left behind.
            pyfuse3.close(unmount=not unmounted)

        stack.callback(close_session)

        if not opts.read_only:
            vault.start_compaction(COMPACTION_TICK_MS, FLUSH_INTERVAL_MS)
        log.info("mounted %s on %s", opts.vault_dir, opts.mountpoint)
        on_ready()

        # Signals are taken from here on (before any request is served); the
        # receiver outlives the task that reads it.
        signals = stack.enter_context(
            trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        )
        # The tasks beside the loop end with it.
        nursery = await stack.enter_async_context(trio.open_nursery())
        stack.callback(nursery.cancel_scope.cancel)
        nursery.start_soon(_tune_after_init, ops, real_mountpoint)
        nursery.start_soon(_unmount_on_signal, signals, opts.mountpoint)
        if opts.idle_seconds is not None:
            nursery.start_soon(_unmount_when_idle, ops, opts)
        requestloop.install()
        await pyfuse3.main()
        unmounted = True


def _log_key_memory() -> None:
    """Say where the keys are held: out of core dumps, and locked in RAM or not."""
    from fusefs import _native

    held = _native.secret_memory_status()
    if held["locked"] < held["pages"]:
        log.warning(
            "keys: %d of %d pages not locked in RAM (RLIMIT_MEMLOCK): they may be swapped out",
            held["pages"] - held["locked"],
            held["pages"],
        )
    else:
        log.info("keys: %d pages, locked in RAM and left out of core dumps", held["pages"])


def _init_session(ops: VaultOperations, opts: MountOptions) -> None:
    """``pyfuse3.init``, refused with the reason libfuse or fusermount3 gave.

    pyfuse3 says only "fuse_session_mount failed"; the reason (a non-root
    user's allow_other without user_allow_other in /etc/fuse.conf, no
    permission on /dev/fuse, ...) is what libfuse and the fusermount3 it runs
    print on fd 2, which for a daemon is no terminal the user sees. So fd 2
    is a temporary file during the call: its last line is quoted in the
    error, and all of it goes to the log.
    """
    import pyfuse3

    failure: RuntimeError | None = None
    with tempfile.TemporaryFile() as said:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(said.fileno(), 2)
        try:
            pyfuse3.init(ops, opts.mountpoint, fuse_options(opts))
        except RuntimeError as e:
            failure = e
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        said.seek(0)
        lines = [x.strip() for x in said.read().decode("utf-8", "replace").splitlines()]
    lines = [x for x in lines if x]
    for line in lines:
        log.warning("%s", line)
    if failure is not None:
        reason = lines[-1] if lines else str(failure)
        raise control.MountError(f"cannot mount on {opts.mountpoint}: {reason}")


@dataclass
class _End:
    """How the end of a mount went: the daemon's final report."""

    closed: bool = False
    compaction: dict[str, Any] | None = None
    error: str | None = None


def _close_vault(vault: Vault, end: _End) -> None:
    try:
        vault.close()
    except BaseException as e:
        end.error = end.error or f"closing the vault failed: {e}"
        raise
    end.closed = True
    log.info("vault closed")


def _compact_at_unmount(vault: Vault, ops: VaultOperations, end: _End) -> None:
    if ops.control.compact_at_unmount and not ops.read_only:
        try:
            report = vault.compact().to_dict()
        except BaseException as e:
            end.error = f"compaction failed: {e}"
            raise
        end.compaction = report
        log.info("compacted at unmount: %s", describe_compaction(report))


def _report_end(ops: VaultOperations, end: _End) -> None:
    ops.control.final_report(closed=end.closed, compaction=end.compaction, error=end.error)


async def _tune_after_init(ops: VaultOperations, mnt: str) -> None:
    """Tune the mount once the kernel's INIT is answered (its reply resets read-ahead)."""
    import trio

    await ops.initialized.wait()
    await trio.to_thread.run_sync(_tune_kernel, mnt)


async def _unmount_on_signal(signals: AsyncIterator[int], mnt: str) -> None:
    import trio

    async for signum in signals:
        log.info("signal %d: unmounting", signum)
        # Unmount through the kernel so dirty pages are written back
        # through this (still serving) daemon; lazily if files are open.
        try:
            await trio.to_thread.run_sync(control.kernel_unmount, mnt)
        except control.MountError:
            await trio.to_thread.run_sync(lambda: control.kernel_unmount(mnt, lazy=True))


async def _unmount_when_idle(ops: VaultOperations, opts: MountOptions) -> None:
    import trio

    assert opts.idle_seconds is not None
    period = max(0.05, min(opts.idle_seconds / 4, 5.0))
    while True:
        await trio.sleep(period)
        idle = time.monotonic() - ops.last_request
        if idle >= opts.idle_seconds and ops.open_handles == 0:
            log.info("idle for %.0f s: unmounting", idle)
            try:
                await trio.to_thread.run_sync(control.kernel_unmount, opts.mountpoint)
                return
            except control.MountError as e:  # busy (a process is inside): try later
                log.info("idle unmount refused: %s", e)


def _tune_kernel(mnt: str) -> None:
    """Raise read-ahead, dirty-page share and writeback concurrency of the mount on ``mnt``.

    Root only; best effort (a non-root mount keeps the kernel's defaults:
    128 KiB read-ahead and 1 % of the dirty-page limit, which slows large
    writes). The device number comes from the mount table: a stat() of the
    mount point could wait on this very daemon. /sys/fs/fuse/connections exists
    only where the fusectl file system is mounted.
    """
    if os.geteuid() != 0:
        # The files below belong to root: an ordinary user's mount keeps the
        # kernel's defaults (a warning each mount would be one they cannot act on).
        log.debug("not tuning the mount: only root may")
        return
    entry = mounttable.find(mnt)
    if entry is None:
        log.warning("cannot tune the mount: %s is not in /proc/self/mountinfo", mnt)
        return
    major, minor = entry.major, entry.minor
    bdi = f"/sys/class/bdi/{major}:{minor}"
    conn = f"/sys/fs/fuse/connections/{minor}"
    for path, value in (
        (f"{bdi}/read_ahead_kb", READ_AHEAD_KB),
        (f"{bdi}/max_ratio", MAX_DIRTY_RATIO),
        (f"{conn}/max_background", MAX_BACKGROUND),
    ):
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as e:
            log.log(
                logging.DEBUG if e.errno == errno.ENOENT else logging.WARNING,
                "cannot tune %s: %s",
                path,
                e,
            )
