"""The ``fusefs`` command line, run as a subprocess (``python -m fusefs``)."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from support import KEY, OTHER_KEY, PASSWORD, S, flip, mixed_data, side_files

from fusefs import cli
from fusefs.exitcodes import ExitCode

MiB = 2**20


def fast_kdf(args: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The command line, with cheap Argon2id costs for encrypt (tests only)."""
    argv = [str(a) for a in args]
    if argv and argv[0] == "encrypt":
        argv[1:1] = ["--kdf-memory", "64K", "--kdf-passes", "1", "--insecure-kdf"]
    return argv


def fusefs(
    *args: str | os.PathLike[str], stdin: bytes | None = None, **env: str
) -> subprocess.CompletedProcess[bytes]:
    environ = {k: v for k, v in os.environ.items() if k != "FUSEFS_DEBUG"}
    environ.update(**env)
    kwargs: dict[str, Any] = (
        {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    )
    return subprocess.run(
        [sys.executable, "-m", "fusefs", *fast_kdf(args)],
        capture_output=True,
        env=environ,
        timeout=60,
        check=False,
        **kwargs,
    )


def ok(r: subprocess.CompletedProcess[bytes]) -> subprocess.CompletedProcess[bytes]:
    assert (r.returncode, r.stderr.decode()) == (0, ""), r.stderr.decode()
    return r


def error_line(r: subprocess.CompletedProcess[bytes], code: int) -> str:
    """Assert a failed run: the exit code, exactly one stderr line, no traceback, no stdout."""
    stderr = r.stderr.decode()
    assert r.returncode == code, stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("fusefs: error: "), stderr
    return lines[0]


def listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """tmp_path with ``plain`` (3S+7 mixed bytes), ``key``, ``otherkey``, ``pw``, ``otherpw``."""
    (tmp_path / "plain").write_bytes(mixed_data(3 * S + 7))
    (tmp_path / "key").write_bytes(KEY)
    (tmp_path / "otherkey").write_bytes(OTHER_KEY)
    (tmp_path / "pw").write_bytes(PASSWORD + b"\n")
    (tmp_path / "otherpw").write_bytes(b"something else\n")
    return tmp_path


BASE = ["key", "otherkey", "otherpw", "plain", "pw"]


# ---------------------------------------------------------------------------
# Help and version
# ---------------------------------------------------------------------------


E = ExitCode
ALWAYS = {E.OK, E.ERROR, E.USAGE, E.INTERRUPTED}
STREAM = ALWAYS | {E.WRONG_KEY, E.INTEGRITY, E.IO, E.RESUME, E.PASSWORD, E.EXISTS}
#: The exit codes each command can return, from reading each one's refusals.
CODES: dict[str, set[ExitCode]] = {
    "": set(ExitCode),
    "encrypt": STREAM,
    "decrypt": STREAM,
    "init": ALWAYS | {E.IO, E.PASSWORD},
    "mount": ALWAYS | {E.WRONG_KEY, E.INTEGRITY, E.IO, E.MOUNT, E.PASSWORD},
    "umount": ALWAYS | {E.IO, E.MOUNT},
    "info": ALWAYS | {E.INTEGRITY, E.IO},
    "passwd": ALWAYS | {E.WRONG_KEY, E.INTEGRITY, E.IO, E.PASSWORD},
    "masterkey": ALWAYS | {E.WRONG_KEY, E.INTEGRITY, E.IO, E.MOUNT, E.PASSWORD},
    "stats": ALWAYS | {E.IO, E.MOUNT},
}


@pytest.mark.parametrize("command", list(CODES), ids=[c or "top" for c in CODES])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_the_exit_codes_of_its_command(command: str, flag: str) -> None:
    r = ok(fusefs(*([command] if command else []), flag))
    out = r.stdout.decode()
    assert out.startswith("Usage: fusefs")
    listed = out[out.index("Exit codes:") :]
    for code in ExitCode:
        line = f"\n    {code.value:<4} {code.__doc__}\n"
        assert (line in listed) == (code in CODES[command]), code
    if command == "encrypt":
        for option in (
            "--passfile",
            "--extpass",
            "--keyfile",
            "--format",
            "--cipher",
            "--segment-size",
            "--compress",
            "--compress-level",
            "--threads",
            "--resume",
            "--force",
            "--quiet",
            "--stats",
        ):
            assert option in out
    if command == "decrypt":
        assert "--extpass" in out and "--force" in out and "--format" not in out


def test_version() -> None:
    r = ok(fusefs("--version"))
    assert r.stdout.decode() == f"fusefs {version('fusefs')}\n"


def test_no_command_shows_usage() -> None:
    r = fusefs()
    assert r.returncode == ExitCode.USAGE
    assert r.stderr.decode().startswith("Usage: fusefs")


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        ["encrypt", "only-in"],
        ["encrypt", "a", "b", "--bogus"],
        ["decrypt", "a", "b", "--format", "v1"],
        ["encrypt", "a", "b", "--format", "v3"],
        ["encrypt", "a", "b", "--threads", "-1"],
    ],
)
def test_usage_errors_are_one_line(args: list[str]) -> None:
    error_line(fusefs(*args), ExitCode.USAGE)


