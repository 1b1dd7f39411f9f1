"""Fixtures of the mount tests (see tests/mounting.py), and the state
directory every test runs with."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mounting import Vault, fuse_unavailable


@pytest.fixture(scope="session", autouse=True)
def private_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A state directory of the test session's own (``$XDG_STATE_HOME``), so
    that neither the tests nor the daemons they start write the local state
    of their vaults (or a daemon log) into the real user's
    ``~/.local/state``. A test that needs another one sets its own (in the
    environment it passes, or with ``monkeypatch``); ``$FUSEFS_STATE_DIR``,
    which would win over it, is cleared."""
    state = tmp_path_factory.mktemp("state-home")
    saved = {name: os.environ.get(name) for name in ("XDG_STATE_HOME", "FUSEFS_STATE_DIR")}
    os.environ["XDG_STATE_HOME"] = str(state)
    os.environ.pop("FUSEFS_STATE_DIR", None)
    yield state
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def vault_factory(tmp_path: Path) -> Iterator[object]:
    """``make(name="vault", **init_options)``: a new vault, cleaned up after the test."""
    reason = fuse_unavailable()
    if reason is not None:
        pytest.skip(reason)
    made: list[Vault] = []

    def make(name: str = "vault", **init_options: str) -> Vault:
        v = Vault(tmp_path, name, **init_options)
        made.append(v)
        return v

    yield make
    for v in made:
        v.cleanup()


@pytest.fixture
def mounted(vault_factory) -> Vault:  # type: ignore[no-untyped-def]
    """A fresh vault, mounted; unmounted (whatever happens) after the test."""
    v: Vault = vault_factory()
    v.mount()
    return v


@pytest.fixture(scope="module")
def shared_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vault]:
    """One mount (with --allow-other) for a whole module of tests, each in its own directory."""
    reason = fuse_unavailable()
    if reason is not None:
        pytest.skip(reason)
    v = Vault(tmp_path_factory.mktemp("shared"))
    try:
        v.mount("--allow-other")  # tests act as other users too
        yield v
    finally:
        v.cleanup()
