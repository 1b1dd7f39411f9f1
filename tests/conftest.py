"""Fixtures of the mount tests (see tests/mounting.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mounting import Vault, fuse_unavailable


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