@pytest.mark.parametrize("command", [[], ["encrypt"], ["decrypt"], ["masterkey"]])
def test_help_does_not_load_the_native_module(command: list[str]) -> None:
    code = (
        f"import sys; from fusefs.cli import run; run({[*command, '--help']!r});"
        "print('fusefs._native' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert r.stdout.decode().splitlines()[-1] == "False"


def test_import_is_cheap() -> None:
    code = (
        "import sys, fusefs; print(sorted(m for m in"
        " ('trio', 'click', 'fusefs._native', 'importlib.metadata') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert r.stdout.decode().strip() == "[]"


def test_encrypt_path_imports_neither_trio_nor_metadata(files: Path) -> None:
    code = (
        "import sys, fusefs.cli as c; c.run(sys.argv[1:]);"
        "print(sorted(m for m in ('trio', 'importlib.metadata') if m in sys.modules))"
    )
    args = ["encrypt", "--keyfile", files / "key", files / "plain", files / "enc"]
    r = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, check=True
    )
    assert r.stdout.decode().strip() == "[]"
    assert (files / "enc").exists()


# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------


def header(path: Path) -> tuple[int, int, int, int, int]:
    """(version, cipher, key source, flags, segment size) of a stream file."""
    version_, cipher, source, flags, _hl, seg = struct.unpack_from("<BBBBHI", path.read_bytes(), 6)
    return version_, cipher, source, flags, seg


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"", b"\nsecond line\n"])
def test_passfile_round_trip(files: Path, ending: bytes) -> None:
    (files / "pw2").write_bytes(PASSWORD + ending)
    ok(fusefs("encrypt", "--passfile", files / "pw2", files / "plain", files / "enc"))
    assert header(files / "enc") == (2, 1, 1, 0, MiB)
    assert struct.unpack_from("<III", (files / "enc").read_bytes(), 48) == (64, 1, 1)
    r = ok(fusefs("decrypt", "--passfile", files / "pw", files / "enc", files / "dec"))
    assert r.stdout == b""
    assert (files / "dec").read_bytes() == (files / "plain").read_bytes()
    assert listing(files) == sorted([*BASE, "dec", "enc", "pw2"])


