"""tools/reference_decrypt.py --vault on vaults of format 2 (FORMAT.md "(v2)").

test_reference_vault.py cross-tests the export on format-2 vaults (every
vault the binding creates is of format 2). Here: what only format 2 has.
The engine's bytes are checked against FORMAT.md with the reader's own
layout code (chain across files and with the snapshot, padded record and
frame lengths, ReserveGenerations before every generation, a Close at the
end of each session), and the reader is shown to refuse what format 2 lets
it catch: a flipped byte in a middle record, padding that is not zero, a
log file or snapshot of another history (the chain), while forgiving a
torn tail found by the header check.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import mixed_data
from test_reference_vault import (
    FAST,
    GOLDEN,
    ORPHAN_MAKER,
    PASSWORD,
    ROOT,
    S,
    assert_same_tree,
    dest_tree,
    engine_tree,
    export_and_compare,
    flip,
    one_error,
    passfile,
    populate,
    run_reader,
)

from fusefs import ROOT_INO, Vault

sys.path.insert(0, str(ROOT / "tools"))
from refreader import v2_files, v2_metadata  # noqa: E402
from refreader.bootstrap import load_state, read_snapshot  # noqa: E402
from refreader.fields import Segref  # noqa: E402
from refreader.layouts import layout_for  # noqa: E402
from refreader.log import VaultKeys  # noqa: E402
from refreader.primitives import CIPHER_NAMES, aead_open, make_aead  # noqa: E402

CIPHERS = {name: ident for ident, name in CIPHER_NAMES.items()}


# --- reading the engine's bytes with the reader's layouts ----------------------------------


@dataclass(frozen=True)
class LogRecord:
    path: Path
    at: int
    header: v2_files.LogHeader
    seq: int
    chain: bytes  # the chain value in its AAD
    sealed: bytes
    plaintext: bytes
    entry: str
    fields: dict[str, object]


def keys_of(vault: Path, master: bytes) -> VaultKeys:
    conf = json.loads((vault / "fusefs.conf").read_text())
    assert conf["version"] == 2
    return VaultKeys(bytes.fromhex(conf["vault_id"]), CIPHERS[conf["cipher"]], master)


def log_records(vault: Path, keys: VaultKeys) -> Iterator[LogRecord]:
    """Every record of every log file, in order, opened with the chain of its file. The
    last file may end in zero bytes: the writer's reserve (FORMAT.md §7.3), which a session
    that crashed leaves."""
    paths = sorted((vault / "log").iterdir())
    for path in paths:
        data = path.read_bytes()
        header = v2_files.parse_log_header(data)
        aead = make_aead(keys.cipher, v2_files.log_key(keys.master, header))
        at, chain, seq = v2_files.LOG_HEADER_LEN, header.chain_in, header.first_seq
        while at < len(data):
            if path == paths[-1] and not any(data[at:]):
                break
            raw = v2_files.parse_record(data, at)
            assert raw is not None and raw.seq == seq, (path, at)
            aad = v2_files.record_aad(header, seq, chain)
            plain = aead_open(aead, v2_files.record_nonce(seq - header.first_seq), raw.sealed, aad)
            assert plain is not None, (path, at)
            entry = v2_metadata.decode_entry(v2_files.record_payload(plain))
            yield LogRecord(path, at, header, seq, chain, raw.sealed, plain, entry.name,
                            entry.fields)  # fmt: skip
            at, chain, seq = at + raw.length, raw.sealed[-16:], seq + 1


def reseal(record: LogRecord, keys: VaultKeys, plaintext: bytes) -> None:
    """Put ``plaintext`` in place of the record's, sealed as the engine would seal it."""
    aead = make_aead(keys.cipher, v2_files.log_key(keys.master, record.header))
    nonce = v2_files.record_nonce(record.seq - record.header.first_seq)
    sealed = aead.encrypt(nonce, plaintext, v2_files.record_aad(record.header, record.seq,
                                                                  record.chain))  # fmt: skip
    head = struct.pack("<IQ", len(sealed), record.seq)
    head += struct.pack("<II", zlib.crc32(head), zlib.crc32(sealed))
    data = bytearray(record.path.read_bytes())
    assert len(sealed) == len(record.sealed)
    data[record.at : record.at + 20 + len(sealed)] = head + sealed
    record.path.write_bytes(bytes(data))


