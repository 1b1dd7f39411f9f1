"""Argon2id costs: capped when read (they come from unauthenticated header
and config fields), floored when created (crypto/kdf_policy.rs)."""

from __future__ import annotations

import struct
import time
from pathlib import Path

from support import PASSWORD
from test_cli import error_line, fusefs, ok

from fusefs.exitcodes import ExitCode

HINT = "; pass --allow-expensive-kdf if you trust this file"
#: Cheap in memory but over the 16-pass limit: an over-cap file that opens fast.
OVER_CAP = ["--kdf-memory", "64K", "--kdf-passes", "17", "--insecure-kdf"]


def _files(tmp_path: Path) -> tuple[Path, Path]:
    src, pw = tmp_path / "plain", tmp_path / "pw"
    src.write_bytes(b"secret data")
    pw.write_bytes(PASSWORD + b"\n")
    return src, pw


def test_a_crafted_header_of_4_gib_is_refused_at_once(tmp_path: Path) -> None:
    src, pw = _files(tmp_path)
    enc = tmp_path / "enc"
    ok(fusefs("encrypt", "--passfile", pw, src, enc))
    data = bytearray(enc.read_bytes())
    struct.pack_into("<III", data, 48, 4 * 1024 * 1024, 64, 1)  # 4 GiB x 64 passes
    enc.write_bytes(bytes(data))
    started = time.monotonic()
    r = fusefs("decrypt", "--passfile", pw, enc, tmp_path / "out")
    assert time.monotonic() - started < 5  # the interpreter's start-up, not Argon2
    assert error_line(r, ExitCode.USAGE) == (
        "fusefs: error: Argon2id costs m=4194304 KiB t=64 p=1 exceed the limit "
        "(m ≤ 1024 MiB, t ≤ 16, p ≤ 16, m×t ≤ 3072 MiB×passes)" + HINT
    )
    assert not (tmp_path / "out").exists()


def test_a_stream_over_the_cap_opens_only_when_allowed(tmp_path: Path) -> None:
    src, pw = _files(tmp_path)
    enc, out = tmp_path / "enc", tmp_path / "out"
    r = fusefs("encrypt", *OVER_CAP, "--passfile", pw, src, enc)
    assert "exceed the limit" in error_line(r, ExitCode.USAGE)
    ok(fusefs("encrypt", *OVER_CAP, "--allow-expensive-kdf", "--passfile", pw, src, enc))
    r = fusefs("decrypt", "--passfile", pw, enc, out)
    assert error_line(r, ExitCode.USAGE).endswith(HINT)
    ok(fusefs("decrypt", "--allow-expensive-kdf", "--passfile", pw, enc, out))
    assert out.read_bytes() == b"secret data"


def test_a_vault_over_the_cap_opens_only_when_allowed(tmp_path: Path) -> None:
    _, pw = _files(tmp_path)
    vault = tmp_path / "v"
    ok(fusefs("init", vault, "--passfile", pw, "-q", *OVER_CAP, "--allow-expensive-kdf"))
    # fsck's own convention: 8 when the vault cannot be opened.
    for command, code in (("fsck", 8), ("masterkey", ExitCode.USAGE), ("compact", ExitCode.USAGE)):
        r = fusefs(command, vault, "--passfile", pw)
        assert error_line(r, code) == (
            f"fusefs: error: vault {vault}: Argon2id costs m=64 KiB t=17 p=1 exceed the limit "
            "(m ≤ 1024 MiB, t ≤ 16, p ≤ 16, m×t ≤ 3072 MiB×passes)" + HINT
        ), command
    r = fusefs("fsck", vault, "--passfile", pw, "--allow-expensive-kdf")
    assert r.returncode == 0, r.stderr


def test_creating_below_the_floor_needs_insecure_kdf(tmp_path: Path) -> None:
    src, pw = _files(tmp_path)
    weak = ["--kdf-memory", "8M", "--kdf-passes", "2"]
    floor = (
        "fusefs: error: Argon2id costs m=8192 KiB t=2 are below the floor (OWASP: 19 MiB "
        "with 2 passes, 46 MiB with 1, 12 MiB with 3, 9 MiB with 4, 7 MiB with 5); "
        "--insecure-kdf accepts them"
    )
    r = fusefs("init", tmp_path / "v", "--passfile", pw, *weak)
    assert error_line(r, ExitCode.USAGE) == floor
    assert not (tmp_path / "v").exists()
    # fast_kdf (test_cli) puts --insecure-kdf first for encrypt: call without it.
    r = fusefs("init", tmp_path / "v", "--passfile", pw, "-q", *weak, "--insecure-kdf")
    assert r.returncode == 0, r.stderr
    r = fusefs("passwd", tmp_path / "v", "--passfile", pw, "--new-passfile", pw, *weak)
    assert error_line(r, ExitCode.USAGE) == floor
    # A raw key is not stretched: no floor.
    key = tmp_path / "key"
    key.write_bytes(bytes(range(32)))
    ok(fusefs("encrypt", *weak, "--keyfile", key, src, tmp_path / "k.enc"))
