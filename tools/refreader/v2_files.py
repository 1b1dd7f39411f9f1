"""Version 2 byte layouts of the vault's numbered files: the 80-byte log file
header with its chain in (FORMAT.md §7.1), chained and padded records (§7.2),
pack frames of format 2 (§8.2) and the snapshot prefix of version 2 with the
chain in its plaintext (§9.4). What did not change (pack headers, subkeys,
the frame AAD, format 1 frames of an upgraded vault) is version 1's, reused.
Layout errors raise :class:`refreader.fields.Damaged`."""

from __future__ import annotations

import struct
import zlib

from refreader import v1_files
from refreader.fields import Damaged
from refreader.primitives import TAG_LEN

VERSION = 2
CHAIN_LEN = 16  # a chain value is one record's AEAD tag
ZERO_CHAIN = bytes(CHAIN_LEN)  # before the vault's first record, or right after an upgrade

# Unchanged from version 1 (§6.5, §8.1, §8.2: key and AAD "as in format 1").
file_key = v1_files.file_key
frame_aad = v1_files.frame_aad
parse_pack_header = v1_files.parse_pack_header
log_key = v1_files.log_key
snapshot_key = v1_files.snapshot_key
record_nonce = v1_files.record_nonce
ENCODING_RAW, ENCODING_ZSTD = v1_files.ENCODING_RAW, v1_files.ENCODING_ZSTD
RawRecord = v1_files.RawRecord
LogHeader = v1_files.LogHeader
SnapshotPrefix = v1_files.SnapshotPrefix

# --- log (§7) ------------------------------------------------------------------------------

LOG_HEADER_LEN = 80
CHAINED = True
#: sealed length P, sequence number, header check (CRC-32 of bytes 0..11), body CRC-32
RECORD_HEADER = struct.Struct("<IQII")
MAX_SEALED = 16 * 1024 * 1024 + 4096 + TAG_LEN


def parse_log_header(data: bytes) -> LogHeader:
    h = v1_files.parse_file_header(data, v1_files.LOG_MAGIC, VERSION, LOG_HEADER_LEN)
    file_id, first_seq, chain_in = struct.unpack("<16sQ16s", h.rest)
    return LogHeader(h.vault_id, h.number, file_id, first_seq, chain_in)


def _header_check_holds(data: bytes, at: int) -> bool:
    return zlib.crc32(data[at : at + 12]) == int.from_bytes(data[at + 12 : at + 16], "little")


def parse_record(data: bytes, at: int) -> RawRecord | None:
    """The record at ``at``, or None if it is cut short, its header check or body
    CRC fails or its length is out of limits (§7.3: incomplete or a CRC mismatch)."""
    if len(data) - at < RECORD_HEADER.size or not _header_check_holds(data, at):
        return None
    sealed_len, seq, _, body_crc = RECORD_HEADER.unpack_from(data, at)
    start = at + RECORD_HEADER.size
    if not TAG_LEN + 1 <= sealed_len <= MAX_SEALED or len(data) - start < sealed_len:
        return None
    sealed = bytes(data[start : start + sealed_len])
    if zlib.crc32(sealed) != body_crc:
        return None
    return RawRecord(seq, sealed, RECORD_HEADER.size + sealed_len)


def record_starts_after(data: bytes, start: int, after_seq: int) -> bool:
    """Whether, at any offset after ``start``, 20 bytes hold a record header whose
    header check holds and whose sequence number is above ``after_seq`` (§7.3,
    version 2: constant work per offset, so the scan is linear)."""
    for at in range(start + 1, len(data) - RECORD_HEADER.size + 1):
        if _header_check_holds(data, at) and (
            int.from_bytes(data[at + 4 : at + 12], "little") > after_seq
        ):
            return True
    return False


def record_aad(header: LogHeader, seq: int, chain: bytes | None) -> bytes:
    """AAD of §7.2 version 2: vault id ‖ file number ‖ sequence number ‖ chain."""
    assert chain is not None and len(chain) == CHAIN_LEN
    return header.vault_id + struct.pack("<QQ", header.number, seq) + chain


