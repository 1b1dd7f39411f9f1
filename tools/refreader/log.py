"""Reading the unified log, ``log/*.ulog`` (FORMAT.md §7.3), read-only.

Files are read in number order; files the snapshot in use covers whole are
not read at all. Every record is checked (CRC and, in version 2, header check,
sequence number, AEAD, padding) and, in version 2, the chain: each file's
chain in against the file before it or the snapshot, and the record the
snapshot covers up to against the snapshot's chain (§7.2, §7.3). The only
damage forgiven is a torn tail of the last file, which the engine would cut
and this reader simply ignores. The copies in ``mirror/log/`` are not
used: damage the engine would mend from them is reported here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from refreader.errors import IntegrityError
from refreader.fields import Damaged
from refreader.layouts import LAYOUTS, Layout
from refreader.primitives import TAG_LEN, aead_open, make_aead

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


def _first_seq(path: str) -> int | None:
    """The first sequence number a file's header announces (None: unreadable). Any
    version's header will do: this only decides which files the snapshot covers whole
    (an upgraded vault may keep files of version 1 that way until they are deleted, §11)."""
    try:
        with open(path, "rb") as f:
            head = f.read(max(layout.files.LOG_HEADER_LEN for layout in LAYOUTS.values()))
    except OSError:
        return None
    for layout in LAYOUTS.values():
        try:
            return int(layout.files.parse_log_header(head).first_seq)
        except Damaged:
            continue
    return None


def read_log(
    vault: str, layout: Layout, keys: VaultKeys, covers_seq: int, snapshot_chain: bytes | None
) -> list[Record]:
    """Every record of the log files the state after ``covers_seq`` still needs;
    ``snapshot_chain`` is the chain value of record ``covers_seq`` (version 2)."""
    directory = os.path.join(vault, "log")
    files = numbered_files(directory, LOG_NAME)
    firsts = [_first_seq(os.path.join(directory, name)) for _, name in files]
    records: list[Record] = []
    next_seq: int | None = None
    chain: bytes | None = None  # after the previous file read: its last tag, or its chain in
    for i, (number, name) in enumerate(files):
        is_last = i + 1 == len(files)
        following = firsts[i + 1] if not is_last else None
        if following is not None and following <= covers_seq + 1:
            continue  # covered whole by the snapshot: not read (§7.3)
        data = read_bytes(os.path.join(directory, name))
        if is_last and len(data) < layout.files.LOG_HEADER_LEN:
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
        if layout.files.CHAINED:
            _check_chain_in(header, where, covers_seq, snapshot_chain, chain)
        reading = _FileReading(data, header, layout, keys, where, is_last)
        next_seq, chain = reading.read(covers_seq, snapshot_chain, records)
    return records


def _check_chain_in(
    header: Any, where: str, covers_seq: int, snapshot_chain: bytes | None, chain: bytes | None
) -> None:
    """§7.3, version 2: a file right after the snapshot continues the snapshot's chain,
    any other file read the previous file's last record's tag."""
    if header.first_seq == covers_seq + 1:
        expected, whose = snapshot_chain, f"the snapshot's (record {covers_seq})"
    elif chain is not None:
        expected, whose = chain, "the last record of the file before it"
    else:
        return  # the first file read holds record covers_seq: its tag is checked
    if header.chain_in != expected:
        raise IntegrityError(
            f"{where}: chain mismatch: its chain in is not the tag of {whose} "
            "(a log file of another history, or of an older copy of the vault)"
        )


class _FileReading:
    """The records of one log file, in order, every check of §7.3 applied."""

    def __init__(
        self, data: bytes, header: Any, layout: Layout, keys: VaultKeys, where: str, is_last: bool
    ) -> None:
        self.data, self.header, self.files = data, header, layout.files
        self.aead = make_aead(keys.cipher, self.files.log_key(keys.master, header))
        self.where, self.is_last = where, is_last

    def read(
        self, covers_seq: int, snapshot_chain: bytes | None, out: list[Record]
    ) -> tuple[int, bytes | None]:
        """Append the file's records to ``out``: (the sequence number after them, the
        chain value after them)."""
        files, data, where = self.files, self.data, self.where
        first_seq: int = self.header.first_seq
        expected = first_seq
        chain: bytes | None = self.header.chain_in
        at = files.LOG_HEADER_LEN
        while at < len(data):
            raw = files.parse_record(data, at)
            if raw is None:
                if self.is_last and not files.record_starts_after(data, at, expected - 1):
                    break  # a torn tail: written, never synced, never acknowledged
                raise IntegrityError(
                    f"{where} offset {at}: damaged record (cut short or bad CRC)"
                    + (", followed by more data" if self.is_last else "")
                )
            if raw.seq != expected:
                raise IntegrityError(
                    f"{where} offset {at}: record {raw.seq} where {expected} expected"
                )
            nonce = files.record_nonce(raw.seq - first_seq)
            aad = files.record_aad(self.header, raw.seq, chain)
            plaintext = aead_open(self.aead, nonce, raw.sealed, aad)
            if plaintext is None:
                raise IntegrityError(f"{where} offset {at}: record {raw.seq} failed authentication")
            try:
                payload = files.record_payload(plaintext)
            except Damaged as e:
                raise IntegrityError(f"{where} offset {at}: record {raw.seq}: {e}") from None
            chain = raw.sealed[-TAG_LEN:]
            if files.CHAINED and raw.seq == covers_seq and chain != snapshot_chain:
                raise IntegrityError(
                    f"{where} offset {at}: chain mismatch: record {raw.seq} is not the one "
                    "the snapshot continues (a log file of another history, or of an older "
                    "copy of the vault)"
                )
            out.append(Record(raw.seq, payload, f"{where} offset {at}"))
            expected += 1
            at += raw.length
        return expected, chain
