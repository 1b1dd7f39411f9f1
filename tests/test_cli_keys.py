"""The master key: ``init`` prints it only to a terminal or when asked
(``--print-masterkey``), and ``fusefs masterkey VAULT`` prints it again."""

from __future__ import annotations

import re
from pathlib import Path

from support import PASSWORD
from test_cli import Terminal, error_line, fusefs, ok

from fusefs import _native
from fusefs.exitcodes import ExitCode

FAST = ["--kdf-memory", "64K", "--kdf-passes", "1", "--insecure-kdf"]
MASTER_KEY = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{8}){7}")


def init(tmp_path: Path, *flags: str) -> tuple[str, str]:
    (tmp_path / "pw").write_bytes(PASSWORD + b"\n")
    r = ok_or_hint(fusefs("init", tmp_path / "v", "--passfile", tmp_path / "pw", *FAST, *flags))
    return r.stdout.decode(), r.stderr.decode()


def ok_or_hint(r):  # type: ignore[no-untyped-def]
    assert r.returncode == 0, r.stderr
    return r


def test_init_keeps_the_key_out_of_a_pipe_and_says_how_to_get_it(tmp_path: Path) -> None:
    stdout, stderr = init(tmp_path)
    assert stdout == "" and not MASTER_KEY.search(stderr)
    assert stderr.splitlines() == [
        f"Created vault {tmp_path / 'v'} (aes-256-gcm, 64 KiB segments).",
        "fusefs: master key not printed (standard output is not a terminal): "
        f"'fusefs masterkey {tmp_path / 'v'}' prints it from the password",
    ]


def test_init_prints_the_key_bare_when_asked(tmp_path: Path) -> None:
    stdout, _ = init(tmp_path, "--print-masterkey", "-q")
    assert MASTER_KEY.fullmatch(stdout.strip())
    with _native.Vault.open_with_master_key(tmp_path / "v", stdout.strip()) as v:
        assert v.print_master_key() == stdout.strip()


def test_init_quiet_says_nothing(tmp_path: Path) -> None:
    assert init(tmp_path, "-q") == ("", "")


def test_init_on_a_terminal_shows_the_key(tmp_path: Path) -> None:
    (tmp_path / "pw").write_bytes(PASSWORD + b"\n")
    # stdout of Terminal is a pipe; run it with stdout on the terminal too.
    t = Terminal("init", "v", "--passfile", "pw", *FAST, cwd=tmp_path, stdout_is_terminal=True)
    assert t.finish() == 0, t.output
    assert b"Master key:" in t.output and MASTER_KEY.search(t.output.decode())
    assert b"not printed" not in t.output


def test_masterkey_prints_the_key_again(tmp_path: Path) -> None:
    stdout, _ = init(tmp_path, "--print-masterkey", "-q")
    r = ok(fusefs("masterkey", tmp_path / "v", "--passfile", tmp_path / "pw"))
    assert r.stdout.decode() == stdout
    r = ok(fusefs("masterkey", tmp_path / "v", "--extpass", f"cat {tmp_path / 'pw'}"))
    assert r.stdout.decode() == stdout
    (tmp_path / "bad").write_text("not it\n")
    r = fusefs("masterkey", tmp_path / "v", "--passfile", tmp_path / "bad")
    assert "wrong password" in error_line(r, ExitCode.WRONG_KEY)
    r = fusefs("masterkey", tmp_path / "nothing", "--passfile", tmp_path / "pw")
    assert "does not exist" in error_line(r, ExitCode.IO)
    r = fusefs("masterkey", tmp_path / "v")
    assert "no password" in error_line(r, ExitCode.USAGE)
