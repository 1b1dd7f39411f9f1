"""The version dispatch point: a vault's config version (FORMAT.md §6.1) picks
the byte layouts its log, packs and snapshots are read with.

A new format version adds its layout modules beside ``v1_files`` and
``v1_metadata`` and one line to :data:`LAYOUTS`; the reading rules (log.py,
packs.py, snapshots.py, bootstrap.py) call only what :class:`Layout` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from refreader import v1_files, v1_metadata
from refreader.errors import IntegrityError


@dataclass(frozen=True)
class Layout:
    version: int
    files: ModuleType  # log header/record, pack header/frame, snapshot prefix
    metadata: ModuleType  # decode_entry, decode_state


LAYOUTS = {1: Layout(1, v1_files, v1_metadata)}


def layout_for(config_version: int) -> Layout:
    layout = LAYOUTS.get(config_version)
    if layout is None:
        raise IntegrityError(f"unsupported vault version {config_version}")
    return layout
