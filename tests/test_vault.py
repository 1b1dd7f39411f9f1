"""fusefs.Vault: the engine the FUSE layer will call (no FUSE here)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import fusefs
from fusefs import ROOT_INO, Vault, errors

FAST = {"argon2_m_kib": 64, "argon2_t": 1}


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    """A new vault; after the test it must check clean (the test oracle)."""
    v = Vault.create(tmp_path / "v", b"pw", **FAST)
    yield v
    findings = v.fsck()["findings"]
    v.close()
    assert [f["text"] for f in findings] == []


def oserror(excinfo: pytest.ExceptionInfo[OSError]) -> int | None:
    return excinfo.value.errno


def test_round_trip_and_reopen(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v", b"pw", compression_level=3, **FAST) as v:
        d = v.mkdir(ROOT_INO, b"docs", 0o755, 1000, 1000)
        f = v.create_file(d.ino, b"a.txt", 0o640, 1000, 1000)
        assert f.mode == 0o100640 and d.mode == 0o040755
        data = os.urandom(200_000) + b"z" * 100_000
        assert v.write(f.ino, 0, data) == len(data)
        v.setxattr(f.ino, b"user.tag", b"x")
        v.symlink(ROOT_INO, b"link", b"docs/a.txt", 0, 0)
        key = v.print_master_key()
    with Vault.open(tmp_path / "v", b"pw") as v:
        f2 = v.lookup(v.lookup(ROOT_INO, b"docs").ino, b"a.txt")
        assert (f2.ino, f2.size, f2.uid) == (f.ino, len(data), 1000)
        assert v.read(f.ino, 0, len(data) + 5) == data
        assert v.read(f.ino, 150_000, 10) == data[150_000:150_010]
        assert v.getxattr(f.ino, b"user.tag") == b"x"
        assert v.readlink(v.lookup(ROOT_INO, b"link").ino) == b"docs/a.txt"
        assert [e[0] for e in v.readdir(ROOT_INO)] == [b"docs", b"link"]
    with Vault.open_with_master_key(tmp_path / "v", key.upper()) as v:
        assert v.read(f.ino, 0, 5) == data[:5]


def test_wrong_password_and_closed_vault(tmp_path: Path) -> None:
    Vault.create(tmp_path / "v", b"pw", **FAST).close()
    with pytest.raises(errors.WrongKeyError):
        Vault.open(tmp_path / "v", b"nope")
    with pytest.raises(errors.WrongKeyError):
        Vault.open_with_master_key(tmp_path / "v", "00000000-" * 7 + "00000000")
    v = Vault.open(tmp_path / "v", b"pw")
    v.close()
    with pytest.raises(OSError) as e:
        v.getattr(ROOT_INO)
    assert e.value.errno == errno.EBADF


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda v: v.lookup(ROOT_INO, b"missing"), errno.ENOENT),
        (lambda v: v.create_file(ROOT_INO, b"f", 0o600, 0, 0), errno.EEXIST),
        (lambda v: v.create_file(ROOT_INO, b"x" * 256, 0o600, 0, 0), errno.ENAMETOOLONG),
        (lambda v: v.rmdir(ROOT_INO, b"d"), errno.ENOTEMPTY),
        (lambda v: v.unlink(ROOT_INO, b"d"), errno.EISDIR),
        (lambda v: v.rmdir(ROOT_INO, b"f"), errno.ENOTDIR),
        (lambda v: v.mkdir(v.lookup(ROOT_INO, b"f").ino, b"x", 0o700, 0, 0), errno.ENOTDIR),
        (lambda v: v.rename(ROOT_INO, b"f", ROOT_INO, b"d", noreplace=True), errno.EEXIST),
        (lambda v: v.rename(ROOT_INO, b"d", v.lookup(ROOT_INO, b"d").ino, b"in"), errno.EINVAL),
        (lambda v: v.getxattr(ROOT_INO, b"user.none"), errno.ENODATA),
        (lambda v: v.write(ROOT_INO, 0, b"x"), errno.EISDIR),
        (lambda v: v.readlink(ROOT_INO), errno.EINVAL),
    ],
)
def test_refusals_carry_the_right_errno(vault: Vault, call, code: int) -> None:  # type: ignore[no-untyped-def]
    vault.create_file(ROOT_INO, b"f", 0o600, 0, 0)
    d = vault.mkdir(ROOT_INO, b"d", 0o700, 0, 0)
    vault.create_file(d.ino, b"child", 0o600, 0, 0)
    with pytest.raises(OSError) as e:
        call(vault)
    assert e.value.errno == code, e.value


def test_find_answers_absence_with_none_and_other_refusals_as_lookup(vault: Vault) -> None:
    f = vault.create_file(ROOT_INO, b"f", 0o600, 0, 0)
    vault.setxattr(f.ino, b"user.tag", b"v")
    found = vault.find_entry(ROOT_INO, b"f")
    assert found is not None and found.ino == f.ino == vault.lookup(ROOT_INO, b"f").ino
    assert vault.find_entry(ROOT_INO, b"missing") is None
    assert vault.find_xattr(f.ino, b"user.tag") == b"v"
    assert vault.find_xattr(f.ino, b"security.capability") is None
    assert vault.find_xattr(ROOT_INO, b"user.tag") is None
    # Only the absence of the name is None: every other refusal still raises.
    with pytest.raises(OSError) as e:
        vault.find_entry(f.ino, b"x")
    assert e.value.errno == errno.ENOTDIR
    with pytest.raises(OSError) as e:
        vault.find_xattr(9999, b"user.tag")
    assert e.value.errno == errno.ENOENT


def test_attr_stat_is_every_field_in_order(vault: Vault) -> None:
    f = vault.create_file(ROOT_INO, b"f", 0o640, 12, 34)
    f = vault.setattr(f.ino, size=3, atime_ns=-5, mtime_ns=2**62, ctime_ns=9)
    fields = (f.ino, f.mode, f.nlink, f.uid, f.gid, f.rdev, f.size, f.blocks)
    assert f.stat == (*fields, -5, 2**62, 9)
    assert f.stat[3:5] == (12, 34) and f.stat[6] == 3


def test_rename_exchange_link_counts_and_unlinked_open_files(vault: Vault) -> None:
    a = vault.create_file(ROOT_INO, b"a", 0o600, 0, 0)
    b = vault.mkdir(ROOT_INO, b"b", 0o700, 0, 0)
    vault.rename(ROOT_INO, b"a", ROOT_INO, b"b", exchange=True)
    assert vault.lookup(ROOT_INO, b"a").ino == b.ino
    vault.link(a.ino, ROOT_INO, b"second")
    assert vault.getattr(a.ino).nlink == 2
    vault.write(a.ino, 0, b"still here")
    vault.open_file(a.ino)
    vault.unlink(ROOT_INO, b"b")
    vault.unlink(ROOT_INO, b"second")
    assert vault.read(a.ino, 0, 100) == b"still here"
    vault.release_file(a.ino)
    with pytest.raises(OSError) as e:
        vault.getattr(a.ino)
    assert e.value.errno == errno.ENOENT


def test_truncate_sparse_and_setattr(vault: Vault) -> None:
    f = vault.create_file(ROOT_INO, b"f", 0o600, 0, 0)
    vault.write(f.ino, 10 * 2**20, b"end")
    a = vault.getattr(f.ino)
    assert a.size == 10 * 2**20 + 3 and a.blocks <= 8
    assert vault.read(f.ino, 5 * 2**20, 4) == b"\0" * 4
    vault.setattr(f.ino, size=2)
    vault.setattr(f.ino, size=100)
    assert vault.read(f.ino, 0, 200) == b"\0" * 100
    vault.setattr(f.ino, mode=0o4755, mtime_ns=1_500_000_000_123_456_789)
    a = vault.getattr(f.ino)
    assert a.mode == 0o104755 and a.mtime_ns == 1_500_000_000_123_456_789


def test_file_times_engine_or_kernel(tmp_path: Path) -> None:
    v = Vault.create(tmp_path / "v", b"pw", **FAST)
    f = v.create_file(ROOT_INO, b"f", 0o600, 0, 0).ino
    assert v.file_times == "engine"
    v.setattr(f, mtime_ns=1_000_000_001, ctime_ns=2_000_000_002)
    v.write(f, 0, b"x")
    a = v.getattr(f)
    assert a.mtime_ns == a.ctime_ns > 1_600_000_000 * 10**9  # stamped now
    v.file_times = "kernel"
    v.setattr(f, mtime_ns=1_000_000_001, ctime_ns=2_000_000_002)
    v.write(f, 0, b"xyz")
    v.setattr(f, size=1)
    v.setattr(f, mode=0o640)
    a = v.getattr(f)
    assert (a.mtime_ns, a.ctime_ns, a.size, a.mode) == (1_000_000_001, 2_000_000_002, 1, 0o100640)
    with pytest.raises(ValueError, match="'engine' or 'kernel'"):
        v.file_times = "user"
    v.close()
    v = Vault.open(tmp_path / "v", b"pw")
    assert v.file_times == "engine"
    a = v.getattr(f)
    assert (a.mtime_ns, a.ctime_ns) == (1_000_000_001, 2_000_000_002)
    v.close()


def test_threads_hammering_the_vault(vault: Vault) -> None:
    inos = [vault.create_file(ROOT_INO, f"t{i}".encode(), 0o600, 0, 0).ino for i in range(8)]
    failures: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            ino = inos[k]
            chunk = bytes([k]) * 70_000
            for round_ in range(20):
                vault.write(ino, round_ * len(chunk), chunk)
                assert vault.read(ino, round_ * len(chunk), len(chunk)) == chunk
                name = f"tmp{k}-{round_}".encode()
                vault.create_file(ROOT_INO, name, 0o600, 0, 0)
                vault.unlink(ROOT_INO, name)
            vault.fsync(ino)
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    for k, ino in enumerate(inos):
        assert vault.read(ino, 0, 20 * 70_000) == bytes([k]) * (20 * 70_000)
    assert len(vault.readdir(ROOT_INO)) == 8


def test_compaction_and_a_damaged_pack_reads_as_eio(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v", b"pw", **FAST) as v:
        f = v.create_file(ROOT_INO, b"f", 0o600, 0, 0)
        v.write(f.ino, 0, b"q" * 100_000)
        report = v.compact_log()
        assert report.snapshot == 1
    packs = sorted((tmp_path / "v" / "packs").iterdir())
    raw = bytearray(packs[0].read_bytes())
    raw[200] ^= 1
    packs[0].write_bytes(raw)
    with Vault.open(tmp_path / "v", b"pw") as v:
        with pytest.raises(OSError) as e:
            v.read(f.ino, 0, 100)
        assert e.value.errno == errno.EIO
        assert "failed authentication" in str(e.value) or "damaged" in str(e.value)


def test_vault_is_importable_from_the_package() -> None:
    assert fusefs.Vault is Vault


def test_compaction_run_once_background_and_telemetry(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v", b"pw", **FAST) as v:
        f = v.create_file(ROOT_INO, b"f", 0o600, 0, 0)
        for round_ in range(40):
            v.write(f.ino, 0, bytes([round_]) * 2**20)
        v.sync()
        t = v.telemetry()
        assert t.dead_bytes > 30 * 2**20 and t.live_bytes >= 2**20
        assert t.compaction_running is False
        report = v.compact()
        assert report.log is not None and report.log.snapshot == 1
        assert v.read(f.ino, 0, 10) == bytes([39]) * 10
        v.start_compaction(tick_ms=10, flush_ms=50)
        assert v.telemetry().compaction_running is True
        v.write(f.ino, 0, b"after")
        assert v.stop_compaction() is None
        assert v.telemetry().compaction_cycles >= 1
    with Vault.open(tmp_path / "v", b"pw") as v:
        assert v.read(f.ino, 0, 5) == b"after"


def test_a_vault_is_open_once_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "v"
    probe = (
        "import sys\n"
        "from fusefs import Vault\n"
        "try:\n"
        "    Vault.open(sys.argv[1], b'pw').close()\n"
        "    print('opened')\n"
        "except OSError as e:\n"
        "    print(e.errno, e.strerror)\n"
    )

    def other_process() -> str:
        out = subprocess.run(
            [sys.executable, "-c", probe, str(path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return out.stdout.strip()

    v = Vault.create(path, b"pw", **FAST)
    # The lock file reveals nothing but the holder's pid.
    assert (path / "fusefs.lock").read_text() == f"{os.getpid()}\n"
    with pytest.raises(OSError) as e:
        Vault.open(path, b"pw")
    assert e.value.errno == errno.EBUSY
    assert f"already open by this process (pid {os.getpid()})" in str(e.value)
    assert "\n" not in str(e.value)
    seen = other_process()
    assert seen.startswith(f"{errno.EBUSY} ")
    assert f"vault {path} is already open by another process (pid {os.getpid()})" in seen
    v.close()
    assert other_process() == "opened"
    # Reopen in this process after close works too, also with the master key.
    with Vault.open(path, b"pw") as v2:
        key = v2.print_master_key()
    with Vault.open_with_master_key(path, key):
        pass


def test_readdir_offsets_are_stable_while_entries_go_and_come(vault: Vault) -> None:
    d = vault.mkdir(ROOT_INO, b"d", 0o755, 0, 0)
    names = [f"n{i:03}".encode() for i in range(300)]
    for n in names:
        vault.create_file(d.ino, n, 0o644, 0, 0)
    vault.mkdir(d.ino, b"sub", 0o700, 0, 0)
    # rm -rf: list a chunk, remove it, continue after the last offset.
    offset, removed = 0, []
    while batch := vault.readdirplus(d.ino, offset, 16):
        for name, attr, next_offset in batch:
            assert attr.ino == vault.lookup(d.ino, name).ino
            assert attr.nlink == vault.getattr(attr.ino).nlink
            (vault.rmdir if attr.mode & 0o040000 else vault.unlink)(d.ino, name)
            removed.append(name)
            offset = next_offset
    assert sorted(removed) == sorted([*names, b"sub"])
    assert vault.readdir(d.ino) == []
    # Removing entries not yet listed skips only those.
    for n in names:
        vault.create_file(d.ino, n, 0o644, 0, 0)
    first = vault.readdir(d.ino, 0, 100)
    for n in names[150:200]:
        vault.unlink(d.ino, n)
    rest = vault.readdir(d.ino, first[-1][3], 1000)
    listed = [e[0] for e in first + rest]
    assert listed == names[:150] + names[200:]


def test_readdirplus_attrs_and_statfs_counts(vault: Vault) -> None:
    d = vault.mkdir(ROOT_INO, b"d", 0o755, 7, 8)
    vault.mkdir(d.ino, b"x", 0o755, 0, 0)
    f = vault.create_file(d.ino, b"f", 0o600, 7, 8)
    vault.write(f.ino, 0, b"a" * 70_000)
    rows = vault.readdirplus(ROOT_INO)
    assert [(r[0], r[1].ino, r[1].nlink) for r in rows] == [(b"d", d.ino, 3)]
    ((name, attr, _),) = rows
    got = vault.getattr(d.ino)
    assert (attr.mode, attr.uid, attr.gid, attr.mtime_ns) == (got.mode, 7, 8, got.mtime_ns)
    plus = vault.readdirplus(d.ino)
    assert [(r[0], r[1].size) for r in plus] == [(b"x", 0), (b"f", 70_000)]
    assert plus[1][1].blocks == vault.getattr(f.ino).blocks
    usage = vault.statfs()
    assert (usage.files, usage.bytes, usage.dirs) == (4, 70_000, 3)


def test_telemetry_counts_io_cache_and_disk(tmp_path: Path) -> None:
    seg = 65536
    with Vault.create(tmp_path / "v", b"pw", cache_bytes=4 * seg, **FAST) as v:
        f = v.create_file(ROOT_INO, b"f", 0o600, 0, 0)
        v.mkdir(ROOT_INO, b"d", 0o755, 0, 0)
        v.write(f.ino, 0, b"a" * (3 * seg))
        assert v.read(f.ino, 10, 5) == b"aaaaa"
        assert v.read(f.ino, 20, 5) == b"aaaaa"
        # A cached segment rewritten reads back new, whole or in part.
        v.write(f.ino, 0, b"b" * seg)
        assert v.read(f.ino, 10, 5) == b"bbbbb"
        v.write(f.ino, 12, b"c")
        assert v.read(f.ino, 10, 5) == b"bbcbb"
        v.setattr(f.ino, size=11)
        v.setattr(f.ino, size=seg)
        assert v.read(f.ino, 8, 5) == b"bbb\0\0"
        v.fsync(f.ino)
        for _ in range(3):  # far more than the cache holds
            for k in range(12):
                v.write(f.ino, k * seg, bytes([k]) * seg)
                v.read(f.ino, k * seg, seg)
        t = v.telemetry()
        assert t.cache_bytes <= t.cache_capacity == 4 * seg
        assert t.cache_hits >= 1 and t.cache_misses >= 1
        assert (t.inodes, t.dirs, t.fsyncs) == (3, 2, 1)
        assert t.writes == 3 + 36 and t.bytes_written == 4 * seg + 1 + 36 * seg
        assert t.reads == 5 + 36 and t.bytes_read == 25 + 36 * seg
        assert t.stored_bytes == 12 * seg
        assert t.pack_bytes > 12 * seg and t.log_bytes > 0 and t.snapshot_bytes == 0
        v.compact_log()
        assert v.telemetry().snapshot_bytes > 0
    with Vault.open(tmp_path / "v", b"pw", cache_bytes=0) as v:
        assert v.read(f.ino, 11 * seg, 3) == b"\x0b" * 3
        t = v.telemetry()
        assert (t.cache_hits, t.cache_misses, t.cache_capacity) == (0, 0, 0)


def test_telemetry_and_statfs_stay_cheap_with_many_inodes(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v", b"pw", **FAST) as v:
        d = v.mkdir(ROOT_INO, b"d", 0o755, 0, 0)
        for i in range(20_000):
            v.create_file(d.ino, b"f%d" % i, 0o600, 0, 0)
        start = time.perf_counter()
        for _ in range(100):
            t = v.telemetry()
            v.statfs()
            v.getattr(d.ino)
        per_call = (time.perf_counter() - start) / 100
        assert t.inodes == 20_002
        assert v.getattr(d.ino).nlink == 2
        assert per_call < 0.005, per_call


def test_kernel_lookups_keep_an_unlinked_file_until_forgotten(vault: Vault) -> None:
    f = vault.create_file(ROOT_INO, b"f", 0o600, 0, 0)
    vault.write(f.ino, 0, b"still here")
    d = vault.mkdir(ROOT_INO, b"d", 0o700, 0, 0)
    vault.remember(f.ino)
    vault.remember(f.ino, d.ino)  # as for readdirplus entries
    assert vault.kernel_lookups(f.ino) == 2
    assert vault.parent(d.ino) == ROOT_INO and vault.parent(ROOT_INO) == ROOT_INO
    vault.unlink(ROOT_INO, b"f")
    vault.forget([(f.ino, 1)])
    assert vault.read(f.ino, 0, 100) == b"still here"
    vault.forget([(f.ino, 1), (d.ino, 1)])
    with pytest.raises(OSError) as e:
        vault.getattr(f.ino)
    assert e.value.errno == errno.ENOENT
    with pytest.raises(OSError) as e:
        vault.remember(f.ino)
    assert e.value.errno == errno.ENOENT
    with pytest.raises(OSError) as e:
        vault.parent(vault.create_file(ROOT_INO, b"g", 0o600, 0, 0).ino)
    assert e.value.errno == errno.ENOTDIR
    assert vault.getattr(d.ino).nlink == 2, "forgotten, but named"
