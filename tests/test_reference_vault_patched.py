"""tools/reference_decrypt.py --vault on frames the log carries as patches
(FORMAT.md §9.2 WriteSegmentsPatched, entry 18).

A patch carries the bytes a small write changed, not the whole frame: the
frame's plaintext is the first ``keep`` bytes of the segment's previous frame
(the base), zeros to the plain length, the patch at its offset, and the frame
is that plaintext sealed again (format-2 sealing is deterministic). The
reader, read-only, uses the pack's frame where it authenticates and rebuilds
the frame from the patch where a crash lost it.

The records are made by hand and appended, sealed and chained as §7.2 says,
to the log of a vault the engine wrote (its keys, file ids and base frames
are real); the frames they name lie past the end of the engine's pack, as a
lost tail leaves them. The test seals the expected frames itself (AEAD, nonce
and AAD spelled out here) to put them in the pack where a case needs them.
"""

from __future__ import annotations

import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import mixed_data
from test_reference_vault import FAST, PASSWORD, ROOT, S, one_error, passfile, run_reader
from test_reference_vault_carried import crash_warning_only, crashed_vault
from test_reference_vault_v2 import keys_of, log_records

from fusefs import ROOT_INO, Vault

sys.path.insert(0, str(ROOT / "tools"))
from refreader import v2_files, v2_metadata  # noqa: E402
from refreader.bootstrap import load_state  # noqa: E402
from refreader.carried import Carry, Patch  # noqa: E402
from refreader.fields import Damaged, Segref  # noqa: E402
from refreader.layouts import layout_for  # noqa: E402
from refreader.log import VaultKeys  # noqa: E402
from refreader.primitives import make_aead  # noqa: E402
from refreader.state import State, carried_frames  # noqa: E402

# --- hand-made entries ---------------------------------------------------------------------

Item = tuple[int, Segref, Carry | None]


def patched_payload(items: list[Item], ino: int = 2, size: int = 1, cut: int = 0) -> bytes:
    """A tag-18 payload (mtime 0) of the given items, ``cut`` bytes short."""
    out = struct.pack("<BQQqII", 18, ino, size, 0, 0, len(items))
    for index, ref, carry in items:
        out += struct.pack("<QQQIIQ", index, ref.pack, ref.offset, ref.stored_len, ref.plain_len,
                           ref.generation)  # fmt: skip
        if carry is None:
            out += b"\0"
        elif isinstance(carry, bytes):
            out += b"\1" + struct.pack("<I", len(carry)) + carry
        else:
            out += b"\2" + struct.pack("<QII", carry.base_generation, carry.keep, carry.offset)
            out += struct.pack("<I", len(carry.data)) + carry.data
    return out[: len(out) - cut]


REF = Segref(pack=1, offset=64, stored_len=50, plain_len=100, generation=7)
PATCH = Patch(base_generation=6, keep=100, offset=90, data=bytes(10))


def test_entry_18_decodes_each_carry_kind() -> None:
    entry = v2_metadata.decode_entry(
        patched_payload([(0, REF, None), (1, REF, bytes(50)), (2, REF, PATCH)], ino=5, size=9)
    )
    assert entry.name == "WriteSegmentsPatched"
    assert entry.fields["items"] == [(0, REF, None), (1, REF, bytes(50)), (2, REF, PATCH)]
    assert (entry.fields["ino"], entry.fields["size"], entry.fields["mtime"]) == (5, 9, 0)
    no_base = Patch(base_generation=0, keep=0, offset=0, data=bytes(100))
    assert v2_metadata.decode_entry(patched_payload([(0, REF, no_base)])).fields["items"] == [
        (0, REF, no_base)
    ]