@dataclass(frozen=True)
class Frame:
    ref: Segref
    file_id: bytes
    index: int
    frame: bytes
    plaintext: bytes


def frames(vault: Path, keys: VaultKeys) -> Iterator[Frame]:
    """Every live frame of the state after the newest snapshot and the log (read by the
    reader's bootstrap), opened as format 2."""
    state = load_state(str(vault), layout_for(2), keys, S, lambda _: None)
    assert state.legacy_generation_high == 0  # made at format 2: no frame of format 1
    assert state.generation_high <= state.generation_reserved
    for node in state.inodes.values():
        key = v2_files.file_key(keys.master, node.file_id)
        for index, ref in node.segments.items():
            with open(vault / "packs" / f"{ref.pack:016x}.pack", "rb") as f:
                f.seek(ref.offset)
                frame = f.read(ref.stored_len)
            nonce, sealed = v2_files.split_frame(frame, ref.generation)
            aad = v2_files.frame_aad(keys.vault_id, node.file_id, index, ref.generation,
                                     ref.plain_len)  # fmt: skip
            plain = aead_open(make_aead(keys.cipher, key), nonce, sealed, aad)
            assert plain is not None
            yield Frame(ref, node.file_id, index, frame, plain)


def make_vault(path: Path, sessions: int = 4, **create: object) -> bytes:
    """A vault of several sessions (one log file each), a log compaction in the second;
    its master key."""
    with Vault.create(path, PASSWORD, segment_size=S, **FAST, **create) as v:  # type: ignore[arg-type]
        master = bytes.fromhex(v.print_master_key().replace("-", ""))
        populate(v, 0)
    for seed in range(1, sessions):
        with Vault.open(path, PASSWORD) as v:
            populate(v, seed)
            if seed == 1:
                v.compact_log()
                populate(v, 10)
            if seed == sessions - 1:
                large_records(v)
    return master


def large_records(v: Vault) -> None:
    """Entries past 2048 bytes, whose records a writer pads to 4608, 8704, … (§7.2):
    an extended attribute of 3,000 bytes, and writes of 4 and 8 KiB into a durable
    segment, each made durable by fsync (its record carries the bytes, §9.2)."""
    ino = v.create_file(ROOT_INO, b"large-records", 0o644, 0, 0).ino
    v.setxattr(ino, b"user.three", b"3" * 3000)
    v.write(ino, 0, mixed_data(S, seed=7))
    v.sync()
    for at, n in ((100, 4096), (5000, 8192)):
        v.write(ino, at, os.urandom(n))
        v.fsync(ino)


# --- the engine's bytes against FORMAT.md --------------------------------------------------


@pytest.mark.parametrize(
    ("cipher", "level"),
    [("aes-256-gcm", None), ("chacha20-poly1305", 3)],
    ids=["aes", "chacha-zstd"],
)
def test_the_engine_writes_what_format_2_says(
    tmp_path: Path, cipher: str, level: int | None
) -> None:
    vault = tmp_path / "v"
    master = make_vault(vault, cipher=cipher, compression_level=level)
    keys = keys_of(vault, master)
    dest = tmp_path / "export"
    r = run_reader(vault, dest, *passfile(tmp_path))
    assert r.returncode == 0 and not r.stderr, r.stderr  # closed cleanly: no warning

    snaps = sorted((vault / "snap").iterdir())
    base = read_snapshot(snaps[-1].read_bytes(), layout_for(2), keys)
    records = list(log_records(vault, keys))
    files = sorted({rec.path for rec in records})
    assert len(files) >= 3
    # §7.1-§7.3: the chain runs from the snapshot through every file.
    chain = base.chain
    reserved = base.state.generation_reserved
    padded: set[int] = set()
    for rec in records:
        if rec.seq == rec.header.first_seq:
            assert rec.header.chain_in == rec.chain
        if rec.seq > base.covers_seq:
            assert rec.chain == chain, (rec.path.name, rec.seq)
        chain = rec.sealed[-16:]
        if rec.seq == base.covers_seq:
            assert chain == base.chain
        # §7.2: the padded length a writer uses.
        entry_len = int.from_bytes(rec.plaintext[:4], "little")
        assert len(rec.plaintext) == v2_files.record_padded_len(entry_len), rec.entry
        padded.add(len(rec.plaintext))
        # §9.3: a generation is reserved before any frame carries it.
        if rec.entry == "ReserveGenerations":
            reserved = max(reserved, rec.fields["up_to"])  # type: ignore[call-overload]
        elif rec.entry == "WriteSegments":
            for _, ref in rec.fields["items"]:  # type: ignore[attr-defined]
                assert ref.generation <= reserved, rec.seq
    assert {4608, 8704} <= padded, sorted(padded)  # large_records' entries
    assert records[0].header.first_seq == base.covers_seq + 1 == records[0].seq
    assert records[0].entry == "SnapshotCheckpoint"
    # §7.2 "The end": every session ends with a Close, the last record of its file.
    by_file = {f: [rec.entry for rec in records if rec.path == f] for f in files}
    assert all(entries[-1] == "Close" for entries in by_file.values()), by_file
    # §8.2: frames of format 2, padded as the writer pads them.
    seen = 0
    for f in frames(vault, keys):
        body_len = int.from_bytes(f.plaintext[1:5], "little")
        assert len(f.plaintext) == v2_files.frame_padded_len(body_len, S), (f.ref, body_len)
        assert len(f.frame) == len(f.plaintext) + 16
        seen += 1
    assert seen > 20


