"""The stream commands of the ``fusefs`` CLI: ``fusefs encrypt IN OUT``, ``fusefs decrypt IN OUT``.

Registered on the group of :mod:`fusefs.cli`. Startup time matters (the
benchmark is ``age`` on 1 GiB), so the encrypt/decrypt path imports only
click and the native module, and ``--help``/``--version`` do not even load
the native module.

Password costs are options of ``encrypt`` (``--kdf-memory``, ``--kdf-passes``);
the stream header records them, so ``decrypt`` needs no such option.

An existing OUT is replaced only with ``--force``, and so are the side files
of an interrupted run (:mod:`fusefs.cli.sidefiles`), which a fresh run would
otherwise truncate. The progress line is :mod:`fusefs.cli.progress`.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from fusefs.cli.common import (
    CONTEXT_SETTINGS,
    FILE,
    CompressCommand,
    SizeType,
    compress_option,
    expensive_kdf_option,
    kdf_hint,
    kdf_kib,
    kdf_options,
    key_options,
    quiet_option,
)
from fusefs.cli.progress import Progress
from fusefs.cli.sidefiles import SideFiles
from fusefs.exitcodes import ExitCode, QuietError, epilog
from fusefs.password import MAX_PASSWORD_BYTES, read_password, read_small_file, wipe
from fusefs.password import isatty as _isatty

if TYPE_CHECKING:
    from fusefs import _native

T = TypeVar("T")

#: How often a running job is polled (progress, Ctrl-C).
POLL_SECONDS = 0.1
KEY_LEN = 32
_STREAM_CODES = (
    ExitCode.WRONG_KEY,
    ExitCode.INTEGRITY,
    ExitCode.IO,
    ExitCode.RESUME,
    ExitCode.PASSWORD,
    ExitCode.EXISTS,
)


def _run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--threads",
                type=click.IntRange(min=0),
                default=0,
                metavar="N",
                help="Worker threads (0 = one per core).",
            ),
            click.option(
                "--resume",
                is_flag=True,
                help="Continue an interrupted v2 run from OUT.fusefs-part and OUT.fusefs-ckpt.",
            ),
            click.option(
                "-f",
                "--force",
                is_flag=True,
                help="Replace an existing OUT (and an interrupted run's side files).",
            ),
            quiet_option("no progress line on the terminal"),
            click.option("--stats", is_flag=True, help="Print a telemetry summary to stderr."),
        ]
    ):
        f = option(f)
    return f


@click.command(
    cls=CompressCommand, epilog=epilog(*_STREAM_CODES), context_settings=CONTEXT_SETTINGS
)
@click.argument("src", metavar="IN", type=FILE)
@click.argument("dst", metavar="OUT", type=FILE)
@key_options
@click.option(
    "--format",
    "format_name",
    type=click.Choice(["v1", "v2"]),
    default="v2",
    show_default=True,
    help="Stream format: v2 (parallel segments, resumable, compressible) or v1 (sequential).",
)
@click.option(
    "--cipher",
    type=click.Choice(["aes-256-gcm", "chacha20-poly1305"]),
    default="aes-256-gcm",
    show_default=True,
    help="AEAD cipher.",
)
@click.option(
    "--segment-size",
    type=SizeType(),
    default=None,
    metavar="SIZE",
    help="Plaintext bytes per segment (v2) or chunk (v1), e.g. 64K or 1M, between 4K "
    "and 16M. [default: 1M for v2, 64K for v1]",
)
@compress_option("Compress segments with zstd (v2 only).")
@click.option(
    "--compress-level",
    type=click.IntRange(1, 22),
    default=None,
    metavar="N",
    help="Old form of --compress zstd:N.",
)
@kdf_options("32M", "stored in the header")
@_run_options
def encrypt(
    src: str,
    dst: str,
    passfile: str | None,
    extpass: str | None,
    keyfile: str | None,
    format_name: str,
    cipher: str,
    segment_size: int | None,
    compress: int | None,
    compress_level: int | None,
    kdf_memory: int,
    kdf_passes: int,
    insecure_kdf: bool,
    threads: int,
    resume: bool,
    force: bool,
    quiet: bool,
    stats: bool,
) -> None:
    """Encrypt IN into the fusefs stream OUT.

    IN and OUT are file paths, or - for standard input / standard output.
    """
    _check_key_options(passfile, extpass, keyfile)
    _check_paths(src, dst, resume=resume, force=force)
    if dst == "-" and _isatty(sys.stdout):
        raise QuietError(
            "refusing to write ciphertext to a terminal: give an OUT path or redirect stdout",
            ExitCode.USAGE,
        )
    from fusefs import _native

    kwargs: dict[str, Any] = {
        "format": _native.Format.V1 if format_name == "v1" else _native.Format.V2,
        "cipher": (
            _native.Cipher.CHACHA20_POLY1305
            if cipher == "chacha20-poly1305"
            else _native.Cipher.AES_256_GCM
        ),
        "segment_size": segment_size,
    }
    level = compress_level if compress_level is not None else compress
    if level is not None:
        kwargs.update(compress=True, compression_level=level)
    # A raw key is not stretched: the floor is for passwords.
    m_kib = kdf_kib(kdf_memory, kdf_passes, insecure_kdf or keyfile is not None)
    kwargs.update(argon2_m_kib=m_kib, argon2_t=kdf_passes, argon2_p=1)
    params = _native.EncryptParams(**kwargs)
    key = _read_key(passfile, extpass, keyfile, src, confirm=True)
    _run("encrypt", src, dst, key, params, threads=threads, resume=resume, force=force,
         progress=not quiet, stats=stats)  # fmt: skip


@click.command(epilog=epilog(*_STREAM_CODES), context_settings=CONTEXT_SETTINGS)
@click.argument("src", metavar="IN", type=FILE)
@click.argument("dst", metavar="OUT", type=FILE)
@key_options
@expensive_kdf_option
@_run_options
def decrypt(
    src: str,
    dst: str,
    passfile: str | None,
    extpass: str | None,
    keyfile: str | None,
    threads: int,
    resume: bool,
    force: bool,
    quiet: bool,
    stats: bool,
) -> None:
    """Decrypt the fusefs stream IN (v1 or v2) into OUT.

    IN and OUT are file paths, or - for standard input / standard output.
    OUT appears only after the whole stream verified. To standard output,
    plaintext is released segment by segment as each one verifies, and an
    error found later still gives a non-zero exit code.
    """
    _check_key_options(passfile, extpass, keyfile)
    _check_paths(src, dst, resume=resume, force=force)
    key = _read_key(passfile, extpass, keyfile, src, confirm=False)
    _run("decrypt", src, dst, key, None, threads=threads, resume=resume, force=force,
         progress=not quiet, stats=stats)  # fmt: skip


# --- checks -----------------------------------------------------------------


def _check_key_options(passfile: str | None, extpass: str | None, keyfile: str | None) -> None:
    if keyfile is not None and (passfile is not None or extpass is not None):
        other = "--passfile" if passfile is not None else "--extpass"
        raise click.UsageError(f"{other} and --keyfile are mutually exclusive")


def _check_paths(src: str, dst: str, *, resume: bool, force: bool) -> None:
    """Reject what would fail later or destroy data (before any password is asked)."""
    if resume and "-" in (src, dst):
        raise QuietError("--resume needs file paths for IN and OUT, not -", ExitCode.USAGE)
    if src != "-":
        try:
            st = os.stat(src)
        except OSError as e:
            raise QuietError(f"cannot open input {src}: {e.strerror}", ExitCode.IO) from e
        if stat.S_ISDIR(st.st_mode):
            raise QuietError(f"input {src} is a directory", ExitCode.IO)
    if dst != "-":
        if os.path.isdir(dst):
            raise QuietError(f"output {dst} is a directory", ExitCode.IO)
        parent = os.path.dirname(dst) or "."
        if not os.path.isdir(parent):
            raise QuietError(
                f"cannot create output {dst}: directory {parent} does not exist", ExitCode.IO
            )
        if src != "-" and os.path.exists(dst) and os.path.samefile(src, dst):
            raise QuietError(f"IN and OUT are the same file ({dst})", ExitCode.USAGE)
        _check_overwrite(dst, resume=resume, force=force)


def _check_overwrite(dst: str, *, resume: bool, force: bool) -> None:
    """Refuse to replace OUT, or (without --resume) an interrupted run's files, unless --force."""
    if force:
        return
    if os.path.lexists(dst):
        raise QuietError(f"output {dst} exists: use --force to replace it", ExitCode.EXISTS)
    side = SideFiles.of(dst)
    if not resume and os.path.lexists(side.checkpoint):
        raise QuietError(
            f"{side.part} and {side.checkpoint} hold an interrupted run: continue it with "
            "--resume, or start over with --force",
            ExitCode.EXISTS,
        )