def patch(**changes: object) -> Patch:
    fields: dict[str, object] = {**PATCH.__dict__, **changes}
    return Patch(**fields)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        # one item of at least 41 bytes announced, 40 left: refused before any item is read
        (patched_payload([(0, REF, None)], cut=1), "larger than the 40 bytes left"),
        (patched_payload([(0, REF, None)])[:-1] + b"\3", "carry kind 3"),
        (patched_payload([(0, REF, bytes(49))]), "stored length is 50"),
        (patched_payload([(0, REF, bytes(51))]), "stored length is 50"),
        (patched_payload([(0, REF, b"")]), "stored length is 50"),
        (patched_payload([(0, REF, patch(keep=101))]), "keeps 101 bytes of a plain length 100"),
        (patched_payload([(0, REF, patch(offset=91))]), "ends at 101, past its plain length"),
        (patched_payload([(0, REF, patch(offset=0, data=bytes(101)))]), "ends at 101"),
        (patched_payload([(0, REF, patch(base_generation=7))]), "base generation 7 is not below"),
        (patched_payload([(0, REF, patch(base_generation=8))]), "base generation 8 is not below"),
        (patched_payload([(0, REF, patch(base_generation=0, keep=1))]), "without base keeps 1"),
        (patched_payload([(0, REF, PATCH)], cut=1), "patch cut short"),
        (patched_payload([(0, REF, bytes(50))], cut=1), "frame cut short"),
        (patched_payload([(0, REF, PATCH)]) + b"\0", "trailing bytes"),
    ],
    ids=[
        "count",
        "kind",
        "frame-short",
        "frame-long",
        "frame-empty",
        "keep",
        "offset",
        "patch-long",
        "base-same",
        "base-newer",
        "keep-no-base",
        "patch-cut",
        "frame-cut",
        "trailing",
    ],  # fmt: skip
)
def test_entry_18_refusals(payload: bytes, why: str) -> None:
    with pytest.raises(Damaged, match=why):
        v2_metadata.decode_entry(payload)


# --- records appended to an engine's vault -------------------------------------------------


@dataclass(frozen=True)
class Vault18:
    path: Path
    keys: VaultKeys
    state: State  # after the engine's records
    ino: int
    file_id: bytes
    base: Segref  # segment 0's frame, durable in the engine's pack
    base_plain: bytes
    pack_end: int  # where the frames of the hand-made records go (a lost tail)

    @property
    def pack(self) -> Path:
        return self.path / "packs" / f"{self.base.pack:016x}.pack"

    def ref(self, at: int, plain_len: int, generation: int) -> Segref:
        """A raw format-2 frame's segref at ``at`` bytes past the pack's end."""
        stored = v2_files.frame_padded_len(plain_len, S) + 16
        return Segref(self.base.pack, self.pack_end + at, stored, plain_len, generation)

    def generation(self, n: int) -> int:
        return int(self.state.generation_high) + n


BASE_PLAIN = mixed_data(10000, 18)


def make_vault(tmp_path: Path) -> Vault18:
    """A vault whose file ``p.bin`` holds 10000 bytes in segment 0, a frame in a pack."""
    vault = tmp_path / "v"
    with Vault.create(vault, PASSWORD, segment_size=S, **FAST) as v:  # type: ignore[arg-type]
        master = bytes.fromhex(v.print_master_key().replace("-", ""))
        ino = v.create_file(ROOT_INO, b"p.bin", 0o600, 0, 0).ino
        v.write(ino, 0, BASE_PLAIN)
    keys = keys_of(vault, master)
    state = load_state(str(vault), layout_for(2), keys, S, lambda _: None)
    node = state.inodes[ino]
    base = node.segments[0]
    pack_end = (vault / "packs" / f"{base.pack:016x}.pack").stat().st_size
    return Vault18(vault, keys, state, ino, node.file_id, base, BASE_PLAIN, pack_end)


def append_records(v: Vault18, payloads: list[bytes]) -> None:
    """Append records of ``payloads`` and a Close to the last log file, padded, sealed and
    chained as §7.2 says (the reader ignores ``mirror/``)."""
    records = list(log_records(v.path, v.keys))
    last = records[-1]
    data = bytearray(last.path.read_bytes())
    assert last.at + 20 + len(last.sealed) == len(data)
    header = last.header
    aead = make_aead(v.keys.cipher, v2_files.log_key(v.keys.master, header))
    chain, seq = last.sealed[-16:], last.seq + 1
    for payload in [*payloads, struct.pack("<BqI", 14, 0, 0)]:
        plain = struct.pack("<I", len(payload)) + payload
        plain += bytes(v2_files.record_padded_len(len(payload)) - len(plain))
        aad = v2_files.record_aad(header, seq, chain)
        sealed = aead.encrypt(v2_files.record_nonce(seq - header.first_seq), plain, aad)
        head = struct.pack("<IQ", len(sealed), seq)
        data += head + struct.pack("<II", zlib.crc32(head), zlib.crc32(sealed)) + sealed
        chain, seq = sealed[-16:], seq + 1
    last.path.write_bytes(bytes(data))


