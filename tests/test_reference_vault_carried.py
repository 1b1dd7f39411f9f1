"""tools/reference_decrypt.py --vault on frames the log carries (FORMAT.md §9.2
WriteSegmentsCarried, entry 17, and WriteSegmentsPatched, entry 18).

An fsync of a small write syncs the log only: its record carries the frame,
and the pack is synced later. A crash may lose the pack's unsynced tail, or
the whole new pack with its header; the reader, read-only, must then take the
frame from the record: its bytes (entry 17, what the engine writes for
compressed frames), or the frame sealed again from patches (entry 18, for raw
frames; more in test_reference_vault_patched.py). The crash is a writer
process that dies without closing the vault, its pack cut afterwards as the
lost tail would leave it. The decoder's refusals for entry 17 are checked on
the engine's own records and on hand-made payloads.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from support import mixed_data
from test_reference_vault import FAST, PASSWORD, ROOT, S, one_error, passfile, run_reader
from test_reference_vault_v2 import LogRecord, keys_of, log_records, reseal

from fusefs import ROOT_INO, Vault

sys.path.insert(0, str(ROOT / "tools"))
from refreader import v2_files, v2_metadata  # noqa: E402
from refreader.bootstrap import load_state  # noqa: E402
from refreader.fields import Damaged, Segref  # noqa: E402
from refreader.layouts import layout_for  # noqa: E402
from refreader.log import VaultKeys  # noqa: E402
from refreader.state import carried_frames  # noqa: E402

FIRST = mixed_data(5000, 17)  # a few KiB: one small frame, carried
OVERWRITE = b"overwritten after the first fsync"
APPENDED = b"appended after the first fsync"


def expected_content() -> bytes:
    data = bytearray(FIRST)
    data[100 : 100 + len(OVERWRITE)] = OVERWRITE
    return bytes(data) + APPENDED


#: The two ways the engine carries frames: raw frames of format 2 as patches (entry 18,
#: carry kind 2), compressed ones whole (entry 17: no item is a patch).
WAYS = pytest.mark.parametrize(
    ("compressed", "entry"),
    [(False, "WriteSegmentsPatched"), (True, "WriteSegmentsCarried")],
    ids=["patches", "zstd-frames"],
)


def write_small(v: Vault) -> None:
    """Small writes, fsync'd (the records carry their frames: every write rewrites
    segment 0, so several carried frames of one segment, the newest live)."""
    ino = v.create_file(ROOT_INO, b"small.bin", 0o600, 0, 0).ino
    v.write(ino, 0, FIRST)
    v.fsync(ino)
    v.write(ino, 100, OVERWRITE)
    v.write(ino, len(FIRST), APPENDED)
    v.fsync(ino)


CRASHING_WRITER = """
import os, sys
sys.path.insert(0, "tests")
from fusefs import Vault
import {module} as m
v = Vault.create(sys.argv[1], m.PASSWORD, segment_size=int(sys.argv[2]),
                 compression_level=int(sys.argv[3]) or None, **m.FAST)
