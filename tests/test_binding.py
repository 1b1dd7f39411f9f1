"""The native binding as Python sees it: round trips, errors, jobs, resume."""

from __future__ import annotations

import errno
import io
import os
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from support import (
    FAST_KDF,
    HEADER_LEN,
    KEY,
    OTHER_KEY,
    PASSWORD,
    TAG_LEN,
    TRAILER_LEN,
    S,
    flip,
    mixed_data,
    side_files,
    v1_stream_len,
    v2_stream_len,
)

import fusefs
from fusefs import (
    Cipher,
    EncryptParams,
    Format,
    Key,
    ParallelismProfile,
    decrypt_file,
    decrypt_path,
    encrypt_file,
    encrypt_path,
    errors,
)
from fusefs import _native as native

MiB = 2**20
CIPHER_IDS = {Cipher.AES_256_GCM: 1, Cipher.CHACHA20_POLY1305: 2}


def raw_key() -> Key:
    return Key.from_raw(KEY)


def params(**kw: Any) -> EncryptParams:
    kw.setdefault("segment_size", S)
    return EncryptParams(**kw)


def encrypt_bytes(data: bytes, key: Key | None = None, **kw: Any) -> bytes:
    out = io.BytesIO()
    encrypt_file(io.BytesIO(data), out, key or raw_key(), params(**kw))
    return out.getvalue()


def decrypt_bytes(stream: bytes, key: Key | None = None) -> bytes:
    out = io.BytesIO()
    decrypt_file(io.BytesIO(stream), out, key or raw_key())
    return out.getvalue()


def listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


# ---------------------------------------------------------------------------
# Module surface
# ---------------------------------------------------------------------------


def test_public_api_is_reexported() -> None:
    for name in fusefs.__all__:
        assert getattr(fusefs, name) is not None, name
    assert fusefs.Key is native.Key
    assert fusefs.WrongKeyError is errors.WrongKeyError is native.WrongKeyError
    assert isinstance(fusefs.__version__, str) and fusefs.__version__
    with pytest.raises(AttributeError):
        fusefs.no_such_name  # noqa: B018


def test_constants() -> None:
    assert native.HEADER_LEN == HEADER_LEN
    assert native.DEFAULT_SEGMENT_SIZE_V2 == MiB
    assert native.DEFAULT_CHUNK_SIZE_V1 == 64 * 1024


def test_exception_hierarchy() -> None:
    for cls in (
        errors.WrongKeyError,
        errors.IntegrityError,
        errors.FormatError,
        errors.ResumeError,
        errors.ParamsError,
        errors.CancelledError,
        errors.StreamIOError,
    ):
        assert issubclass(cls, errors.FusefsError), cls
    assert issubclass(errors.FusefsError, Exception)
    assert not issubclass(errors.QuietError, errors.FusefsError)


def test_parallelism_profiles() -> None:
    assert ParallelismProfile.single().threads == 1
    assert ParallelismProfile.fixed(3).threads == 3
    assert ParallelismProfile.auto().threads == (os.cpu_count() or 1)


# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------

SIZES = [0, 1, S - 1, S, S + 1, 3 * S + 7]
VARIANTS = [
    (Format.V1, Cipher.AES_256_GCM, False),
    (Format.V1, Cipher.CHACHA20_POLY1305, False),
    (Format.V2, Cipher.AES_256_GCM, False),
    (Format.V2, Cipher.CHACHA20_POLY1305, False),
    (Format.V2, Cipher.AES_256_GCM, True),
    (Format.V2, Cipher.CHACHA20_POLY1305, True),
]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("fmt", "cipher", "compress"), VARIANTS)
def test_round_trip_paths(tmp_path: Path, fmt: Any, cipher: Any, compress: bool, size: int) -> None:
    data = mixed_data(size, seed=size)
    src, enc, dec = tmp_path / "plain", tmp_path / "enc", tmp_path / "dec"
    src.write_bytes(data)
    p = params(format=fmt, cipher=cipher, compress=compress)
    t = encrypt_path(str(src), str(enc), raw_key(), p)
    stream = enc.read_bytes()

    magic, version, cipher_id, key_source, flags, header_len, seg = struct.unpack_from(
        "<6sBBBBHI", stream
    )
    assert (magic, header_len, seg, key_source) == (b"fusefs", HEADER_LEN, S, 2)
    assert version == (1 if fmt == Format.V1 else 2)
    assert cipher_id == CIPHER_IDS[cipher]
    assert flags == (1 if compress else 0)
    if fmt == Format.V1:
        assert len(stream) == v1_stream_len(size, S)
    elif not compress:
        assert len(stream) == v2_stream_len(size, S)
    assert t.plaintext_bytes == size
    assert t.bytes_out == len(stream)

    decrypt_path(str(enc), str(dec), raw_key())
    assert dec.read_bytes() == data
    assert listing(tmp_path) == ["dec", "enc", "plain"]


