"""Version 1 byte layouts of the vault's numbered files: log file header and
record (FORMAT.md §7.1, §7.2), pack header and frame (§8.1, §8.2), snapshot
prefix (§9.4). Only bytes here; the reading rules are in log.py, packs.py
and snapshots.py. Layout errors raise :class:`refreader.fields.Damaged`."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from refreader.fields import Damaged
from refreader.primitives import TAG_LEN, hkdf

VERSION = 1
FILE_HEADER_LEN = 64
# Bytes 0..39, alike in the three kinds (§8.1): magic, version, reserved, header
# length, vault id, file number.
_COMMON = struct.Struct("<8sB3sI16sQ")


@dataclass(frozen=True)
class FileHeader:
    """The common part of a numbered file's header, and the bytes after it."""

    vault_id: bytes
    number: int
    rest: bytes  # bytes 40..end of the header, whose meaning depends on the kind


def parse_file_header(
    data: bytes, magic: bytes, version: int = VERSION, length: int = FILE_HEADER_LEN
) -> FileHeader:
    """The ``length``-byte header of a log file, pack or snapshot with ``magic``, of
    ``version`` (the layouts of later versions call this with their own values)."""
    if len(data) < length:
        raise Damaged(f"truncated header ({len(data)} of {length} bytes)")
    got_magic, got_version, reserved, got_length, vault_id, number = _COMMON.unpack_from(data)
    if got_magic != magic or reserved != bytes(3):
        raise Damaged(f"not a {magic.decode()} file (magic or reserved bytes)")
    if got_version != version:
        raise Damaged(f"version {got_version} where {version} expected")
    if got_length != length:
        raise Damaged(f"header length {got_length} where {length} expected")
    return FileHeader(vault_id, number, bytes(data[40:length]))


# --- log (§7) ------------------------------------------------------------------------------

LOG_MAGIC = b"fusefslg"
RECORD_HEADER = struct.Struct("<IQI")  # sealed length P, sequence number, CRC-32
MAX_SEALED = 16 * 1024 * 1024 + TAG_LEN


LOG_HEADER_LEN = FILE_HEADER_LEN
CHAINED = False  # version 1 records do not commit to the record before them


@dataclass(frozen=True)
class LogHeader:
    vault_id: bytes
    number: int
    file_id: bytes
    first_seq: int
    chain_in: bytes | None = None  # version 2 only (§7.1)


def parse_log_header(data: bytes) -> LogHeader:
    h = parse_file_header(data, LOG_MAGIC)
    file_id, first_seq = struct.unpack("<16sQ", h.rest)
    return LogHeader(h.vault_id, h.number, file_id, first_seq)


def log_key(master: bytes, header: LogHeader) -> bytes:
    return hkdf(master, header.file_id, b"fusefs/vault/log", 32)


@dataclass(frozen=True)
class RawRecord:
    """A whole record whose CRC holds (not yet opened)."""

    seq: int
    sealed: bytes
    length: int  # bytes it takes in the file


def parse_record(data: bytes, at: int) -> RawRecord | None:
    """The record at ``at``, or None if it is cut short, its length is out of
    limits or its CRC fails (what §7.3 calls incomplete or a CRC mismatch)."""
    if len(data) - at < RECORD_HEADER.size:
        return None
    sealed_len, seq, crc = RECORD_HEADER.unpack_from(data, at)
    start = at + RECORD_HEADER.size
    if not TAG_LEN + 1 <= sealed_len <= MAX_SEALED or len(data) - start < sealed_len:
        return None
    sealed = bytes(data[start : start + sealed_len])
    if zlib.crc32(sealed, zlib.crc32(data[at : at + 12])) != crc:
        return None
    return RawRecord(seq, sealed, RECORD_HEADER.size + sealed_len)


def record_starts_after(data: bytes, start: int, after_seq: int) -> bool:
    """Whether a whole record whose CRC holds, later in sequence than ``after_seq``,
    starts anywhere after ``start`` (§7.3, version 1: each candidate read whole)."""
    for at in range(start + 1, len(data) - RECORD_HEADER.size):
        seq = int.from_bytes(data[at + 4 : at + 12], "little")
        if seq > after_seq and parse_record(data, at):
            return True
    return False


def record_nonce(index_in_file: int) -> bytes:
    return struct.pack("<Q", index_in_file) + bytes(4)


def record_aad(header: LogHeader, seq: int, chain: bytes | None) -> bytes:
    """AAD of §7.2 version 1 (no chain: ``chain`` is ignored)."""
    return header.vault_id + struct.pack("<QQ", header.number, seq)


def record_payload(plaintext: bytes) -> bytes:
    """The encoded entry an opened record holds: version 1 stores it as it is."""
    return plaintext


# --- packs (§8) ----------------------------------------------------------------------------

PACK_MAGIC = b"fusefspk"
FRAME_NONCE_LEN = 12
FRAME_OVERHEAD = FRAME_NONCE_LEN + 1 + TAG_LEN  # stored_len = B + 29
ENCODING_RAW, ENCODING_ZSTD = 0, 1


def parse_pack_header(data: bytes) -> FileHeader:
    h = parse_file_header(data, PACK_MAGIC)
    if h.rest != bytes(24):
        raise Damaged("pack header bytes 40..63 are not zero")
    return h


def file_key(master: bytes, file_id: bytes) -> bytes:
    return hkdf(master, file_id, b"fusefs/vault/file", 32)


def split_frame(frame: bytes, generation: int) -> tuple[bytes, bytes]:
    """(nonce, sealed: encoding byte ‖ body ‖ tag); the nonce is stored in front."""
    return frame[:FRAME_NONCE_LEN], frame[FRAME_NONCE_LEN:]


def frame_body(plaintext: bytes) -> tuple[int, bytes]:
    """(encoding, body) of an opened frame: format 1 has no length and no padding."""
    return plaintext[0], plaintext[1:]


def frame_aad(
    vault_id: bytes, file_id: bytes, index: int, generation: int, plain_len: int
) -> bytes:
    return vault_id + file_id + struct.pack("<QQI", index, generation, plain_len)


# --- snapshots (§9.4) ----------------------------------------------------------------------

SNAP_MAGIC = b"fusefssn"


@dataclass(frozen=True)
class SnapshotPrefix:
    raw: bytes
    vault_id: bytes
    number: int
    snapshot_id: bytes
    covers_seq: int


def parse_snapshot_prefix(data: bytes) -> SnapshotPrefix:
    h = parse_file_header(data, SNAP_MAGIC)
    snapshot_id, covers_seq = struct.unpack("<16sQ", h.rest)
    return SnapshotPrefix(
        bytes(data[:FILE_HEADER_LEN]), h.vault_id, h.number, snapshot_id, covers_seq
    )


def snapshot_key(master: bytes, prefix: SnapshotPrefix) -> bytes:
    return hkdf(master, prefix.snapshot_id, b"fusefs/vault/snapshot", 32)


def split_snapshot(sealed_rest: bytes) -> tuple[bytes | None, bytes]:
    """(chain, encoded state) of the plaintext after the prefix: version 1 has no chain."""
    return None, sealed_rest