print(v.print_master_key().replace("-", ""), flush=True)
m.{writer}(v)
os._exit(0)  # the crash: no Close, and the packs perhaps never synced
"""


def crashed_vault(vault: Path, module: str, writer: str, segment_size: int, level: int) -> bytes:
    """A vault made by ``module.writer(v)`` in a process that then dies without closing
    it (what a crash leaves, but for the page cache: the pack is cut afterwards, as a
    lost unsynced tail would leave it); its master key. The engine trusts a vault closed
    cleanly to hold every patched frame in its packs, so only a crash makes it rebuild."""
    r = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER.format(module=module, writer=writer),
         str(vault), str(segment_size), str(level)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return bytes.fromhex(r.stdout.strip())


def make_vault(vault: Path, compressed: bool = False, crash: bool = False) -> bytes:
    """A vault written by :func:`write_small`, closed or crashed; its master key."""
    level = 3 if compressed else 0
    if crash:
        return crashed_vault(vault, "test_reference_vault_carried", "write_small", S, level)
    with Vault.create(vault, PASSWORD, segment_size=S, compression_level=level or None,
                      **FAST) as v:  # type: ignore[arg-type]  # fmt: skip
        master = bytes.fromhex(v.print_master_key().replace("-", ""))
        write_small(v)
    return master


def crash_warning_only(stderr: str) -> bool:
    """Whether the reader said only that the last session did not close the vault."""
    lines = stderr.splitlines()
    no_close = "reference_decrypt: warning: the log ends without a Close record"
    return len(lines) == 1 and lines[0].startswith(no_close)


def carried_records(vault: Path, master: bytes) -> list[LogRecord]:
    return [
        r
        for r in log_records(vault, keys_of(vault, master))
        if r.entry in ("WriteSegmentsCarried", "WriteSegmentsPatched")
    ]


def carried_refs(vault: Path, master: bytes) -> list[Segref]:
    """The segrefs of every frame carried (its bytes or a patch), oldest first."""
    return [
        ref
        for r in carried_records(vault, master)
        for _, ref, carry in r.fields["items"]  # type: ignore[attr-defined]
        if carry
    ]


@WAYS
@pytest.mark.parametrize("keep", [64, 0], ids=["tail-lost", "header-lost"])
def test_a_frame_the_pack_lost_is_read_from_the_log_record(
    tmp_path: Path, keep: int, compressed: bool, entry: str
) -> None:
    """Read from the record: the frame's bytes (entry 17), or the frame sealed again
    from the chain of patches the records carry (entry 18)."""
    vault = tmp_path / "v"
    master = make_vault(vault, compressed, crash=True)
    assert {r.entry for r in carried_records(vault, master)} == {entry}
    refs = carried_refs(vault, master)
    assert len(refs) >= 2 and len(set(refs)) == len(refs), refs
    newest = refs[-1]
    pack = vault / "packs" / f"{newest.pack:016x}.pack"
    assert pack.stat().st_size >= newest.offset + newest.stored_len  # in the page cache
    with open(pack, "r+b") as f:
        f.truncate(keep)  # the crash: the pack's unsynced tail (and header) lost

    r = run_reader(vault, tmp_path / "out", *passfile(tmp_path))
    assert r.returncode == 0, r.stderr
    assert crash_warning_only(r.stderr), r.stderr
    assert (tmp_path / "out" / "small.bin").read_bytes() == expected_content()

    # The engine's read-write open writes the live frame back into its pack.
    with Vault.open(vault, PASSWORD) as v:
        ino = v.lookup(ROOT_INO, b"small.bin").ino
        assert v.read(ino, 0, 1 << 20) == expected_content()
    assert pack.stat().st_size >= newest.offset + newest.stored_len


@WAYS
def test_a_pack_holding_another_frame_at_a_carried_frames_place_is_damage(
    tmp_path: Path, compressed: bool, entry: str
) -> None:
    """A byte of the newest carried frame changed in its pack, to neither zero nor the
    frame's: not a tail a crash lost but other bytes (§9.2), so the reader reports damage
    rather than reading the record's copy as if nothing were wrong."""
    vault = tmp_path / "v"
    master = make_vault(vault, compressed)
    assert carried_records(vault, master)[-1].entry == entry
    newest = carried_refs(vault, master)[-1]
    pack = vault / "packs" / f"{newest.pack:016x}.pack"
    with open(pack, "r+b") as f:
        f.seek(newest.offset + 40)
        byte = f.read(1)[0]
        f.seek(newest.offset + 40)
        f.write(bytes([1 if byte != 1 else 2]))
    r = run_reader(vault, tmp_path / "out", *passfile(tmp_path))
    one_error(r, 3, "the pack holds another frame than the one the log carries")
    assert not (tmp_path / "out").exists()


def test_only_the_newest_carried_frame_a_segment_refers_to_is_live(tmp_path: Path) -> None:
    """Segment 0 was carried several times: only the newest frame is live. Once a truncation
    drops the segment, no carried frame is live (§9.2: dead frames are never used),
    and the file exports empty."""
    vault = tmp_path / "v"
    master = make_vault(vault)
    keys = keys_of(vault, master)
    *older, newest = carried_refs(vault, master)
    assert older and all(ref.generation < newest.generation for ref in older)
    state = load_state(str(vault), layout_for(2), keys, S, lambda _: None)
    assert set(carried_frames(state)) == {newest}

    with Vault.open(vault, PASSWORD) as v:
        v.setattr(v.lookup(ROOT_INO, b"small.bin").ino, size=0)
    state = load_state(str(vault), layout_for(2), keys, S, lambda _: None)
    assert state.carried.newest and carried_frames(state) == {}
    r = run_reader(vault, tmp_path / "out", *passfile(tmp_path))
    assert r.returncode == 0 and not r.stderr, r.stderr
    assert (tmp_path / "out" / "small.bin").read_bytes() == b""


