"""``--resume`` and ``--force`` of ``encrypt``/``decrypt``: an interrupted run's
files survive every refusal, and a fresh run does not clobber them unasked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import KEY, OTHER_KEY, side_files
from test_cli import MiB, error_line, fusefs, interrupt_after_checkpoint, ok

from fusefs.exitcodes import ExitCode


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


@pytest.mark.parametrize("command", ["encrypt", "decrypt"])
def test_refused_resume_keeps_the_interrupted_runs_files(tmp_path: Path, command: str) -> None:
    """The wrong IN, a cut part file, a damaged checkpoint, the wrong key: each
    is refused with the kept paths named, and the right run then resumes."""
    plain = sparse(tmp_path / "plain", 384 * MiB)
    (tmp_path / "key").write_bytes(KEY)
    (tmp_path / "otherkey").write_bytes(OTHER_KEY)
    key: list[str | Path] = ["--keyfile", tmp_path / "key"]
    other = sparse(tmp_path / "other", 384 * MiB)
    if command == "encrypt":
        src, dst = plain, tmp_path / "enc"
    else:
        src, dst = tmp_path / "enc", tmp_path / "dec"
        ok(fusefs("encrypt", *key, plain, src))
        ok(fusefs("encrypt", *key, "--force", plain, other))  # another stream, same key
    part, ckpt = side_files(dst)
    interrupt_after_checkpoint([command, *key, "--threads", "1", src, dst], ckpt)
    kept = f"(kept {part} and {ckpt}: continue with --resume)"
    part_bytes, ckpt_bytes = part.stat().st_size, ckpt.read_bytes()

    def refused(args: list[str | Path], code: ExitCode, words: str) -> None:
        line = error_line(fusefs(command, *args, "--resume", dst), code)
        assert words in line and line.endswith(kept), line
        assert part.stat().st_size == part_bytes and ckpt.read_bytes() == ckpt_bytes
        assert sorted(p.name for p in tmp_path.iterdir() if dst.name in p.name) == sorted(
            [part.name, ckpt.name]
        )

    # The engine removed both files on each of these before (177 MB were lost so).
    if command == "encrypt":
        refused([*key, other], ExitCode.RESUME, "the input changed")
    else:
        refused([*key, other], ExitCode.RESUME, "does not match this stream")
        refused([*key, plain], ExitCode.INTEGRITY, "not a fusefs stream")
    refused(["--keyfile", tmp_path / "otherkey", src], ExitCode.WRONG_KEY, "wrong")
    # A cut part file and a damaged checkpoint are beyond resuming, but kept all the same.
    os.truncate(part, 4096)
    part_bytes = 4096
    refused([*key, src], ExitCode.RESUME, "holds 4096 bytes")
    ckpt.write_bytes(ckpt_bytes[:-1] + bytes([ckpt_bytes[-1] ^ 1]))
    ckpt_bytes = ckpt.read_bytes()
    refused([*key, src], ExitCode.RESUME, "checkpoint does not match")
    assert not dst.exists()


def test_resume_after_a_refusal_finishes_the_run(tmp_path: Path) -> None:
    plain = sparse(tmp_path / "plain", 384 * MiB)
    other = sparse(tmp_path / "other", 384 * MiB)
    (tmp_path / "key").write_bytes(KEY)
    key: list[str | Path] = ["--keyfile", tmp_path / "key"]
    enc, dec = tmp_path / "enc", tmp_path / "dec"
    part, ckpt = side_files(enc)
    interrupt_after_checkpoint(["encrypt", *key, "--threads", "1", plain, enc], ckpt)
    error_line(fusefs("encrypt", *key, "--resume", other, enc), ExitCode.RESUME)
    ok(fusefs("encrypt", *key, "--resume", plain, enc))
    assert not part.exists() and not ckpt.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc", "key", "other", "plain"]
    ok(fusefs("decrypt", *key, enc, dec))
    assert dec.stat().st_size == 384 * MiB


def test_fresh_run_over_an_interrupted_one_needs_force(tmp_path: Path) -> None:
    plain = sparse(tmp_path / "plain", 384 * MiB)
    (tmp_path / "key").write_bytes(KEY)
    key: list[str | Path] = ["--keyfile", tmp_path / "key"]
    enc = tmp_path / "enc"
    part, ckpt = side_files(enc)
    interrupt_after_checkpoint(["encrypt", *key, "--threads", "1", plain, enc], ckpt)
    size = part.stat().st_size
    line = error_line(fusefs("encrypt", *key, plain, enc), ExitCode.EXISTS)
    assert line == (
        f"fusefs: error: {part} and {ckpt} hold an interrupted run: continue it with "
        "--resume, or start over with --force"
    )
    assert part.stat().st_size == size and ckpt.exists()
    small = tmp_path / "small"
    small.write_bytes(b"x" * 1000)
    ok(fusefs("encrypt", *key, "--force", small, enc))
    assert not part.exists() and not ckpt.exists()
    ok(fusefs("decrypt", *key, enc, tmp_path / "dec"))
    assert (tmp_path / "dec").read_bytes() == b"x" * 1000


def test_resume_with_an_existing_output_needs_force(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"p")
    (tmp_path / "enc").write_bytes(b"old")
    (tmp_path / "key").write_bytes(KEY)
    args = ["--keyfile", tmp_path / "key", "--resume", tmp_path / "plain", tmp_path / "enc"]
    error_line(fusefs("encrypt", *args), ExitCode.EXISTS)
    assert (tmp_path / "enc").read_bytes() == b"old"