@pytest.mark.parametrize("fmt", [Format.V1, Format.V2])
def test_round_trip_several_mib_default_segments(tmp_path: Path, fmt: Any) -> None:
    data = mixed_data(5 * MiB + 123, seed=7)
    src, enc, dec = tmp_path / "plain", tmp_path / "enc", tmp_path / "dec"
    src.write_bytes(data)
    t = encrypt_path(str(src), str(enc), raw_key(), EncryptParams(format=fmt))
    seg = MiB if fmt == Format.V2 else 64 * 1024
    expected_len = (
        v2_stream_len(len(data), seg) if fmt == Format.V2 else v1_stream_len(len(data), seg)
    )
    assert enc.stat().st_size == expected_len
    assert t.segments == -(-len(data) // seg)
    assert struct.unpack_from("<I", enc.read_bytes(), 12)[0] == seg
    d = decrypt_path(str(enc), str(dec), raw_key(), ParallelismProfile.fixed(2))
    assert dec.read_bytes() == data
    assert d.plaintext_bytes == len(data)


def test_round_trip_password(tmp_path: Path) -> None:
    data = mixed_data(2 * S + 5)
    stream = encrypt_bytes(data, Key.from_password(PASSWORD), **FAST_KDF)
    assert stream[8] == 1  # key source: password
    assert struct.unpack_from("<III", stream, 48) == (64, 1, 1)
    assert decrypt_bytes(stream, Key.from_password(PASSWORD)) == data


def test_compression_shrinks_compressible_data() -> None:
    data = b"A" * (8 * S) + os.urandom(2 * S)
    out = io.BytesIO()
    t = encrypt_file(io.BytesIO(data), out, raw_key(), params(compress=True, compression_level=9))
    stream = out.getvalue()
    assert len(stream) < v2_stream_len(len(data), S) - 7 * S
    if t is not None:
        assert t.compressed_segments == 8
        assert t.segments == 10
        assert 0 < t.compression_ratio < 0.5
    assert decrypt_bytes(stream) == data


def test_every_stream_is_different() -> None:
    data = mixed_data(S)
    a, b = encrypt_bytes(data), encrypt_bytes(data)
    assert a[16:32] != b[16:32]  # stream id
    assert a[HEADER_LEN:] != b[HEADER_LEN:]


def test_telemetry_snapshot(tmp_path: Path) -> None:
    data = mixed_data(10 * S)
    (tmp_path / "p").write_bytes(data)
    t = encrypt_path(
        str(tmp_path / "p"), str(tmp_path / "e"), raw_key(), params(), ParallelismProfile.fixed(2)
    )
    assert (t.bytes_in, t.plaintext_bytes, t.segments) == (len(data), len(data), 10)
    assert t.bytes_out == (tmp_path / "e").stat().st_size
    assert t.workers == 2
    assert t.compressed_segments == 0 and t.compression_ratio == pytest.approx(1.0)
    assert t.elapsed_seconds > 0 and t.throughput_mib_s > 0
    assert min(t.crypto_seconds, t.io_seconds, t.compression_seconds) >= 0
    d = t.to_dict()
    assert d["segments"] == 10 and d["plaintext_bytes"] == len(data)
    assert set(d) >= {
        "bytes_in",
        "bytes_out",
        "plaintext_bytes",
        "segments",
        "compressed_segments",
        "compression_ratio",
        "crypto_seconds",
        "io_seconds",
        "compression_seconds",
        "elapsed_seconds",
        "throughput_mib_s",
        "workers",
    }
    with pytest.raises(AttributeError):
        t.segments = 3


# ---------------------------------------------------------------------------
# File objects
# ---------------------------------------------------------------------------


class ReadWriteOnly(io.RawIOBase):
    """A file object with read()/write() but no fileno(), returning short reads."""

    def __init__(self, data: bytes = b"") -> None:
        self.src = io.BytesIO(data)
        self.written = bytearray()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        chunk = self.src.read(min(len(b), 1000))
        b[: len(chunk)] = chunk
        return len(chunk)

    def write(self, b: Any) -> int:
        self.written += b
        return len(b)


@pytest.mark.parametrize("fmt", [Format.V1, Format.V2])
def test_file_objects(tmp_path: Path, fmt: Any) -> None:
    data = mixed_data(5 * S + 3)
    # BytesIO (no usable fileno()) to a real file (fileno()).
    with open(tmp_path / "enc", "wb") as f:
        encrypt_file(io.BytesIO(data), f, raw_key(), params(format=fmt))
    stream = (tmp_path / "enc").read_bytes()
    # A real file to a reader without fileno() and short reads.
    sink = ReadWriteOnly()
    with open(tmp_path / "enc", "rb") as f:
        decrypt_file(f, sink, raw_key())  # duck-typed file
    assert bytes(sink.written) == data
    # Short reads on the input side too.
    out = io.BytesIO()
    decrypt_file(ReadWriteOnly(stream), out, raw_key())
    assert out.getvalue() == data


def test_file_object_errors_propagate() -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            raise OSError(errno.EIO, "disk on fire")

    with pytest.raises(errors.StreamIOError) as info:
        encrypt_file(Broken(), io.BytesIO(), raw_key(), params())
    assert_error(info.value, errors.StreamIOError, "io")
    # The OSError's errno survives the trip through Rust.
    assert info.value.errno == errno.EIO
    assert str(info.value) == "cannot read the input: Input/output error"


# ---------------------------------------------------------------------------
# Errors: class, .kind, message, nothing left behind
# ---------------------------------------------------------------------------


def decrypt_error(stream: bytes, key: Key | None = None) -> errors.FusefsError:
    with pytest.raises(errors.FusefsError) as info:
        decrypt_bytes(stream, key)
    return info.value


def assert_error(e: errors.FusefsError, cls: type, kind: str) -> None:
    assert type(e) is cls, (type(e), e)
    assert e.kind == kind, (e.kind, str(e))
    message = str(e)
    assert message and "\n" not in message


V2: dict[str, Any] = {"format": Format.V2}
V1: dict[str, Any] = {"format": Format.V1}


@pytest.mark.parametrize("fmt", [V1, V2], ids=["v1", "v2"])
def test_wrong_password(fmt: dict[str, Any]) -> None:
    stream = encrypt_bytes(mixed_data(S), Key.from_password(PASSWORD), **fmt, **FAST_KDF)
    e = decrypt_error(stream, Key.from_password(b"not it"))
    assert_error(e, errors.WrongKeyError, "wrong_key")


@pytest.mark.parametrize("fmt", [V1, V2], ids=["v1", "v2"])
def test_wrong_key(fmt: dict[str, Any]) -> None:
    stream = encrypt_bytes(mixed_data(S), **fmt)
    e = decrypt_error(stream, Key.from_raw(OTHER_KEY))
    assert_error(e, errors.WrongKeyError, "wrong_key")


def test_wrong_kind_of_key() -> None:
    stream = encrypt_bytes(mixed_data(S))
    assert_error(
        decrypt_error(stream, Key.from_password(PASSWORD)), errors.WrongKeyError, "wrong_key_kind"
    )
    stream = encrypt_bytes(mixed_data(S), Key.from_password(PASSWORD), **FAST_KDF)
    assert_error(decrypt_error(stream, raw_key()), errors.WrongKeyError, "wrong_key_kind")


@pytest.mark.parametrize("fmt", [V1, V2], ids=["v1", "v2"])
@pytest.mark.parametrize("cut", ["one byte", "last segment", "just the header"])
def test_truncated_stream(fmt: dict[str, Any], cut: str) -> None:
    stream = encrypt_bytes(mixed_data(3 * S + 7), **fmt)
    if cut == "one byte":
        stream = stream[:-1]
    elif cut == "last segment":
        # v2: drop the final data frame and trailer; v1: drop the last chunk.
        tail = (7 + 58 + TRAILER_LEN) if fmt is V2 else (7 + TAG_LEN)
        stream = stream[:-tail]
    else:
        stream = stream[:HEADER_LEN]
    # v1 cannot tell a chunk cut short from a damaged one (FORMAT.md §3).
    kind = "segment_auth_failed" if (fmt is V1 and cut == "one byte") else "truncated"
    assert_error(decrypt_error(stream), errors.IntegrityError, kind)


@pytest.mark.parametrize("fmt", [V1, V2], ids=["v1", "v2"])
def test_flipped_payload_byte(fmt: dict[str, Any]) -> None:
    stream = encrypt_bytes(mixed_data(3 * S + 7), **fmt)
    # A byte of the second segment's ciphertext (v2 frame header is 41 bytes).
    offset = HEADER_LEN + (S + 58 + 41 + 100 if fmt is V2 else S + TAG_LEN + 100)
    e = decrypt_error(flip(stream, offset))
    assert_error(e, errors.IntegrityError, "segment_auth_failed")
    assert "1" in str(e)  # names the segment


def test_flipped_header_mac() -> None:
    stream = encrypt_bytes(mixed_data(S))
    assert_error(
        decrypt_error(flip(stream, HEADER_LEN - 1)), errors.IntegrityError, "header_tampered"
    )


def test_flipped_trailer_byte() -> None:
    stream = encrypt_bytes(mixed_data(2 * S))
    e = decrypt_error(flip(stream, len(stream) - 20))
    assert_error(e, errors.IntegrityError, "segment_auth_failed")


@pytest.mark.parametrize("extra", [b"\x00", b"garbage" * 100])
def test_appended_data_v2(extra: bytes) -> None:
    stream = encrypt_bytes(mixed_data(2 * S + 1), **V2)
    assert_error(decrypt_error(stream + extra), errors.IntegrityError, "trailing_data")


@pytest.mark.parametrize("extra", [b"\x00", b"garbage" * 1000])
def test_appended_data_v1(extra: bytes) -> None:
    # After a full last chunk the extra bytes form a chunk of their own,
    # which a decoder recognises as data after the final chunk.
    stream = encrypt_bytes(mixed_data(2 * S), **V1)
    assert_error(decrypt_error(stream + extra), errors.IntegrityError, "trailing_data")
    # After a short last chunk they make that chunk longer: v1 has no length
    # fields, so the chunk no longer opens.
    stream = encrypt_bytes(mixed_data(2 * S + 1), **V1)
    assert_error(decrypt_error(stream + extra), errors.IntegrityError, "segment_auth_failed")


@pytest.mark.parametrize(
    ("stream", "kind"),
    [
        (b"", "truncated_header"),
        (b"fusefs\x02", "truncated_header"),
        (bytes(HEADER_LEN + 100), "all_zero"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 2, "bad_magic"),
    ],
    ids=["empty", "short", "zeros", "pdf"],
)
def test_not_a_stream(stream: bytes, kind: str) -> None:
    assert_error(decrypt_error(stream), errors.FormatError, kind)


def test_unsupported_version() -> None:
    stream = bytearray(encrypt_bytes(b"x"))
    stream[6] = 3
    assert_error(decrypt_error(bytes(stream)), errors.FormatError, "unsupported_version")


def test_params_errors() -> None:
    for bad in (b"", bytes(31), bytes(33)):
        with pytest.raises(errors.ParamsError) as info:
            Key.from_raw(bad)
        assert info.value.kind == "invalid_params"
    for kw in (
        {"segment_size": 4095},
        {"segment_size": 16 * MiB + 1},
        {"format": Format.V1, "compress": True},
        {"compress": True, "compression_level": 23},
        {"argon2_m_kib": 4, "argon2_t": 1, "argon2_p": 1},
        {"argon2_t": 0},
    ):
        with pytest.raises(errors.ParamsError):
            EncryptParams(**kw)
    EncryptParams(segment_size=4096)
    EncryptParams(segment_size=16 * MiB)


def test_missing_input_is_stream_io_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(errors.StreamIOError) as info:
        encrypt_path(str(missing), str(tmp_path / "out"), raw_key())
    e = info.value
    assert_error(e, errors.StreamIOError, "io")
    assert e.errno == errno.ENOENT
    assert e.filename in (str(missing), None)
    assert listing(tmp_path) == []


def test_unwritable_output_is_stream_io_error(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(b"data")
    with pytest.raises(errors.StreamIOError) as info:
        encrypt_path(str(tmp_path / "p"), str(tmp_path / "no" / "out"), raw_key())
    assert info.value.errno == errno.ENOENT
    assert listing(tmp_path) == ["p"]


@pytest.mark.parametrize(
    ("damage", "cls", "kind"),
    [
        (lambda s: s[:-1], errors.IntegrityError, "truncated"),
        (lambda s: flip(s, len(s) // 2), errors.IntegrityError, "segment_auth_failed"),
        (lambda s: s + b"!", errors.IntegrityError, "trailing_data"),
        (lambda s: bytes(len(s)), errors.FormatError, "all_zero"),
    ],
    ids=["truncated", "flipped", "appended", "zeros"],
)
def test_failed_decrypt_leaves_nothing_and_keeps_existing_output(
    tmp_path: Path, damage: Callable[[bytes], bytes], cls: type, kind: str
) -> None:
    # Large enough for several checkpoints (64 MiB is the decrypt default,
    # so use many small segments of a stream written with them).
    stream = encrypt_bytes(mixed_data(40 * S))
    (tmp_path / "enc").write_bytes(damage(stream))
    (tmp_path / "out").write_bytes(b"old contents")
    with pytest.raises(errors.FusefsError) as info:
        decrypt_path(str(tmp_path / "enc"), str(tmp_path / "out"), raw_key())
    assert_error(info.value, cls, kind)
    assert (tmp_path / "out").read_bytes() == b"old contents"
    assert listing(tmp_path) == ["enc", "out"]


def test_wrong_key_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "enc").write_bytes(encrypt_bytes(mixed_data(S)))
    with pytest.raises(errors.WrongKeyError):
        decrypt_path(str(tmp_path / "enc"), str(tmp_path / "out"), Key.from_raw(OTHER_KEY))
    assert listing(tmp_path) == ["enc"]


# ---------------------------------------------------------------------------
# Concurrency
# ---------------------------------------------------------------------------


def test_threads_hammering(tmp_path: Path) -> None:
    def one(i: int) -> None:
        data = mixed_data(S * (i % 5) + i, seed=i)
        fmt = Format.V1 if i % 3 == 0 else Format.V2
        cipher = Cipher.CHACHA20_POLY1305 if i % 2 else Cipher.AES_256_GCM
        key = Key.from_raw(bytes([i]) * 32)
        if i % 2:
            stream = encrypt_bytes(data, key, format=fmt, cipher=cipher)
            assert decrypt_bytes(stream, key) == data
            with pytest.raises(errors.WrongKeyError):
                decrypt_bytes(stream, raw_key())
        else:
            src, enc, dec = (tmp_path / f"{name}{i}" for name in ("p", "e", "d"))
            src.write_bytes(data)
            encrypt_path(
                str(src),
                str(enc),
                key,
                params(format=fmt, cipher=cipher),
                ParallelismProfile.fixed(2),
            )
            decrypt_path(str(enc), str(dec), key, ParallelismProfile.fixed(2))
            assert dec.read_bytes() == data

    with ThreadPoolExecutor(8) as pool:
        for f in [pool.submit(one, i) for i in range(48)]:
            f.result()


def test_functions_release_the_gil(tmp_path: Path) -> None:
    """A Python thread keeps running while the engine works on another one."""
    (tmp_path / "p").write_bytes(os.urandom(32 * MiB))
    ticks = 0
    stop = threading.Event()

    def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        t0 = time.monotonic()
        encrypt_path(
            str(tmp_path / "p"), str(tmp_path / "e"), raw_key(), None, ParallelismProfile.single()
        )
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        t.join()
    assert ticks >= min(10, int(elapsed * 1000 * 0.3))


# ---------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------


def test_job_progress_and_result(tmp_path: Path) -> None:
    data = os.urandom(8 * MiB)
    (tmp_path / "p").write_bytes(data)
    job = native.spawn_encrypt_path(
        str(tmp_path / "p"), str(tmp_path / "e"), raw_key(), params(), None, False
    )
    seen = []
    while not job.done():
        seen.append(job.progress())
        time.sleep(0.001)
    t = job.wait()
    assert t is not None and t.plaintext_bytes == len(data)
    assert job.wait(0) is not None  # waiting again returns the same result
    done, total = job.progress()
    assert (done, total) == (len(data), len(data))
    assert all(s[1] in (0, len(data)) for s in seen)
    assert [s[0] for s in seen] == sorted(s[0] for s in seen)

    djob = native.spawn_decrypt_path(
        str(tmp_path / "e"), str(tmp_path / "d"), raw_key(), None, False
    )
    assert djob.wait(30) is not None
    assert (tmp_path / "d").read_bytes() == data


def test_job_wait_timeout_and_error(tmp_path: Path) -> None:
    (tmp_path / "e").write_bytes(flip(encrypt_bytes(mixed_data(3 * S)), HEADER_LEN + 200))
    job = native.spawn_decrypt_path(
        str(tmp_path / "e"), str(tmp_path / "d"), raw_key(), None, False
    )
    with pytest.raises(errors.IntegrityError) as info:
        while job.wait(0.01) is None:
            pass
    assert info.value.kind == "segment_auth_failed"
    assert job.done()
    assert listing(tmp_path) == ["e"]


def test_job_cancel(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(os.urandom(64 * MiB))
    job = native.spawn_encrypt_path(
        str(tmp_path / "p"),
        str(tmp_path / "e"),
        raw_key(),
        params(checkpoint_bytes=0),
        ParallelismProfile.single(),
        False,
    )
    job.cancel()
    with pytest.raises(errors.CancelledError) as info:
        job.wait(30)
    assert info.value.kind == "cancelled"
    assert job.done()
    job.cancel()  # idempotent once finished
    assert listing(tmp_path) == ["p"]  # no checkpoint: nothing to keep


# ---------------------------------------------------------------------------
# Resume
# ---------------------------------------------------------------------------


def cancel_after_checkpoint(job: Any, checkpoint: Path, timeout: float = 30) -> None:
    """Cancel ``job`` as soon as it has written its first checkpoint."""
    deadline = time.monotonic() + timeout
    while not checkpoint.exists():
        assert not job.done(), "the job ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.0005)
    job.cancel()
    with pytest.raises(errors.CancelledError):
        job.wait(30)


def read_checkpoint(path: Path) -> dict[str, int]:
    b = path.read_bytes()
    assert len(b) == 144 and b[:8] == b"fusefsck"
    segments, input_offset, output_offset = struct.unpack_from("<QQQ", b, 32)
    return {"kind": b[9], "segments": segments, "input": input_offset, "output": output_offset}


def test_resume_encrypt(tmp_path: Path) -> None:
    data = os.urandom(48 * MiB)
    src, enc, dec = tmp_path / "p", tmp_path / "e", tmp_path / "d"
    src.write_bytes(data)
    part, ckpt = side_files(enc)
    p = params(segment_size=64 * 1024, checkpoint_bytes=MiB)
    job = native.spawn_encrypt_path(
        str(src), str(enc), raw_key(), p, ParallelismProfile.single(), False
    )
    cancel_after_checkpoint(job, ckpt)
    assert not enc.exists() and part.exists() and ckpt.exists()
    c = read_checkpoint(ckpt)
    assert c["kind"] == 1 and c["segments"] > 0
    assert c["input"] == c["segments"] * 64 * 1024
    written = part.read_bytes()[: c["output"]]

    t = encrypt_path(str(src), str(enc), raw_key(), p, None, resume=True)
    assert not part.exists() and not ckpt.exists()
    stream = enc.read_bytes()
    assert stream[: c["output"]] == written  # the frames already written are kept
    assert len(stream) == v2_stream_len(len(data), 64 * 1024)
    assert t.plaintext_bytes == len(data) - c["input"]
    decrypt_path(str(enc), str(dec), raw_key())
    assert dec.read_bytes() == data


def test_resume_decrypt(tmp_path: Path) -> None:
    # Decrypt checkpoints every 64 MiB: the stream must be well above that.
    data = os.urandom(160 * MiB)
    src, enc, dec = tmp_path / "p", tmp_path / "e", tmp_path / "d"
    src.write_bytes(data)
    encrypt_path(str(src), str(enc), raw_key())
    src.unlink()
    part, ckpt = side_files(dec)
    job = native.spawn_decrypt_path(
        str(enc), str(dec), raw_key(), ParallelismProfile.single(), False
    )
    cancel_after_checkpoint(job, ckpt)
    assert not dec.exists() and part.exists()
    c = read_checkpoint(ckpt)
    assert c["kind"] == 2 and c["output"] == c["segments"] * MiB > 0

    decrypt_path(str(enc), str(dec), raw_key(), None, resume=True)
    assert not part.exists() and not ckpt.exists()
    assert dec.read_bytes() == data
    del data


def test_resume_without_side_files(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(b"data")
    with pytest.raises(errors.ResumeError) as info:
        encrypt_path(str(tmp_path / "p"), str(tmp_path / "e"), raw_key(), None, None, resume=True)
    assert info.value.kind == "resume"
    (tmp_path / "e").write_bytes(encrypt_bytes(b"data"))
    with pytest.raises(errors.ResumeError):
        decrypt_path(str(tmp_path / "e"), str(tmp_path / "d"), raw_key(), None, resume=True)
    assert listing(tmp_path) == ["e", "p"]


def test_resume_refuses_a_changed_input(tmp_path: Path) -> None:
    src, enc = tmp_path / "p", tmp_path / "e"
    src.write_bytes(os.urandom(48 * MiB))
    part, ckpt = side_files(enc)
    p = params(segment_size=64 * 1024, checkpoint_bytes=MiB)
    job = native.spawn_encrypt_path(
        str(src), str(enc), raw_key(), p, ParallelismProfile.single(), False
    )
    cancel_after_checkpoint(job, ckpt)
    with open(src, "ab") as f:
        f.write(b"more")
    with pytest.raises(errors.ResumeError) as info:
        encrypt_path(str(src), str(enc), raw_key(), p, None, resume=True)
    assert "changed" in str(info.value)
    # A refused resume never removes the side files (they are the earlier
    # run's work; --force gives them up).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.fusefs-ckpt", "e.fusefs-part", "p"]


def interrupted_encrypt(tmp_path: Path) -> tuple[Path, Path, EncryptParams]:
    src, enc = tmp_path / "p", tmp_path / "e"
    src.write_bytes(os.urandom(48 * MiB))
    p = params(segment_size=64 * 1024, checkpoint_bytes=MiB)
    job = native.spawn_encrypt_path(
        str(src), str(enc), raw_key(), p, ParallelismProfile.single(), False
    )
    cancel_after_checkpoint(job, side_files(enc)[1])
    return src, enc, p


def test_resume_with_the_wrong_key(tmp_path: Path) -> None:
    src, enc, p = interrupted_encrypt(tmp_path)
    with pytest.raises(errors.WrongKeyError):
        encrypt_path(str(src), str(enc), Key.from_raw(OTHER_KEY), p, None, resume=True)


def test_resume_with_the_wrong_key_keeps_the_side_files(tmp_path: Path) -> None:
    src, enc, p = interrupted_encrypt(tmp_path)
    with pytest.raises(errors.WrongKeyError):
        encrypt_path(str(src), str(enc), Key.from_raw(OTHER_KEY), p, None, resume=True)
    assert all(f.exists() for f in side_files(enc))
    encrypt_path(str(src), str(enc), raw_key(), p, None, resume=True)
