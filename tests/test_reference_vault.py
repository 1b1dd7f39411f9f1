"""tools/reference_decrypt.py --vault: the independent vault reader, cross-tested
against the engine.

Vaults are written through the binding (``fusefs._native.Vault``) and by the
``fusefs compact`` command, exported by the reader (a subprocess, as a user
would run it), and the export compared with what the engine reads back: names,
kinds, permission bits, owners, atime/mtime, sizes, contents, symlink
targets, xattrs, device numbers and which names are hard links of one inode.
Every run also checks that the vault is byte for byte what it was before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import mixed_data

from fusefs import ROOT_INO, Vault

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "reference_decrypt.py"
GOLDEN = ROOT / "rustlib" / "core" / "tests" / "fixtures" / "vault-v1"
FAST = {"argon2_m_kib": 64, "argon2_t": 1}
PASSWORD = b"reader pw"
S = 16384
AS_ROOT = os.geteuid() == 0

Tree = dict[bytes, dict[str, Any]]


# --- running the reader --------------------------------------------------------------------


def vault_files(vault: Path) -> dict[str, tuple[int, str]]:
    """Every file and directory of the vault: (mode, SHA-256 of the contents)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(vault):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            found[str(path.relative_to(vault))] = (st.st_mode, digest)
    return found