def record_payload(plaintext: bytes) -> bytes:
    """The encoded entry of a padded plaintext: u32 length ‖ entry ‖ zero bytes."""
    if len(plaintext) < 4:
        raise Damaged(f"padded plaintext of {len(plaintext)} bytes has no entry length")
    length = int.from_bytes(plaintext[:4], "little")
    if length > len(plaintext) - 4:
        raise Damaged(f"entry length {length} larger than the {len(plaintext) - 4} bytes held")
    if any(plaintext[4 + length :]):
        raise Damaged("a padding byte is not zero")
    return plaintext[4 : 4 + length]


def record_padded_len(entry_len: int) -> int:
    """The padded plaintext length a writer uses for an entry (§7.2): the reading
    rules do not require it, the cross-tests check the engine keeps to it."""
    need = 4 + entry_len
    for bucket in (128, 256, 512, 1024, 2048):
        if need <= bucket:
            return bucket
    return 512 + -(-(need - 512) // 4096) * 4096


# --- pack frames of format 2 (§8.2) --------------------------------------------------------

FRAME_BODY_AT = 5  # encoding byte ‖ body length u32
FRAME_OVERHEAD = FRAME_BODY_AT + TAG_LEN  # no stored nonce


def split_frame(frame: bytes, generation: int) -> tuple[bytes, bytes]:
    """(nonce, sealed): the nonce is the generation, the whole frame is sealed."""
    return struct.pack("<Q", generation) + bytes(4), frame


def frame_body(plaintext: bytes) -> tuple[int, bytes]:
    """(encoding, body) of an opened frame: encoding ‖ u32 B ‖ body ‖ zero bytes."""
    if len(plaintext) < FRAME_BODY_AT:
        raise Damaged(f"frame plaintext of {len(plaintext)} bytes has no body length")
    length = int.from_bytes(plaintext[1:FRAME_BODY_AT], "little")
    if length > len(plaintext) - FRAME_BODY_AT:
        raise Damaged(f"body length {length} larger than the frame holds")
    end = FRAME_BODY_AT + length
    if any(plaintext[end:]):
        raise Damaged("a padding byte of the frame is not zero")
    return plaintext[0], plaintext[FRAME_BODY_AT:end]


def frame_padded_len(body_len: int, segment_size: int) -> int:
    """``T`` of §8.2 for a body of ``body_len`` bytes (the length a raw frame is sealed
    again with, §9.2 WriteSegmentsPatched; the cross-tests check the engine's frames)."""
    need = FRAME_BODY_AT + body_len
    step = max(256, 1 << max(0, need.bit_length() - 1 - 4))  # 2^(⌊log2 need⌋ − 4)
    return min(-(-need // step) * step, FRAME_BODY_AT + segment_size)


def raw_frame_plaintext(plain: bytes, segment_size: int) -> bytes:
    """What a format-2 frame of encoding 0 (raw) seals: encoding ‖ u32 B ‖ the plaintext ‖
    zeros to ``T``. With the nonce the generation, sealing it is deterministic (§9.2)."""
    padded = frame_padded_len(len(plain), segment_size)
    head = bytes([ENCODING_RAW]) + struct.pack("<I", len(plain))
    return head + plain + bytes(padded - FRAME_BODY_AT - len(plain))


# --- snapshots (§9.4) ----------------------------------------------------------------------


def parse_snapshot_prefix(data: bytes) -> SnapshotPrefix:
    h = v1_files.parse_file_header(data, v1_files.SNAP_MAGIC, VERSION)
    snapshot_id, covers_seq = struct.unpack("<16sQ", h.rest)
    return SnapshotPrefix(
        bytes(data[: v1_files.FILE_HEADER_LEN]), h.vault_id, h.number, snapshot_id, covers_seq
    )


def split_snapshot(sealed_rest: bytes) -> tuple[bytes | None, bytes]:
    """(chain, encoded state) of the plaintext after the sealed prefix (§9.4 step 5)."""
    if len(sealed_rest) < CHAIN_LEN:
        raise Damaged(f"{len(sealed_rest)} bytes where the 16-byte chain was expected")
    return sealed_rest[:CHAIN_LEN], sealed_rest[CHAIN_LEN:]