def seal(v: Vault18, index: int, ref: Segref, plain: bytes) -> bytes:
    """``plain`` as a format-2 raw frame (§8.2), sealed here from the spec's words: nonce =
    generation ‖ 4 zero bytes, AAD = vault id ‖ file id ‖ index ‖ generation ‖ length."""
    padded = bytes([0]) + struct.pack("<I", len(plain)) + plain
    padded += bytes(ref.stored_len - 16 - len(padded))
    key = v2_files.file_key(v.keys.master, v.file_id)
    nonce = struct.pack("<Q", ref.generation) + bytes(4)
    aad = v.keys.vault_id + v.file_id + struct.pack("<QQI", index, ref.generation, len(plain))
    return bytes(make_aead(v.keys.cipher, key).encrypt(nonce, padded, aad))


def put_in_pack(v: Vault18, ref: Segref, frame: bytes) -> None:
    """The frame where its segref says (the pack synced after all), zeros before it."""
    with open(v.pack, "r+b") as f:
        f.seek(ref.offset)
        f.write(frame)


def export(v: Vault18, tmp_path: Path) -> bytes:
    r = run_reader(v.path, tmp_path / "out", *passfile(tmp_path))
    assert r.returncode == 0 and not r.stderr, r.stderr
    return (tmp_path / "out" / "p.bin").read_bytes()


def reader_error(v: Vault18, tmp_path: Path, fragment: str) -> None:
    r = run_reader(v.path, tmp_path / "out", *passfile(tmp_path))
    one_error(r, 3, fragment)
    assert not (tmp_path / "out").exists()


# --- a patch over a frame in a pack --------------------------------------------------------


@pytest.mark.parametrize(
    ("keep", "plain_len", "offset", "data"),
    [(10000, 10000, 5000, b"patched in place"), (4000, 6000, 5000, b"q" * 1000)],
    ids=["overwrite", "truncate-and-write"],
)
def test_a_patch_over_a_frame_in_its_pack_is_rebuilt(
    tmp_path: Path, keep: int, plain_len: int, offset: int, data: bytes
) -> None:
    v = make_vault(tmp_path)
    ref = v.ref(0, plain_len, v.generation(1))
    carry = Patch(v.base.generation, keep, offset, data)
    append_records(v, [patched_payload([(0, ref, carry)], ino=v.ino, size=plain_len)])
    expected = bytearray(BASE_PLAIN[:keep] + bytes(plain_len - keep))
    expected[offset : offset + len(data)] = data
    assert export(v, tmp_path) == expected


def test_a_base_that_does_not_authenticate_leaves_the_patch_unrebuilt(tmp_path: Path) -> None:
    v = make_vault(tmp_path)
    ref = v.ref(0, 10000, v.generation(1))
    carry = Patch(v.base.generation, 10000, 0, b"x")
    append_records(v, [patched_payload([(0, ref, carry)], ino=v.ino, size=10000)])
    with open(v.pack, "r+b") as f:
        f.seek(v.base.offset + 100)
        byte = f.read(1)
        f.seek(v.base.offset + 100)
        f.write(bytes([byte[0] ^ 1]))
    reader_error(v, tmp_path, "cannot rebuild it: its base (generation")


# --- a chain of patches, all in the log ----------------------------------------------------


@dataclass(frozen=True)
class Chain:
    refs: list[Segref]  # segment 0: the full frame, then two patches over it
    hole: Segref  # segment 1: a patch without base
    plain: bytes  # segment 0's final plaintext
    hole_plain: bytes


def write_chain(v: Vault18, third_base: int | None = None) -> Chain:
    """Segment 0 carried as a whole frame, then patched twice, each record's frame past
    the pack's end; segment 1 written by a patch without base. ``third_base``: the base
    generation the last patch names (by default its true base's)."""
    g = v.generation
    first = mixed_data(12000, 181)
    full = v.ref(0, 12000, g(1))
    second = v.ref(full.stored_len, 12000, g(2))
    third = v.ref(second.stored_len + full.stored_len, 14000, g(3))
    hole = v.ref(third.offset + third.stored_len - v.pack_end, 3000, g(4))
    frame = seal(v, 0, full, first)
    p2 = Patch(g(1), 12000, 100, b"second write")
    p3 = Patch(g(2) if third_base is None else third_base, 11000, 13000, b"third" * 100)
    hole_patch = Patch(0, 0, 2990, b"0123456789")
    size = S + 3000
    append_records(
        v,
        [
            patched_payload([(0, full, frame)], ino=v.ino, size=12000),
            patched_payload([(0, second, p2)], ino=v.ino, size=12000),
            patched_payload([(0, third, p3), (1, hole, hole_patch)], ino=v.ino, size=size),
        ],
    )
    plain = bytearray(first)
    plain[100:112] = b"second write"
    plain = plain[:11000] + bytearray(3000)
    plain[13000:13500] = b"third" * 100
    return Chain([full, second, third], hole, bytes(plain), bytes(2990) + b"0123456789")


