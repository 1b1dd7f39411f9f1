"""Shared helpers of the binding, aio and CLI tests (not fixtures: plain functions)."""

from __future__ import annotations

import math
import random
from pathlib import Path

HEADER_LEN = 108
FRAME_HEADER_LEN = 41
TAG_LEN = 16
TRAILER_LEN = FRAME_HEADER_LEN + 65
S = 4096  # smallest segment size: many segments from little data

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
PASSWORD = b"correct horse battery staple"
#: Argon2id costs that make password tests fast (never use them for real data).
FAST_KDF = {"argon2_m_kib": 64, "argon2_t": 1, "argon2_p": 1}


def mixed_data(n: int, seed: int = 1) -> bytes:
    """Partly compressible data: runs of one byte, text, and random bytes."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < n:
        k = rng.choice([300, 1500, 4000, 9000])
        r = rng.random()
        if r < 0.35:
            out += rng.randbytes(k)
        elif r < 0.7:
            out += bytes([rng.randrange(256)]) * k
        else:
            out += (b"the quick brown fox %d jumps over the lazy dog\n" % rng.randrange(99)) * (
                k // 40
            )
    return bytes(out[:n])


def v1_stream_len(n: int, s: int) -> int:
    """FORMAT.md §3: header, then every chunk plus its tag (one empty chunk for n = 0)."""
    chunks = max(1, math.ceil(n / s))
    return HEADER_LEN + n + chunks * TAG_LEN


def v2_stream_len(n: int, s: int) -> int:
    """FORMAT.md §4, uncompressed: header, frames (41 + encoding byte + body + tag), trailer."""
    segments = max(1, math.ceil(n / s))
    return HEADER_LEN + segments * (FRAME_HEADER_LEN + 1 + TAG_LEN) + n + TRAILER_LEN


def side_files(dst: Path) -> tuple[Path, Path]:
    """The partial output and the checkpoint of an output path."""
    return dst.with_name(dst.name + ".fusefs-part"), dst.with_name(dst.name + ".fusefs-ckpt")


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[offset] ^= mask
    return bytes(b)


def put_back(template: Path, vault: Path) -> None:
    """Replace ``vault`` by a copy of ``template``: an older copy of the vault
    put back on purpose, so this machine's local state of it (rollback
    protection, FORMAT.md §12) is forgotten too — else the next open would
    rightly refuse it as rolled back."""
    import shutil

    from fusefs.statedir import local_state_dir

    shutil.rmtree(vault, ignore_errors=True)
    shutil.copytree(template, vault)
    shutil.rmtree(local_state_dir(), ignore_errors=True)
