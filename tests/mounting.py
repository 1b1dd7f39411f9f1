"""Real FUSE mounts for tests: create a vault, mount it through the CLI, and
always clean up (unmount, and kill a daemon that outlived its mount).

Tests that mount are skipped, with the reason, where FUSE cannot work:
no /dev/fuse, no fusermount3, not root (mounts with allow_other and device
nodes need it), or pyfuse3 missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fusefs import control

PASSWORD = "correct horse battery staple"
#: Cheap Argon2id for tests (never for real vaults).
FAST_KDF = ["--kdf-memory", "8K", "--kdf-passes", "1", "--insecure-kdf"]
REPO = Path(__file__).resolve().parent.parent


def fuse_unavailable() -> str | None:
    """Why real mounts cannot run here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (Debian package fuse3)"
    if os.geteuid() != 0:
        return "mount tests run as root"
    try:
        import pyfuse3  # noqa: F401
    except ImportError:
        return "pyfuse3 is not installed"
    return None


requires_fuse = pytest.mark.skipif(fuse_unavailable() is not None, reason=str(fuse_unavailable()))


def fusefs(*args: str | os.PathLike[str], check: bool = False, timeout: float = 60, **kw: object):
    """Run the CLI (``python -m fusefs``) and capture its output."""
    done = subprocess.run(
        [sys.executable, "-m", "fusefs", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        **kw,  # type: ignore[arg-type]
    )
    if check and done.returncode != 0:
        raise AssertionError(f"fusefs {args} failed ({done.returncode}): {done.stderr}")
    return done


def daemon_pid(mnt: Path) -> int | None:
    try:
        return int(os.getxattr(mnt, b"fusefs.pid"))
    except OSError:
        return None


def is_mounted(mnt: Path) -> bool:
    target = os.path.realpath(mnt)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == target for line in f)


class Vault:
    """A vault directory and a mount point in ``root``; mount and unmount via the CLI."""

    def __init__(self, root: Path, name: str = "vault", **init_options: str) -> None:
        self.root = root
        self.dir = root / name
        self.mnt = root / f"{name}.mnt"
        self.passfile = root / f"{name}.pass"
        self.log = root / f"{name}.log"
        self.passfile.write_text(PASSWORD + "\n")
        self.mnt.mkdir()
        self.pids: set[int] = set()
        #: Set by tests that damage the vault: no fsck at cleanup.
        self.expect_damage = False
        options = [x for k, v in init_options.items() for x in (f"--{k.replace('_', '-')}", v)]
        fusefs("init", self.dir, "--passfile", self.passfile, "-q", *FAST_KDF, *options, check=True)

    def mount(self, *extra: str, check: bool = True):
        done = fusefs(
            "mount", self.dir, self.mnt, "--passfile", self.passfile, "--log", self.log, *extra
        )
        if check and done.returncode != 0:
            raise AssertionError(f"mount failed ({done.returncode}): {done.stderr}")
        if done.returncode == 0:
            pid = daemon_pid(self.mnt)
            assert pid is not None, "mounted, but the daemon does not answer"
            self.pids.add(pid)
        return done

    def umount(self, *extra: str, check: bool = True):
        done = fusefs("umount", self.mnt, *extra)
        if check and done.returncode != 0:
            raise AssertionError(f"umount failed ({done.returncode}): {done.stderr}")
        return done

    def remount(self) -> None:
        self.umount()
        self.mount()

    def cleanup(self) -> None:
        """Whatever happened: no mount left, no daemon left; then the vault
        must check clean (unless a test damaged it on purpose and said so
        with ``expect_damage``)."""
        force_cleanup(self.mnt, self.pids)
        if not self.expect_damage:
            assert_fsck_clean(self.dir, self.passfile.read_text().splitlines()[0].encode())


def force_cleanup(mnt: Path, pids: set[int] | None = None) -> None:
    """Unmount ``mnt`` if mounted (lazily if busy), then make sure its daemon
    and every pid in ``pids`` is gone (SIGKILL after 10 s)."""
    pids = set(pids or ())
    if is_mounted(mnt):
        pid = daemon_pid(mnt)
        if pid is not None:
            pids.add(pid)
        subprocess.run(["fusermount3", "-u", "-q", str(mnt)], capture_output=True)
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", "-q", str(mnt)], capture_output=True)
    deadline = time.monotonic() + 10
    for pid in pids:
        if not control.wait_for_exit(pid, max(0.0, deadline - time.monotonic())):
            os.kill(pid, signal.SIGKILL)


def assert_fsck_clean(vault_dir: Path, password: bytes) -> None:
    """The test oracle (as s3ql's tests end with fsck): the vault at
    ``vault_dir`` opens and its checker finds nothing, frames included."""
    from fusefs import _native

    if not (vault_dir / "fusefs.conf").exists():
        return  # init never happened (a test of init's refusals)
    with _native.Vault.open(vault_dir, password, cache_bytes=0) as v:
        report = v.fsck()
    texts = [f["text"] for f in report["findings"]]
    assert texts == [], f"fsck of {vault_dir} after the test: " + "; ".join(texts)


def vault_files(vault_dir: Path, password: bytes) -> dict[str, bytes]:
    """Every regular file in the root directory of the unmounted vault at
    ``vault_dir``, with its contents (read through the engine, not a mount)."""
    from fusefs import _native

    files: dict[str, bytes] = {}
    with _native.Vault.open(vault_dir, password, cache_bytes=0) as v:
        for name, ino, _kind, _next in v.readdir(_native.ROOT_INO, 0, 100_000):
            size = v.getattr(ino).size
            files[name.decode()] = bytes(v.read(ino, 0, size + 1))
    return files