def test_a_chain_of_patches_is_rebuilt_from_the_log(tmp_path: Path) -> None:
    v = make_vault(tmp_path)
    chain = write_chain(v)
    state = load_state(str(v.path), layout_for(2), v.keys, S, lambda _: None)
    assert set(carried_frames(state)) == {chain.refs[-1], chain.hole}  # the newest only
    content = export(v, tmp_path)
    assert content == chain.plain + bytes(S - len(chain.plain)) + chain.hole_plain


def test_a_patched_frame_the_pack_holds_is_read_from_the_pack(tmp_path: Path) -> None:
    """The pack holds the last frame (sealed here, independently): the reader takes it even
    though its patch names a base it cannot be rebuilt from."""
    v = make_vault(tmp_path)
    chain = write_chain(v, third_base=v.generation(1))  # not the segment's previous frame
    put_in_pack(v, chain.refs[-1], seal(v, 0, chain.refs[-1], chain.plain))
    put_in_pack(v, chain.hole, seal(v, 1, chain.hole, chain.hole_plain))
    assert export(v, tmp_path)[: len(chain.plain)] == chain.plain


def test_a_patch_over_a_patched_frame_its_pack_holds_is_rebuilt_from_that_frame(
    tmp_path: Path,
) -> None:
    """A sync of the packs between two patches made the first patched frame durable and
    let its own base be punched (§8.3): the second is rebuilt over the first as its pack
    holds it, not down the chain to the punched base."""
    v = make_vault(tmp_path)
    g = v.generation
    first = v.ref(0, 10000, g(1))
    second = v.ref(first.stored_len, 10000, g(2))
    p1 = Patch(v.base.generation, 10000, 100, b"first write")
    p2 = Patch(g(1), 10000, 5000, b"second write")
    append_records(
        v,
        [
            patched_payload([(0, first, p1)], ino=v.ino, size=10000),
            patched_payload([(0, second, p2)], ino=v.ino, size=10000),
        ],
    )
    first_plain = bytearray(BASE_PLAIN)
    first_plain[100:111] = b"first write"
    put_in_pack(v, first, seal(v, 0, first, bytes(first_plain)))
    put_in_pack(v, v.base, bytes(v.base.stored_len))  # punched: zeros
    expected = bytearray(first_plain)
    expected[5000:5012] = b"second write"
    assert export(v, tmp_path) == expected


def test_a_patch_naming_another_base_is_not_rebuilt(tmp_path: Path) -> None:
    v = make_vault(tmp_path)
    write_chain(v, third_base=v.generation(1))
    reader_error(v, tmp_path, f"has generation {v.generation(2)}, the patch's base")