def test_keyfile_v1_chacha(files: Path) -> None:
    ok(
        fusefs(
            "encrypt",
            "--keyfile",
            files / "key",
            "--format",
            "v1",
            "--cipher",
            "chacha20-poly1305",
            files / "plain",
            files / "enc",
        )
    )
    assert header(files / "enc") == (1, 2, 2, 0, 64 * 1024)
    ok(fusefs("decrypt", "--keyfile", files / "key", files / "enc", files / "dec"))
    assert (files / "dec").read_bytes() == (files / "plain").read_bytes()


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4096", 4096),
        ("4K", 4096),
        ("64k", 65536),
        ("64KiB", 65536),
        ("1M", MiB),
        ("16M", 16 * MiB),
    ],
)
def test_segment_size(files: Path, text: str, size: int) -> None:
    ok(
        fusefs(
            "encrypt",
            "--keyfile",
            files / "key",
            "--segment-size",
            text,
            files / "plain",
            files / "enc",
        )
    )
    assert header(files / "enc")[4] == size
    ok(fusefs("decrypt", "--keyfile", files / "key", files / "enc", files / "dec"))
    assert (files / "dec").read_bytes() == (files / "plain").read_bytes()


@pytest.mark.parametrize("text", ["12X", "K", "1.5M", "100", "32M"])
def test_bad_segment_size(files: Path, text: str) -> None:
    r = fusefs(
        "encrypt",
        "--keyfile",
        files / "key",
        "--segment-size",
        text,
        files / "plain",
        files / "enc",
    )
    error_line(r, ExitCode.USAGE)
    assert listing(files) == BASE


@pytest.mark.parametrize("level", [None, "1", "19"])
def test_compress(files: Path, level: str | None) -> None:
    (files / "plain").write_bytes(b"compressible " * 100_000)
    args = ["--compress-level", level] if level else ["--compress"]
    ok(fusefs("encrypt", "--keyfile", files / "key", *args, files / "plain", files / "enc"))
    assert header(files / "enc")[3] == 1  # flags: zstd
    assert (files / "enc").stat().st_size < 50_000
    ok(fusefs("decrypt", "--keyfile", files / "key", files / "enc", files / "dec"))
    assert (files / "dec").read_bytes() == (files / "plain").read_bytes()


def test_compress_needs_v2(files: Path) -> None:
    r = fusefs(
        "encrypt",
        "--keyfile",
        files / "key",
        "--compress",
        "--format",
        "v1",
        files / "plain",
        files / "enc",
    )
    assert "v2" in error_line(r, ExitCode.USAGE)
    assert listing(files) == BASE


@pytest.mark.parametrize("threads", ["0", "1", "3"])
def test_threads_and_stats(files: Path, threads: str) -> None:
    r = fusefs(
        "encrypt",
        "--keyfile",
        files / "key",
        "--threads",
        threads,
        "--segment-size",
        "4K",
        "--stats",
        files / "plain",
        files / "enc",
    )
    assert r.returncode == 0 and r.stdout == b""
    stats = r.stderr.decode()
    assert "MiB/s" in stats and "4 segments" in stats
    workers = int(threads) if threads != "0" else os.cpu_count()
    assert f"{workers} workers" in stats
    r = ok(
        fusefs(
            "decrypt",
            "--keyfile",
            files / "key",
            "--threads",
            threads,
            "--quiet",
            files / "enc",
            files / "dec",
        )
    )
    assert (files / "dec").read_bytes() == (files / "plain").read_bytes()


@pytest.mark.parametrize("command", ["encrypt", "decrypt"])
def test_replaces_an_existing_output_only_with_force(files: Path, command: str) -> None:
    src = files / "plain"
    if command == "decrypt":
        src = encrypted(files, "--keyfile", str(files / "key"))
    out = files / "out"
    out.write_bytes(b"old")
    r = fusefs(command, "--keyfile", files / "key", src, out)
    line = error_line(r, ExitCode.EXISTS)
    assert line == f"fusefs: error: output {out} exists: use --force to replace it"
    assert out.read_bytes() == b"old"
    ok(fusefs(command, "--keyfile", files / "key", "--force", src, out))
    assert out.read_bytes() != b"old"
    if command == "encrypt":
        ok(fusefs("decrypt", "--keyfile", files / "key", out, files / "dec"))
        assert (files / "dec").read_bytes() == src.read_bytes()
    else:
        assert out.read_bytes() == (files / "plain").read_bytes()
    # To standard output nothing is replaced: no --force needed.
    ok(fusefs(command, "--keyfile", files / "key", src, "-"))


