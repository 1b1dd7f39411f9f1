"""A mount's start-up (issue 15, mount time): the command that forks the
daemon loads nothing that only serves the mount, and the daemon opens the
vault in a thread while it loads that (fusefs.opening). No FUSE here: the
mount itself is tested by the other test_mount_* files."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fusefs import ROOT_INO, Vault, errors
from fusefs.opening import Opening

FAST = {"argon2_m_kib": 64, "argon2_t": 1}
REPO = Path(__file__).resolve().parent.parent


def test_the_mount_command_loads_nothing_only_the_daemon_needs() -> None:
    # What `fusefs mount` imports before it forks (the daemon imports the
    # rest while the engine derives the key).
    code = (
        "import sys\n"
        "import fusefs.cli, fusefs.cli.vault, fusefs.mount, fusefs.hardening, fusefs.password\n"
        "loaded = {'trio', 'pyfuse3', 'fusefs.fs', 'fusefs.requestloop'} & set(sys.modules)\n"
        "print(sorted(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.fixture
def vault_dir(tmp_path: Path) -> Path:
    with Vault.create(tmp_path / "v", b"pw", **FAST) as v:
        v.mkdir(ROOT_INO, b"docs", 0o755, 0, 0)
    return tmp_path / "v"


def test_the_vault_opens_in_a_thread_while_the_caller_goes_on(vault_dir: Path) -> None:
    caller_went_on = threading.Event()
    opened_in: list[int] = []

    def open_vault() -> Vault:
        opened_in.append(threading.get_ident())
        # Only a caller that is not waiting for the open can set this.
        assert caller_went_on.wait(timeout=30), "the open blocked its caller"
        return Vault.open(vault_dir, b"pw")

    opening = Opening(open_vault)
    caller_went_on.set()
    with opening.result() as v:
        assert v.lookup(ROOT_INO, b"docs").ino > ROOT_INO
    assert opened_in and opened_in[0] != threading.get_ident()
    opening.abandon()  # after result(): nothing to do


def test_a_failed_open_raises_in_the_caller(vault_dir: Path) -> None:
    opening = Opening(lambda: Vault.open(vault_dir, b"wrong"))
    with pytest.raises(errors.WrongKeyError):
        opening.result()
    opening.abandon()


def test_an_abandoned_open_closes_the_vault(vault_dir: Path) -> None:
    # A start-up that failed before it took the vault (say, pyfuse3 would
    # not import) leaves the vault closed, not locked by a vault nobody holds.
    opening = Opening(lambda: Vault.open(vault_dir, b"pw"))
    opening.abandon()
    with Vault.open(vault_dir, b"pw") as v:
        assert v.lookup(ROOT_INO, b"docs").ino > ROOT_INO
