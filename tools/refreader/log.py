"""Reading the unified log, ``log/*.ulog`` (FORMAT.md §7.3), read-only.

Files are read in number order; files the snapshot in use covers whole are
not read at all. Every record is checked (CRC, sequence number, AEAD); the
only damage forgiven is a torn tail of the last file, which the engine would
cut and this reader simply ignores. The copies in ``mirror/log/`` are not
used: damage the engine would mend from them is reported here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from refreader.errors import IntegrityError
from refreader.fields import Damaged
from refreader.layouts import Layout
from refreader.primitives import aead_open, make_aead

LOG_NAME = re.compile(rb"([0-9a-f]{16})\.ulog\Z")


@dataclass(frozen=True)
class Record:
    seq: int
    payload: bytes
    where: str  # "log/NAME.ulog offset N", for messages


@dataclass(frozen=True)
class VaultKeys:
    """What every reader of the vault's files needs."""

    vault_id: bytes
    cipher: int
    master: bytes


def numbered_files(directory: str, pattern: re.Pattern[bytes]) -> list[tuple[int, str]]:
    """(number, name) of the files of ``directory`` named like ``pattern``, sorted."""
    try:
        names = os.listdir(os.fsencode(directory))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise IntegrityError(f"cannot list {directory}: {e.strerror or e}") from None
    found = []
    for name in names:
        m = pattern.match(name)
        if m:
            found.append((int(m.group(1), 16), os.fsdecode(name)))
    return sorted(found)


def read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise IntegrityError(f"cannot read {path}: {e.strerror or e}") from None


def _first_seq(layout: Layout, path: str) -> int | None:
    """The first sequence number a file's header announces (None: unreadable)."""
    try:
        with open(path, "rb") as f:
            return int(layout.files.parse_log_header(f.read(64)).first_seq)
    except (OSError, Damaged):
        return None


def read_log(vault: str, layout: Layout, keys: VaultKeys, covers_seq: int) -> list[Record]:
    """Every record of the log files the state after ``covers_seq`` still needs."""
    directory = os.path.join(vault, "log")
    files = numbered_files(directory, LOG_NAME)
    firsts = [_first_seq(layout, os.path.join(directory, name)) for _, name in files]
    records: list[Record] = []
    next_seq: int | None = None
    for i, (number, name) in enumerate(files):
        is_last = i + 1 == len(files)
        following = firsts[i + 1] if not is_last else None
        if following is not None and following <= covers_seq + 1:
            continue  # covered whole by the snapshot: not read (§7.3)
        data = read_bytes(os.path.join(directory, name))
        if is_last and len(data) < 64:
            continue  # its creation was interrupted: the engine removes it
        where = f"log/{name}"
        try:
            header = layout.files.parse_log_header(data)
        except Damaged as e:
            raise IntegrityError(f"{where}: damaged header: {e}") from None
        if header.vault_id != keys.vault_id:
            raise IntegrityError(f"{where}: belongs to another vault")
        if header.number != number:
            raise IntegrityError(f"{where}: header says file {header.number}")
        if next_seq is not None and header.first_seq != next_seq:
            # A gap is harmless where the snapshot covers everything before
            # this file (a compaction deletes covered files one by one).
            if not next_seq < header.first_seq <= covers_seq + 1:
                raise IntegrityError(
                    f"{where}: starts at record {header.first_seq}, expected {next_seq} "
                    "(a log file is missing)"
                )
        next_seq = _read_file(data, header, layout, keys, where, is_last, records)
    return records


def _read_file(
    data: bytes,
    header: Any,
    layout: Layout,
    keys: VaultKeys,
    where: str,
    is_last: bool,
    out: list[Record],
) -> int:
    """Append the file's records to ``out``; the sequence number after them."""
    files = layout.files
    aead = make_aead(keys.cipher, files.log_key(keys.master, header))
    first_seq: int = header.first_seq
    expected = first_seq
    at = 64
    while at < len(data):
        raw = files.parse_record(data, at)
        if raw is None:
            if is_last and not _checksummed_record_after(files, data, at, expected - 1):
                break  # a torn tail: written, never synced, never acknowledged
            raise IntegrityError(
                f"{where} offset {at}: damaged record (cut short or bad CRC), followed by more data"
                if is_last
                else f"{where} offset {at}: damaged record (cut short or bad CRC)"
            )
        if raw.seq != expected:
            raise IntegrityError(f"{where} offset {at}: record {raw.seq} where {expected} expected")
        nonce = files.record_nonce(raw.seq - first_seq)
        payload = aead_open(aead, nonce, raw.sealed, files.record_aad(header, raw.seq))
        if payload is None:
            raise IntegrityError(f"{where} offset {at}: record {raw.seq} failed authentication")
        out.append(Record(raw.seq, payload, f"{where} offset {at}"))
        expected += 1
        at += raw.length
    return expected


def _checksummed_record_after(files: Any, data: bytes, start: int, after_seq: int) -> bool:
    """Whether a whole record whose CRC holds, later in sequence than ``after_seq``,
    starts anywhere after ``start``: then the damage at ``start`` is no torn tail."""
    for at in range(start + 1, len(data) - 16):
        if files.record_seq_at(data, at) > after_seq and files.parse_record(data, at):
            return True
    return False
