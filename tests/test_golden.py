"""The golden fixtures of rustlib/core/tests/fixtures, read from Python.

The fixtures are today's on-disk bytes, frozen (made once by the ignored
generators in rustlib/core/tests/golden.rs; never regenerated):

* ``vault-v1/``: a vault (config version 1) whose state comes from a snapshot
  and from log records after it; ``expected.json`` holds the password, the
  printed master key and the whole tree. It is opened (a copy: opening writes
  a new log file) through the binding, with the password and with the master
  key. The reference reader knows streams only, not vaults; it decrypts the
  vault's snapshot, which is a stream (FORMAT.md §9.4) under a key derived
  here from the master key.
* ``streams/``: v1 and v2 streams with their plaintext, decrypted through the
  binding, the ``fusefs`` command line and tools/reference_decrypt.py (its
  API and its command line).
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import io
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fusefs import _native, errors

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "rustlib" / "core" / "tests" / "fixtures"
VAULT = FIXTURES / "vault-v1"
STREAMS = FIXTURES / "streams"
TOOL = ROOT / "tools" / "reference_decrypt.py"

VAULT_EXPECTED: dict[str, Any] = json.loads((VAULT / "expected.json").read_text())
STREAMS_EXPECTED: dict[str, Any] = json.loads((STREAMS / "expected.json").read_text())

KIND_BITS = {
    "file": stat.S_IFREG,
    "dir": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "chardev": stat.S_IFCHR,
    "blockdev": stat.S_IFBLK,
    "fifo": stat.S_IFIFO,
    "socket": stat.S_IFSOCK,
}
KIND_OF_BITS = {bits: kind for kind, bits in KIND_BITS.items()}


def _load_tool() -> ModuleType:
    if "reference_decrypt" in sys.modules:
        return sys.modules["reference_decrypt"]
    spec = importlib.util.spec_from_file_location("reference_decrypt", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["reference_decrypt"] = module
    spec.loader.exec_module(module)
    return module


rd = _load_tool()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_fixture_files_are_unchanged() -> None:
    for directory, expected in ((VAULT, VAULT_EXPECTED), (STREAMS, STREAMS_EXPECTED)):
        found = {
            p.relative_to(directory).as_posix(): {
                "size": p.stat().st_size,
                "sha256": sha256(p.read_bytes()),
            }
            for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != "expected.json"
        }
        assert found == expected["files"], directory


# ---------------------------------------------------------------------------
# The golden vault through the binding
# ---------------------------------------------------------------------------


@pytest.fixture
def vault_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "vault"
    shutil.copytree(VAULT, dst, ignore=shutil.ignore_patterns("expected.json"))
    return dst


def describe(v: _native.Vault) -> list[dict[str, Any]]:
    """The tree as the binding shows it, in the layout of expected.json."""
    segment = VAULT_EXPECTED["segment_size"]
    out: list[dict[str, Any]] = []

    def visit(path: str, ino: int) -> None:
        a = v.getattr(ino)
        assert a.ino == ino
        kind = KIND_OF_BITS[stat.S_IFMT(a.mode)]
        e: dict[str, Any] = {
            "path": path,
            "ino": ino,
            "kind": kind,
            "perm": stat.S_IMODE(a.mode),
            "uid": a.uid,
            "gid": a.gid,
            "rdev": a.rdev,
            "size": a.size,
            "blocks": a.blocks,
            "nlink": a.nlink,
            "atime_ns": a.atime_ns,
            "mtime_ns": a.mtime_ns,
            "ctime_ns": a.ctime_ns,
            "xattrs": {n.decode(): v.getxattr(ino, n).hex() for n in v.listxattr(ino)},
        }
        children: list[tuple[bytes, int]] = []
        if kind == "file":
            data = bytes(v.read(ino, 0, a.size + 1))
            assert len(data) == a.size, path
            e["sha256"] = sha256(data)
            e["_data"] = data
        elif kind == "symlink":
            e["target"] = v.readlink(ino).decode()
        elif kind == "dir":
            rows = v.readdir(ino, 0, 100_000)
            for _name, child, bits, _ in rows:
                assert bits == stat.S_IFMT(v.getattr(child).mode)
            children = sorted((name, child) for name, child, _, _ in rows)
            e["entries"] = [name.decode() for name, _ in children]
        out.append(e)
        for name, child in children:
            visit(f"{path.rstrip('/')}/{name.decode()}", child)

    visit("/", _native.ROOT_INO)
    # Holes: every segment the fixture does not store reads as zeros.
    want = {e["path"]: e for e in VAULT_EXPECTED["tree"]}
    for e in out:
        data = e.pop("_data", None)
        if data is None or e["path"] not in want:
            continue
        stored = want[e["path"]]["stored_segments"]
        for k in range(-(-len(data) // segment)):
            if k not in stored:
                assert data[k * segment : (k + 1) * segment].strip(b"\0") == b"", (e["path"], k)
    return out


def check_tree(v: _native.Vault) -> None:
    want = [{k: x for k, x in e.items() if k != "stored_segments"} for e in VAULT_EXPECTED["tree"]]
    got = describe(v)
    assert [e["path"] for e in got] == [e["path"] for e in want]
    for g, w in zip(got, want, strict=True):
        assert g == w, w["path"]
    # A few facts spelled out, independent of expected.json.
    root = _native.ROOT_INO
    sparse = v.lookup(root, b"sparse.bin")
    assert (sparse.size, sparse.mode) == (3 * 16384 + 5000, stat.S_IFREG | 0o640)
    assert v.read(sparse.ino, 16384, 2 * 16384) == bytes(2 * 16384)
    assert v.lookup(root, b"small.txt").ino == v.lookup(root, b"hard").ino
    assert v.lookup(root, b"hard").nlink == 2
    assert v.readlink(v.lookup(root, b"link").ino) == b"docs/nested.txt"
    nested = v.lookup(v.lookup(root, b"docs").ino, b"nested.txt")
    assert v.getxattr(nested.ino, b"user.note") == b"hello \x00\xff world"
    assert v.lookup(root, b"empty").atime_ns == -1000 * 10**9 + 250
    assert v.lookup(root, b"null").rdev == (1 << 8) | 3
    for gone in (b"draft.txt", b"doomed.txt"):
        with pytest.raises(OSError) as e:
            v.lookup(root, gone)
        assert e.value.errno == errno.ENOENT


def test_vault_info(vault_copy: Path) -> None:
    info = _native.vault_info(vault_copy)
    conf = json.loads((VAULT / "fusefs.conf").read_text())
    assert info == {
        "version": 1,
        "vault_id": VAULT_EXPECTED["vault_id"],
        "created": conf["created"],
        "cipher": "aes-256-gcm",
        "segment_size": 16384,
        "compression_level": None,
        "features": [],
        "kdf": "argon2id",
        "argon2_m_kib": 64,
        "argon2_t": 1,
        "argon2_p": 1,
    }


def test_vault_opens_with_password(vault_copy: Path) -> None:
    password = VAULT_EXPECTED["password"].encode()
    assert password == b"golden password"
    with _native.Vault.open(vault_copy, password) as v:
        assert v.print_master_key() == VAULT_EXPECTED["master_key"]
        check_tree(v)
        assert v.statfs().files == len({e["ino"] for e in VAULT_EXPECTED["tree"]})
    with pytest.raises(errors.WrongKeyError):
        _native.Vault.open(vault_copy, b"golden passwore")


def test_vault_v1_without_copies_gets_them_at_its_first_open(vault_copy: Path) -> None:
    """The upgrade paths of FORMAT.md §10 and §11: a v1 vault made before
    metadata copies existed keeps every byte of its files through an open
    that writes nothing, which writes no copy either; its first read-write
    open upgrades it to format 2 and writes ``mirror/`` with a byte-for-byte
    copy of each metadata file; from then on a lost snapshot comes back from
    its copy."""
    assert not (vault_copy / "mirror").exists()
    before = {
        p.relative_to(vault_copy): p.read_bytes()
        for p in vault_copy.rglob("*")
        if p.is_file() and p.name != "fusefs.lock"
    }
    password = VAULT_EXPECTED["password"].encode()
    with _native.Vault.open(vault_copy, password, read_only=True) as v:
        check_tree(v)
        assert v.bootstrap_report()["upgraded"] is None
    for rel, data in before.items():
        assert (vault_copy / rel).read_bytes() == data, rel  # nothing rewritten
    assert not (vault_copy / "mirror").exists()
    with _native.Vault.open(vault_copy, password) as v:
        check_tree(v)
        assert v.bootstrap_report()["upgraded"] is not None
    assert json.loads((vault_copy / "fusefs.conf").read_text())["version"] == 2
    for p in [vault_copy / "fusefs.conf", *(vault_copy / "snap").glob("*.snap")]:
        rel = p.relative_to(vault_copy)
        assert (vault_copy / "mirror" / rel).read_bytes() == p.read_bytes(), rel
    [snap] = (vault_copy / "snap").glob("*.snap")
    kept = snap.read_bytes()
    snap.unlink()
    with _native.Vault.open(vault_copy, password) as v:
        check_tree(v)
        assert v.bootstrap_report()["snapshots_mended"] == [int(snap.stem, 16)]
    assert snap.read_bytes() == kept


def test_vault_opens_with_master_key(vault_copy: Path) -> None:
    """A vault of format 1 opens with its master key read-only (its upgrade
    re-seals the master key under the password); read-write it is refused
    with one line saying so."""
    key = VAULT_EXPECTED["master_key"]
    with _native.Vault.open_with_master_key(vault_copy, key, read_only=True) as v:
        check_tree(v)
    with pytest.raises(_native.FusefsError, match="open it once with its password"):
        _native.Vault.open_with_master_key(vault_copy, key)


def test_vault_snapshot_through_the_reference_reader() -> None:
    """FORMAT.md §9.4: after a 64-byte prefix, a v2 stream under the raw key
    HKDF-SHA256(master, snapshot id, "fusefs/vault/snapshot"), whose plaintext
    is the prefix again and the encoded state (§9.5)."""
    snap = (VAULT / "snap" / "0000000000000001.snap").read_bytes()
    magic, version, reserved, prefix_len = struct.unpack_from("<8sB3sI", snap, 0)
    assert (magic, version, reserved, prefix_len) == (b"fusefssn", 1, bytes(3), 64)
    assert snap[16:32].hex() == VAULT_EXPECTED["vault_id"]
    number, snapshot_id, covers_seq = struct.unpack_from("<Q16sQ", snap, 32)
    assert (number, covers_seq) == (1, VAULT_EXPECTED["snapshot"]["covers_seq"])
    master = bytes.fromhex(VAULT_EXPECTED["master_key"].replace("-", ""))
    key = rd.hkdf(master, snapshot_id, b"fusefs/vault/snapshot", 32)
    out = io.BytesIO()
    result = rd.decrypt_stream(io.BytesIO(snap[64:]), out, key=key)
    assert (result.version, result.cipher, result.key_source) == (2, 1, 2)
    assert result.segment_size == 1 << 20
    plain = out.getvalue()
    assert plain[:64] == snap[:64]
    segment_size, next_ino, _cycles, _generation, inodes = struct.unpack_from("<IQQQQ", plain, 64)
    assert (segment_size, next_ino, inodes) == (16384, 14, 13)
    first_ino, first_kind = struct.unpack_from("<QB", plain, 64 + 36)
    assert (first_ino, first_kind) == (1, 2)  # the root, a directory


# ---------------------------------------------------------------------------
# The golden streams: binding, CLI, reference reader
# ---------------------------------------------------------------------------

STREAM_LIST: list[dict[str, Any]] = STREAMS_EXPECTED["streams"]
STREAM_IDS = [s["file"] for s in STREAM_LIST]


def plaintext(s: dict[str, Any]) -> bytes:
    data: bytes = (STREAMS / s["plaintext"]).read_bytes()
    assert (len(data), sha256(data)) == (s["plaintext_len"], s["plaintext_sha256"])
    return data


def secret(s: dict[str, Any]) -> dict[str, bytes]:
    if "password" in s:
        return {"password": s["password"].encode()}
    return {"key": (STREAMS / s["keyfile"]).read_bytes()}


def native_key(s: dict[str, Any]) -> _native.Key:
    sec = secret(s)
    if "password" in sec:
        return _native.Key.from_password(sec["password"])
    return _native.Key.from_raw(sec["key"])


def key_args(s: dict[str, Any], tmp_path: Path) -> list[str]:
    if "password" in s:
        passfile = tmp_path / "pass"
        passfile.write_bytes(s["password"].encode() + b"\n")
        return ["--passfile", str(passfile)]
    return ["--keyfile", str(STREAMS / s["keyfile"])]


def test_stream_list() -> None:
    assert STREAM_IDS == [
        "v1-aes256gcm-password.fusefs",
        "v1-chacha20-key.fusefs",
        "v2-aes256gcm-key.fusefs",
        "v2-aes256gcm-zstd-key.fusefs",
        "v2-chacha20-password.fusefs",
        "v2-aes256gcm-empty-key.fusefs",
    ]
    assert (STREAMS / "key.bin").read_bytes() == bytes(0xA0 ^ i for i in range(32))


@pytest.mark.parametrize("s", STREAM_LIST, ids=STREAM_IDS)
def test_stream_through_binding(s: dict[str, Any], tmp_path: Path) -> None:
    src = STREAMS / s["file"]
    dst = tmp_path / "out"
    _native.decrypt_path(src, dst, native_key(s))
    assert dst.read_bytes() == plaintext(s)
    out = io.BytesIO()
    with src.open("rb") as f:
        _native.decrypt_file(f, out, native_key(s))
    assert out.getvalue() == plaintext(s)


def run(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "FUSEFS_DEBUG"}
    return subprocess.run(
        args, capture_output=True, env=env, stdin=subprocess.DEVNULL, timeout=60, check=False
    )


@pytest.mark.parametrize("s", STREAM_LIST, ids=STREAM_IDS)
def test_stream_through_cli(s: dict[str, Any], tmp_path: Path) -> None:
    dst = tmp_path / "out"
    r = run(
        [sys.executable, "-m", "fusefs", "decrypt", *key_args(s, tmp_path)]
        + [str(STREAMS / s["file"]), str(dst)]
    )
    assert (r.returncode, r.stderr.decode()) == (0, "")
    assert dst.read_bytes() == plaintext(s)


@pytest.mark.parametrize("s", STREAM_LIST, ids=STREAM_IDS)
def test_stream_through_reference_reader(s: dict[str, Any], tmp_path: Path) -> None:
    out = io.BytesIO()
    with (STREAMS / s["file"]).open("rb") as f:
        result = rd.decrypt_stream(f, out, **secret(s))
    assert out.getvalue() == plaintext(s)
    cipher = {"aes-256-gcm": 1, "chacha20-poly1305": 2}[s["cipher"]]
    assert (result.version, result.cipher) == (s["version"], cipher)
    assert result.key_source == (1 if "password" in s else 2)
    assert result.segment_size == s["segment_size"] == 4096
    if s["version"] == 2:
        assert result.plaintext_bytes == s["plaintext_len"]
        assert (result.compressed_segments > 0) == s["zstd"]
    # And its command line.
    dst = tmp_path / "out"
    r = run(
        [sys.executable, str(TOOL), *key_args(s, tmp_path)] + [str(STREAMS / s["file"]), str(dst)]
    )
    assert (r.returncode, r.stderr.decode()) == (0, "")
    assert dst.read_bytes() == plaintext(s)
