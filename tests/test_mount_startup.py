"""A mount's start-up (issue 15, mount time): the command that forks the
daemon loads nothing that only serves the mount, and the daemon loads that in a
thread while its main thread opens the vault (fusefs.preload). No FUSE here: the
mount itself is tested by the other test_mount_* files."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

from fusefs import mount
from fusefs.preload import Preload

REPO = Path(__file__).resolve().parent.parent


def fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` run by a Python of its own (nothing imported yet), from the checkout."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )


def test_the_mount_command_loads_nothing_only_the_daemon_needs() -> None:
    # What `fusefs mount` imports before it forks (the daemon imports the
    # rest while the engine derives the key).
    code = (
        "import sys\n"
        "import fusefs.cli, fusefs.cli.vault, fusefs.mount, fusefs.hardening, fusefs.password\n"
        "loaded = {'trio', 'pyfuse3', 'fusefs.fs', 'fusefs.requestloop'} & set(sys.modules)\n"
        "print(sorted(loaded))\n"
    )
    assert fresh_python(code).stdout.strip() == "[]"


def test_the_mount_command_imports_no_other_command() -> None:
    # The group imports a command's module when the command is looked up:
    # a mount (refused here: no such vault) loads fusefs.cli.vault only.
    code = (
        "import sys\n"
        "from fusefs.cli import cli, run\n"
        "assert 'fsck' in cli.commands and len(cli.commands) == 11\n"
        "print(run(['mount', '/nonexistent-vault', '/nonexistent-mnt']))\n"
        "print(sorted(m for m in sys.modules if m.startswith('fusefs.cli.')))\n"
    )
    done = fresh_python(code)
    code_line, modules = done.stdout.strip().splitlines()
    assert code_line != "0" and "does not exist" in done.stderr
    assert "fusefs.cli.vault" in modules
    for other in ("stream", "fsck", "compact", "mounted", "keys"):
        assert f"fusefs.cli.{other}'" not in modules, modules


def test_the_daemon_imports_beside_its_main_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A module whose import finishes only once the main thread, which has
    # gone on meanwhile (to open the vault, in the daemon), says so.
    gate = types.ModuleType("_preload_gate")
    gate.go = threading.Event()  # type: ignore[attr-defined]
    gate.imported_in = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "_preload_gate", gate)
    (tmp_path / "_preload_slow.py").write_text(
        "import threading, _preload_gate\n"
        "_preload_gate.imported_in.append(threading.get_ident())\n"
        "assert _preload_gate.go.wait(30), 'the import blocked its caller'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    preload = Preload(["json", "_preload_slow"])
    gate.go.set()  # type: ignore[attr-defined]
    preload.wait()
    assert "_preload_slow" in sys.modules
    assert gate.imported_in != [threading.get_ident()]  # type: ignore[attr-defined]
    monkeypatch.delitem(sys.modules, "_preload_slow")


def test_a_failed_import_raises_in_the_waiting_thread() -> None:
    preload = Preload(["json", "fusefs_no_such_module"])
    with pytest.raises(ModuleNotFoundError, match="fusefs_no_such_module"):
        preload.wait()


def test_the_daemon_preloads_what_serves_the_mount() -> None:
    # Each is imported by _serve; a name missing here would be imported on
    # the critical path again (after the open), a wrong one fails the mount.
    preload = Preload(mount.SERVING_MODULES)
    preload.wait()
    assert set(mount.SERVING_MODULES) <= set(sys.modules)


def test_the_command_freezes_what_it_holds_before_it_forks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # So the daemon's garbage collector does not walk (and so copy) the
    # pages it shares with the command while it opens the vault.
    class Forked(Exception):
        pass

    frozen_at_fork: list[int] = []

    def fork() -> int:
        frozen_at_fork.append(gc.get_freeze_count())
        raise Forked

    monkeypatch.setattr(os, "fork", fork)
    opts = mount.MountOptions(vault_dir=str(tmp_path / "v"), mountpoint=str(tmp_path / "m"))
    gc.unfreeze()
    try:
        with pytest.raises(Forked):
            mount.mount(opts, lambda: None, lambda e: ("", mount.ExitCode.ERROR))  # type: ignore[arg-type, return-value]
    finally:
        gc.unfreeze()
    assert frozen_at_fork and frozen_at_fork[0] > 0