# ---------------------------------------------------------------------------
# Standard input and output
# ---------------------------------------------------------------------------


def test_stdin_to_stdout(files: Path) -> None:
    data = (files / "plain").read_bytes()
    enc = ok(fusefs("encrypt", "--keyfile", files / "key", "-", "-", stdin=data)).stdout
    assert enc[:6] == b"fusefs" and len(enc) > len(data)
    dec = ok(fusefs("decrypt", "--keyfile", files / "key", "-", "-", stdin=enc)).stdout
    assert dec == data
    assert listing(files) == BASE


def test_path_to_stdout_and_stdin_to_path(files: Path) -> None:
    data = (files / "plain").read_bytes()
    enc = ok(
        fusefs("encrypt", "--passfile", files / "pw", "--format", "v1", files / "plain", "-")
    ).stdout
    ok(fusefs("decrypt", "--passfile", files / "pw", "-", files / "dec", stdin=enc))
    assert (files / "dec").read_bytes() == data
    (files / "enc").write_bytes(enc)
    assert ok(fusefs("decrypt", "--passfile", files / "pw", files / "enc", "-")).stdout == data
    ok(fusefs("encrypt", "--passfile", files / "pw", "-", files / "enc2", stdin=data))
    assert ok(fusefs("decrypt", "--passfile", files / "pw", files / "enc2", "-")).stdout == data
    assert listing(files) == sorted([*BASE, "dec", "enc", "enc2"])


def test_stdin_needs_passfile_or_keyfile(files: Path) -> None:
    line = error_line(fusefs("encrypt", "-", files / "enc", stdin=b"data"), ExitCode.USAGE)
    assert "--passfile" in line and "--keyfile" in line
    error_line(fusefs("decrypt", "-", "-", stdin=b"data"), ExitCode.USAGE)
    assert listing(files) == BASE


def test_stdin_failure_leaves_no_output(files: Path) -> None:
    enc = ok(fusefs("encrypt", "--keyfile", files / "key", files / "plain", "-")).stdout
    r = fusefs("decrypt", "--keyfile", files / "key", "-", files / "dec", stdin=enc[:-1])
    assert "truncated" in error_line(r, ExitCode.INTEGRITY)
    r = fusefs("decrypt", "--keyfile", files / "key", "-", "-", stdin=enc[:-1])
    error_line(r, ExitCode.INTEGRITY)
    assert listing(files) == BASE


def test_refuses_ciphertext_to_a_terminal(files: Path) -> None:
    primary, secondary = os.openpty()
    try:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "fusefs",
                "encrypt",
                "--keyfile",
                str(files / "key"),
                str(files / "plain"),
                "-",
            ],
            stdin=subprocess.DEVNULL,
            stdout=secondary,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(secondary)
        os.close(primary)
    assert r.returncode == ExitCode.USAGE
    assert r.stderr.decode().startswith("fusefs: error: refusing")


def test_closed_stdout(files: Path) -> None:
    """``fusefs decrypt big -`` into a reader that goes away: one line, no traceback."""
    (files / "plain").write_bytes(os.urandom(8 * MiB))
    ok(fusefs("encrypt", "--keyfile", files / "key", files / "plain", files / "enc"))
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fusefs",
            "decrypt",
            "--keyfile",
            str(files / "key"),
            str(files / "enc"),
            "-",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stderr is not None
    p.stdout.read(1000)
    p.stdout.close()
    stderr = p.stderr.read().decode()
    assert p.wait(60) == ExitCode.IO
    assert "Traceback" not in stderr and len(stderr.splitlines()) == 1, stderr


# ---------------------------------------------------------------------------
# Every bad input: one line, the right exit code, nothing left behind
# ---------------------------------------------------------------------------


