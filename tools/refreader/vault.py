"""Opening a vault read-only: unlock its config (FORMAT.md §6, with the copy
of §10 as the fallback) and rebuild its metadata state (§9.7).

Nothing here opens a file of the vault for writing, takes its lock or
removes a leftover: a vault that the engine would tidy up on open (torn
tail, ``*.snap.tmp``, stray packs, orphans) is read as the engine would see
it after tidying, and left as it is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from refreader.bootstrap import load_state
from refreader.config import Config, parse_config, unlock_with_master_key, unlock_with_password
from refreader.errors import DecodeError, UsageError
from refreader.layouts import Layout, layout_for
from refreader.log import VaultKeys
from refreader.state import State


@dataclass(frozen=True)
class Secret:
    """Exactly one of a password (§6.3 password path) or the master key itself."""

    password: bytes | None = None
    master_key: bytes | None = None


@dataclass(frozen=True)
class OpenVault:
    path: str
    config: Config
    layout: Layout
    keys: VaultKeys
    state: State


def _unlock_one(raw: bytes, secret: Secret) -> tuple[Config, bytes]:
    config = parse_config(raw)
    if secret.password is not None:
        return config, unlock_with_password(config, secret.password)
    assert secret.master_key is not None
    return config, unlock_with_master_key(config, secret.master_key)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(64 * 1024 + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None


def unlock(vault: str, secret: Secret) -> tuple[Config, bytes]:
    """The config and master key: ``fusefs.conf``, or its copy if that one does not
    load or unlock and the copy has other bytes (§10); the first file's error wins."""
    main = _read(os.path.join(vault, "fusefs.conf"))
    copy = _read(os.path.join(vault, "mirror", "fusefs.conf"))
    if main is None and copy is None:
        raise UsageError(f"{vault} is not a vault: it has no fusefs.conf")
    first_error: DecodeError | None = None
    for raw in (main, copy):
        if raw is None or (raw is copy and copy == main):
            continue
        try:
            return _unlock_one(raw, secret)
        except DecodeError as e:
            first_error = first_error or e
    assert first_error is not None
    where = "fusefs.conf" if main is not None else "mirror/fusefs.conf"
    raise type(first_error)(f"{where}: {first_error}")


def open_vault(vault: str, secret: Secret, warn: Callable[[str], None]) -> OpenVault:
    if not os.path.isdir(vault):
        raise UsageError(f"no vault directory at {vault}")
    config, master = unlock(vault, secret)
    layout = layout_for(config.version)  # the version dispatch point
    keys = VaultKeys(config.vault_id, config.cipher, master)
    state = load_state(vault, layout, keys, config.segment_size, warn)
    return OpenVault(vault, config, layout, keys, state)
