"""Tests for tools/reference_decrypt.py, the independent FORMAT.md decoder.

* round trips against tests/stream_writer.py (a pure-Python test encoder);
* every tampering case through the real command line (subprocesses, run in
  parallel by one fixture), checking the message, the exit code and that OUT
  was not created;
* cross-checks of Rust-made streams, skipped until ``fusefs._native`` exists.
"""

from __future__ import annotations

import importlib.util
import io
import os
import random
import struct
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import stream_writer as sw
import zstandard
from support import mixed_data

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "reference_decrypt.py"


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reference_decrypt", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["reference_decrypt"] = module
    spec.loader.exec_module(module)
    return module


rd = _load_tool()

S = 4096  # smallest allowed segment size keeps the tests fast
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
PASSWORD = b"correct horse battery staple"
ARGON2: dict[str, Any] = {"argon2_m": 64, "argon2_t": 1, "argon2_p": 1}


def decode(stream: bytes, **secret: bytes) -> tuple[bytes, Any]:
    out = io.BytesIO()
    result = rd.decrypt_stream(io.BytesIO(stream), out, **secret)
    return out.getvalue(), result


# ---------------------------------------------------------------------------
# Round trips (in process)
# ---------------------------------------------------------------------------

SIZES = [0, 1, S - 1, S, S + 1, 3 * S + 7]
VARIANTS = [
    (version, cipher, compress, kind)
    for version in (1, 2)
    for cipher in (sw.AES_256_GCM, sw.CHACHA20_POLY1305)
    for compress in ((False,) if version == 1 else (False, True))
    for kind in ("password", "key")
]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("version", "cipher", "compress", "kind"),
    VARIANTS,
    ids=[f"v{v}-c{c}-{'zstd' if z else 'raw'}-{k}" for v, c, z, k in VARIANTS],
)
def test_round_trip(version: int, cipher: int, compress: bool, kind: str, size: int) -> None:
    data = mixed_data(size, seed=size)
    secret = {"password": PASSWORD} if kind == "password" else {"key": KEY}
    stream = sw.encrypt_bytes(
        data, version=version, cipher=cipher, compress=compress, segment_size=S, **secret, **ARGON2
    )
    plain, result = decode(stream, **secret)
    assert plain == data
    assert result.version == version
    assert result.segments == max(1, -(-size // S))
    assert result.plaintext_bytes == size
    # Exact on-disk sizes given by FORMAT.md §3 / §4 for uncompressed streams.
    if version == 1:
        assert len(stream) == 108 + size + 16 * max(1, -(-size // S))
    elif not compress:
        assert len(stream) == 108 + size + (41 + 17) * result.segments + 41 + 65


def test_round_trip_compression_used_and_not_used() -> None:
    # segment 0 compressible, segment 1 random, segment 2 text, segment 3 tiny
    rng = random.Random(5)
    data = bytes(S) + rng.randbytes(S) + b"abcdefgh" * (S // 8) + b"1234567"
    stream = sw.encrypt_bytes(data, version=2, compress=True, key=KEY)
    plain, result = decode(stream, key=KEY)
    assert plain == data
    assert result.compressed_segments == 2
    assert result.segments == 4


@pytest.mark.parametrize("segment_size", [5000, 65536, 1 << 20])
def test_round_trip_other_segment_sizes(segment_size: int) -> None:
    data = mixed_data(3 * segment_size // 2 + 3, seed=segment_size)
    for version, compress in ((1, False), (2, False), (2, True)):
        stream = sw.encrypt_bytes(
            data, version=version, compress=compress, segment_size=segment_size, key=KEY
        )
        assert decode(stream, key=KEY)[0] == data


def test_decoder_reads_in_bounded_pieces() -> None:
    """Never asks the input for more than one frame at a time."""

    class Recorder(io.BytesIO):
        largest = 0

        def read(self, n: int | None = -1) -> bytes:
            assert n is not None and n >= 0, "unbounded read"
            Recorder.largest = max(Recorder.largest, n)
            return super().read(n)

    data = mixed_data(20 * S)
    for version in (1, 2):
        stream = sw.encrypt_bytes(data, version=version, key=KEY)
        Recorder.largest = 0
        out = io.BytesIO()
        rd.decrypt_stream(Recorder(stream), out, key=KEY)
        assert out.getvalue() == data
        assert Recorder.largest <= S + 17


def test_parse_header_fields() -> None:
    w = sw.StreamWriter(
        version=2,
        cipher=sw.CHACHA20_POLY1305,
        password=PASSWORD,
        compress=True,
        segment_size=8192,
        **ARGON2,
    )
    h = rd.parse_header(w.header)
    assert (h.version, h.cipher, h.key_source, h.flags) == (2, 2, 1, 1)
    assert (h.segment_size, h.argon2_m, h.argon2_t, h.argon2_p) == (8192, 64, 1, 1)
    assert h.stream_id == w.fields.stream_id and h.salt == w.fields.salt
    assert h.mac == w.header[76:]
    _, keys = rd.open_header(w.header, password=PASSWORD)
    assert keys.payload_key == w.payload_key
    # the payload key depends on version and cipher (§1 info strings)
    assert rd.payload_info(1, 1) == b"fusefs/stream/v1/payload/aes-256-gcm"
    assert rd.payload_info(2, 2) == b"fusefs/stream/v2/payload/chacha20-poly1305"


def test_v1_nonce_layout() -> None:
    assert rd.v1_nonce(0, False) == bytes(12)
    assert rd.v1_nonce(1, True) == bytes(10) + b"\x01\x01"
    assert rd.v1_nonce(0x0102, False) == bytes(9) + b"\x01\x02\x00"


def test_decrypt_stream_exceptions() -> None:
    stream = sw.encrypt_bytes(b"hello", key=KEY)
    with pytest.raises(rd.WrongKeyError, match="wrong password or key"):
        decode(stream, key=OTHER_KEY)
    with pytest.raises(rd.WrongKeyError, match="wrong kind of key"):
        decode(stream, password=PASSWORD)
    with pytest.raises(rd.IntegrityError, match="truncated stream"):
        decode(stream[:-1], key=KEY)
    with pytest.raises(rd.UsageError):
        decode(stream, key=KEY[:31])
    with pytest.raises(TypeError):
        decode(stream)


# ---------------------------------------------------------------------------
# Command line: success paths
# ---------------------------------------------------------------------------


def run_cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"", b"\nsecond line\n"])
def test_cli_passfile(tmp_path: Path, ending: bytes) -> None:
    data = mixed_data(2 * S + 5)
    (tmp_path / "in").write_bytes(sw.encrypt_bytes(data, password=PASSWORD, **ARGON2))
    (tmp_path / "pw").write_bytes(PASSWORD + ending)
    r = run_cli("--passfile", tmp_path / "pw", tmp_path / "in", tmp_path / "out")
    assert (r.returncode, r.stderr) == (0, "")
    assert (tmp_path / "out").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "pw"]


def test_cli_keyfile_replaces_existing_output(tmp_path: Path) -> None:
    data = mixed_data(S + 1)
    (tmp_path / "in").write_bytes(sw.encrypt_bytes(data, version=1, key=KEY))
    (tmp_path / "key").write_bytes(KEY)
    (tmp_path / "out").write_bytes(b"old")
    r = run_cli("--keyfile", tmp_path / "key", tmp_path / "in", tmp_path / "out")
    assert (r.returncode, r.stderr) == (0, "")
    assert (tmp_path / "out").read_bytes() == data


def test_cli_failure_keeps_existing_output(tmp_path: Path) -> None:
    stream = sw.encrypt_bytes(mixed_data(S + 1), key=KEY)
    (tmp_path / "in").write_bytes(stream[:-1])
    (tmp_path / "key").write_bytes(KEY)
    (tmp_path / "out").write_bytes(b"old")
    r = run_cli("--keyfile", tmp_path / "key", tmp_path / "in", tmp_path / "out")
    assert r.returncode == 3
    assert (tmp_path / "out").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "key", "out"]


# ---------------------------------------------------------------------------
# Command line: every failure, one subprocess per case, run in parallel
# ---------------------------------------------------------------------------


@dataclass
class Streams:
    """Base streams shared by the failure cases (all with segment size S)."""

    v2: bytes  # raw key, AES, zstd allowed, 3S+7 bytes: 4 data frames + trailer
    v2_other: bytes  # same key, same plaintext, another stream id
    v2_pw: bytes  # password, ChaCha, 2S+1 bytes
    v1: bytes  # raw key, ChaCha, 3S+7 bytes: 3 full chunks + a 23-byte chunk
    v1_other: bytes
    v1_full: bytes  # raw key, AES, 2S bytes: the last chunk is full
    v1_pw: bytes

    def frames(self, stream: bytes) -> list[bytes]:
        return [stream[o : o + n] for o, n in sw.v2_frame_spans(stream)]

    def chunks(self, stream: bytes) -> list[bytes]:
        return [stream[o : o + n] for o, n in sw.v1_chunk_spans(stream, S)]


def make_streams() -> Streams:
    rng = random.Random(7)
    data = bytes(S) + rng.randbytes(S) + b"abcdefgh" * (S // 8) + b"1234567"
    return Streams(
        v2=sw.encrypt_bytes(data, version=2, compress=True, key=KEY),
        v2_other=sw.encrypt_bytes(data, version=2, compress=True, key=KEY),
        v2_pw=sw.encrypt_bytes(
            data[: 2 * S + 1], version=2, cipher=sw.CHACHA20_POLY1305, password=PASSWORD, **ARGON2
        ),
        v1=sw.encrypt_bytes(data, version=1, cipher=sw.CHACHA20_POLY1305, key=KEY),
        v1_other=sw.encrypt_bytes(data, version=1, cipher=sw.CHACHA20_POLY1305, key=KEY),
        v1_full=sw.encrypt_bytes(data[: 2 * S], version=1, key=KEY),
        v1_pw=sw.encrypt_bytes(data[:100], version=1, password=PASSWORD, **ARGON2),
    )


def flip(data: bytes, offset: int, bit: int = 0) -> bytes:
    b = bytearray(data)
    b[offset] ^= 1 << bit
    return bytes(b)


def setbyte(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + bytes([value]) + data[offset + 1 :]


def frame_at(stream: bytes, i: int) -> int:
    return sw.v2_frame_spans(stream)[i][0]


def chunk_at(stream: bytes, i: int) -> int:
    return sw.v1_chunk_spans(stream, S)[i][0]


# ---- streams that authenticate but break a v2 rule (need the key) ----------


def crafted_v2(build: Callable[[sw.StreamWriter], list[bytes]], **kwargs: object) -> bytes:
    w = sw.StreamWriter(key=KEY, **kwargs)  # type: ignore[arg-type]
    return w.header + b"".join(build(w))


def _v1_empty_final_after_chunk_0() -> bytes:
    w = sw.StreamWriter(version=1, key=KEY)
    return w.header + w.v1_chunk(0, bytes(S), False) + w.v1_chunk(1, b"", True)


def _zstd_no_size(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_content_size=False).compress(data)


CRAFTED: dict[str, tuple[Callable[[], bytes], str]] = {
    "encoding-2": (
        lambda: crafted_v2(lambda w: [w.v2_frame(0, 1, b"\x02abc"), w.v2_trailer(1, 3)]),
        "invalid frame: segment 0 has unknown encoding 2",
    ),
    "zstd-not-allowed": (
        lambda: crafted_v2(
            lambda w: [
                w.v2_frame(0, 1, b"\x01" + zstandard.compress(bytes(100))),
                w.v2_trailer(1, 100),
            ],
            compress=False,
        ),
        "does not allow compression",
    ),
    "zstd-garbage": (
        lambda: crafted_v2(
            lambda w: [w.v2_frame(0, 1, b"\x01not zstd at all"), w.v2_trailer(1, 10)],
            compress=True,
        ),
        "invalid frame: segment 0: undecodable zstd",
    ),
    "zstd-extra-bytes": (
        lambda: crafted_v2(
            lambda w: [
                w.v2_frame(0, 1, b"\x01" + zstandard.compress(bytes(100)) + b"x"),
                w.v2_trailer(1, 100),
            ],
            compress=True,
        ),
        "invalid frame: segment 0: undecodable zstd",
    ),
    "zstd-two-frames": (
        lambda: crafted_v2(
            lambda w: [
                w.v2_frame(0, 1, b"\x01" + zstandard.compress(bytes(50)) * 2),
                w.v2_trailer(1, 100),
            ],
            compress=True,
        ),
        "invalid frame: segment 0: undecodable zstd",
    ),
    "zstd-truncated": (
        lambda: crafted_v2(
            lambda w: [
                w.v2_frame(0, 1, b"\x01" + zstandard.compress(bytes(S))[:-1]),
                w.v2_trailer(1, S),
            ],
            compress=True,
        ),
        "invalid frame: segment 0: undecodable zstd",
    ),
    "zstd-too-long-with-size": (
        lambda: crafted_v2(
            lambda w: [
                w.v2_frame(0, 1, b"\x01" + zstandard.compress(bytes(S + 1))),
                w.v2_trailer(1, S + 1),
            ],
            compress=True,
        ),
        "invalid frame: segment 0 decompresses to 4097 bytes",
    ),
    "zstd-too-long-no-size": (
        lambda: crafted_v2(
            lambda w: [
                w.v2_frame(0, 1, b"\x01" + _zstd_no_size(bytes(S + 1))),
                w.v2_trailer(1, S + 1),
            ],
            compress=True,
        ),
        "invalid frame: segment 0: undecodable zstd",
    ),
    "zstd-bomb-declared": (
        lambda: crafted_v2(
            lambda w: [
                w.v2_frame(0, 1, b"\x01" + zstandard.compress(bytes(1 << 24))),
                w.v2_trailer(1, 1 << 24),
            ],
            compress=True,
        ),
        "invalid frame: segment 0 decompresses to 16777216 bytes",
    ),
    "short-nonfinal-segment": (
        lambda: crafted_v2(
            lambda w: [
                w.v2_data_frame(0, bytes(S - 1), False),
                w.v2_data_frame(1, b"x", True),
                w.v2_trailer(2, S),
            ],
        ),
        "invalid frame: segment 0 holds 4095 bytes, expected 4096",
    ),
    "short-nonfinal-zstd-segment": (
        lambda: crafted_v2(
            lambda w: [
                w.v2_frame(0, 0, b"\x01" + zstandard.compress(bytes(S - 1))),
                w.v2_data_frame(1, b"x", True),
                w.v2_trailer(2, S),
            ],
            compress=True,
        ),
        "invalid frame: segment 0 holds 4095 bytes, expected 4096",
    ),
    "empty-final-after-segment-0": (
        lambda: crafted_v2(
            lambda w: [
                w.v2_data_frame(0, bytes(S), False),
                w.v2_data_frame(1, b"", True),
                w.v2_trailer(2, S),
            ],
        ),
        "invalid frame: final segment 1 holds 0 bytes",
    ),
    "sealed-length-16": (
        lambda: crafted_v2(lambda w: [w.v2_frame(0, 1, b""), w.v2_trailer(1, 0)]),
        "invalid frame: sealed length 16 out of range",
    ),
    "sealed-length-S+18": (
        lambda: crafted_v2(
            lambda w: [w.v2_frame(0, 1, b"\x00" + bytes(S + 1)), w.v2_trailer(1, S + 1)]
        ),
        "invalid frame: sealed length 4114 out of range",
    ),
    "two-final-frames": (
        lambda: crafted_v2(
            lambda w: [
                w.v2_data_frame(0, bytes(S), True),
                w.v2_data_frame(1, b"x", True),
                w.v2_trailer(2, S + 1),
            ],
        ),
        "invalid frame: data segment 1 after the final data segment",
    ),
    "trailer-before-final": (
        lambda: crafted_v2(lambda w: [w.v2_data_frame(0, bytes(S), False), w.v2_trailer(1, S)]),
        "truncated stream (the final segment is missing)",
    ),
    "only-a-trailer": (
        lambda: crafted_v2(lambda w: [w.v2_trailer(0, 0)]),
        "truncated stream (the final segment is missing)",
    ),
    "trailer-wrong-index": (
        lambda: crafted_v2(lambda w: [w.v2_data_frame(0, b"x", True), w.v2_trailer(1, 1, index=2)]),
        "segment out of order: expected 1, found 2",
    ),
    "trailer-encoding-1": (
        lambda: crafted_v2(
            lambda w: [w.v2_data_frame(0, b"x", True), w.v2_trailer(1, 1, encoding=1)]
        ),
        "invalid frame: trailer encoding 0x01",
    ),
    "trailer-sealed-length-66": (
        lambda: crafted_v2(
            lambda w: [
                w.v2_data_frame(0, b"x", True),
                w.v2_frame(1, 2, struct.pack("<B32sQQ", 0, w.chain, 1, 1) + b"\x00"),
            ]
        ),
        "invalid frame: trailer length 66, expected 65",
    ),
    "trailer-wrong-digest": (
        lambda: crafted_v2(
            lambda w: [w.v2_data_frame(0, b"x", True), w.v2_trailer(1, 1, digest=bytes(32))]
        ),
        "digest mismatch: stream digest differs",
    ),
    "trailer-wrong-count": (
        lambda: crafted_v2(
            lambda w: [
                w.v2_data_frame(0, b"x", True),
                w.v2_frame(1, 2, struct.pack("<B32sQQ", 0, w.chain, 2, 1)),
            ]
        ),
        "digest mismatch: trailer counts 2 segments, read 1",
    ),
    "trailer-wrong-length": (
        lambda: crafted_v2(lambda w: [w.v2_data_frame(0, b"xy", True), w.v2_trailer(1, 3)]),
        "digest mismatch: trailer says 3 plaintext bytes, read 2",
    ),
    "digest-skips-a-frame": (
        # the digest is computed as if frame 0 had not been hashed
        lambda: crafted_v2(
            lambda w: [
                w.v2_frame(0, 0, b"\x00" + bytes(S), update_digest=False),
                w.v2_data_frame(1, b"x", True),
                w.v2_trailer(2, S + 1),
            ]
        ),
        "digest mismatch: stream digest differs",
    ),
    "unknown-kind-3": (
        lambda: crafted_v2(lambda w: [w.v2_frame(0, 3, b"\x00x")]),
        "invalid frame: unknown kind 0x03",
    ),
    "v1-empty-final-after-chunk-0": (
        _v1_empty_final_after_chunk_0,
        "invalid segment: empty final segment 1",
    ),
    "v1-compression-flag": (
        lambda: sw.StreamWriter(version=1, key=KEY, flags=1).encode(b"abc"),
        "invalid header: compression flag set in a v1 header",
    ),
    "segment-size-2048": (
        lambda: sw.StreamWriter(key=KEY, segment_size=2048).encode(b"abc"),
        "invalid header: segment size 2048 out of range",
    ),
    "segment-size-16MiB+1": (
        lambda: sw.StreamWriter(key=KEY).header_bytes(segment_size=(1 << 24) + 1),
        "invalid header: segment size 16777217 out of range",
    ),
    "argon2-m-below-8p": (
        lambda: sw.StreamWriter(password=PASSWORD, **ARGON2).header_bytes(m=8, p=2),
        "invalid header: Argon2id memory 8 KiB < 8 x 2 lanes",
    ),
    "argon2-t-0": (
        lambda: sw.StreamWriter(password=PASSWORD, **ARGON2).header_bytes(t=0),
        "invalid header: Argon2id passes 0 out of range",
    ),
    "argon2-m-too-big": (
        lambda: sw.StreamWriter(password=PASSWORD, **ARGON2).header_bytes(m=4194305),
        "invalid header: Argon2id memory 4194305 KiB out of range",
    ),
    "header-length-109": (
        lambda: sw.StreamWriter(key=KEY).header_bytes(header_len=109),
        "invalid header: header length 109",
    ),
}


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Streams], bytes]
    message: str  # expected to appear in the error line
    code: int = 3
    secret: str = "key"  # "key", "password", "other-key", "wrong-password", "short-key"


def flipper(attr: str, offset: int, bit: int) -> Callable[[Streams], bytes]:
    return lambda s: flip(getattr(s, attr), offset, bit)


def cutter(attr: str, at: Callable[[bytes], int]) -> Callable[[Streams], bytes]:
    def make(s: Streams) -> bytes:
        stream: bytes = getattr(s, attr)
        return stream[: at(stream)]

    return make


def v1_chunk_flipper(chunk: int, offset: int) -> Callable[[Streams], bytes]:
    return lambda s: flip(s.v1, chunk_at(s.v1, chunk) + offset, 3)


def ignoring_streams(build: Callable[[], bytes]) -> Callable[[Streams], bytes]:
    return lambda s: build()


def _cases() -> list[Case]:
    c: list[Case] = []
    add = c.append

    # -- header (§2), checked in order ------------------------------------
    add(Case("empty-file", lambda s: b"", "truncated header"))
    add(Case("cut-header-50", lambda s: s.v2[:50], "truncated header"))
    add(Case("cut-header-107", lambda s: s.v2[:107], "truncated header"))
    add(Case("all-zero-short", lambda s: bytes(60), "truncated header"))
    add(Case("all-zero", lambda s: bytes(5000), "not a fusefs stream (all zero)"))
    add(Case("all-zero-header-only", lambda s: bytes(108), "not a fusefs stream (all zero)"))
    add(Case("garbage", lambda s: random.Random(3).randbytes(5000), "not a fusefs stream"))
    add(Case("version-7", lambda s: setbyte(s.v2, 6, 7), "unsupported version 7"))
    add(Case("version-0", lambda s: setbyte(s.v2, 6, 0), "unsupported version 0"))
    add(
        Case(
            "version-7-bad-cipher",
            lambda s: setbyte(setbyte(s.v2, 6, 7), 7, 9),
            "unsupported version 7",
        )
    )
    header_flips = [
        # (offset, bit, message, exit code) for the raw-key v2 stream (flags = 1)
        (0, 0, "not a fusefs stream", 3),
        (5, 6, "not a fusefs stream", 3),
        (6, 1, "unsupported version 0", 3),
        (7, 1, "invalid header: unknown cipher 3", 3),
        (8, 0, "invalid header: unknown key source 3", 3),
        (9, 0, "header tampered", 3),  # flags 1 -> 0 is still a valid value
        (9, 3, "invalid header: unknown flag bits 0x08", 3),
        (10, 0, "invalid header: header length 109", 3),
        (11, 0, "invalid header: header length 364", 3),
        (13, 5, "header tampered", 3),  # S 4096 -> 12288, still in range
        (15, 7, "out of range", 3),
        (16, 0, "wrong password or key", 1),  # stream id is the HKDF salt
        (31, 7, "wrong password or key", 1),
        (40, 3, "header tampered", 3),  # salt is unused for a raw key
        (48, 0, "invalid header: Argon2id parameters must be 0 for a raw key", 3),
        (56, 0, "invalid header: Argon2id parameters must be 0 for a raw key", 3),
        (60, 0, "wrong password or key", 1),  # key check
        (75, 7, "wrong password or key", 1),
        (76, 0, "header tampered", 3),  # header MAC
        (90, 4, "header tampered", 3),
        (107, 7, "header tampered", 3),
    ]
    for off, bit, msg, code in header_flips:
        add(Case(f"v2-header-flip-{off}.{bit}", flipper("v2", off, bit), msg, code))
    pw_header_flips = [
        (8, 1, "invalid header: unknown key source 3", 3),
        (8, 0, "invalid header: unknown key source 0", 3),
        (40, 3, "wrong password or key", 1),  # salt feeds Argon2id
        (48, 0, "wrong password or key", 1),  # m 64 -> 65
        (52, 1, "wrong password or key", 1),  # t 1 -> 3
        (56, 7, "invalid header: Argon2id lanes 129 out of range", 3),
        (76, 0, "header tampered", 3),
    ]
    for off, bit, msg, code in pw_header_flips:
        add(
            Case(
                f"v2-pw-header-flip-{off}.{bit}",
                flipper("v2_pw", off, bit),
                msg,
                code,
                "password",
            )
        )
    add(
        Case(
            "v1-header-flip-9.0",
            lambda s: flip(s.v1, 9, 0),
            "invalid header: compression flag set in a v1 header",
        )
    )
    add(Case("v1-header-flip-100", lambda s: flip(s.v1, 100, 2), "header tampered"))

    # -- keys -------------------------------------------------------------
    add(Case("wrong-password", lambda s: s.v2_pw, "wrong password or key", 1, "wrong-password"))
    add(Case("wrong-password-v1", lambda s: s.v1_pw, "wrong password or key", 1, "wrong-password"))
    add(Case("wrong-key", lambda s: s.v2, "wrong password or key", 1, "other-key"))
    add(Case("wrong-key-v1", lambda s: s.v1, "wrong password or key", 1, "other-key"))
    add(Case("password-for-raw-stream", lambda s: s.v2, "wrong kind of key", 1, "password"))
    add(Case("key-for-password-stream", lambda s: s.v2_pw, "wrong kind of key", 1, "key"))
    add(Case("key-file-31-bytes", lambda s: s.v2, "must hold exactly 32 bytes", 2, "short-key"))
    add(Case("key-file-33-bytes", lambda s: s.v2, "must hold exactly 32 bytes", 2, "long-key"))

    # -- v2 truncation (§4.4) -----------------------------------------------
    cuts_v2: list[tuple[str, Callable[[bytes], int]]] = [
        ("after-header", lambda st: 108),
        ("after-frame-0", lambda st: frame_at(st, 1)),
        ("in-frame-1-header", lambda st: frame_at(st, 1) + 20),
        ("in-frame-1-payload", lambda st: frame_at(st, 1) + 41 + 100),
        ("frame-1-last-byte", lambda st: frame_at(st, 2) - 1),
        ("trailer-removed", lambda st: frame_at(st, 4)),
        ("in-trailer", lambda st: frame_at(st, 4) + 60),
        ("trailer-last-byte", lambda st: len(st) - 1),
    ]
    for name, at in cuts_v2:
        add(Case(f"v2-cut-{name}", cutter("v2", at), "truncated stream"))

    # -- v1 truncation (§3) --------------------------------------------------
    cuts_v1: list[tuple[str, Callable[[bytes], int], str]] = [
        ("after-header", lambda st: 108, "truncated stream"),
        ("after-chunk-0", lambda st: chunk_at(st, 1), "truncated stream"),
        ("after-chunk-2", lambda st: chunk_at(st, 3), "truncated stream"),
        ("in-chunk-3-short", lambda st: chunk_at(st, 3) + 10, "truncated stream"),
        # mid-chunk cuts leaving >= 17 bytes cannot be told from tampering (no length field)
        ("in-chunk-1", lambda st: chunk_at(st, 1) + 1000, "segment 1 failed authentication"),
        ("chunk-3-last-byte", lambda st: len(st) - 1, "segment 3 failed authentication"),
    ]
    for name, at, msg in cuts_v1:
        add(Case(f"v1-cut-{name}", cutter("v1", at), msg))

    # -- v2 bit flips in frames ----------------------------------------------
    frame_flips: list[tuple[str, int, int, int, str]] = [
        # (name, frame, offset in frame, bit, message)
        ("P-low-bit", 1, 0, 0, "segment 1 failed authentication"),
        ("P-high-bit", 1, 3, 7, "invalid frame: sealed length"),
        ("stream-id", 1, 4, 0, "segment from another stream"),
        ("index-1-to-0", 1, 20, 0, "duplicated segment 0"),
        ("index-0-to-2", 0, 20, 1, "segment out of order: expected 0, found 2"),
        ("index-high-byte", 2, 27, 7, "segment out of order: expected 2, found"),
        ("kind-0-to-1", 1, 28, 0, "segment 1 failed authentication"),
        ("kind-0-to-2", 1, 28, 1, "invalid frame: trailer length"),
        ("kind-0-to-0x80", 1, 28, 7, "invalid frame: unknown kind 0x80"),
        ("final-kind-1-to-0", 3, 28, 0, "segment 3 failed authentication"),
        ("nonce", 1, 33, 2, "segment 1 failed authentication"),
        ("payload-first-byte", 1, 41, 0, "segment 1 failed authentication"),
        ("payload-middle", 1, 41 + 2000, 5, "segment 1 failed authentication"),
        ("payload-compressed-frame", 0, 45, 0, "segment 0 failed authentication"),
        ("tag-last-byte", 1, -1, 7, "segment 1 failed authentication"),
        ("final-frame-payload", 3, 41, 0, "segment 3 failed authentication"),
        ("trailer-P", 4, 0, 0, "invalid frame: trailer length"),
        ("trailer-index", 4, 20, 0, "segment out of order: expected 4, found 5"),
        ("trailer-kind", 4, 28, 0, "invalid frame: unknown kind 0x03"),
        ("trailer-nonce", 4, 30, 0, "trailer failed authentication"),
        ("trailer-payload", 4, 50, 0, "trailer failed authentication"),
        ("trailer-tag", 4, -1, 0, "trailer failed authentication"),
    ]
    for name, fi, off, bit, msg in frame_flips:

        def make(s: Streams, fi: int = fi, off: int = off, bit: int = bit) -> bytes:
            start, length = sw.v2_frame_spans(s.v2)[fi]
            return flip(s.v2, start + (off if off >= 0 else length + off), bit)

        add(Case(f"v2-flip-{name}", make, msg))

    # -- v1 bit flips ----------------------------------------------------------
    v1_flips = [(0, 0), (1, 0), (1, 2000), (1, S + 15), (3, 0), (3, 22)]
    for ci, off in v1_flips:
        add(
            Case(
                f"v1-flip-chunk{ci}-{off}",
                v1_chunk_flipper(ci, off),
                f"segment {ci} failed authentication",
            )
        )

    # -- v2 structure ----------------------------------------------------------
    def v2_join(s: Streams, order: list[int], header: bytes | None = None) -> bytes:
        f = s.frames(s.v2)
        return (header if header is not None else s.v2[:108]) + b"".join(f[i] for i in order)

    add(
        Case(
            "v2-swap-1-2",
            lambda s: v2_join(s, [0, 2, 1, 3, 4]),
            "segment out of order: expected 1, found 2",
        )
    )
    add(
        Case(
            "v2-drop-1",
            lambda s: v2_join(s, [0, 2, 3, 4]),
            "segment out of order: expected 1, found 2",
        )
    )
    add(Case("v2-duplicate-1", lambda s: v2_join(s, [0, 1, 1, 2, 3, 4]), "duplicated segment 1"))
    add(
        Case("v2-duplicate-final", lambda s: v2_join(s, [0, 1, 2, 3, 3, 4]), "duplicated segment 3")
    )
    add(
        Case("v2-replay-0-at-end", lambda s: v2_join(s, [0, 1, 2, 3, 0, 4]), "duplicated segment 0")
    )
    add(
        Case(
            "v2-drop-final",
            lambda s: v2_join(s, [0, 1, 2, 4]),
            "segment out of order: expected 3, found 4",
        )
    )
    add(
        Case(
            "v2-two-trailers",
            lambda s: v2_join(s, [0, 1, 2, 3, 4, 4]),
            "trailing data after the trailer",
        )
    )
    add(Case("v2-append-byte", lambda s: s.v2 + b"\x00", "trailing data after the trailer"))
    add(Case("v2-append-stream", lambda s: s.v2 + s.v2_other, "trailing data after the trailer"))
    add(
        Case(
            "v2-frame-from-other-stream",
            lambda s: v2_join(s, [0]) + s.frames(s.v2_other)[1] + b"".join(s.frames(s.v2)[2:]),
            "segment from another stream",
        )
    )
    add(
        Case(
            "v2-trailer-from-other-stream",
            lambda s: v2_join(s, [0, 1, 2, 3]) + s.frames(s.v2_other)[4],
            "segment from another stream",
        )
    )
    add(
        Case(
            "v2-header-from-other-stream",
            lambda s: v2_join(s, [0, 1, 2, 3, 4], s.v2_other[:108]),
            "segment from another stream",
        )
    )

    # -- v1 structure ------------------------------------------------------------
    def v1_join(s: Streams, order: list[int], header: bytes | None = None) -> bytes:
        ch = s.chunks(s.v1)
        return (header if header is not None else s.v1[:108]) + b"".join(ch[i] for i in order)

    add(Case("v1-swap-0-1", lambda s: v1_join(s, [1, 0, 2, 3]), "segment 0 failed authentication"))
    add(
        Case(
            "v1-duplicate-1",
            lambda s: v1_join(s, [0, 1, 1, 2, 3]),
            "segment 2 failed authentication",
        )
    )
    add(Case("v1-drop-1", lambda s: v1_join(s, [0, 2, 3]), "segment 1 failed authentication"))
    add(
        Case(
            "v1-append-after-full-last",
            lambda s: s.v1_full + b"x",
            "trailing data after the final segment 1",
        )
    )
    add(
        Case(
            "v1-append-chunk-after-full-last",
            lambda s: s.v1_full + s.v1_full[108:],
            "trailing data after the final segment 1",
        )
    )
    # with a short last chunk the appended bytes merge into it (no length field)
    add(
        Case(
            "v1-append-after-short-last",
            lambda s: s.v1 + b"x",
            "segment 3 failed authentication (last segment: tampered, truncated, or followed",
        )
    )
    add(
        Case(
            "v1-chunk-from-other-stream",
            lambda s: v1_join(s, [0]) + s.chunks(s.v1_other)[1] + b"".join(s.chunks(s.v1)[2:]),
            "segment 1 failed authentication",
        )
    )
    add(
        Case(
            "v1-header-from-other-stream",
            lambda s: v1_join(s, [0, 1, 2, 3], s.v1_other[:108]),
            "segment 0 failed authentication",
        )
    )
    add(Case("v1-header-only", lambda s: s.v1[:108], "truncated stream"))

    # -- authenticated but malformed (crafted with the key) --------------------
    for name, (build, msg) in CRAFTED.items():
        add(Case(f"crafted-{name}", ignoring_streams(build), msg))
    return c


CASES = _cases()
assert len({c.name for c in CASES}) == len(CASES)


@dataclass
class Outcome:
    returncode: int
    stderr: str
    out_exists: bool
    leftovers: list[str]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Run the CLI once per case (in parallel) and collect what happened."""
    streams = make_streams()
    base = tmp_path_factory.mktemp("cases")
    secrets = {
        "key": ("--keyfile", KEY),
        "other-key": ("--keyfile", OTHER_KEY),
        "short-key": ("--keyfile", KEY[:31]),
        "long-key": ("--keyfile", KEY + b"\x00"),
        "password": ("--passfile", PASSWORD + b"\n"),
        "wrong-password": ("--passfile", PASSWORD + b"!\n"),
    }

    def run(case: Case) -> tuple[str, Outcome]:
        d = base / case.name
        d.mkdir()
        (d / "in").write_bytes(case.make(streams))
        option, secret = secrets[case.secret]
        (d / "secret").write_bytes(secret)
        r = run_cli(option, d / "secret", d / "in", d / "out")
        leftovers = sorted(p.name for p in d.iterdir() if p.name not in ("in", "secret"))
        return case.name, Outcome(r.returncode, r.stderr, (d / "out").exists(), leftovers)

    with ThreadPoolExecutor(max_workers=max(4, 2 * (os.cpu_count() or 1))) as pool:
        return dict(pool.map(run, CASES))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_rejects(case: Case, outcomes: dict[str, Outcome]) -> None:
    o = outcomes[case.name]
    lines = o.stderr.splitlines()
    assert len(lines) == 1, o.stderr
    assert lines[0].startswith("reference_decrypt: error: "), o.stderr
    assert case.message in lines[0]
    assert o.returncode == case.code, o.stderr
    assert not o.out_exists
    assert o.leftovers == []  # no OUT and no temporary file


def test_cli_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "key").write_bytes(KEY)
    (tmp_path / "pw").write_bytes(PASSWORD)
    for args in (
        [],
        [tmp_path / "in", tmp_path / "out"],
        ["--keyfile", tmp_path / "key", "--passfile", tmp_path / "pw", "a", "b"],
        ["--keyfile", tmp_path / "key", tmp_path / "missing", tmp_path / "out"],
        ["--keyfile", tmp_path / "missing-key", tmp_path / "missing", tmp_path / "out"],
    ):
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.splitlines()) == 1
        assert r.stderr.startswith("reference_decrypt: error: ")
        assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------
# Cross-checks of Rust-made streams (skipped until fusefs._native exists)
# ---------------------------------------------------------------------------

NATIVE_S = 65536
NATIVE_SIZES = {
    "0": 0,
    "1": 1,
    "S-1": NATIVE_S - 1,
    "S": NATIVE_S,
    "S+1": NATIVE_S + 1,
    "3S+7": 3 * NATIVE_S + 7,
    "3MB": 3 * 1024 * 1024 + 123,
}


@pytest.fixture(scope="module")
def native() -> ModuleType:
    module: ModuleType = pytest.importorskip("fusefs._native")
    return module


def _native_encrypt(
    native: ModuleType,
    tmp_path: Path,
    data: bytes,
    fmt: int,
    cipher: int,
    compress: bool,
    kind: str,
) -> bytes:
    src, dst = tmp_path / "plain", tmp_path / "stream"
    src.write_bytes(data)
    key = native.Key.from_password(PASSWORD) if kind == "password" else native.Key.from_raw(KEY)
    params = native.EncryptParams(
        format=native.Format.V1 if fmt == 1 else native.Format.V2,
        cipher=native.Cipher.AES_256_GCM if cipher == 1 else native.Cipher.CHACHA20_POLY1305,
        segment_size=NATIVE_S,
        compress=compress,
        argon2_m_kib=64,
        argon2_t=1,
        argon2_p=1,
    )
    native.encrypt_path(str(src), str(dst), key, params)
    return dst.read_bytes()


@pytest.mark.parametrize("size_name", list(NATIVE_SIZES))
@pytest.mark.parametrize("kind", ["password", "key"])
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "zstd"])
@pytest.mark.parametrize("fmt", [1, 2], ids=["v1", "v2"])
@pytest.mark.parametrize("cipher", [1, 2], ids=["aes", "chacha"])
def test_native_stream_decodes(
    native: ModuleType,
    tmp_path: Path,
    cipher: int,
    fmt: int,
    compress: bool,
    kind: str,
    size_name: str,
) -> None:
    size = NATIVE_SIZES[size_name]
    data = mixed_data(size, seed=size + 11)
    if fmt == 1 and compress:
        # FORMAT.md: compression is v2 only; the binding refuses the combination.
        with pytest.raises(native.ParamsError, match="compression needs format v2"):
            _native_encrypt(native, tmp_path, data, fmt, cipher, compress, kind)
        return
    stream = _native_encrypt(native, tmp_path, data, fmt, cipher, compress, kind)

    header = rd.parse_header(stream[:108])
    assert header.version == fmt
    assert header.cipher == cipher
    assert header.key_source == (1 if kind == "password" else 2)
    assert header.segment_size == NATIVE_S
    assert header.flags == (1 if (fmt == 2 and compress) else 0)
    expected_argon2 = (64, 1, 1) if kind == "password" else (0, 0, 0)
    assert (header.argon2_m, header.argon2_t, header.argon2_p) == expected_argon2

    secret = {"password": PASSWORD} if kind == "password" else {"key": KEY}
    plain, result = decode(stream, **secret)
    assert plain == data
    assert result.segments == max(1, -(-size // NATIVE_S))
    if fmt == 1 or not compress:
        assert result.compressed_segments == 0
    if fmt == 2 and compress and size_name == "3MB":
        assert result.compressed_segments > 0
    if fmt == 1:
        assert len(stream) == 108 + size + 16 * result.segments


@pytest.mark.parametrize("fmt", [1, 2], ids=["v1", "v2"])
def test_native_stream_via_cli_and_tampering(native: ModuleType, tmp_path: Path, fmt: int) -> None:
    data = mixed_data(3 * NATIVE_S + 7, seed=99)
    stream = _native_encrypt(native, tmp_path, data, fmt, 1, fmt == 2, "key")
    (tmp_path / "key").write_bytes(KEY)
    (tmp_path / "in").write_bytes(stream)
    r = run_cli("--keyfile", tmp_path / "key", tmp_path / "in", tmp_path / "out")
    assert (r.returncode, r.stderr) == (0, "")
    assert (tmp_path / "out").read_bytes() == data
    (tmp_path / "out").unlink()
    for pos in (10, 80, 108 + 5, 108 + 60, len(stream) // 2, len(stream) - 1):
        (tmp_path / "in").write_bytes(flip(stream, pos, 1))
        r = run_cli("--keyfile", tmp_path / "key", tmp_path / "in", tmp_path / "out")
        assert r.returncode in (1, 3), (pos, r.stderr)
        assert not (tmp_path / "out").exists()
    (tmp_path / "in").write_bytes(stream[:-1])
    r = run_cli("--keyfile", tmp_path / "key", tmp_path / "in", tmp_path / "out")
    assert r.returncode == 3