def test_a_carried_frame_of_the_wrong_length_is_an_undecodable_entry(tmp_path: Path) -> None:
    """The engine's record with its item's stored length changed (so the frame's length
    no longer matches it), resealed: the reader refuses the log (exit 3). Compressed
    frames are carried whole (entry 17)."""
    vault = tmp_path / "v"
    master = make_vault(vault, compressed=True)
    keys = keys_of(vault, master)
    record = carried_records(vault, master)[0]
    assert record.entry == "WriteSegmentsCarried"
    payload_at = 4  # the padded plaintext: u32 length ‖ entry ‖ zeros (§7.2)
    assert record.plaintext[4:].startswith(v2_files.record_payload(record.plaintext))
    plain = bytearray(record.plaintext)
    # tag, ino, size, mtime, count, then the first item: index, pack, offset, stored length
    stored_len_at = payload_at + 1 + 8 + 8 + 12 + 4 + 8 + 8 + 8
    (stored_len,) = struct.unpack_from("<I", plain, stored_len_at)
    assert stored_len == record.fields["items"][0][1].stored_len  # type: ignore[index]
    struct.pack_into("<I", plain, stored_len_at, stored_len + 1)
    reseal_onwards(vault, keys, record, bytes(plain))
    r = run_reader(vault, tmp_path / "out", *passfile(tmp_path))
    one_error(r, 3, "undecodable entry")
    assert "stored length" in r.stderr
    assert not (tmp_path / "out").exists()


def reseal_onwards(vault: Path, keys: VaultKeys, record: LogRecord, plaintext: bytes) -> None:
    """Put ``plaintext`` in place of the record's, and reseal every later record of its
    file with its own plaintext under the new chain, so that only this record's content
    differs from what the engine wrote (§7.2: each record's AAD holds the tag before)."""
    later = [r for r in log_records(vault, keys) if r.path == record.path and r.seq > record.seq]
    reseal(record, keys, plaintext)
    previous = record
    for r in later:
        data = previous.path.read_bytes()
        end = previous.at + 20 + len(previous.sealed)
        resealed = replace(r, chain=data[end - 16 : end])
        reseal(resealed, keys, resealed.plaintext)
        previous = resealed


def carried_payload(frames: list[tuple[Segref, bytes]], cut: int = 0) -> bytes:
    """A tag-17 payload (ino 2, size 1, mtime 0) of the given items, ``cut`` bytes short."""
    out = struct.pack("<BQQqII", 17, 2, 1, 0, 0, len(frames))
    for index, (ref, frame) in enumerate(frames):
        out += struct.pack("<QQQIIQ", index, ref.pack, ref.offset, ref.stored_len, ref.plain_len,
                           ref.generation)  # fmt: skip
        out += struct.pack("<I", len(frame)) + frame
    return out[: len(out) - cut]


REF = Segref(pack=1, offset=64, stored_len=50, plain_len=1, generation=3)


def test_entry_17_decodes_carried_and_durable_items() -> None:
    entry = v2_metadata.decode_entry(carried_payload([(REF, bytes(50)), (REF, b"")]))
    assert entry.name == "WriteSegmentsCarried"
    assert entry.fields["items"] == [(0, REF, bytes(50)), (1, REF, b"")]
    assert (entry.fields["ino"], entry.fields["size"], entry.fields["mtime"]) == (2, 1, 0)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (carried_payload([(REF, bytes(49))]), "stored length is 50"),
        (carried_payload([(REF, bytes(51))]), "stored length is 50"),
        # one item of 44 bytes announced, 43 left: refused before any item is read
        (carried_payload([(REF, b"")], cut=1), "larger than the 43 bytes left"),
        (carried_payload([(REF, bytes(50))], cut=1), "cut short"),
        (carried_payload([(REF, b"")]) + b"\0", "trailing bytes"),
    ],
    ids=["frame-short", "frame-long", "count", "frame-cut", "trailing"],
)
def test_entry_17_refusals(payload: bytes, why: str) -> None:
    with pytest.raises(Damaged, match=why):
        v2_metadata.decode_entry(payload)
