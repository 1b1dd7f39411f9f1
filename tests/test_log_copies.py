"""The log files' copies (``mirror/log/``, FORMAT.md §10) after a crash in a
log compaction: a compaction removes a covered file's copy before the file,
so a crash between leaves the file without a copy. The next read-write open
gives it one back, and fsck finds nothing (a flake of
test_compaction_kills.py, whose kills sometimes landed there)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fusefs import ROOT_INO, Vault

REPO = Path(__file__).resolve().parents[1]
FAST = {"argon2_m_kib": 64, "argon2_t": 1}


def run(*args: object) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "fusefs", *map(str, args)]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_a_covered_log_file_left_without_its_copy_gets_it_back(tmp_path: Path) -> None:
    vault, pw = tmp_path / "v", tmp_path / "pw"
    pw.write_text("pw\n")
    with Vault.create(vault, b"pw", **FAST) as v:
        f = v.create_file(ROOT_INO, b"f", 0o644, 0, 0)
        v.write(f.ino, 0, b"x" * 1000)
    first = sorted((vault / "log").glob("*.ulog"))[0]
    saved = first.read_bytes()
    done = run("compact", vault, "--passfile", pw, "-q")
    assert done.returncode == 0, done.stderr
    assert not first.exists(), "the compaction covered and removed it"
    # The crash: the copy was removed, the file not yet.
    first.write_bytes(saved)
    copy = vault / "mirror" / "log" / first.name
    assert not copy.exists()
    done = run("fsck", vault, "--passfile", pw)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "clean" in done.stderr, done.stderr
    assert copy.read_bytes() == saved
    again = run("fsck", vault, "--passfile", pw)
    assert again.returncode == 0 and "rewritten" not in again.stderr, again.stderr
