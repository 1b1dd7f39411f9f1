"""Standalone streams (FORMAT.md §2-§4): header, v1 chunks, v2 frames.

Written only from FORMAT.md, without reading the Rust code, so that it can be
used to cross-check the Rust encoder and decoder. Snapshots (§9.4) are such
streams too, so the vault reader decodes them here.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import struct
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

from refreader.errors import IntegrityError, UsageError, WrongKeyError
from refreader.primitives import (
    CIPHER_NAMES,
    MASTER_KEY_LEN,
    TAG_LEN,
    aead_open,
    argon2id_master,
    hkdf,
    make_aead,
    payload_info,
)

# --------------------------------------------------------------------------
# Constants (FORMAT.md §1, §2, §4)
# --------------------------------------------------------------------------

MAGIC = b"fusefs"
HEADER_LEN = 108


KEY_SOURCE_PASSWORD = 1
KEY_SOURCE_RAW = 2

FLAG_ZSTD = 0x01  # §2 flags bit 0: segments may be zstd-compressed (v2 only)

MIN_SEGMENT_SIZE = 4096
MAX_SEGMENT_SIZE = 16 * 1024 * 1024
ARGON2_M_RANGE = (8, 4194304)
ARGON2_T_RANGE = (1, 64)
ARGON2_P_RANGE = (1, 64)

INFO_HEADER_MAC = b"fusefs/stream/header-mac"
INFO_KEY_CHECK = b"fusefs/stream/key-check"

# §2 header layout, 108 bytes, little-endian:
#   0  6  magic "fusefs"          6  1  version         7  1  cipher
#   8  1  key source              9  1  flags          10  2  header length
#  12  4  segment size S         16 16  stream id      32 16  Argon2id salt
#  48  4  Argon2id m (KiB)       52  4  Argon2id t     56  4  Argon2id p
#  60 16  key check              76 32  header MAC = HMAC-SHA256(key, bytes 0..75)
HEADER_STRUCT = struct.Struct("<6sBBBBHI16s16sIII16s32s")
HEADER_MAC_OFFSET = 76
assert HEADER_STRUCT.size == HEADER_LEN

# §4.1 frame header, 41 bytes: P u32, stream id 16, index u64, kind u8, nonce 12
FRAME_HEADER_STRUCT = struct.Struct("<I16sQB12s")
FRAME_HEADER_LEN = 41
FRAME_AAD_LEN = 29  # frame bytes 0..28: length, stream id, index, kind
assert FRAME_HEADER_STRUCT.size == FRAME_HEADER_LEN

KIND_DATA = 0x00
KIND_FINAL = 0x01
KIND_TRAILER = 0x02

ENCODING_RAW = 0x00
ENCODING_ZSTD = 0x01

# §4.2 trailer sealed plaintext, 49 bytes: encoding, digest, n, total bytes
TRAILER_STRUCT = struct.Struct("<B32sQQ")
TRAILER_PLAINTEXT_LEN = 49
TRAILER_P = TRAILER_PLAINTEXT_LEN + TAG_LEN  # = 65
assert TRAILER_STRUCT.size == TRAILER_PLAINTEXT_LEN

DIGEST_DOMAIN = b"fusefs/stream/v2/digest"  # §4.3


# --------------------------------------------------------------------------
# Header (§2)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    raw: bytes
    version: int
    cipher: int
    key_source: int
    flags: int
    header_len: int
    segment_size: int
    stream_id: bytes
    salt: bytes
    argon2_m: int
    argon2_t: int
    argon2_p: int
    key_check: bytes
    mac: bytes

    @property
    def zstd_allowed(self) -> bool:
        return bool(self.flags & FLAG_ZSTD)


@dataclass(frozen=True)
class StreamKeys:
    master: bytes
    payload_key: bytes
    header_mac_key: bytes


def _in_range(value: int, bounds: tuple[int, int]) -> bool:
    return bounds[0] <= value <= bounds[1]


def parse_header(data: bytes) -> Header:
    """Structural header checks, steps 1 and 2 of §2 (without the key kind).

    ``data`` is what could be read of the first 108 bytes of the stream.
    Raises IntegrityError on the first failing check, in the documented order.
    """
    # Step 1: length, all-zero, magic.
    if len(data) < HEADER_LEN:
        raise IntegrityError(f"truncated header ({len(data)} of {HEADER_LEN} bytes)")
    data = bytes(data[:HEADER_LEN])
    if data == bytes(HEADER_LEN):
        raise IntegrityError("not a fusefs stream (all zero)")
    (
        magic,
        version,
        cipher,
        key_source,
        flags,
        header_len,
        segment_size,
        stream_id,
        salt,
        m,
        t,
        p,
        key_check,
        mac,
    ) = HEADER_STRUCT.unpack(data)
    if magic != MAGIC:
        raise IntegrityError("not a fusefs stream")

    # Step 2: version, then every other field.
    if version not in (1, 2):
        raise IntegrityError(f"unsupported version {version}")
    if header_len != HEADER_LEN:
        raise IntegrityError(f"invalid header: header length {header_len}, expected {HEADER_LEN}")
    if cipher not in CIPHER_NAMES:
        raise IntegrityError(f"invalid header: unknown cipher {cipher}")
    if key_source not in (KEY_SOURCE_PASSWORD, KEY_SOURCE_RAW):
        raise IntegrityError(f"invalid header: unknown key source {key_source}")
    if flags & ~FLAG_ZSTD:
        raise IntegrityError(f"invalid header: unknown flag bits 0x{flags & ~FLAG_ZSTD:02x}")
    if version == 1 and flags & FLAG_ZSTD:
        # §2: bit 0 is "v2 only"; v1 chunks have no encoding byte, so a v1
        # header claiming compression is treated as invalid (see report).
        raise IntegrityError("invalid header: compression flag set in a v1 header")
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise IntegrityError(f"invalid header: segment size {segment_size} out of range")
    if key_source == KEY_SOURCE_RAW:
        if (m, t, p) != (0, 0, 0):
            raise IntegrityError("invalid header: Argon2id parameters must be 0 for a raw key")
    else:
        if not _in_range(m, ARGON2_M_RANGE):
            raise IntegrityError(f"invalid header: Argon2id memory {m} KiB out of range")
        if not _in_range(t, ARGON2_T_RANGE):
            raise IntegrityError(f"invalid header: Argon2id passes {t} out of range")
        if not _in_range(p, ARGON2_P_RANGE):
            raise IntegrityError(f"invalid header: Argon2id lanes {p} out of range")
        if m < 8 * p:
            # Not in FORMAT.md's ranges, but Argon2 itself requires m >= 8 p.
            raise IntegrityError(f"invalid header: Argon2id memory {m} KiB < 8 x {p} lanes")

    return Header(
        raw=data,
        version=version,
        cipher=cipher,
        key_source=key_source,
        flags=flags,
        header_len=header_len,
        segment_size=segment_size,
        stream_id=stream_id,
        salt=salt,
        argon2_m=m,
        argon2_t=t,
        argon2_p=p,
        key_check=key_check,
        mac=mac,
    )


def _check_secret_args(password: bytes | None, key: bytes | None) -> None:
    if (password is None) == (key is None):
        raise TypeError("give exactly one of password= or key=")
    if key is not None and len(key) != MASTER_KEY_LEN:
        raise UsageError(f"key must be exactly {MASTER_KEY_LEN} bytes, got {len(key)}")


def derive_stream_keys(
    header: Header, *, password: bytes | None = None, key: bytes | None = None
) -> StreamKeys:
    """Steps 2 (key kind), 3 (key check) and 4 (header MAC) of §2."""
    _check_secret_args(password, key)
    if header.key_source == KEY_SOURCE_PASSWORD and password is None:
        raise WrongKeyError(
            "wrong kind of key: the stream was encrypted with a password, not a key file"
        )
    if header.key_source == KEY_SOURCE_RAW and key is None:
        raise WrongKeyError(
            "wrong kind of key: the stream was encrypted with a key file, not a password"
        )

    # Step 3: master key and key check (constant-time comparison).
    if password is not None:
        master = argon2id_master(
            password, header.salt, header.argon2_m, header.argon2_t, header.argon2_p
        )
    else:
        assert key is not None
        master = bytes(key)
    key_check = hkdf(master, header.stream_id, INFO_KEY_CHECK, 16)
    if not hmac.compare_digest(key_check, header.key_check):
        raise WrongKeyError("wrong password or key")

    # Step 4: header MAC over bytes 0..75.
    header_mac_key = hkdf(master, header.stream_id, INFO_HEADER_MAC, 32)
    mac = hmac.new(header_mac_key, header.raw[:HEADER_MAC_OFFSET], hashlib.sha256).digest()
    if not hmac.compare_digest(mac, header.mac):
        raise IntegrityError("header tampered")

    payload_key = hkdf(master, header.stream_id, payload_info(header.version, header.cipher), 32)
    return StreamKeys(master=master, payload_key=payload_key, header_mac_key=header_mac_key)


def open_header(
    data: bytes, *, password: bytes | None = None, key: bytes | None = None
) -> tuple[Header, StreamKeys]:
    """All four header checks of §2, in the documented order."""
    _check_secret_args(password, key)
    header = parse_header(data)
    return header, derive_stream_keys(header, password=password, key=key)


# --------------------------------------------------------------------------
# Input helper: exact reads with one byte of look-ahead (bounded memory)
# --------------------------------------------------------------------------


class _Input:
    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._pending = b""

    def read(self, n: int) -> bytes:
        """Read up to n bytes; fewer only at the end of the input."""
        parts = []
        if self._pending:
            parts.append(self._pending[:n])
            self._pending = self._pending[n:]
            n -= len(parts[0])
        while n > 0:
            chunk = self._f.read(n)
            if not chunk:
                break
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def at_eof(self) -> bool:
        if self._pending:
            return False
        self._pending = self._f.read(1)
        return not self._pending


# --------------------------------------------------------------------------
# Stream v1 (§3)
# --------------------------------------------------------------------------


def v1_nonce(counter: int, last: bool) -> bytes:
    """11-byte big-endian chunk counter || 0x01 (last chunk) or 0x00 (§3)."""
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


@dataclass
class DecodeResult:
    version: int
    cipher: int
    key_source: int
    segment_size: int
    segments: int = 0
    plaintext_bytes: int = 0
    compressed_segments: int = 0


def _decode_v1(
    inp: _Input, out: BinaryIO, header: Header, keys: StreamKeys, result: DecodeResult
) -> None:
    S = header.segment_size
    aead = make_aead(header.cipher, keys.payload_key)
    aad = header.mac  # AAD = the 32-byte header MAC
    i = 0
    while True:
        # Every chunk but the last is exactly S + 16 bytes on disk; the last
        # is 17..S+16 (16 only for an empty stream).  Without a length field,
        # a chunk is "last" exactly when the input ends after it.
        sealed = inp.read(S + TAG_LEN)
        more = not inp.at_eof()
        if more:
            # A full chunk with more data behind it: must open as non-final.
            plain = aead_open(aead, v1_nonce(i, False), sealed, aad)
            if plain is None:
                if aead_open(aead, v1_nonce(i, True), sealed, aad) is not None:
                    raise IntegrityError(f"trailing data after the final segment {i}")
                raise IntegrityError(f"segment {i} failed authentication")
            out.write(plain)
            result.segments += 1
            result.plaintext_bytes += len(plain)
            i += 1
            continue

        # End of input: this must be the final chunk.
        if len(sealed) < TAG_LEN:
            raise IntegrityError("truncated stream")
        plain = aead_open(aead, v1_nonce(i, True), sealed, aad)
        if plain is None:
            if (
                len(sealed) == S + TAG_LEN
                and aead_open(aead, v1_nonce(i, False), sealed, aad) is not None
            ):
                raise IntegrityError(f"truncated stream (segment {i} is not the final one)")
            if i > 0 and len(sealed) == TAG_LEN:
                # Too short for a final chunk after chunk 0 (17..S+16 bytes).
                raise IntegrityError("truncated stream")
            # A cut inside a chunk, bytes appended after a short last chunk and
            # a flipped bit all look the same here: v1 has no length field.
            raise IntegrityError(
                f"segment {i} failed authentication "
                "(last segment: tampered, truncated, or followed by extra data)"
            )
        if not plain and i > 0:
            # Only a key holder can make this: an empty final chunk after chunk 0.
            raise IntegrityError(f"invalid segment: empty final segment {i}")
        out.write(plain)
        result.segments += 1
        result.plaintext_bytes += len(plain)
        return


# --------------------------------------------------------------------------
# Stream v2 (§4)
# --------------------------------------------------------------------------


def _zstd_decode(body: bytes, limit: int, index: int) -> bytes:
    """Decode one zstd frame producing at most ``limit`` bytes (§4.1)."""
    try:  # imported here so that streams without compression need no zstandard
        import zstandard
    except ImportError:
        raise UsageError("the zstandard package is required: pip install zstandard") from None

    try:
        params = zstandard.get_frame_parameters(body)
    except zstandard.ZstdError as e:
        raise IntegrityError(f"invalid frame: segment {index}: undecodable zstd ({e})") from None
    # Refuse before allocating: a declared content size above S is an error anyway.
    if params.content_size != zstandard.CONTENTSIZE_UNKNOWN and params.content_size > limit:
        raise IntegrityError(
            f"invalid frame: segment {index} decompresses to {params.content_size} bytes, "
            f"more than the segment size {limit}"
        )
    try:
        # max_output_size bounds the output when the frame has no content size;
        # allow_extra_data=False enforces "one zstd frame" and nothing after it.
        return zstandard.ZstdDecompressor().decompress(
            body, max_output_size=limit, allow_extra_data=False
        )
    except zstandard.ZstdError as e:
        raise IntegrityError(f"invalid frame: segment {index}: undecodable zstd ({e})") from None


def _decode_v2(
    inp: _Input, out: BinaryIO, header: Header, keys: StreamKeys, result: DecodeResult
) -> None:
    S = header.segment_size
    aead = make_aead(header.cipher, keys.payload_key)
    chain = hashlib.sha256(DIGEST_DOMAIN + header.mac).digest()  # chain_0 (§4.3)
    expected = 0  # next data index == number of data frames read so far
    final_seen = False
    total = 0

    while True:
        frame_header = inp.read(FRAME_HEADER_LEN)
        if len(frame_header) < FRAME_HEADER_LEN:
            # Input ends before a complete frame header: before any final data
            # frame, after the final data frame without a trailer, or mid-header.
            raise IntegrityError("truncated stream")
        p_len, stream_id, index, kind, nonce = FRAME_HEADER_STRUCT.unpack(frame_header)

        # Checks that need only the (authenticated-later) frame header.
        if stream_id != header.stream_id:
            raise IntegrityError("segment from another stream")
        if kind not in (KIND_DATA, KIND_FINAL, KIND_TRAILER):
            raise IntegrityError(f"invalid frame: unknown kind 0x{kind:02x}")
        if kind == KIND_TRAILER:
            if p_len != TRAILER_P:
                raise IntegrityError(f"invalid frame: trailer length {p_len}, expected {TRAILER_P}")
        elif not 17 <= p_len <= S + 17:
            raise IntegrityError(
                f"invalid frame: sealed length {p_len} out of range for segment {index}"
            )
        # The index rule holds for data frames and the trailer alike (the
        # trailer's index is the number of data frames).
        if index < expected:
            raise IntegrityError(f"duplicated segment {index}")
        if index > expected:
            raise IntegrityError(f"segment out of order: expected {expected}, found {index}")
        if kind == KIND_TRAILER and not final_seen:
            raise IntegrityError("truncated stream (the final segment is missing)")
        if kind != KIND_TRAILER and final_seen:
            raise IntegrityError(
                f"invalid frame: data segment {index} after the final data segment"
            )

        sealed = inp.read(p_len)
        if len(sealed) < p_len:
            raise IntegrityError("truncated stream")

        # AAD = header MAC || frame bytes 0..28.
        aad = header.mac + frame_header[:FRAME_AAD_LEN]
        plain = aead_open(aead, nonce, sealed, aad)
        if plain is None:
            what = "trailer" if kind == KIND_TRAILER else f"segment {index}"
            raise IntegrityError(f"{what} failed authentication")

        if kind == KIND_TRAILER:
            encoding, digest, count, length = TRAILER_STRUCT.unpack(plain)
            if encoding != ENCODING_RAW:
                raise IntegrityError(f"invalid frame: trailer encoding 0x{encoding:02x}")
            if not hmac.compare_digest(digest, chain):
                raise IntegrityError("digest mismatch: stream digest differs")
            if count != expected:
                raise IntegrityError(
                    f"digest mismatch: trailer counts {count} segments, read {expected}"
                )
            if length != total:
                raise IntegrityError(
                    f"digest mismatch: trailer says {length} plaintext bytes, read {total}"
                )
            if not inp.at_eof():
                raise IntegrityError("trailing data after the trailer")
            return

        # Data frame: sealed plaintext = encoding byte || body.
        encoding, body = plain[0], plain[1:]
        if encoding == ENCODING_RAW:
            segment = body
        elif encoding == ENCODING_ZSTD:
            if not header.zstd_allowed:
                raise IntegrityError(
                    f"invalid frame: segment {index} is zstd-compressed "
                    "but the header does not allow compression"
                )
            segment = _zstd_decode(body, S, index)
            result.compressed_segments += 1
        else:
            raise IntegrityError(f"invalid frame: segment {index} has unknown encoding {encoding}")

        if kind == KIND_DATA:
            if len(segment) != S:
                raise IntegrityError(
                    f"invalid frame: segment {index} holds {len(segment)} bytes, expected {S}"
                )
        else:  # final data frame: 1..S bytes, or 0 only for segment 0
            if len(segment) > S or (len(segment) == 0 and index != 0):
                raise IntegrityError(
                    f"invalid frame: final segment {index} holds {len(segment)} bytes"
                )
            final_seen = True

        # chain_{i+1} = SHA-256(chain_i || frame bytes 0..40 || tag)
        chain = hashlib.sha256(chain + frame_header + sealed[-TAG_LEN:]).digest()
        out.write(segment)
        total += len(segment)
        expected += 1
        result.segments += 1
        result.plaintext_bytes += len(segment)


# --------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------


def decrypt_stream(
    infile: BinaryIO,
    outfile: BinaryIO,
    *,
    password: bytes | None = None,
    key: bytes | None = None,
) -> DecodeResult:
    """Decode a v1 or v2 stream from ``infile`` to ``outfile``.

    Exactly one of ``password`` (bytes) or ``key`` (32 raw bytes) is given.
    Plaintext is written segment by segment as it authenticates, so on error
    ``outfile`` holds a partial result: callers writing a file must discard
    it (``decrypt_file`` does).  Raises a DecodeError subclass on failure.
    """
    _check_secret_args(password, key)
    inp = _Input(infile)
    header, keys = open_header(inp.read(HEADER_LEN), password=password, key=key)
    result = DecodeResult(
        version=header.version,
        cipher=header.cipher,
        key_source=header.key_source,
        segment_size=header.segment_size,
    )
    if header.version == 1:
        _decode_v1(inp, outfile, header, keys, result)
    else:
        _decode_v2(inp, outfile, header, keys, result)
    return result


def decrypt_file(
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    password: bytes | None = None,
    key: bytes | None = None,
) -> DecodeResult:
    """Decode ``in_path`` into ``out_path`` atomically (temp file + rename).

    On any failure the temporary file is removed and ``out_path`` is not
    created (an existing ``out_path`` is left untouched).
    """
    _check_secret_args(password, key)
    try:
        infile = open(in_path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise UsageError(f"cannot open input {os.fspath(in_path)!r}: {e.strerror or e}") from None
    out_dir = os.path.dirname(os.path.abspath(out_path))
    tmp_path: str | None = None
    try:
        try:
            fd, tmp_path = tempfile.mkstemp(
                prefix=f".{os.path.basename(out_path)}.", suffix=".tmp", dir=out_dir
            )
        except OSError as e:
            raise UsageError(f"cannot create output in {out_dir!r}: {e.strerror or e}") from None
        with os.fdopen(fd, "wb") as outfile:
            try:
                result = decrypt_stream(infile, outfile, password=password, key=key)
                outfile.flush()
                os.fsync(outfile.fileno())
            except OSError as e:
                raise UsageError(f"I/O error: {e.strerror or e}") from None
        try:
            os.replace(tmp_path, out_path)
        except OSError as e:
            raise UsageError(
                f"cannot write output {os.fspath(out_path)!r}: {e.strerror or e}"
            ) from None
        tmp_path = None
        return result
    finally:
        infile.close()
        if tmp_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)