def test_the_frame_sealed_again_is_the_frame_the_pack_would_hold(tmp_path: Path) -> None:
    """The reader's rebuilt frames equal the frames sealed here: with the pack cut in the
    middle of the last frame, the bytes it still holds agree with the rebuilt ones."""
    v = make_vault(tmp_path)
    chain = write_chain(v)
    last = chain.refs[-1]
    put_in_pack(v, last, seal(v, 0, last, chain.plain))
    with open(v.pack, "r+b") as f:
        f.truncate(last.offset + last.stored_len // 2)  # the crash cut the frame short
    content = export(v, tmp_path)
    assert content[: len(chain.plain)] == chain.plain


def test_a_pack_holding_other_bytes_at_a_patched_frame_is_damage(tmp_path: Path) -> None:
    v = make_vault(tmp_path)
    chain = write_chain(v)
    last = chain.refs[-1]
    frame = bytearray(seal(v, 0, last, chain.plain))
    frame[200] ^= 0x55  # not zero, not the frame's byte: another frame, not a lost tail
    put_in_pack(v, last, bytes(frame))
    reader_error(v, tmp_path, "the pack holds another frame than the one the log carries")


# --- the engine's patches ------------------------------------------------------------------

BIG_S = 65536  # a segment of 64 KiB: a 4 KiB write patches it rather than carrying it
WHOLE = mixed_data(BIG_S + 5000, 190)
SMALL_WRITES = [(4096 * k + 100 * k, mixed_data(4096, 200 + k)) for k in range(6)]


def write_patches(v: Vault, sync_first: bool = False) -> None:
    """A file written whole (one 64 KiB segment and a bit), fsync'd (its frames carried
    by the log too) or synced (durable in the pack: the first patch's base is read from
    there), then by small fsync'd writes into that segment."""
    ino = v.create_file(ROOT_INO, b"p.bin", 0o600, 0, 0).ino
    v.write(ino, 0, WHOLE)
    if sync_first:
        v.sync()
    else:
        v.fsync(ino)
    for offset, data in SMALL_WRITES:
        v.write(ino, offset, data)
        v.fsync(ino)


def write_patches_over_a_synced_base(v: Vault) -> None:
    write_patches(v, sync_first=True)


def patched_content() -> bytes:
    content = bytearray(WHOLE)
    for offset, data in SMALL_WRITES:
        content[offset : offset + len(data)] = data
    return bytes(content)


def engine_patches(vault: Path, keys: VaultKeys) -> list[tuple[Segref, Patch]]:
    """Every patch the engine's records carry, oldest first."""
    return [
        (ref, carry)
        for r in log_records(vault, keys)
        if r.entry == "WriteSegmentsPatched"
        for _, ref, carry in r.fields["items"]  # type: ignore[attr-defined]
        if isinstance(carry, Patch)
    ]


def cut_pack(vault: Path, ref: Segref, at: int) -> None:
    with open(vault / "packs" / f"{ref.pack:016x}.pack", "r+b") as f:
        f.truncate(at)


def reader_exports(vault: Path, tmp_path: Path, name: str) -> bytes:
    r = run_reader(vault, tmp_path / name, *passfile(tmp_path))
    assert r.returncode == 0 and crash_warning_only(r.stderr), r.stderr
    return (tmp_path / name / "p.bin").read_bytes()


@pytest.mark.parametrize(
    "writer", ["write_patches", "write_patches_over_a_synced_base"], ids=["fsync", "sync"]
)
def test_the_engines_small_fsyncd_writes_are_patches_the_reader_rebuilds(
    tmp_path: Path, writer: str
) -> None:
    """The engine's own patches, in a vault whose writer crashed after its last fsync."""
    vault = tmp_path / "v"
    master = crashed_vault(vault, "test_reference_vault_patched", writer, BIG_S, 0)
    keys = keys_of(vault, master)
    content = patched_content()
    patches = engine_patches(vault, keys)
    over_a_base = [p for _, p in patches if p.base_generation]
    assert len(over_a_base) == len(SMALL_WRITES), patches  # the small writes' records
    if writer == "write_patches_over_a_synced_base":
        assert len(patches) == len(SMALL_WRITES)  # the first frames are not in the log
    assert all(len(p.data) < BIG_S // 4 for p in over_a_base)  # patches, not whole frames
    newest = patches[-1][0]
    assert reader_exports(vault, tmp_path, "whole") == content  # the pack holds every frame

    # The pack cut one byte into the newest frame's tag: the frame no longer authenticates,
    # the reader seals it again from the patches and finds every byte the pack still holds
    # equal to its own (§9.2: deterministic sealing; another byte would be damage).
    cut_pack(vault, newest, newest.offset + newest.stored_len - 1)
    assert reader_exports(vault, tmp_path, "cut-tag") == content

    # The whole tail lost from the first carried frame on: every frame rebuilt from the
    # log alone (fsync: the first frames are patches without base) or from the log and
    # the base the first patch names, which the pack holds (sync).
    cut_pack(vault, newest, min(ref.offset for ref, _ in patches))
    assert reader_exports(vault, tmp_path, "cut-tail") == content

    # The engine's read-write open rebuilds the same frames and writes them back.
    with Vault.open(vault, PASSWORD) as v:
        assert v.read(v.lookup(ROOT_INO, b"p.bin").ino, 0, 1 << 20) == content
    assert (vault / "packs" / f"{newest.pack:016x}.pack").stat().st_size >= (
        newest.offset + newest.stored_len
    )
