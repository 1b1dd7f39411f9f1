"""``fusefs fsck VAULT``: a clean vault, each finding by path, e2fsck's exit
codes, and one line for what cannot be checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fusefs import ROOT_INO, Vault

REPO = Path(__file__).resolve().parents[1]
FAST = {"argon2_m_kib": 64, "argon2_t": 1}
CLEAN, ERRORS_LEFT, OPERATIONAL = 0, 4, 8


def fsck(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fusefs", "fsck", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.fixture
def vault_dir(tmp_path: Path) -> Path:
    """A vault with a directory, a file of 5 segments, a symlink and a hard link."""
    path = tmp_path / "v"
    (tmp_path / "pw").write_text("pw\n")
    with Vault.create(path, b"pw", segment_size=16384, **FAST) as v:
        d = v.mkdir(ROOT_INO, b"docs", 0o755, 0, 0)
        f = v.create_file(d.ino, b"report.bin", 0o644, 0, 0)
        v.write(f.ino, 0, os.urandom(70_000))
        v.symlink(ROOT_INO, b"link", b"docs/report.bin", 0, 0)
        v.link(f.ino, ROOT_INO, b"again")
        v.fsync(f.ino)
    return path


def test_a_clean_vault(vault_dir: Path) -> None:
    done = fsck(vault_dir, "--passfile", vault_dir.parent / "pw")
    assert done.returncode == CLEAN, done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith(
        f"{vault_dir}: clean: 4 inodes (1 file, 2 directories), 1 pack, 5 frames verified"
    )
    done = fsck(vault_dir, "--passfile", vault_dir.parent / "pw", "--json", "--quick")
    report = json.loads(done.stdout)
    assert (done.returncode, report["findings"], report["frames_verified"]) == (CLEAN, [], 0)
    assert report["opened"]["orphans_reclaimed"] == []


def test_a_damaged_frame_is_named_by_path(vault_dir: Path) -> None:
    [pack] = (vault_dir / "packs").rglob("*.pack")
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x40
    pack.write_bytes(data)
    done = fsck(vault_dir, "--passfile", vault_dir.parent / "pw")
    assert done.returncode == ERRORS_LEFT, done.stderr
    [line] = done.stdout.splitlines()
    assert line.startswith("frame: /again (inode "), line  # the first name of the file
    assert "cannot be read" in line
    assert "1 finding:" in done.stderr
    # --quick reads no frame: nothing to find in the metadata.
    assert fsck(vault_dir, "--passfile", vault_dir.parent / "pw", "--quick").returncode == CLEAN


def test_what_cannot_be_checked_is_one_line_and_exit_8(vault_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "wrong").write_text("nope\n")
    done = fsck(vault_dir, "--passfile", tmp_path / "wrong")
    assert done.returncode == OPERATIONAL
    assert done.stderr == f"fusefs: error: wrong password or master key for vault {vault_dir}\n"
    done = fsck(tmp_path, "--passfile", tmp_path / "wrong")
    assert done.returncode == OPERATIONAL
    assert "is not a fusefs vault" in done.stderr and done.stderr.count("\n") == 1
    with Vault.open(vault_dir, b"pw"):  # in use, as by a mount: checked beside it, not repaired
        done = fsck(vault_dir, "--passfile", vault_dir.parent / "pw", "--repair")
        assert done.returncode == OPERATIONAL
        assert done.stderr == (
            f"fusefs: error: vault {vault_dir} is in use (mounted?): unmount it to repair "
            "(without --repair it is checked read-only)\n"
        )
        done = fsck(vault_dir, "--passfile", vault_dir.parent / "pw")
        assert done.returncode == CLEAN, done.stderr
        assert "the vault is in use: checked read-only beside it" in done.stderr


def test_compact_says_what_it_reclaimed(vault_dir: Path) -> None:
    with Vault.open(vault_dir, b"pw") as v:
        files = [v.create_file(ROOT_INO, f"f{i}".encode(), 0o644, 0, 0).ino for i in range(8)]
        for ino in files:
            v.write(ino, 0, os.urandom(200_000))
        for i in range(0, 8, 2):
            v.unlink(ROOT_INO, f"f{i}".encode())
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fusefs",
            "compact",
            vault_dir,
            "--passfile",
            vault_dir.parent / "pw",
            "--dead-ratio",
            "0.1",
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["packs"]["bytes_reclaimed"] > 0 and r["log"]["log_files_deleted"] >= 1
    assert r["after"]["dead_bytes"] == 0 < r["before"]["dead_bytes"]
    assert r["after"]["pack_bytes"] < r["before"]["pack_bytes"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fusefs",
            "compact",
            vault_dir,
            "--passfile",
            vault_dir.parent / "pw",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Compacted {vault_dir} in ")
    assert "  on disk: " in done.stdout and len(done.stdout.splitlines()) == 4
    assert fsck(vault_dir, "--passfile", vault_dir.parent / "pw").returncode == CLEAN
