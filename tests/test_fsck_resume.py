"""A check of every frame killed midway resumes where it stopped: the
frame pass records how far it got in the vault's log (a DecryptCheckpoint,
FORMAT.md §9.2), and the next ``fusefs fsck`` starts after it, says so,
and still finds everything (issue 13)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from support import put_back

from fusefs import ROOT_INO, Vault

REPO = Path(__file__).resolve().parents[1]
FAST = {"argon2_m_kib": 64, "argon2_t": 1}


def fsck_argv(vault: Path, *args: str) -> list[str]:
    pw = vault.parent / "pw"
    return [sys.executable, "-m", "fusefs", "fsck", str(vault), "--passfile", str(pw), *args]


def test_a_killed_check_resumes_after_what_it_verified(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    (tmp_path / "pw").write_text("pw\n")
    with Vault.create(vault, b"pw", segment_size=16384, **FAST) as v:
        for k in range(4):
            f = v.create_file(ROOT_INO, f"f{k}".encode(), 0o644, 0, 0)
            v.write(f.ino, 0, os.urandom(48 << 20))
    template = tmp_path / "template"
    put_back(vault, template)
    argv = fsck_argv(vault, "--checkpoint-interval", "0")
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resumed" not in done.stderr
    resumed = 0
    for _ in range(5):
        put_back(template, vault)
        before = log_bytes(vault)
        proc = subprocess.Popen(
            argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # Killed once two checkpoints are in the log (its new file's 80-byte
        # header, then records of 164 bytes: 20 + 128 + 16), before the
        # pass ends (24 rounds of 512 frames, one checkpoint each).
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if log_bytes(vault) >= before + 80 + 2 * 164:
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        again = subprocess.run(
            fsck_argv(vault), cwd=REPO, capture_output=True, text=True, timeout=300
        )
        assert again.returncode == 0, again.stdout + again.stderr
        assert "12,288 frames verified" in again.stderr, again.stderr
        resumed += "resumed an interrupted check after" in again.stderr
        # Finished: a further check starts afresh.
        third = subprocess.run(
            fsck_argv(vault), cwd=REPO, capture_output=True, text=True, timeout=300
        )
        assert third.returncode == 0 and "resumed" not in third.stderr, third.stderr
        if resumed >= 2:
            break
    assert resumed >= 1, "no kill landed while the frames were being checked"


def log_bytes(vault: Path) -> int:
    # Up to each file's last non-zero byte: the file being appended to ends
    # in the zeros of its reserve (FORMAT.md §7.3) from its creation on.
    return sum(len(p.read_bytes().rstrip(b"\0")) for p in (vault / "log").glob("*.ulog"))
