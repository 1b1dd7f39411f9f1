"""The stream commands of the ``fusefs`` CLI: ``fusefs encrypt IN OUT``, ``fusefs decrypt IN OUT``.

Registered on the group of :mod:`fusefs.cli`. Startup time matters (the
benchmark is ``age`` on 1 GiB), so the encrypt/decrypt path imports only
click and the native module, and ``--help``/``--version`` do not even load
the native module.

Password costs are options of ``encrypt`` (``--kdf-memory``, ``--kdf-passes``);
the stream header records them, so ``decrypt`` needs no such option.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from fusefs.cli.common import CONTEXT_SETTINGS, EPILOG, SizeType, kdf_kib, kdf_options, key_options
from fusefs.exitcodes import ExitCode, QuietError
from fusefs.password import MAX_PASSWORD_BYTES, read_password, read_small_file
from fusefs.password import isatty as _isatty

if TYPE_CHECKING:
    from fusefs import _native

T = TypeVar("T")

#: A progress bar is drawn only for regular input files larger than this.
PROGRESS_MIN_BYTES = 64 * 2**20
#: How often a running job is polled (progress, Ctrl-C).
POLL_SECONDS = 0.1
KEY_LEN = 32
PART_SUFFIX = ".fusefs-part"
CHECKPOINT_SUFFIX = ".fusefs-ckpt"


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
            click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
            click.option("--stats", is_flag=True, help="Print a telemetry summary to stderr."),
        ]
    ):
        f = option(f)
    return f


@click.command(epilog=EPILOG, context_settings=CONTEXT_SETTINGS)
@click.argument("src", metavar="IN")
@click.argument("dst", metavar="OUT")
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
@click.option("--compress", is_flag=True, help="Compress segments with zstd (v2 only).")
@click.option(
    "--compress-level",
    type=click.IntRange(1, 22),
    default=None,
    metavar="N",
    help="zstd level 1-22 (implies --compress). [default: 3]",
)
@kdf_options("32M", "stored in the header")
@_run_options
def encrypt(
    src: str,
    dst: str,
    passfile: str | None,
    keyfile: str | None,
    format_name: str,
    cipher: str,
    segment_size: int | None,
    compress: bool,
    compress_level: int | None,
    kdf_memory: int,
    kdf_passes: int,
    threads: int,
    resume: bool,
    quiet: bool,
    stats: bool,
) -> None:
    """Encrypt IN into the fusefs stream OUT.

    IN and OUT are file paths, or - for standard input / standard output.
    """
    _check_key_options(passfile, keyfile)
    in_size = _check_paths(src, dst, resume)
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
        "compress": compress or compress_level is not None,
    }
    if compress_level is not None:
        kwargs["compression_level"] = compress_level
    kwargs.update(argon2_m_kib=kdf_kib(kdf_memory), argon2_t=kdf_passes, argon2_p=1)
    params = _native.EncryptParams(**kwargs)
    key = _read_key(passfile, keyfile, src, confirm=True)
    _run(
        "encrypt",
        src,
        dst,
        key,
        params,
        threads=threads,
        resume=resume,
        progress=not quiet and in_size > PROGRESS_MIN_BYTES,
        stats=stats,
    )


@click.command(epilog=EPILOG, context_settings=CONTEXT_SETTINGS)
@click.argument("src", metavar="IN")
@click.argument("dst", metavar="OUT")
@key_options
@_run_options
def decrypt(
    src: str,
    dst: str,
    passfile: str | None,
    keyfile: str | None,
    threads: int,
    resume: bool,
    quiet: bool,
    stats: bool,
) -> None:
    """Decrypt the fusefs stream IN (v1 or v2) into OUT.

    IN and OUT are file paths, or - for standard input / standard output.
    OUT appears only after the whole stream verified. To standard output,
    plaintext is released segment by segment as each one verifies, and an
    error found later still gives a non-zero exit code.
    """
    _check_key_options(passfile, keyfile)
    in_size = _check_paths(src, dst, resume)
    key = _read_key(passfile, keyfile, src, confirm=False)
    _run(
        "decrypt",
        src,
        dst,
        key,
        None,
        threads=threads,
        resume=resume,
        progress=not quiet and in_size > PROGRESS_MIN_BYTES,
        stats=stats,
    )


# --- checks -----------------------------------------------------------------


def _check_key_options(passfile: str | None, keyfile: str | None) -> None:
    if passfile is not None and keyfile is not None:
        raise click.UsageError("--passfile and --keyfile are mutually exclusive")


def _check_paths(src: str, dst: str, resume: bool) -> int:
    """Reject what would fail later or destroy data; return IN's size if it is a regular file."""
    if resume and "-" in (src, dst):
        raise QuietError("--resume needs file paths for IN and OUT, not -", ExitCode.USAGE)
    size = 0
    if src != "-":
        try:
            st = os.stat(src)
        except OSError as e:
            raise QuietError(f"cannot open input {src}: {e.strerror}", ExitCode.IO) from e
        if stat.S_ISDIR(st.st_mode):
            raise QuietError(f"input {src} is a directory", ExitCode.IO)
        if stat.S_ISREG(st.st_mode):
            size = st.st_size
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
    return size


