"""Pure-Python writer of fusefs v1/v2 streams, written from FORMAT.md §1-4.

THIS IS A TEST HELPER, NOT A PRODUCT ENCODER.  It exists to exercise
``tools/reference_decrypt.py`` (round trips, and authenticated-but-malformed
streams that only a key holder can make) and, later, to compare with what the
Rust encoder produces.  It makes no effort to be fast or memory-bounded.

Requirements: cryptography, zstandard.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass, field

import zstandard
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

AES_256_GCM = 1
CHACHA20_POLY1305 = 2
CIPHER_NAMES = {AES_256_GCM: "aes-256-gcm", CHACHA20_POLY1305: "chacha20-poly1305"}

KEY_SOURCE_PASSWORD = 1
KEY_SOURCE_RAW = 2
FLAG_ZSTD = 0x01

KIND_DATA = 0x00
KIND_FINAL = 0x01
KIND_TRAILER = 0x02

# §2: magic, version, cipher, key source, flags, header length, S, stream id,
# salt, m, t, p, key check, header MAC (108 bytes, little-endian)
HEADER_STRUCT = struct.Struct("<6sBBBBHI16s16sIII16s32s")
# §4.1: P, stream id, index, kind, nonce (41 bytes)
FRAME_HEADER_STRUCT = struct.Struct("<I16sQB12s")
# §4.2: encoding, digest, n, total plaintext bytes (49 bytes)
TRAILER_STRUCT = struct.Struct("<B32sQQ")

HEADER_LEN = 108
FRAME_HEADER_LEN = 41
TAG_LEN = 16


def hkdf(master: bytes, stream_id: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=stream_id, info=info).derive(master)


def make_aead(cipher: int, key: bytes) -> AESGCM | ChaCha20Poly1305:
    return AESGCM(key) if cipher == AES_256_GCM else ChaCha20Poly1305(key)


@dataclass
class HeaderFields:
    """Every header field; defaults give a valid v2 raw-key header."""

    version: int = 2
    cipher: int = AES_256_GCM
    key_source: int = KEY_SOURCE_RAW
    flags: int = 0
    header_len: int = HEADER_LEN
    segment_size: int = 4096
    stream_id: bytes = field(default_factory=lambda: os.urandom(16))
    salt: bytes = field(default_factory=lambda: os.urandom(16))
    m: int = 0
    t: int = 0
    p: int = 0


class StreamWriter:
    """Builds one stream.  Use ``encode`` for valid streams, or the low-level
    ``header_bytes`` / ``v1_chunk`` / ``v2_frame`` / ``v2_data_frame`` /
    ``v2_trailer`` methods to build malformed streams that still authenticate.
    """

    def __init__(
        self,
        *,
        version: int = 2,
        cipher: int = AES_256_GCM,
        password: bytes | None = None,
        key: bytes | None = None,
        segment_size: int = 4096,
        compress: bool = False,
        argon2_m: int = 64,
        argon2_t: int = 1,
        argon2_p: int = 1,
        stream_id: bytes | None = None,
        salt: bytes | None = None,
        flags: int | None = None,
        zstd_level: int = 3,
    ) -> None:
        if (password is None) == (key is None):
            raise TypeError("give exactly one of password= or key=")
        if compress and version != 2:
            raise ValueError("compression exists only in v2 streams")
        self.fields = HeaderFields(
            version=version,
            cipher=cipher,
            key_source=KEY_SOURCE_PASSWORD if password is not None else KEY_SOURCE_RAW,
            flags=(FLAG_ZSTD if compress else 0) if flags is None else flags,
            segment_size=segment_size,
        )
        if stream_id is not None:
            self.fields.stream_id = stream_id
        if salt is not None:
            self.fields.salt = salt
        # §1: master key
        if password is not None:
            self.fields.m, self.fields.t, self.fields.p = argon2_m, argon2_t, argon2_p
            self.master = Argon2id(
                salt=self.fields.salt,
                length=32,
                iterations=argon2_t,
                lanes=argon2_p,
                memory_cost=argon2_m,
            ).derive(password)
        else:
            assert key is not None and len(key) == 32
            self.master = bytes(key)
        sid = self.fields.stream_id
        self.key_check = hkdf(self.master, sid, b"fusefs/stream/key-check", 16)
        self.header_mac_key = hkdf(self.master, sid, b"fusefs/stream/header-mac", 32)
        info = f"fusefs/stream/v{version}/payload/{CIPHER_NAMES.get(cipher, 'x')}".encode()
        self.payload_key = hkdf(self.master, sid, info, 32)
        self.aead = make_aead(cipher, self.payload_key)
        self.compress = compress
        self.zstd = zstandard.ZstdCompressor(level=zstd_level)
        self.header = self.header_bytes()
        self.header_mac = self.header[76:]
        self.chain = hashlib.sha256(b"fusefs/stream/v2/digest" + self.header_mac).digest()

    # ---- header (§2) ----------------------------------------------------
    def header_bytes(self, **overrides: object) -> bytes:
        """The 108-byte header; ``overrides`` replace HeaderFields values
        (and ``key_check``) before the MAC is computed over bytes 0..75."""
        f = self.fields
        vals = dict(f.__dict__)
        vals["key_check"] = self.key_check
        vals.update(overrides)
        body = HEADER_STRUCT.pack(
            b"fusefs",
            vals["version"],
            vals["cipher"],
            vals["key_source"],
            vals["flags"],
            vals["header_len"],
            vals["segment_size"],
            vals["stream_id"],
            vals["salt"],
            vals["m"],
            vals["t"],
            vals["p"],
            vals["key_check"],
            bytes(32),
        )[:76]
        return body + hmac.new(self.header_mac_key, body, hashlib.sha256).digest()

    # ---- v1 (§3) --------------------------------------------------------
    def v1_chunk(self, counter: int, chunk: bytes, last: bool) -> bytes:
        nonce = counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
        return self.aead.encrypt(nonce, chunk, self.header_mac)

    # ---- v2 (§4) --------------------------------------------------------
    def v2_frame(
        self,
        index: int,
        kind: int,
        sealed_plaintext: bytes,
        *,
        stream_id: bytes | None = None,
        nonce: bytes | None = None,
        update_digest: bool = True,
    ) -> bytes:
        """One frame with an arbitrary sealed plaintext (encoding byte included)."""
        nonce = os.urandom(12) if nonce is None else nonce
        sid = self.fields.stream_id if stream_id is None else stream_id
        p_len = len(sealed_plaintext) + TAG_LEN
        head29 = struct.pack("<I16sQB", p_len, sid, index, kind)
        sealed = self.aead.encrypt(nonce, sealed_plaintext, self.header_mac + head29)
        frame = head29 + nonce + sealed
        if update_digest and kind != KIND_TRAILER:
            # chain_{i+1} = SHA-256(chain_i || frame bytes 0..40 || tag_i)
            self.chain = hashlib.sha256(self.chain + frame[:41] + frame[-16:]).digest()
        return frame

    def v2_data_frame(self, index: int, segment: bytes, final: bool) -> bytes:
        plain = b"\x00" + segment
        if self.compress and segment:
            packed = self.zstd.compress(segment)
            if len(packed) < len(segment):  # only when smaller than the raw segment
                plain = b"\x01" + packed
        return self.v2_frame(index, KIND_FINAL if final else KIND_DATA, plain)

    def v2_trailer(
        self,
        n: int,
        total: int,
        *,
        index: int | None = None,
        digest: bytes | None = None,
        encoding: int = 0,
    ) -> bytes:
        body = TRAILER_STRUCT.pack(encoding, self.chain if digest is None else digest, n, total)
        return self.v2_frame(n if index is None else index, KIND_TRAILER, body)

    # ---- whole streams --------------------------------------------------
    def segments(self, plaintext: bytes) -> list[bytes]:
        S = self.fields.segment_size
        if not plaintext:
            return [b""]
        return [plaintext[i : i + S] for i in range(0, len(plaintext), S)]

    def encode(self, plaintext: bytes) -> bytes:
        segs = self.segments(plaintext)
        out = [self.header]
        last = len(segs) - 1
        if self.fields.version == 1:
            out += [self.v1_chunk(i, s, i == last) for i, s in enumerate(segs)]
        else:
            out += [self.v2_data_frame(i, s, i == last) for i, s in enumerate(segs)]
            out.append(self.v2_trailer(len(segs), len(plaintext)))
        return b"".join(out)


def encrypt_bytes(plaintext: bytes, **kwargs: object) -> bytes:
    """``StreamWriter(**kwargs).encode(plaintext)``."""
    return StreamWriter(**kwargs).encode(plaintext)  # type: ignore[arg-type]


# ---- layout helpers for tests ----------------------------------------------


def v2_frame_spans(stream: bytes) -> list[tuple[int, int]]:
    """(offset, length) of every frame after the header, trailer included."""
    spans = []
    off = HEADER_LEN
    while off < len(stream):
        (p_len,) = struct.unpack_from("<I", stream, off)
        spans.append((off, FRAME_HEADER_LEN + p_len))
        off += FRAME_HEADER_LEN + p_len
    return spans


def v1_chunk_spans(stream: bytes, segment_size: int) -> list[tuple[int, int]]:
    """(offset, length) of every v1 chunk after the header."""
    spans = []
    off = HEADER_LEN
    while off < len(stream):
        n = min(segment_size + TAG_LEN, len(stream) - off)
        spans.append((off, n))
        off += n
    return spans
