"""Rebuilding a vault's metadata state, read-only (FORMAT.md §9.4, §9.7).

The newest snapshot that reads is the base (a damaged one is read from its
copy in ``mirror/snap/``, §10, else skipped with a warning, as §9.7 says);
then the log records after its ``covers_seq`` are applied in order. Orphans
are not reclaimed (that writes to the log): the export never reaches them.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from refreader.errors import DecodeError, IntegrityError
from refreader.fields import Damaged
from refreader.layouts import Layout
from refreader.log import Record, VaultKeys, numbered_files, read_bytes, read_log
from refreader.state import Refused, State, apply
from refreader.stream import decrypt_stream
from refreader.v2_files import ZERO_CHAIN

SNAP_NAME = re.compile(rb"([0-9a-f]{16})\.snap\Z")  # "*.snap.tmp" never matches


@dataclass(frozen=True)
class Base:
    """What the log continues: the state after record ``covers_seq`` and, in format 2,
    that record's tag (§9.4: the snapshot's chain; 16 zero bytes before any record)."""

    covers_seq: int
    chain: bytes | None
    state: State


def read_snapshot(data: bytes, layout: Layout, keys: VaultKeys) -> Base:
    """One snapshot file's base, with the checks of §9.4 in order."""
    files = layout.files
    try:
        prefix = files.parse_snapshot_prefix(data)
    except Damaged as e:
        raise IntegrityError(str(e)) from None
    if prefix.vault_id != keys.vault_id:
        raise IntegrityError("belongs to another vault")
    plain = io.BytesIO()
    try:
        decrypt_stream(
            io.BytesIO(data[len(prefix.raw) :]), plain, key=files.snapshot_key(keys.master, prefix)
        )
    except DecodeError as e:
        raise IntegrityError(f"snapshot damaged: {e}") from None
    content = plain.getvalue()
    if content[: len(prefix.raw)] != prefix.raw:
        raise IntegrityError("prefix does not match its sealed copy")
    try:
        chain, encoded = files.split_snapshot(content[len(prefix.raw) :])
        state = layout.metadata.decode_state(encoded)
    except Damaged as e:
        raise IntegrityError(f"snapshot damaged: {e}") from None
    return Base(prefix.covers_seq, chain, state)


def _base(vault: str, layout: Layout, keys: VaultKeys, warn: Callable[[str], None]) -> Base | None:
    """The newest snapshot that reads, or None."""
    for _, name in reversed(numbered_files(os.path.join(vault, "snap"), SNAP_NAME)):
        errors = []
        copies = (os.path.join(vault, "snap", name), os.path.join(vault, "mirror", "snap", name))
        for path in copies:
            if not os.path.exists(path):
                continue
            try:
                return read_snapshot(read_bytes(path), layout, keys)
            except IntegrityError as e:
                errors.append(f"{os.path.relpath(path, vault)}: {e}")
        warn(f"skipping snapshot snap/{name}: {'; '.join(errors)}")
    return None


def load_state(
    vault: str, layout: Layout, keys: VaultKeys, segment_size: int, warn: Callable[[str], None]
) -> State:
    """The vault's metadata state after every durable log record (§9.7 steps 2-5)."""
    base = _base(vault, layout, keys, warn)
    if base is None:
        chain = ZERO_CHAIN if layout.files.CHAINED else None
        base = Base(0, chain, layout.metadata.empty_state(segment_size))
    covers_seq, state = base.covers_seq, base.state
    records = read_log(vault, layout, keys, covers_seq, base.chain)
    if records and records[0].seq > covers_seq + 1:
        raise IntegrityError(
            f"{records[0].where}: the log starts at record {records[0].seq} but the state "
            f"covers only up to record {covers_seq} (a snapshot is missing or damaged)"
        )
    for record in records:
        if record.seq <= covers_seq:
            continue
        try:
            entry = layout.metadata.decode_entry(record.payload)
        except Damaged as e:
            raise IntegrityError(f"{record.where}: undecodable entry: {e}") from None
        try:
            apply(state, entry)
        except Refused as e:
            raise IntegrityError(
                f"{record.where}: record {record.seq} ({entry.name}) refused: {e}"
            ) from None
    if layout.files.CHAINED and records and not _is_close(layout, records[-1]):
        warn(
            f"the log ends without a Close record ({records[-1].where}): the last session "
            "did not close the vault (it crashed, or the log was cut)"
        )
    return state


def _is_close(layout: Layout, record: Record) -> bool:
    """Whether a record holds a Close entry (§7.2 "The end", format 2)."""
    try:
        return bool(layout.metadata.decode_entry(record.payload).name == "Close")
    except Damaged:
        return False