def _read_key(
    passfile: str | None, extpass: str | None, keyfile: str | None, src: str, *, confirm: bool
) -> _native.Key:
    from fusefs._native import Key

    if keyfile is not None:
        data = read_small_file(keyfile, "key file")
        try:
            if len(data) != KEY_LEN:
                size = f"{len(data)} bytes" if len(data) < MAX_PASSWORD_BYTES else "more"
                raise QuietError(
                    f"key file {keyfile} holds {size}; a key file must hold exactly "
                    f"{KEY_LEN} raw bytes",
                    ExitCode.USAGE,
                )
            return Key.from_raw(data)
        finally:
            wipe(data)
    sources = "--passfile FILE, --extpass CMD or --keyfile FILE"
    if passfile is None and extpass is None and src == "-":
        raise QuietError(
            f"IN is standard input, so the password cannot be typed: use {sources}",
            ExitCode.USAGE,
        )
    password = read_password(passfile, extpass, confirm=confirm, sources=sources)
    try:
        return Key.from_password(password)  # the Key keeps its own, zeroizing copy
    finally:
        wipe(password)


# --- running ----------------------------------------------------------------


def _run(
    operation: str,
    src: str,
    dst: str,
    key: _native.Key,
    params: _native.EncryptParams | None,
    *,
    threads: int,
    resume: bool,
    force: bool,
    progress: bool,
    stats: bool,
) -> None:
    from fusefs import _native

    parallelism = (
        _native.ParallelismProfile.fixed(threads)
        if threads > 0
        else _native.ParallelismProfile.auto()
    )
    side = SideFiles.of(dst) if dst != "-" else None
    if side is not None and force and not resume:
        side.remove()  # --force: the interrupted run is given up, not mixed into this one
    start = side.resume_offset() if side is not None and resume else 0
    shown = (
        Progress(operation, sys.stderr, start=start) if progress and _isatty(sys.stderr) else None
    )
    try:
        if side is not None and src != "-":
            # A refused --resume keeps both side files (the engine does).
            if operation == "encrypt":
                job = _native.spawn_encrypt_path(src, dst, key, params, parallelism, resume)
            else:
                job = _native.spawn_decrypt_path(src, dst, key, parallelism, resume)
            snapshot = _wait_for_job(job, shown)
        elif operation == "encrypt":
            snapshot = _run_streams(_native.encrypt_file, src, dst, shown, key, params, parallelism)
        else:
            snapshot = _run_streams(_native.decrypt_file, src, dst, shown, key, parallelism)
    except KeyboardInterrupt:
        _abort(shown)
        raise QuietError("interrupted" + _kept(side), ExitCode.INTERRUPTED) from None
    except (_native.FusefsError, OSError) as e:
        # As a QuietError, an EPIPE OSError is not swallowed by click either.
        from fusefs.errors import exit_code_for

        _abort(shown)
        raise QuietError(_describe(e) + kdf_hint(e) + _kept(side), exit_code_for(e)) from e
    except BaseException:
        _abort(shown)
        raise
    if shown is not None:
        shown.finish()
    if stats and snapshot is not None:
        _print_stats(snapshot)


