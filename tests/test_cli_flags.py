"""Flags that mean the same on every command: ``--compress zstd[:LEVEL]``,
``--extpass``, ``-q``; and shell completion of paths."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import KEY, PASSWORD
from test_cli import error_line, fusefs, ok

from fusefs.cli import cli
from fusefs.cli.common import bare_compress_as_zstd
from fusefs.exitcodes import ExitCode

ROOT = str(Path(__file__).resolve().parent.parent)
ENV = {"PYTHONPATH": ROOT}  # for runs whose cwd is not the repository


# --- shell completion ------------------------------------------------------------------


def complete(words: str, cwd: Path) -> list[tuple[str, str]]:
    """What ``fusefs`` offers bash for the last word of ``words``: (type, value) pairs."""
    env = {
        **os.environ,
        "_FUSEFS_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
        "PYTHONPATH": ROOT,
    }
    r = subprocess.run(
        [sys.executable, "-m", "fusefs"], env=env, cwd=cwd, capture_output=True, check=True
    )
    return [tuple(line.split(",", 1)) for line in r.stdout.decode().splitlines()]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("words", "kind"),
    [
        ("fusefs encrypt pl", "file"),
        ("fusefs encrypt plain ou", "file"),
        ("fusefs decrypt --keyfile ke", "file"),
        ("fusefs decrypt --passfile pw", "file"),
        ("fusefs init va", "dir"),
        ("fusefs mount vault mn", "dir"),
        ("fusefs mount vault mnt --log lo", "file"),
        ("fusefs umount mn", "dir"),
        ("fusefs info va", "dir"),
        ("fusefs passwd vault --new-passfile pw", "file"),
        ("fusefs masterkey va", "dir"),
        ("fusefs stats mn", "dir"),
    ],
)
def test_completion_leaves_paths_to_the_shell(tmp_path: Path, words: str, kind: str) -> None:
    """click's completion offers no file names for a plain string parameter:
    each path parameter tells the shell to complete a file or a directory."""
    assert complete(words, tmp_path) == [(kind, words.rsplit(" ", 1)[1])]


def test_completion_script_and_commands(tmp_path: Path) -> None:
    words = [value for _, value in complete("fusefs ", tmp_path)]
    assert {"encrypt", "decrypt", "init", "mount", "masterkey"} <= set(words)
    env = {**os.environ, "_FUSEFS_COMPLETE": "bash_source", "PYTHONPATH": ROOT}
    r = subprocess.run([sys.executable, "-m", "fusefs"], env=env, capture_output=True, check=True)
    assert b"complete -o nosort -F _fusefs_completion fusefs" in r.stdout


def test_path_types_keep_our_own_refusals(tmp_path: Path) -> None:
    r = fusefs("encrypt", "--keyfile", tmp_path / "nokey", tmp_path / "missing", tmp_path / "o")
    assert (
        error_line(r, ExitCode.IO)
        == f"fusefs: error: cannot open input {tmp_path / 'missing'}: No such file or directory"
    )
    r = fusefs("info", tmp_path / "missing")
    assert (
        error_line(r, ExitCode.IO) == f"fusefs: error: vault {tmp_path / 'missing'} does not exist"
    )


# --- --compress ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--compress", "in.txt", "out"], ["--compress=zstd", "in.txt", "out"]),
        (["--compress", "zstd:7", "in", "out"], ["--compress", "zstd:7", "in", "out"]),
        (["--compress", "ZSTD", "a"], ["--compress", "ZSTD", "a"]),
        (["--compress", "none", "a"], ["--compress", "none", "a"]),
        (["a", "b", "--compress"], ["a", "b", "--compress=zstd"]),
        (["--compress", "--threads", "2"], ["--compress=zstd", "--threads", "2"]),
        (["--compress", "-", "o"], ["--compress=zstd", "-", "o"]),
        (["--compress", "./x", "o"], ["--compress=zstd", "./x", "o"]),
        (["--compress", "gzip", "a", "b"], ["--compress", "gzip", "a", "b"]),  # its own error
        (["--compress", "README.md", "o"], ["--compress=zstd", "README.md", "o"]),
        (["--", "--compress"], ["--", "--compress"]),
    ],
)
def test_bare_compress_means_zstd(args: list[str], expected: list[str]) -> None:
    assert bare_compress_as_zstd(args) == expected


def compressed_size(tmp_path: Path, *flags: str) -> int:
    plain, out = tmp_path / "plain", tmp_path / "out"
    if not plain.exists():
        plain.write_bytes(b"fusefs compresses well " * 50_000)
        (tmp_path / "key").write_bytes(KEY)
    ok(fusefs("encrypt", "--keyfile", tmp_path / "key", "--force", *flags, plain, out, **ENV))
    ok(fusefs("decrypt", "--keyfile", tmp_path / "key", "--force", out, tmp_path / "dec", **ENV))
    assert (tmp_path / "dec").read_bytes() == plain.read_bytes()
    return out.stat().st_size


def test_encrypt_compress_syntax_is_inits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    plain_size = compressed_size(tmp_path)
    level3 = compressed_size(tmp_path, "--compress", "zstd")
    assert level3 < plain_size // 10
    assert compressed_size(tmp_path, "--compress", "zstd:3") == level3
    assert compressed_size(tmp_path, "--compress=zstd:3") == level3
    assert compressed_size(tmp_path, "--compress", "none") == plain_size
    # The old forms still work: a bare flag (even right before IN), --compress-level N.
    r = fusefs("encrypt", "--keyfile", "key", "--force", "--compress", "plain", "out", **ENV)
    ok(r)
    assert (tmp_path / "out").stat().st_size == level3
    assert compressed_size(tmp_path, "--compress-level", "19") == compressed_size(
        tmp_path, "--compress", "zstd:19"
    )
    r = fusefs("encrypt", "--keyfile", "key", "--compress", "zstd:23", "plain", "x", **ENV)
    assert "LEVEL 1-22" in error_line(r, ExitCode.USAGE)
    r = fusefs("encrypt", "--keyfile", "key", "--compress", "gzip", "plain", "x", **ENV)
    assert "'gzip' is not zstd or zstd:LEVEL" in error_line(r, ExitCode.USAGE)


def test_init_takes_a_bare_compress_too(tmp_path: Path) -> None:
    (tmp_path / "pw").write_bytes(PASSWORD)
    fast = ["--kdf-memory", "64K", "--kdf-passes", "1", "--insecure-kdf"]
    ok(fusefs("init", tmp_path / "v", "--passfile", tmp_path / "pw", *fast, "-q", "--compress"))
    info = fusefs("info", "--json", tmp_path / "v").stdout.decode()
    assert '"compression_level": 3' in info


# --- --extpass -------------------------------------------------------------------------


def test_extpass_on_the_stream_commands(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"secret" * 1000)
    (tmp_path / "pw").write_bytes(PASSWORD + b"\n")
    ask = ["--extpass", f"cat {tmp_path / 'pw'}"]
    # IN is standard input: the password cannot be typed, but a command can give it.
    enc = ok(fusefs("encrypt", *ask, "-", "-", stdin=(tmp_path / "plain").read_bytes())).stdout
    (tmp_path / "enc").write_bytes(enc)
    ok(fusefs("decrypt", "--passfile", tmp_path / "pw", tmp_path / "enc", tmp_path / "dec"))
    assert (tmp_path / "dec").read_bytes() == (tmp_path / "plain").read_bytes()
    dec = ok(fusefs("decrypt", *ask, tmp_path / "enc", "-")).stdout
    assert dec == (tmp_path / "plain").read_bytes()
    r = fusefs("decrypt", *ask, "--passfile", tmp_path / "pw", tmp_path / "enc", "-")
    assert "mutually exclusive" in error_line(r, ExitCode.USAGE)
    (tmp_path / "key").write_bytes(KEY)
    r = fusefs("decrypt", *ask, "--keyfile", tmp_path / "key", tmp_path / "enc", "-")
    assert "--extpass and --keyfile are mutually exclusive" in error_line(r, ExitCode.USAGE)
    r = fusefs("decrypt", "--extpass", "false", tmp_path / "enc", "-")
    assert "--extpass false failed" in error_line(r, ExitCode.USAGE)


# --- -q --------------------------------------------------------------------------------


def test_quiet_is_the_same_flag_on_every_command_that_talks() -> None:
    for name in ("encrypt", "decrypt", "init"):
        command = cli.commands[name]
        quiet = next(p for p in command.params if p.name == "quiet")
        assert quiet.opts == ["-q", "--quiet"], name
