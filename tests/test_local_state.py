"""Rollback protection's local state, as far as the Python side goes: where
it lives (fusefs.statedir), the binding's two keyword arguments, the
``--accept-rollback`` flag of the commands that open a vault to change it
and that it reaches the binding, and the one-line refusal of a vault
rolled back. (What the engine does with them: rustlib/core/tests/local_state.rs.)"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from fusefs import ROOT_INO, Vault, _native, daemonlog, statedir
from fusefs.cli import cli
from fusefs.cli.open_errors import describe_open_error as _describe_open_error
from fusefs.exitcodes import ExitCode

FAST = {"argon2_m_kib": 64, "argon2_t": 1}


# --- where the local state lives ------------------------------------------------------------


def test_the_session_has_its_own_state_home() -> None:
    # conftest.py's autouse fixture: nothing here writes into the real ~/.local/state.
    state = os.environ["XDG_STATE_HOME"]
    assert os.path.isabs(state) and "state-home" in state
    assert not state.startswith(os.path.expanduser("~/.local"))
    assert "FUSEFS_STATE_DIR" not in os.environ
    assert statedir.local_state_dir() == os.path.join(state, "fusefs", "vaults")


def test_fusefs_state_dir_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FUSEFS_STATE_DIR", str(tmp_path / "mine"))
    assert statedir.local_state_dir() == str(tmp_path / "mine")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FUSEFS_STATE_DIR", "rel")  # made absolute: the daemon changes to /
    assert statedir.local_state_dir() == str(tmp_path / "rel")
    monkeypatch.setenv("FUSEFS_STATE_DIR", "")
    assert statedir.local_state_dir().endswith("/fusefs/vaults")


def test_without_xdg_state_home_it_is_in_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for unset_or_relative in (None, "relative/state"):
        if unset_or_relative is None:
            monkeypatch.delenv("XDG_STATE_HOME")
        else:
            monkeypatch.setenv("XDG_STATE_HOME", unset_or_relative)
        assert statedir.local_state_dir() == str(tmp_path / ".local/state/fusefs/vaults")
        # The daemon's log file goes beside it: one definition of the directory.
        assert daemonlog.state_log_file("/x/v") == str(tmp_path / ".local/state/fusefs/v.log")


# --- the binding --------------------------------------------------------------------------------


@pytest.fixture
def vault_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "v"
    with Vault.create(path, b"pw", **FAST) as v:
        v.mkdir(ROOT_INO, b"d", 0o755, 0, 0)
        (tmp_path / "key").write_text(v.print_master_key())
    (tmp_path / "pass").write_bytes(b"pw\n")
    yield path


def test_open_takes_the_local_state_and_accept_rollback(vault_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Vault.open(vault_dir, b"pw", local_state_dir=state, accept_rollback=True) as v:
        assert v.lookup(ROOT_INO, b"d").ino > 1
    with Vault.open(vault_dir, b"pw", local_state_dir=str(state), accept_rollback=False) as v:
        assert v.lookup(ROOT_INO, b"d").ino > 1
    key = (tmp_path / "key").read_text()
    with Vault.open_with_master_key(
        vault_dir, key, local_state_dir=None, accept_rollback=True
    ) as v:
        assert v.lookup(ROOT_INO, b"d").ino > 1


def test_open_refuses_bad_values_of_them(vault_dir: Path) -> None:
    with pytest.raises(TypeError):
        Vault.open(vault_dir, b"pw", local_state_dir=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Vault.open(vault_dir, b"pw", accept_rollback="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Vault.open(vault_dir, b"pw", "state")  # type: ignore[misc]  # keyword only


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["mount", "fsck", "compact", "masterkey"])
def test_commands_that_change_a_vault_take_accept_rollback(command: str) -> None:
    r = CliRunner().invoke(cli, [command, "--help"])
    assert r.exit_code == 0, r.output
    assert "--accept-rollback" in r.output
    assert "behind what this machine saw" in " ".join(r.output.split())


@pytest.mark.parametrize("command", ["info", "passwd", "umount", "stats"])
def test_commands_that_open_no_vault_do_not(command: str) -> None:
    r = CliRunner().invoke(cli, [command, "--help"])
    assert r.exit_code == 0, r.output
    assert "--accept-rollback" not in r.output


class OpenSpy:
    """Stands in for ``_native.Vault`` in the CLI's module: records the keyword
    arguments of each open and opens the vault for real with them."""

    calls: list[dict[str, Any]] = []

    @staticmethod
    def open(path: Any, secret: bytes, **kwargs: Any) -> Vault:
        OpenSpy.calls.append(kwargs)
        return Vault.open(path, secret, **kwargs)

    @staticmethod
    def open_with_master_key(path: Any, key: str, **kwargs: Any) -> Vault:
        OpenSpy.calls.append(kwargs)
        return Vault.open_with_master_key(path, key, **kwargs)


@pytest.mark.parametrize(
    "argv",
    [
        ["compact", "--quiet"],
        ["fsck", "--quick", "--quiet"],
        ["masterkey"],
        ["compact", "--quiet", "--masterkey"],
    ],
    ids=["compact", "fsck", "masterkey", "compact-masterkey"],
)
@pytest.mark.parametrize("accept", [False, True])
def test_the_flag_and_the_state_dir_reach_the_binding(
    vault_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], accept: bool
) -> None:
    monkeypatch.setattr(_native, "Vault", OpenSpy)
    monkeypatch.setattr(OpenSpy, "calls", [])
    monkeypatch.setenv("FUSEFS_STATE_DIR", str(tmp_path / "ls"))
    secret = "key" if "--masterkey" in argv else "pass"
    args = [*argv, str(vault_dir), "--passfile", str(tmp_path / secret)]
    r = CliRunner().invoke(cli, args + (["--accept-rollback"] if accept else []))
    assert r.exit_code == 0, r.output
    assert [(c["local_state_dir"], c["accept_rollback"]) for c in OpenSpy.calls] == [
        (str(tmp_path / "ls"), accept)
    ]


def rolled_back() -> _native.IntegrityError:
    # What the binding raises for the core's Error::RolledBack (its Display text).
    e = _native.IntegrityError(
        "the vault is behind what this machine saw: the vault ends at record 1041 but record "
        "1097 was durable on this machine (its log was cut, or an older copy put back); "
        "--accept-rollback opens it anyway"
    )
    e.kind = "rolled_back"  # type: ignore[attr-defined]
    return e


def test_a_rolled_back_vault_is_one_line_naming_the_command_to_rerun() -> None:
    with click.Context(
        cli.commands["mount"], info_name="mount", parent=click.Context(cli, info_name="fusefs")
    ):
        message, code = _describe_open_error(rolled_back(), "/v")
    assert code == ExitCode.INTEGRITY
    assert message == (
        "vault /v: the vault is behind what this machine saw: the vault ends at record 1041 but "
        "record 1097 was durable on this machine (its log was cut, or an older copy put back); "
        "fusefs mount --accept-rollback opens it anyway"
    )


def test_outside_a_command_the_hint_stays_generic() -> None:
    message, code = _describe_open_error(rolled_back(), "/v")
    assert code == ExitCode.INTEGRITY
    assert message.endswith("; --accept-rollback opens it anyway")
    assert "\n" not in message


def test_mount_takes_accept_rollback(vault_factory: Any) -> None:
    # The daemon opens the vault after changing to "/": the binding took the
    # (absolute) state directory and the flag, and the mount serves.
    v = vault_factory()
    v.mount("--accept-rollback")
    (v.mnt / "f").write_bytes(b"kept")
    v.umount()
    v.mount()
    assert (v.mnt / "f").read_bytes() == b"kept"