# --- what the reader forgives and what it refuses ------------------------------------------


def test_a_torn_tail_found_by_the_header_check_is_ignored(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    master = make_vault(vault, sessions=2)
    last = max((vault / "log").iterdir())
    records = [rec for rec in log_records(vault, keys_of(vault, master)) if rec.path == last]
    pristine = last.read_bytes()
    next_seq = records[-1].seq + 1
    whole = struct.pack("<IQ", 200, next_seq)
    whole += struct.pack("<II", zlib.crc32(whole), 0)
    old = pristine[records[-1].at : records[-1].at + 20]  # record header: check holds
    tails = [
        b"\x90\x00\x00\x00" + os.urandom(40),  # a header whose check fails
        whole + os.urandom(50),  # a header that holds, the record cut short
        whole + os.urandom(60) + old,  # after it, a header of an earlier record only
    ]
    whole_vault = tmp_path / "pristine"
    shutil.copytree(vault, whole_vault)
    for i, tail in enumerate(tails):
        last.write_bytes(pristine + tail)
        (tmp_path / str(i)).mkdir()
        report = export_and_compare(tmp_path / str(i), vault)  # the engine opens it: cuts
        assert report["torn_bytes_cut"] == len(tail), i
        shutil.rmtree(vault)
        shutil.copytree(whole_vault, vault)
    # A later record's header after the damage: no torn tail, damage.
    later = struct.pack("<IQ", 200, next_seq + 1)
    last.write_bytes(
        pristine + whole + os.urandom(60) + later + struct.pack("<II", zlib.crc32(later), 0)
    )
    one_error(reader(vault, tmp_path), 3, "followed by more data")


def test_a_flipped_byte_in_a_middle_record_exits_3(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    master = make_vault(vault)
    keys = keys_of(vault, master)
    records = list(log_records(vault, keys))
    files = sorted({rec.path for rec in records})
    for path, message in [(files[-2], "damaged record"), (files[-1], "followed by more data")]:
        inner = [rec for rec in records if rec.path == path]
        rec = inner[len(inner) // 2]
        pristine = path.read_bytes()
        flip(path, rec.at + 20 + 30)  # inside the sealed bytes: the body CRC fails
        one_error(reader(vault, tmp_path), 3, message)
        data = bytearray(path.read_bytes())  # the CRC mended: the AEAD fails
        data[rec.at + 16 : rec.at + 20] = struct.pack(
            "<I", zlib.crc32(data[rec.at + 20 : rec.at + 20 + len(rec.sealed)])
        )
        path.write_bytes(bytes(data))
        one_error(reader(vault, tmp_path), 3, f"record {rec.seq} failed authentication")
        path.write_bytes(pristine)
    assert not (tmp_path / "out").exists()


def test_padding_that_is_not_zero_exits_3(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    master = make_vault(vault, sessions=1)
    keys = keys_of(vault, master)
    close = list(log_records(vault, keys))[-1]
    assert close.entry == "Close"
    log = close.path.read_bytes()
    plain = bytearray(close.plaintext)
    plain[-1] = 1
    reseal(close, keys, bytes(plain))
    one_error(reader(vault, tmp_path), 3, "padding byte is not zero")
    plain = bytearray(close.plaintext)
    plain[:4] = struct.pack("<I", len(plain) - 3)
    reseal(close, keys, bytes(plain))
    one_error(reader(vault, tmp_path), 3, "entry length")
    close.path.write_bytes(log)
    export_and_compare(tmp_path, vault)  # the record put back: all is well again

    padded = next(f for f in frames(vault, keys) if has_padding(f.plaintext))
    ref = padded.ref
    pack = vault / "packs" / f"{ref.pack:016x}.pack"
    pristine = pack.read_bytes()
    flip(pack, ref.offset + ref.stored_len - 17)  # the last padding byte, as stored
    one_error(reader(vault, tmp_path), 3, "frame failed authentication")
    # Resealed with a padding byte that is not zero: only the padding check sees it.
    bad = bytearray(padded.plaintext)
    bad[-1] = 0x55
    aead = make_aead(keys.cipher, v2_files.file_key(master, padded.file_id))
    nonce, _ = v2_files.split_frame(padded.frame, ref.generation)
    aad = v2_files.frame_aad(keys.vault_id, padded.file_id, padded.index, ref.generation,
                             ref.plain_len)  # fmt: skip
    sealed = aead.encrypt(nonce, bytes(bad), aad)
    data = bytearray(pristine)
    data[ref.offset : ref.offset + len(sealed)] = sealed
    pack.write_bytes(bytes(data))
    one_error(reader(vault, tmp_path), 3, "padding byte of the frame is not zero")
    pack.write_bytes(pristine)
    assert not (tmp_path / "out").exists()


def has_padding(plaintext: bytes) -> bool:
    return len(plaintext) > 5 + int.from_bytes(plaintext[1:5], "little")


def reader(vault: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return run_reader(vault, tmp_path / "out", *passfile(tmp_path))


# --- the chain: another history --------------------------------------------------------------


def diverged(tmp_path: Path, compact: bool) -> tuple[Path, Path]:
    """Two copies of one vault, each then written by the same operations with other
    bytes (so their records line up in number and sequence but not in tags)."""
    a, b = tmp_path / "a", tmp_path / "b"
    with Vault.create(a, PASSWORD, segment_size=S, **FAST) as v:
        populate(v, 0)
    shutil.copytree(a, b)
    for copy, fill in ((a, b"A"), (b, b"B")):
        for session in range(2):
            with Vault.open(copy, PASSWORD) as v:
                f = v.create_file(ROOT_INO, b"diverged-%d" % session, 0o600, 0, 0).ino
                v.write(f, 0, fill * (3 * S))
                if compact and session == 0:
                    v.compact_log()
    for copy in (a, b):  # each history alone is whole
        r = run_reader(copy, tmp_path / f"export-{copy.name}", *passfile(tmp_path))
        assert r.returncode == 0 and not r.stderr, r.stderr
    return a, b


def test_a_log_file_of_another_history_exits_3(tmp_path: Path) -> None:
    a, b = diverged(tmp_path, compact=False)
    newest = max((a / "log").iterdir()).name
    for where in ("log", "mirror/log"):
        shutil.copy2(b / where / newest, a / where / newest)
    one_error(reader(a, tmp_path), 3, f"log/{newest}: chain mismatch")
    assert not (tmp_path / "out").exists()


def test_a_snapshot_of_another_history_exits_3(tmp_path: Path) -> None:
    a, b = diverged(tmp_path, compact=True)
    snap = max((a / "snap").iterdir()).name
    assert (b / "snap" / snap).exists()
    for where in ("snap", "mirror/snap"):
        shutil.copy2(b / where / snap, a / where / snap)
    first = min((a / "log").iterdir()).name  # the file right after the snapshot
    one_error(reader(a, tmp_path), 3, f"log/{first}: chain mismatch")


def test_a_log_that_does_not_end_with_close_is_read_with_a_warning(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    r = subprocess.run([sys.executable, "-c", ORPHAN_MAKER, str(vault)], cwd=ROOT, timeout=60)
    assert r.returncode == 0
    r = reader(vault, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("reference_decrypt: warning: the log ends without a Close record")
    assert len(r.stderr.splitlines()) == 1


def test_a_log_reaching_back_into_the_snapshot_must_hold_its_chain(tmp_path: Path) -> None:
    """A log compaction interrupted after its snapshot (§9.6 step 3): the log still holds
    record covers_seq, whose tag must be the snapshot's chain (§7.3)."""
    a, b = diverged(tmp_path, compact=False)
    for copy in (a, b):  # a snapshot of each history's last record, kept aside
        kept = tmp_path / f"kept-{copy.name}"
        shutil.copytree(copy, kept)
        with Vault.open(kept, PASSWORD) as v:
            v.compact_log()
    snap = "0000000000000001.snap"
    covers_seq = struct.unpack_from("<Q", (tmp_path / "kept-a" / "snap" / snap).read_bytes(), 56)[0]
    last = max((a / "log").iterdir())
    # The snapshot covers a's last record: a's newest file holds it, none comes after.
    assert v2_files.parse_log_header(last.read_bytes()).first_seq <= covers_seq
    (a / "snap").mkdir(exist_ok=True)
    shutil.copy2(tmp_path / "kept-a" / "snap" / snap, a / "snap" / snap)
    r = reader(a, tmp_path)
    assert r.returncode == 0 and not r.stderr, r.stderr
    shutil.copy2(tmp_path / "kept-b" / "snap" / snap, a / "snap" / snap)
    shutil.rmtree(tmp_path / "out")
    r = reader(a, tmp_path)
    one_error(r, 3, f"record {covers_seq} is not the one the snapshot continues")
    assert f"log/{last.name} offset" in r.stderr


# --- an upgraded vault (format 1 -> 2, §11) --------------------------------------------------


def test_an_upgraded_vault_has_frames_of_both_formats(tmp_path: Path) -> None:
    """The v1 golden vault upgraded by its first read-write open: old frames keep format
    1's layout (generation ≤ legacy generation high), new ones have format 2's, even
    within one file; what the upgrade's last step deletes may still be there."""
    expected = json.loads((GOLDEN / "expected.json").read_text())
    password = expected["password"].encode()
    vault = tmp_path / "v"
    shutil.copytree(GOLDEN, vault)
    (vault / "expected.json").unlink()
    with Vault.open(vault, password) as v:
        late = v.lookup(ROOT_INO, b"late.txt").ino
        v.write(late, 10, b"written after the upgrade")  # segment 0 of 1: rewritten
        sparse = v.lookup(ROOT_INO, b"sparse.bin").ino
        v.write(sparse, 5, b"one segment of four rewritten")
        new = v.create_file(ROOT_INO, b"new.bin", 0o600, 0, 0).ino
        v.write(new, 0, mixed_data(3 * S + 9, 7))
    assert json.loads((vault / "fusefs.conf").read_text())["version"] == 2
    master = bytes.fromhex(expected["master_key"].replace("-", ""))
    keys = keys_of(vault, master)
    state = load_state(str(vault), layout_for(2), keys, S, lambda _: None)
    legacy = state.legacy_generation_high
    generations = [ref.generation for n in state.inodes.values() for ref in n.segments.values()]
    assert 0 < legacy < 2**64 - 1
    assert any(g <= legacy for g in generations) and any(g > legacy for g in generations)
    mixed = [ref.generation > legacy for ref in state.inodes[sparse].segments.values()]
    assert any(mixed) and not all(mixed)

    # Step 6 of §11 not yet run: the files of version 1 are back, covered whole, never read.
    leftover = tmp_path / "leftover"
    shutil.copytree(vault, leftover)
    for kind in ("log", "snap"):
        for old in (GOLDEN / kind).iterdir():
            assert not (leftover / kind / old.name).exists()
            shutil.copy2(old, leftover / kind / old.name)

    exports = {}
    for copy in (vault, leftover):
        dest = tmp_path / f"export-{copy.name}"
        r = run_reader(copy, dest, *passfile(tmp_path, password))
        assert r.returncode == 0 and not r.stderr, r.stderr
        exports[copy.name] = dest_tree(dest)
    assert (tmp_path / "export-v" / "new.bin").read_bytes() == mixed_data(3 * S + 9, 7)
    late_text = (tmp_path / "export-v" / "late.txt").read_bytes()
    assert late_text[10:35] == b"written after the upgrade" and len(late_text) == 10000
    engine, _ = engine_tree(vault, password)
    assert_same_tree(exports["leftover"], deepcopy(exports["v"]))
    assert_same_tree(exports["v"], engine)
