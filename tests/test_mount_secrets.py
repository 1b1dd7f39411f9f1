"""The mount daemon's secrets: not dumpable, no core file, the password gone
from its memory once the vault is open, the master key only in pages left
out of core dumps; and its statistics only for the user who mounted."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from mounting import PASSWORD, Vault, daemon_pid, fusefs
from users import User, ordinary_users, why_no_users

from fusefs import _native


def _regions(pid: int) -> list[tuple[int, int, str, str]]:
    """(start, end, perms, VmFlags) of every mapping of ``pid``."""
    out, current = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if m:
                current = (int(m[1], 16), int(m[2], 16), m[3])
            elif line.startswith("VmFlags:") and current is not None:
                out.append((*current, line.split(":", 1)[1].strip()))
    return out


def _find(pid: int, needles: list[bytes]) -> dict[bytes, list[str]]:
    """For each needle, the VmFlags of every mapping of ``pid`` that holds it."""
    found: dict[bytes, list[str]] = {n: [] for n in needles}
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for start, end, perms, flags in _regions(pid):
            if not perms.startswith("r") or "[vvar]" in flags:
                continue
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except OSError:
                continue
            for n in needles:
                found[n] += [flags] * data.count(n)
    return found


def test_the_daemon_holds_no_password_and_no_dumpable_key(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    with _native.Vault.open(v.dir, PASSWORD.encode()) as opened:
        master = bytes.fromhex(opened.print_master_key().replace("-", ""))
    v.mount()
    pid = daemon_pid(v.mnt)
    assert pid is not None
    (v.mnt / "f").write_bytes(b"x" * 100_000)  # a file key, a log record
    limits = Path(f"/proc/{pid}/limits").read_text()
    assert re.search(r"Max core file size\s+0\s+0", limits), limits
    found = _find(pid, [PASSWORD.encode(), master])
    assert found[PASSWORD.encode()] == [], "the password is still in the daemon's memory"
    # The master key: in secret pages (Vault.master and the log's copy), no
    # copy anywhere a core dump would take.
    assert found[master], "the master key was not found at all: the scan is broken"
    assert all("dd" in flags.split() for flags in found[master]), found[master]
    stats = fusefs("stats", v.mnt, "--json", check=True)
    assert '"dumpable": false' in stats.stdout  # PR_SET_DUMPABLE 0


@pytest.fixture(scope="module")
def other_user() -> object:
    reason = why_no_users()
    if reason is not None:
        pytest.skip(reason)
    with ordinary_users(1) as made:
        yield made[0]


def test_statistics_are_refused_to_other_users_under_allow_other(
    vault_factory,  # type: ignore[no-untyped-def]
    other_user: User,
) -> None:
    v: Vault = vault_factory()
    mnt = other_user.home / "mnt"
    other_user.sh(f"mkdir -p {mnt}")
    v.mnt.rmdir()
    v.mnt = mnt
    v.mount("--allow-other")
    read = "import os, sys; print(os.getxattr(sys.argv[1], sys.argv[2]).decode())"
    done = other_user.run("python3", "-c", read, mnt, "fusefs.pid")
    assert done.returncode == 0 and done.stdout.strip().isdigit(), done.stderr
    for name in ("fusefs.stats", "fusefs.sync"):
        done = other_user.run("python3", "-c", read, mnt, name)
        assert "PermissionError" in done.stderr and "Operation not permitted" in done.stderr
    assert os.getxattr(mnt, "fusefs.stats").startswith(b"{")  # root may