def run_reader(vault: Path, dest: Path, *secret: str) -> subprocess.CompletedProcess[str]:
    """Run the reader; assert it left the vault exactly as it was."""
    before = vault_files(vault) if vault.exists() else None
    r = subprocess.run(
        [sys.executable, str(TOOL), "--vault", str(vault), *secret, str(dest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if before is not None:
        assert vault_files(vault) == before, "the reader changed the vault"
    assert "Traceback" not in r.stderr, r.stderr
    return r


def passfile(tmp_path: Path, password: bytes = PASSWORD) -> list[str]:
    path = tmp_path / "passfile"
    path.write_bytes(password + b"\n")
    return ["--passfile", str(path)]


def one_error(r: subprocess.CompletedProcess[str], code: int, fragment: str = "") -> None:
    assert r.returncode == code, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("reference_decrypt: error: "), r.stderr
    assert fragment in lines[0], lines[0]


# --- the trees to compare ------------------------------------------------------------------


def engine_tree(vault: Path, password: bytes = PASSWORD) -> tuple[Tree, dict[str, Any]]:
    """What the engine reads back, and its bootstrap report (opening writes: call last)."""
    tree: Tree = {}
    with Vault.open(vault, password) as v:
        stack = [(b"/", v.getattr(ROOT_INO))]
        while stack:
            path, a = stack.pop()
            kind = stat.S_IFMT(a.mode)
            item: dict[str, Any] = {
                "kind": kind,
                "perm": stat.S_IMODE(a.mode),
                "owner": (a.uid, a.gid),
                "times": (a.atime_ns, a.mtime_ns),
                "xattrs": {n: v.getxattr(a.ino, n) for n in v.listxattr(a.ino)},
                "ino": a.ino,
            }
            if kind == stat.S_IFREG:
                item["data"] = bytes(v.read(a.ino, 0, a.size + 1))
            elif kind == stat.S_IFLNK:
                item["data"] = v.readlink(a.ino)
            elif kind in (stat.S_IFCHR, stat.S_IFBLK):
                item["data"] = a.rdev
            elif kind == stat.S_IFDIR:
                for name, attr, _ in v.readdirplus(a.ino, 0, 100_000):
                    stack.append((os.path.join(path, name), attr))
            tree[path] = item
        report = v.bootstrap_report()
    return tree, report


def dest_tree(dest: Path) -> Tree:
    """The export as the system sees it (every stat taken before anything is read,
    so that reading cannot move an atime)."""
    top = os.fsencode(dest)
    stats = {}
    stack = [b"/"]
    while stack:
        path = stack.pop()
        full = top + path if path != b"/" else top
        st = os.lstat(full)
        stats[path] = (full, st)
        if stat.S_ISDIR(st.st_mode):
            stack.extend(os.path.join(path, n) for n in os.listdir(full))
    tree: Tree = {}
    for path, (full, st) in stats.items():
        kind = stat.S_IFMT(st.st_mode)
        item: dict[str, Any] = {
            "kind": kind,
            "perm": stat.S_IMODE(st.st_mode),
            "owner": (st.st_uid, st.st_gid),
            "times": (st.st_atime_ns, st.st_mtime_ns),
            "xattrs": {}
            if kind == stat.S_IFLNK
            else {n.encode(): os.getxattr(full, n) for n in os.listxattr(full)},
            "ino": st.st_ino,
        }
        if kind == stat.S_IFREG:
            item["data"] = Path(os.fsdecode(full)).read_bytes()
        elif kind == stat.S_IFLNK:
            item["data"] = os.readlink(full)
        elif kind in (stat.S_IFCHR, stat.S_IFBLK):
            item["data"] = st.st_rdev
        tree[path] = item
    return tree


def link_groups(tree: Tree) -> set[frozenset[bytes]]:
    groups: dict[int, set[bytes]] = {}
    for path, item in tree.items():
        groups.setdefault(item["ino"], set()).add(path)
    return {frozenset(g) for g in groups.values()}


def assert_same_tree(exported: Tree, engine: Tree) -> None:
    assert link_groups(exported) == link_groups(engine)
    strip = ("ino",) if AS_ROOT else ("ino", "owner")
    for tree in (exported, engine):
        for item in tree.values():
            for key in strip:
                item.pop(key, None)
    assert sorted(exported) == sorted(engine)
    for path in engine:
        assert exported[path] == engine[path], path


def export_and_compare(tmp_path: Path, vault: Path, *secret: str) -> dict[str, Any]:
    dest = tmp_path / "export"
    r = run_reader(vault, dest, *(secret or passfile(tmp_path)))
    assert r.returncode == 0, r.stderr
    exported = dest_tree(dest)
    engine, report = engine_tree(vault)
    assert_same_tree(exported, engine)
    return report


# --- building vaults with the engine -------------------------------------------------------


def populate(v: Vault, seed: int) -> None:
    """Every kind of thing the reader exports, some of it changed after the fact."""
    root = ROOT_INO
    d = v.mkdir(root, b"dir %d" % seed, 0o750, 1000, 1000).ino
    big = v.create_file(d, b"big.bin", 0o644, 1000, 100).ino
    v.write(big, 0, mixed_data(9 * S + 123, seed))  # ten segments, the last partial
    v.write(big, 3 * S + 5, b"overwritten in the middle")
    sparse = v.create_file(root, b"sparse-%d" % seed, 0o600, 0, 0).ino
    v.write(sparse, 40 * S + 7, b"after a hole")
    v.write(sparse, 2, b"head")
    cut = v.create_file(d, b"caf\xe9-\xff", 0o640, 0, 0).ino  # not UTF-8
    v.write(cut, 0, mixed_data(5 * S, seed + 1))
    v.setattr(cut, size=S + 100)  # shrink into segment 1 ...
    v.setattr(cut, size=3 * S)  # ... and grow again: zeros after byte S + 100
    v.setxattr(cut, b"user.note", b"\x00binary\xff")
    v.setxattr(d, b"user.dir", b"yes")
    v.setxattr(cut, b"user.gone", b"x")
    v.removexattr(cut, b"user.gone")
    v.link(cut, root, b"hardlink-%d" % seed)
    v.symlink(d, b"link", b"../sparse-%d" % seed, 1000, 1000)
    v.symlink(root, b"dangling-%d" % seed, b"\xfe/nowhere", 0, 0)
    suid = v.create_file(root, b"suid-%d" % seed, 0o755, 0, 0).ino
    v.write(suid, 0, b"#!/bin/sh\n")
    v.setattr(suid, mode=0o4755)
    sticky = v.mkdir(root, b"sticky-%d" % seed, 0o1777, 0, 0).ino
    v.mknod(sticky, b"fifo", stat.S_IFIFO | 0o644, 0, 0)
    v.mknod(sticky, b"null", stat.S_IFCHR | 0o666, 0, 0, os.makedev(1, 3))
    ro = v.mkdir(d, b"read-only", 0o755, 0, 0).ino
    inner = v.create_file(ro, b"inner", 0o400, 0, 0).ino
    v.write(inner, 0, b"inside a read-only directory")
    v.setattr(ro, mode=0o555)
    tmp = v.create_file(root, b"renamed-away-%d" % seed, 0o600, 0, 0).ino
    v.rename(root, b"renamed-away-%d" % seed, d, b"renamed")
    v.write(tmp, 0, b"moved")
    gone = v.mkdir(root, b"gone-%d" % seed, 0o700, 0, 0).ino
    v.create_file(gone, b"x", 0o600, 0, 0)
    v.unlink(gone, b"x")
    v.rmdir(root, b"gone-%d" % seed)
    v.create_file(root, b"empty-%d" % seed, 0o600, 0, 0)
    for ino in (big, suid, ro, d):
        v.setattr(ino, atime_ns=1_600_000_000_000_000_000 + seed, mtime_ns=-5_000_000_001)
    v.setattr(root, atime_ns=1_700_000_000_123_456_789, mtime_ns=1_700_000_001_000_000_001)


@pytest.mark.parametrize(
    ("cipher", "level"),
    [("aes-256-gcm", None), ("chacha20-poly1305", 3)],
    ids=["aes", "chacha-zstd"],
)
def test_export_equals_what_the_engine_reads(
    tmp_path: Path, cipher: str, level: int | None
) -> None:
    vault = tmp_path / "v"
    with Vault.create(vault, PASSWORD, cipher=cipher, segment_size=S, compression_level=level,
                      **FAST) as v:  # fmt: skip
        populate(v, 1)
    export_and_compare(tmp_path, vault)


def test_many_sessions_and_the_raw_master_key(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    with Vault.create(vault, PASSWORD, segment_size=S, **FAST) as v:
        key = v.print_master_key()
        populate(v, 0)
    for seed in range(1, 5):
        with Vault.open(vault, PASSWORD) as v:
            populate(v, seed)
            f = v.lookup(v.lookup(ROOT_INO, b"dir 0").ino, b"big.bin").ino
            v.write(f, seed * S, b"session %d" % seed)
    assert len(list((vault / "log").iterdir())) >= 5
    keyfile = tmp_path / "master.key"
    keyfile.write_bytes(bytes.fromhex(key.replace("-", "")))
    export_and_compare(tmp_path, vault, "--keyfile", str(keyfile))


def test_after_fusefs_compact_snapshot_and_moved_frames(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    with Vault.create(vault, PASSWORD, segment_size=S, **FAST) as v:
        key = v.print_master_key()
        populate(v, 1)
        f = v.create_file(ROOT_INO, b"churn", 0o600, 0, 0).ino
        for _ in range(4):
            v.write(f, 0, os.urandom(4 * S))  # dead frames for pack compaction
    r = subprocess.run(
        [sys.executable, "-m", "fusefs", "compact", str(vault), *passfile(tmp_path),
         "--dead-ratio", "0", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["log"]["snapshot"] >= 1 and report["packs"]["bytes_copied"] > 0, report
    with Vault.open(vault, PASSWORD) as v:  # records after the snapshot
        populate(v, 2)
        v.unlink(ROOT_INO, b"churn")
    printed = tmp_path / "printed"
    printed.write_text(f"  {key.upper()[:30]}\n{key.upper()[30:]}  \n")  # §6.4: any case, spaces
    export_and_compare(tmp_path, vault, "--masterkey-file", str(printed))


ORPHAN_MAKER = """
import os, sys
from fusefs import ROOT_INO, Vault
v = Vault.create(sys.argv[1], b"reader pw", segment_size=16384, argon2_m_kib=64, argon2_t=1)
v.write(v.create_file(ROOT_INO, b"kept", 0o600, 0, 0).ino, 0, b"kept")
orphan = v.create_file(ROOT_INO, b"orphan", 0o600, 0, 0).ino
v.write(orphan, 0, b"unlinked while open")
v.open_file(orphan)
v.unlink(ROOT_INO, b"orphan")
v.sync()
os._exit(0)  # dies holding it open: the log keeps an inode with no links
"""


def test_orphans_are_not_exported(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    r = subprocess.run([sys.executable, "-c", ORPHAN_MAKER, str(vault)], cwd=ROOT, timeout=60)
    assert r.returncode == 0
    report = export_and_compare(tmp_path, vault)
    assert report["orphans_reclaimed"]  # the vault really held an orphan
    assert sorted(os.listdir(tmp_path / "export")) == ["kept"]


def test_a_torn_tail_of_the_last_log_file_is_ignored(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    with Vault.create(vault, PASSWORD, segment_size=S, **FAST) as v:
        populate(v, 1)
    newest = max((vault / "log").iterdir())
    with newest.open("ab") as f:
        f.write(b"\x40\x00\x00\x00" + os.urandom(30))  # a record header, cut short
    report = export_and_compare(tmp_path, vault)
    assert report["torn_bytes_cut"] == 34


def test_an_existing_empty_dest_is_replaced(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    with Vault.create(vault, PASSWORD, segment_size=S, **FAST) as v:
        v.write(v.create_file(ROOT_INO, b"f", 0o600, 0, 0).ino, 0, b"data")
    (tmp_path / "export").mkdir()
    export_and_compare(tmp_path, vault)


def test_a_damaged_config_is_read_from_its_copy(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    with Vault.create(vault, PASSWORD, segment_size=S, **FAST) as v:
        v.write(v.create_file(ROOT_INO, b"f", 0o600, 0, 0).ino, 0, b"data")
    conf = (vault / "fusefs.conf").read_text()
    mac = json.loads(conf)["config_mac"]
    (vault / "fusefs.conf").write_text(conf.replace(mac, mac[::-1]))
    r = run_reader(vault, tmp_path / "out", *passfile(tmp_path))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "f").read_bytes() == b"data"
    shutil.rmtree(vault / "mirror")
    one_error(run_reader(vault, tmp_path / "out2", *passfile(tmp_path)), 3, "config_mac")
    assert not (tmp_path / "out2").exists()


# --- the golden vault ----------------------------------------------------------------------

GOLDEN_KINDS = {
    "file": stat.S_IFREG,
    "dir": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "chardev": stat.S_IFCHR,
    "fifo": stat.S_IFIFO,
}


@pytest.fixture(params=["vault-v1", "vault-v2", "vault-v2-large-records"])
def golden(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, dict[str, Any]]:
    """A copy of a frozen vault of format 1 or 2 (the fixture itself is never opened);
    vault-v2-large-records holds records padded to 4608 and 8704 bytes (FORMAT.md §7.2)."""
    fixture = GOLDEN.parent / request.param
    vault = tmp_path / "golden"
    shutil.copytree(fixture, vault)
    (vault / "expected.json").unlink()
    return vault, json.loads((fixture / "expected.json").read_text())


@pytest.mark.parametrize("secret", ["password", "master_key"])
def test_the_golden_vault_exports_as_expected(
    tmp_path: Path, golden: tuple[Path, dict[str, Any]], secret: str
) -> None:
    vault, expected = golden
    if secret == "password":
        args = passfile(tmp_path, expected["password"].encode())
    else:
        (tmp_path / "printed").write_text(expected["master_key"] + "\n")
        args = ["--masterkey-file", str(tmp_path / "printed")]
    r = run_reader(vault, tmp_path / "export", *args)
    assert r.returncode == 0 and not r.stderr, r.stderr
    exported = dest_tree(tmp_path / "export")
    want: Tree = {}
    for e in expected["tree"]:
        item: dict[str, Any] = {
            "kind": GOLDEN_KINDS[e["kind"]],
            "perm": e["perm"],
            "owner": (e["uid"], e["gid"]),
            "times": (e["atime_ns"], e["mtime_ns"]),
            "xattrs": {k.encode(): bytes.fromhex(v) for k, v in e["xattrs"].items()},
            "ino": e["ino"],
        }
        if e["kind"] == "symlink":
            item["data"] = e["target"].encode()
            item["perm"] = 0o777  # the system's, not stored
        elif e["kind"] == "chardev":
            item["data"] = e["rdev"]
        want[e["path"].encode()] = item
    for path, item in exported.items():
        if item["kind"] == stat.S_IFREG:
            e = next(e for e in expected["tree"] if e["path"].encode() == path)
            assert hashlib.sha256(item.pop("data")).hexdigest() == e["sha256"], path
    assert_same_tree(exported, want)


# --- bad input -----------------------------------------------------------------------------


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def test_wrong_password_and_master_key_exit_1(
    tmp_path: Path, golden: tuple[Path, dict[str, Any]]
) -> None:
    vault, _ = golden
    one_error(run_reader(vault, tmp_path / "out", *passfile(tmp_path, b"nope")), 1, "password")
    (tmp_path / "printed").write_text("00000000-" * 7 + "00000000")
    r = run_reader(vault, tmp_path / "out", "--masterkey-file", str(tmp_path / "printed"))
    one_error(r, 1, "wrong master key")
    assert not (tmp_path / "out").exists()


def test_usage_errors_exit_2(tmp_path: Path, golden: tuple[Path, dict[str, Any]]) -> None:
    vault, expected = golden
    secret = passfile(tmp_path, expected["password"].encode())
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_bytes(b"")
    one_error(run_reader(vault, full, *secret), 2, "not empty")
    assert os.listdir(full) == ["x"]
    (tmp_path / "file").write_bytes(b"")
    one_error(run_reader(vault, tmp_path / "file", *secret), 2, "not a directory")
    one_error(run_reader(tmp_path / "missing", tmp_path / "out", *secret), 2, "no vault")
    one_error(run_reader(tmp_path, tmp_path / "out", *secret), 2, "no fusefs.conf")
    (tmp_path / "short").write_text("0123-4567")
    r = run_reader(vault, tmp_path / "out", "--masterkey-file", str(tmp_path / "short"))
    one_error(r, 2, "64 hex digits")
    assert not (tmp_path / "out").exists()


def damaged_vault(tmp_path: Path) -> Path:
    """A vault with a snapshot and, after it, three log files of records."""
    vault = tmp_path / "v"
    with Vault.create(vault, PASSWORD, segment_size=S, **FAST) as v:
        populate(v, 1)
        v.compact_log()
    for seed in (2, 3):
        with Vault.open(vault, PASSWORD) as v:
            populate(v, seed)
    return vault


def test_damage_exits_3_with_one_line_and_no_dest(tmp_path: Path) -> None:
    vault = damaged_vault(tmp_path)
    pristine = tmp_path / "pristine"
    shutil.copytree(vault, pristine)
    logs = sorted((vault / "log").iterdir())
    snap = next((vault / "snap").iterdir())
    pack = sorted((vault / "packs").iterdir())[-1]
    cases = [
        (pack, pack.stat().st_size - 20, "failed authentication"),  # a live frame's tag
        (logs[-2], logs[-2].stat().st_size // 2, "damaged record"),  # not the last file
        (logs[-2], 86, "damaged record"),  # the first record's header (its check fails)
        (logs[-2], 70, "chain mismatch"),  # the header's chain in (v2)
        (logs[-3], 70, "chain mismatch"),  # the same, right after the snapshot
        (logs[-1], 86, "followed by more data"),  # the last file, records after it
        (logs[-2], 20, "belongs to another vault"),  # the header's vault id
        (logs[-2], 45, "failed authentication"),  # its file id: the key, so every record
    ]
    for path, offset, message in cases:
        flip(path, offset)
        dest = tmp_path / "out"
        one_error(run_reader(vault, dest, *passfile(tmp_path)), 3, message)
        assert not dest.exists() and not [p for p in tmp_path.iterdir() if ".export" in p.name]
        shutil.copy2(pristine / path.relative_to(vault), path)
    # A damaged snapshot is read from its copy; damaged in both, the log does not
    # reach back far enough to rebuild the state without it.
    flip(snap, snap.stat().st_size - 5)
    r = run_reader(vault, tmp_path / "ok", *passfile(tmp_path))
    assert r.returncode == 0 and not r.stderr, r.stderr
    flip(vault / "mirror" / "snap" / snap.name, 100)
    r = run_reader(vault, tmp_path / "out", *passfile(tmp_path))
    assert r.returncode == 3, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith("reference_decrypt: warning: skipping snapshot")
    one_error(subprocess.CompletedProcess([], 3, "", lines[-1]), 3, "a snapshot is missing")
    assert not (tmp_path / "out").exists()


def test_the_tools_stay_small() -> None:
    """One concept per module: the test_structure.py limit, applied to tools/ too."""
    for path in [*(ROOT / "tools").glob("*.py"), *(ROOT / "tools" / "refreader").glob("*.py")]:
        assert len(path.read_text().splitlines()) <= 600, path


AS_NOBODY = """
import importlib.util, os, sys
import gettext, locale, zstandard  # noqa: F401, E401  (imported before the privileges go)
spec = importlib.util.spec_from_file_location("reference_decrypt", sys.argv[1])
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)
import refreader.export, refreader.packs, refreader.vault  # noqa: F401, E401
os.chdir(sys.argv[2])  # relative paths from here: the user cannot walk /tmp/pytest-of-root
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
sys.exit(tool.main(["--vault", "v", "--passfile", "pw", "out"]))
"""


@pytest.mark.skipif(not AS_ROOT, reason="needs root to become another user")
def test_as_a_user_devices_and_sockets_are_left_out_with_a_warning(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir(mode=0o777)
    work.chmod(0o777)
    with Vault.create(work / "v", PASSWORD, segment_size=S, **FAST) as v:
        v.write(v.create_file(ROOT_INO, b"file", 0o640, 0, 0).ino, 0, b"data")
        v.mknod(ROOT_INO, b"null", stat.S_IFCHR | 0o666, 0, 0, os.makedev(1, 3))
        v.mknod(ROOT_INO, b"socket", stat.S_IFSOCK | 0o600, 0, 0)
        v.mknod(ROOT_INO, b"fifo", stat.S_IFIFO | 0o600, 0, 0)
    (work / "pw").write_bytes(PASSWORD + b"\n")
    (work / "pw").chmod(0o644)
    before = vault_files(work / "v")
    r = subprocess.run(
        [sys.executable, "-c", AS_NOBODY, str(TOOL), str(work)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert vault_files(work / "v") == before
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        "reference_decrypt: warning: device /null left out: mknod is not permitted (run as root)",
        "reference_decrypt: warning: socket /socket left out (sockets are not exported)",
    ]
    assert sorted(os.listdir(work / "out")) == ["fifo", "file"]
    st = (work / "out" / "file").stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (65534, 0o640)
    assert (work / "out" / "file").read_bytes() == b"data"
