"""The version dispatch point: a vault's config version (FORMAT.md §6.1) picks
the byte layouts its log, packs and snapshots are read with.

A new format version adds its layout modules beside ``v1_files`` and
``v1_metadata`` and one line to :data:`LAYOUTS`; the reading rules (log.py,
packs.py, bootstrap.py) call only what :class:`Layout` names, and
:func:`frame_layout` for pack frames, whose layout follows from each frame's
generation rather than from the vault's version (§8.2, §11).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from refreader import v1_files, v1_metadata, v2_files, v2_metadata
from refreader.errors import IntegrityError


@dataclass(frozen=True)
class Layout:
    version: int
    files: ModuleType  # log header/record, pack header, snapshot prefix
    metadata: ModuleType  # decode_entry, decode_state, empty_state


LAYOUTS = {
    1: Layout(1, v1_files, v1_metadata),
    2: Layout(2, v2_files, v2_metadata),
}


def layout_for(config_version: int) -> Layout:
    layout = LAYOUTS.get(config_version)
    if layout is None:
        raise IntegrityError(f"unsupported vault version {config_version}")
    return layout


def frame_layout(generation: int, legacy_generation_high: int) -> ModuleType:
    """The frame layout of §8.2: format 1's up to the state's legacy generation high
    (all of a vault of format 1, the frames an upgrade kept, §11), else format 2's."""
    return v1_files if generation <= legacy_generation_high else v2_files