def encrypted(files: Path, *args: str) -> Path:
    ok(fusefs("encrypt", *args, "--segment-size", "4K", files / "plain", files / "enc"))
    return files / "enc"


def test_wrong_password(files: Path) -> None:
    encrypted(files, "--passfile", str(files / "pw"))
    r = fusefs("decrypt", "--passfile", files / "otherpw", files / "enc", files / "dec")
    assert "wrong password or key" in error_line(r, ExitCode.WRONG_KEY)
    assert listing(files) == sorted([*BASE, "enc"])


def test_wrong_key(files: Path) -> None:
    encrypted(files, "--keyfile", str(files / "key"))
    r = fusefs("decrypt", "--keyfile", files / "otherkey", files / "enc", files / "dec")
    assert "wrong password or key" in error_line(r, ExitCode.WRONG_KEY)
    r = fusefs("decrypt", "--passfile", files / "pw", files / "enc", files / "dec")
    error_line(r, ExitCode.WRONG_KEY)
    assert listing(files) == sorted([*BASE, "enc"])


@pytest.mark.parametrize("fmt", ["v1", "v2"])
@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda s: flip(s, len(s) // 2), "authentication"),
        # v1 has no lengths: a cut or lengthened last chunk just fails to open.
        (lambda s: s[:-1], ("authentication", "truncated")),
        (lambda s: s[: len(s) // 2], ("authentication", "truncated")),
        # Cut after the first whole chunk (v1: S + tag) or frame (v2: S + 58).
        (lambda s: s[: 108 + S + (16 if s[6] == 1 else 58)], "truncated"),
        (lambda s: s + b"\x00", ("authentication", "trailing data")),
        (lambda s: s[:6] + b"\x07" + s[7:], "unsupported version"),
        (lambda s: b"PK\x03\x04" + s[4:], "not a fusefs stream"),
        (lambda s: b"", "truncated header"),
    ],
    ids=["flipped", "cut-1", "cut-half", "cut-segment", "appended", "version", "magic", "empty"],
)
def test_damaged_stream(files: Path, fmt: str, damage: Any, words: str | tuple[str, str]) -> None:
    enc = encrypted(files, "--keyfile", str(files / "key"), "--format", fmt)
    enc.write_bytes(damage(enc.read_bytes()))
    (files / "dec").write_bytes(b"previous")
    r = fusefs("decrypt", "--keyfile", files / "key", "--force", enc, files / "dec")
    if isinstance(words, tuple):
        words = words[0] if fmt == "v1" else words[1]
    assert words in error_line(r, ExitCode.INTEGRITY)
    assert (files / "dec").read_bytes() == b"previous"
    assert listing(files) == sorted([*BASE, "dec", "enc"])


def test_missing_input(files: Path) -> None:
    for command in ("encrypt", "decrypt"):
        r = fusefs(command, "--keyfile", files / "key", files / "missing", files / "out")
        line = error_line(r, ExitCode.IO)
        assert "missing" in line and "No such file" in line
    assert listing(files) == BASE


def test_input_is_a_directory(files: Path) -> None:
    r = fusefs("encrypt", "--keyfile", files / "key", files, files / "out")
    assert "directory" in error_line(r, ExitCode.IO)


@pytest.mark.parametrize("out", ["no/such/dir/out", "/proc/fusefs-test-out", "."])
def test_unwritable_output(files: Path, out: str) -> None:
    target = out if out.startswith("/") else str(files / out)
    r = fusefs("encrypt", "--keyfile", files / "key", files / "plain", target)
    error_line(r, ExitCode.IO)
    assert listing(files) == BASE


def test_bad_key_file(files: Path) -> None:
    for size in (0, 31, 33, 5000):
        (files / "badkey").write_bytes(b"k" * size)
        r = fusefs("encrypt", "--keyfile", files / "badkey", files / "plain", files / "enc")
        assert "32" in error_line(r, ExitCode.USAGE)
    r = fusefs("encrypt", "--keyfile", files / "nokey", files / "plain", files / "enc")
    assert "nokey" in error_line(r, ExitCode.IO)
    assert listing(files) == sorted([*BASE, "badkey"])


def test_bad_password_file(files: Path) -> None:
    r = fusefs("encrypt", "--passfile", files / "nopw", files / "plain", files / "enc")
    assert "nopw" in error_line(r, ExitCode.IO)
    (files / "emptypw").write_bytes(b"\nsecond\n")
    r = fusefs("encrypt", "--passfile", files / "emptypw", files / "plain", files / "enc")
    assert "empty" in error_line(r, ExitCode.USAGE)
    assert listing(files) == sorted([*BASE, "emptypw"])


def test_passfile_and_keyfile_exclusive(files: Path) -> None:
    r = fusefs(
        "encrypt",
        "--passfile",
        files / "pw",
        "--keyfile",
        files / "key",
        files / "plain",
        files / "enc",
    )
    assert "mutually exclusive" in error_line(r, ExitCode.USAGE)


def test_no_password_source_without_tty(files: Path) -> None:
    for command in ("encrypt", "decrypt"):
        r = fusefs(command, files / "plain", files / "out")
        line = error_line(r, ExitCode.USAGE)
        assert "not a terminal" in line and "--passfile" in line
    assert listing(files) == BASE


def test_in_equals_out(files: Path) -> None:
    before = (files / "plain").read_bytes()
    os.symlink("plain", files / "link")
    for out in (files / "plain", f"{files}/./plain", files / "link"):
        r = fusefs("encrypt", "--keyfile", files / "key", files / "plain", out)
        assert "same file" in error_line(r, ExitCode.USAGE)
    assert (files / "plain").read_bytes() == before
    assert listing(files) == sorted([*BASE, "link"])


def test_resume_needs_something_to_resume(files: Path) -> None:
    r = fusefs("encrypt", "--keyfile", files / "key", "--resume", files / "plain", files / "enc")
    assert "resume" in error_line(r, ExitCode.RESUME)
    r = fusefs("encrypt", "--keyfile", files / "key", "--resume", "-", files / "enc", stdin=b"x")
    error_line(r, ExitCode.USAGE)
    assert listing(files) == BASE


def test_internal_error_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    def boom(*_args: Any, **_kw: Any) -> None:
        raise RuntimeError("boom\nsecond line")

    from fusefs.cli import stream  # imported by the group only when a command runs

    monkeypatch.setattr(stream, "_check_paths", boom)
    monkeypatch.delenv("FUSEFS_DEBUG", raising=False)
    assert cli.run(["decrypt", "--keyfile", "k", "a", "b"]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert err == "fusefs: internal error: RuntimeError: boom second line\n"
    monkeypatch.setenv("FUSEFS_DEBUG", "1")
    assert cli.run(["decrypt", "--keyfile", "k", "a", "b"]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert err.startswith("fusefs: internal error: RuntimeError") and "Traceback" in err


# ---------------------------------------------------------------------------
# Ctrl-C and --resume
# ---------------------------------------------------------------------------


def interrupt_after_checkpoint(args: list[str | Path], checkpoint: Path) -> str:
    """Start ``fusefs *args``, send SIGINT once ``checkpoint`` exists; return its error line."""
    environ = dict(os.environ)
    p = subprocess.Popen(
        [sys.executable, "-m", "fusefs", *fast_kdf(args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
    )
    deadline = time.monotonic() + 30
    while not checkpoint.exists():
        assert p.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    line = error_line(r, ExitCode.INTERRUPTED)
    assert "interrupted" in line and "--resume" in line
    return line


@pytest.mark.parametrize("command", ["encrypt", "decrypt"])
def test_interrupt_and_resume(tmp_path: Path, command: str) -> None:
    # Checkpoints come every 64 MiB: the input must be well above that.
    # A sparse file of zeros reads fast and needs no disk.
    plain, enc, dec = tmp_path / "plain", tmp_path / "enc", tmp_path / "dec"
    with open(plain, "wb") as f:
        f.truncate(384 * MiB)
    (tmp_path / "key").write_bytes(KEY)
    key: list[str | Path] = ["--keyfile", tmp_path / "key"]
    if command == "encrypt":
        src, dst = plain, enc
    else:
        ok(fusefs("encrypt", *key, plain, enc))
        src, dst = enc, dec
    part, ckpt = side_files(dst)
    interrupt_after_checkpoint([command, *key, "--threads", "1", src, dst], ckpt)
    assert part.exists() and ckpt.exists() and not dst.exists()

    ok(fusefs(command, *key, "--resume", src, dst))
    assert not part.exists() and not ckpt.exists()
    if command == "encrypt":
        ok(fusefs("decrypt", *key, enc, dec))
    with open(dec, "rb") as f:
        while block := f.read(16 * MiB):
            assert block.count(0) == len(block)
    assert dec.stat().st_size == 384 * MiB


def test_ctrl_c_while_reading_stdin(tmp_path: Path) -> None:
    """The file-object path has no cancel(): Ctrl-C still ends the run, leaving nothing."""
    (tmp_path / "key").write_bytes(KEY)
    out = tmp_path / "enc"
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fusefs",
            "encrypt",
            "--keyfile",
            str(tmp_path / "key"),
            "-",
            str(out),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdin is not None
    p.stdin.write(b"x" * 100_000)  # and never close: the run waits for more
    p.stdin.flush()
    deadline = time.monotonic() + 30
    while not side_files(out)[0].exists():
        assert p.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=30)
    r = subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)
    assert error_line(r, ExitCode.INTERRUPTED) == "fusefs: error: interrupted"
    assert listing(tmp_path) == ["key"]


# ---------------------------------------------------------------------------
# Terminals: password prompt, progress bar
# ---------------------------------------------------------------------------


class Terminal:
    """A child process whose stdin and stderr are a pseudo-terminal."""

    def __init__(
        self,
        *args: str | Path,
        cwd: Path,
        columns: int | None = None,
        stdout: int = subprocess.PIPE,
        stdout_is_terminal: bool = False,
    ) -> None:
        self.primary, secondary = os.openpty()
        if columns is not None:
            winsize = struct.pack("HHHH", 24, columns, 0, 0)
            fcntl.ioctl(self.primary, termios.TIOCSWINSZ, winsize)
        environ = dict(os.environ)
        # cwd is not the repository: let the child import this tree's fusefs.
        root = str(Path(__file__).resolve().parent.parent)
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fusefs", *fast_kdf(args)],
            stdin=secondary,
            stdout=secondary if stdout_is_terminal else stdout,
            stderr=secondary,
            cwd=cwd,
            env=environ,
        )
        os.close(secondary)
        self.output = b""

    def read_until(self, text: bytes, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert time.monotonic() < deadline, self.output
            ready, _, _ = select.select([self.primary], [], [], 0.1)
            if ready:
                self.output += os.read(self.primary, 4096)

    def type(self, line: bytes) -> None:
        os.write(self.primary, line + b"\n")

    def finish(self) -> int:
        code = self.process.wait(60)
        while True:  # drain what is left
            ready, _, _ = select.select([self.primary], [], [], 0.1)
            if not ready:
                break
            try:
                chunk = os.read(self.primary, 4096)
            except OSError:  # EIO once the child side is closed
                break
            if not chunk:
                break
            self.output += chunk
        os.close(self.primary)
        return code


def test_password_prompt(files: Path) -> None:
    t = Terminal("encrypt", "plain", "enc", cwd=files)
    t.read_until(b"Password:")
    t.type(PASSWORD)
    t.read_until(b"Repeat password:")
    t.type(PASSWORD)
    assert t.finish() == 0, t.output
    assert PASSWORD not in t.output  # not echoed
    ok(fusefs("decrypt", "--passfile", files / "pw", files / "enc", files / "dec"))
    assert (files / "dec").read_bytes() == (files / "plain").read_bytes()

    t = Terminal("decrypt", "enc", "dec2", cwd=files)
    t.read_until(b"Password:")
    t.type(b"wrong")
    assert t.finish() == ExitCode.WRONG_KEY
    assert b"Repeat" not in t.output and b"fusefs: error: wrong password or key" in t.output


def test_password_prompt_mismatch(files: Path) -> None:
    t = Terminal("encrypt", "plain", "enc", cwd=files)
    t.read_until(b"Password:")
    t.type(PASSWORD)
    t.read_until(b"Repeat password:")
    t.type(PASSWORD + b"!")
    assert t.finish() == ExitCode.PASSWORD
    assert b"fusefs: error: the two passwords typed differ" in t.output
    assert listing(files) == BASE


@pytest.mark.parametrize("command", ["encrypt", "decrypt"])
def test_empty_password_at_the_prompt_is_refused_with_a_reason(files: Path, command: str) -> None:
    # click.prompt alone would ask again without a word, for ever.
    t = Terminal(command, "plain", "out", cwd=files)
    t.read_until(b"Password:")
    t.type(b"")
    assert t.finish() == ExitCode.PASSWORD
    assert t.output.count(b"Password:") == 1
    assert b"fusefs: error: password is empty: nothing was typed" in t.output
    assert listing(files) == BASE


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_bar_on_a_terminal(tmp_path: Path, quiet: bool) -> None:
    # The line appears after a second: 1 GiB (sparse) to /dev/null takes longer.
    with open(tmp_path / "plain", "wb") as f:
        f.truncate(1024 * MiB)
    (tmp_path / "key").write_bytes(KEY)
    flags = ["--quiet"] if quiet else []
    t = Terminal(
        "encrypt", "--keyfile", "key", "--threads", "1", *flags, "plain", "-", cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    assert t.finish() == 0, t.output
    if quiet:
        assert t.output == b""
    else:
        assert b"encrypt [" in t.output and b"MiB/s" in t.output and b"ETA" in t.output
        # The line is replaced by a one-line summary: bytes, time, rate.
        *_, last = t.output.split(b"\r\x1b[K")
        assert re.fullmatch(rb"fusefs: encrypt: 1\.0 GiB in [\d.]+ s \([\d.]+ MiB/s\)\r\n", last)


def test_kdf_costs_are_options_recorded_in_the_header(tmp_path: Path) -> None:
    src, enc, out, pw = tmp_path / "p", tmp_path / "e", tmp_path / "o", tmp_path / "pw"
    src.write_bytes(b"secret")
    pw.write_bytes(PASSWORD + b"\n")
    args = [
        "encrypt",
        "--kdf-memory",
        "1M",
        "--kdf-passes",
        "2",
        "--insecure-kdf",
        "--passfile",
        pw,
        src,
        enc,
    ]
    r = subprocess.run([sys.executable, "-m", "fusefs", *map(str, args)], capture_output=True)
    assert (r.returncode, r.stderr) == (0, b"")
    header = enc.read_bytes()[:108]
    assert struct.unpack_from("<III", header, 48) == (1024, 2, 1)
    ok(fusefs("decrypt", "--passfile", pw, enc, out))
    assert out.read_bytes() == b"secret"
    bad = ["encrypt", "--kdf-memory", "1K", "--passfile", pw, src, tmp_path / "x"]
    r = subprocess.run([sys.executable, "-m", "fusefs", *map(str, bad)], capture_output=True)
    assert r.returncode == ExitCode.USAGE
    assert r.stderr.decode().splitlines() == [
        "fusefs: error: --kdf-memory must be between 8K and 4G"
    ]
    assert not (tmp_path / "x").exists()