def _read_key(passfile: str | None, keyfile: str | None, src: str, *, confirm: bool) -> _native.Key:
    from fusefs._native import Key

    if keyfile is not None:
        data = read_small_file(keyfile, "key file")
        if len(data) != KEY_LEN:
            size = f"{len(data)} bytes" if len(data) < MAX_PASSWORD_BYTES else "more"
            raise QuietError(
                f"key file {keyfile} holds {size}; a key file must hold exactly "
                f"{KEY_LEN} raw bytes",
                ExitCode.USAGE,
            )
        return Key.from_raw(data)
    if passfile is None and src == "-":
        raise QuietError(
            "IN is standard input, so the password cannot be typed: use --passfile FILE "
            "or --keyfile FILE",
            ExitCode.USAGE,
        )
    password = read_password(
        passfile, None, confirm=confirm, sources="--passfile FILE or --keyfile FILE"
    )
    return Key.from_password(password)


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
    progress: bool,
    stats: bool,
) -> None:
    from fusefs import _native

    parallelism = (
        _native.ParallelismProfile.fixed(threads)
        if threads > 0
        else _native.ParallelismProfile.auto()
    )
    try:
        if src != "-" and dst != "-":
            if operation == "encrypt":
                job = _native.spawn_encrypt_path(src, dst, key, params, parallelism, resume)
            else:
                job = _native.spawn_decrypt_path(src, dst, key, parallelism, resume)
            bar = _ProgressBar(operation) if progress and _isatty(sys.stderr) else None
            snapshot = _wait_for_job(job, bar)
        elif operation == "encrypt":
            snapshot = _run_streams(_native.encrypt_file, src, dst, key, params, parallelism)
        else:
            snapshot = _run_streams(_native.decrypt_file, src, dst, key, parallelism)
    except KeyboardInterrupt:
        raise QuietError("interrupted" + _resume_hint(dst), ExitCode.INTERRUPTED) from None
    except (_native.FusefsError, OSError) as e:
        # As a QuietError, an EPIPE OSError is not swallowed by click either.
        from fusefs.errors import exit_code_for

        raise QuietError(_describe(e) + _resume_hint(dst), exit_code_for(e)) from e
    if stats and snapshot is not None:
        _print_stats(snapshot)


def _describe(e: BaseException) -> str:
    from fusefs._native import FusefsError

    if isinstance(e, OSError) and not isinstance(e, FusefsError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return str(e)


def _resume_hint(dst: str) -> str:
    if dst != "-" and os.path.exists(dst + CHECKPOINT_SUFFIX):
        return f" (partial output kept in {dst}{PART_SUFFIX}: continue with --resume)"
    return ""


def _wait_for_job(job: _native.Job, bar: _ProgressBar | None) -> _native.TelemetrySnapshot | None:
    """Wait in short slices so Ctrl-C (delivered between them) cancels the job."""
    try:
        while not job.done():
            job.wait(POLL_SECONDS)
            if bar is not None:
                bar.update(*job.progress())
        return job.wait()
    except KeyboardInterrupt:
        job.cancel()
        _wait_until_stopped(job)
        raise
    finally:
        if bar is not None:
            bar.close()


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


def _run_streams(
    function: Callable[..., _native.TelemetrySnapshot | None],
    src: str,
    dst: str,
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
    try:
        if dst == "-":
            sys.stdout.flush()
            result = _call_interruptibly(function, src_obj, sys.stdout.buffer, key, *args)
            sys.stdout.buffer.flush()
            return result
        part = dst + PART_SUFFIX
        try:
            dst_obj = open(part, "wb")  # noqa: SIM115
        except OSError as e:
            raise QuietError(f"cannot create output {part}: {e.strerror}", ExitCode.IO) from e
        try:
            with dst_obj:
                result = _call_interruptibly(function, src_obj, dst_obj, key, *args)
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


def _call_interruptibly(function: Callable[..., T], *args: Any) -> T:
    """Call ``function`` on a daemon thread so Ctrl-C reaches the main thread.

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
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class _ProgressBar:
    """One line on stderr, redrawn in place; cleared when the run ends."""

    WIDTH = 30

    def __init__(self, label: str) -> None:
        self.label = label
        self.start = time.monotonic()

    def update(self, done: int, total: int) -> None:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = done / elapsed / 2**20
        if total > 0:
            fraction = min(done / total, 1.0)
            filled = int(fraction * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            text = (
                f"{self.label} [{bar}] {fraction:4.0%} "
                f"{done / 2**20:,.0f}/{total / 2**20:,.0f} MiB {rate:,.0f} MiB/s"
            )
        else:
            text = f"{self.label} {done / 2**20:,.0f} MiB {rate:,.0f} MiB/s"
        sys.stderr.write(f"\r{text}\x1b[K")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


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