def _abort(shown: Progress | None) -> None:
    if shown is not None:
        shown.abort()


def _describe(e: BaseException) -> str:
    from fusefs._native import FusefsError

    if isinstance(e, OSError) and not isinstance(e, FusefsError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return str(e)


def _kept(side: SideFiles | None) -> str:
    """What an error adds when an interrupted run's files are still there."""
    return side.kept_note() if side is not None else ""


def _wait_for_job(job: _native.Job, shown: Progress | None) -> _native.TelemetrySnapshot | None:
    """Wait in short slices so Ctrl-C (delivered between them) cancels the job."""
    try:
        while not job.done():
            job.wait(POLL_SECONDS)
            if shown is not None:
                shown.update(*job.progress())
        return job.wait()
    except KeyboardInterrupt:
        job.cancel()
        _wait_until_stopped(job)
        raise


def _wait_until_stopped(job: _native.Job) -> None:
    """After cancel(): let the engine remove or keep its side files before exiting."""
    from fusefs._native import FusefsError

    while True:
        try:
            job.wait()
        except KeyboardInterrupt:
            continue
        except FusefsError:
            pass
        return


class _CountingReader:
    """IN as the engine reads it, counting the bytes for the progress line."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data: bytes = self.raw.read(size)
        self.count += len(data)
        return data


def _run_streams(
    function: Callable[..., _native.TelemetrySnapshot | None],
    src: str,
    dst: str,
    shown: Progress | None,
    key: _native.Key,
    *args: Any,
) -> _native.TelemetrySnapshot | None:
    """Run a file-object function when IN or OUT is ``-``.

    A path OUT is still written aside and renamed into place on success, so a
    failed run leaves nothing at OUT (no resume: standard input cannot seek).
    """
    try:
        src_obj = sys.stdin.buffer if src == "-" else open(src, "rb")  # noqa: SIM115
    except OSError as e:
        raise QuietError(f"cannot open input {src}: {e.strerror}", ExitCode.IO) from e
    total = _regular_size(src_obj)
    counter = _CountingReader(src_obj)
    reader = counter if shown is not None else src_obj

    def poll() -> None:
        if shown is not None:
            shown.update(counter.count, total)

    try:
        if dst == "-":
            sys.stdout.flush()
            result = _call_interruptibly(poll, function, reader, sys.stdout.buffer, key, *args)
            sys.stdout.buffer.flush()
            return result
        part = SideFiles.of(dst).part
        try:
            dst_obj = open(part, "wb")  # noqa: SIM115
        except OSError as e:
            raise QuietError(f"cannot create output {part}: {e.strerror}", ExitCode.IO) from e
        try:
            with dst_obj:
                result = _call_interruptibly(poll, function, reader, dst_obj, key, *args)
                dst_obj.flush()
                os.fsync(dst_obj.fileno())
            os.replace(part, dst)
        except BaseException:
            _remove_quietly(part)
            raise
        return result
    finally:
        if src_obj is not sys.stdin.buffer:
            src_obj.close()


def _regular_size(f: Any) -> int | None:
    """The size of IN if it is a regular file (then the line has a bar and an ETA)."""
    try:
        st = os.fstat(f.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _call_interruptibly(poll: Callable[[], None], function: Callable[..., T], *args: Any) -> T:
    """Call ``function`` on a daemon thread so Ctrl-C reaches the main thread,
    calling ``poll`` between waits (the progress line).

    The file-object functions have no cancel(); on Ctrl-C the caller removes
    its partial output and :func:`fusefs.cli.main` ends the process with the thread still
    blocked (see there).
    """
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append((True, function(*args)))
        except BaseException as e:  # re-raised on the main thread
            outcome.append((False, e))

    thread = threading.Thread(target=target, name="fusefs-stream", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(POLL_SECONDS)
        poll()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _print_stats(s: _native.TelemetrySnapshot) -> None:
    mib = 2**20
    click.echo(
        f"fusefs: stats: {s.plaintext_bytes / mib:.1f} MiB plaintext "
        f"({s.bytes_in / mib:.1f} MiB in, {s.bytes_out / mib:.1f} MiB out) in "
        f"{s.elapsed_seconds:.3f} s = {s.throughput_mib_s:.1f} MiB/s",
        err=True,
    )
    click.echo(
        f"fusefs: stats: {s.segments} segments ({s.compressed_segments} compressed, "
        f"ratio {s.compression_ratio:.3f}), {s.workers} workers; crypto "
        f"{s.crypto_seconds:.3f} s, I/O {s.io_seconds:.3f} s, "
        f"compression {s.compression_seconds:.3f} s",
        err=True,
    )
