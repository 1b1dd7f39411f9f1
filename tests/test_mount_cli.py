"""The vault commands: init, mount, umount, info, passwd, stats; their messages
and exit codes, and the mount's life cycle (signals, --idle, read-only, locks)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from mounting import FAST_KDF, PASSWORD, Vault, daemon_pid, force_cleanup, fusefs, is_mounted

EXIT_USAGE, EXIT_WRONG_KEY, EXIT_INTEGRITY, EXIT_IO, EXIT_MOUNT = 2, 3, 4, 5, 7


def one_line_error(done) -> str:  # type: ignore[no-untyped-def]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("fusefs: error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


# --- init / info -------------------------------------------------------------------


def test_init_prints_master_key_and_info_needs_no_password(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    done = fusefs(
        "init", tmp_path / "v", "--passfile", pw, *FAST_KDF, "--segment-size", "128K",
        "--print-masterkey",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    key_lines = [line.strip() for line in done.stdout.splitlines() if line.count("-") == 7]
    assert len(key_lines) == 1 and len(key_lines[0]) == 71
    info = fusefs("info", tmp_path / "v", "--json")
    assert info.returncode == 0
    data = json.loads(info.stdout)
    assert data["cipher"] == "aes-256-gcm" and data["segment_size"] == 128 * 1024
    assert data["compression_level"] is None
    text = fusefs("info", tmp_path / "v").stdout
    assert "128 KiB" in text and "aes-256-gcm" in text


def test_init_options_and_refusals(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    done = fusefs(
        "init", tmp_path / "c", "--passfile", pw, *FAST_KDF, "-q",
        "--cipher", "chacha20-poly1305", "--compress", "zstd:5",
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == ""
    data = json.loads(fusefs("info", tmp_path / "c", "--json").stdout)
    assert data["cipher"] == "chacha20-poly1305" and data["compression_level"] == 5

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").touch()
    done = fusefs("init", tmp_path / "full", "--passfile", pw, *FAST_KDF)
    assert done.returncode == EXIT_IO and "not empty" in one_line_error(done)
    done = fusefs("init", tmp_path / "v", "--passfile", pw, "--segment-size", "3K")
    assert done.returncode == EXIT_USAGE and "segment-size" in one_line_error(done)
    done = fusefs("init", tmp_path / "v", "--passfile", pw, "--compress", "gzip")
    assert done.returncode == EXIT_USAGE
    done = fusefs("init", tmp_path / "v")  # stdin is not a terminal, no password source
    assert done.returncode == EXIT_USAGE and "--passfile" in one_line_error(done)
    done = fusefs("init", tmp_path / "no" / "such" / "parent", "--passfile", pw)
    assert done.returncode == EXIT_IO and "does not exist" in one_line_error(done)
    assert not (tmp_path / "v").exists()


def test_info_refuses_what_is_not_a_vault(tmp_path: Path) -> None:
    done = fusefs("info", tmp_path / "missing")
    assert done.returncode == EXIT_IO and "does not exist" in one_line_error(done)
    (tmp_path / "empty").mkdir()
    done = fusefs("info", tmp_path / "empty")
    assert done.returncode == EXIT_IO and "not a fusefs vault" in one_line_error(done)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "fusefs.conf").write_text('{"version": 1, "trunc')
    done = fusefs("info", tmp_path / "bad")
    assert done.returncode in (EXIT_INTEGRITY, EXIT_IO)
    one_line_error(done)


# --- mount refusals ------------------------------------------------------------------


def test_mount_refusals(vault_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    args = ["--passfile", v.passfile]
    done = fusefs("mount", v.dir, tmp_path / "missing", *args)
    assert done.returncode == EXIT_MOUNT and "does not exist" in one_line_error(done)
    (tmp_path / "nonempty").mkdir()
    (tmp_path / "nonempty" / "f").touch()
    done = fusefs("mount", v.dir, tmp_path / "nonempty", *args)
    assert done.returncode == EXIT_MOUNT and "not empty" in one_line_error(done)
    (tmp_path / "file").touch()
    done = fusefs("mount", v.dir, tmp_path / "file", *args)
    assert done.returncode == EXIT_MOUNT and "not a directory" in one_line_error(done)
    done = fusefs("mount", tmp_path / "nonempty", v.mnt, *args)
    assert done.returncode == EXIT_IO and "not a fusefs vault" in one_line_error(done)
    done = fusefs("mount", v.dir, v.dir / "inside", *args)
    assert done.returncode != 0
    one_line_error(done)

    bad = tmp_path / "badpw"
    bad.write_text("wrong password")
    done = fusefs("mount", v.dir, v.mnt, "--passfile", bad)
    assert done.returncode == EXIT_WRONG_KEY and "wrong password" in one_line_error(done)
    assert not is_mounted(v.mnt)

    v.mount()
    done = fusefs("mount", v.dir, v.mnt, *args)
    assert done.returncode == EXIT_MOUNT and "already a mount point" in one_line_error(done)
    (tmp_path / "elsewhere").mkdir()
    done = fusefs("mount", v.dir, tmp_path / "elsewhere", *args)
    assert done.returncode == EXIT_MOUNT and "in use" in one_line_error(done)
    assert not is_mounted(tmp_path / "elsewhere")
    v.umount()
    assert not is_mounted(v.mnt)


def test_umount_refusals(vault_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    done = fusefs("umount", v.mnt)
    assert done.returncode == EXIT_MOUNT and "not mounted" in one_line_error(done)
    done = fusefs("umount", tmp_path / "missing")
    assert done.returncode == EXIT_MOUNT and "does not exist" in one_line_error(done)
    v.mount()
    fd = os.open(v.mnt / "busy", os.O_CREAT | os.O_WRONLY)
    try:
        done = fusefs("umount", v.mnt)
        assert done.returncode == EXIT_MOUNT and "busy" in one_line_error(done)
        assert is_mounted(v.mnt)
    finally:
        os.close(fd)
    v.umount()
    done = fusefs("stats", v.mnt)
    assert done.returncode == EXIT_MOUNT and "not mounted" in one_line_error(done)


def test_dead_mount_is_refused_then_cleaned_by_umount(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    v.mount()
    (v.mnt / "f").write_text("synced")
    fd = os.open(v.mnt / "f", os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    pid = daemon_pid(v.mnt)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    done = fusefs("stats", v.mnt)
    assert done.returncode == EXIT_MOUNT and "dead mount" in one_line_error(done)
    done = fusefs("mount", v.dir, v.mnt, "--passfile", v.passfile)
    assert done.returncode == EXIT_MOUNT and "dead mount" in one_line_error(done)
    done = fusefs("umount", v.mnt)
    assert done.returncode == 0 and "dead mount" in done.stderr
    assert not is_mounted(v.mnt)
    v.mount()  # the vault lock died with the daemon
    assert (v.mnt / "f").read_text() == "synced"


# --- life cycle ---------------------------------------------------------------------


def test_umount_flushes_unsynced_writes(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    v.mount()
    data = os.urandom(3 << 20)
    (v.mnt / "f").write_bytes(data)  # no fsync: still in the kernel's writeback cache
    v.umount()
    v.mount()
    assert (v.mnt / "f").read_bytes() == data


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_the_daemon_unmounts_cleanly(vault_factory, signum: int) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    v.mount()
    (v.mnt / "f").write_bytes(b"kept" * 10000)
    pid = daemon_pid(v.mnt)
    assert pid is not None
    os.kill(pid, signum)
    deadline = time.monotonic() + 10
    while is_mounted(v.mnt) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not is_mounted(v.mnt)
    v.mount()
    assert (v.mnt / "f").read_bytes() == b"kept" * 10000


def test_idle_unmount(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    v.mount("--idle", "1s")
    (v.mnt / "f").write_text("x")
    deadline = time.monotonic() + 10
    while is_mounted(v.mnt) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not is_mounted(v.mnt)
    v.mount()
    assert (v.mnt / "f").read_text() == "x"


def test_read_only_mount(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    v.mount()
    (v.mnt / "f").write_text("x")
    v.umount()
    v.mount("--read-only")
    assert (v.mnt / "f").read_text() == "x"
    with pytest.raises(OSError) as e:
        (v.mnt / "g").write_text("y")
    assert e.value.errno == 30  # EROFS
    done = v.umount("--compact")
    assert "read-only" in done.stderr


def test_foreground_mount_and_ctrl_c(vault_factory) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    v: Vault = vault_factory()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fusefs", "mount", "-f", v.dir, v.mnt, "--passfile", v.passfile],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    v.pids.add(proc.pid)
    try:
        deadline = time.monotonic() + 10
        while not is_mounted(v.mnt) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert is_mounted(v.mnt)
        (v.mnt / "f").write_text("fg")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert not is_mounted(v.mnt)
    finally:
        if proc.poll() is None:
            proc.kill()
    v.mount()
    assert (v.mnt / "f").read_text() == "fg"


def test_umount_compact_and_stats(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    v.mount()
    for i in range(20):
        (v.mnt / f"f{i}").write_bytes(os.urandom(100_000))
    for i in range(15):
        os.unlink(v.mnt / f"f{i}")
    done = fusefs("stats", v.mnt, "--json")
    assert done.returncode == 0, done.stderr
    s = json.loads(done.stdout)
    assert s["pid"] == daemon_pid(v.mnt) and s["engine"]["inodes"] >= 6
    assert s["fuse_ops"]["create"] == 20 and s["fuse_ops"]["unlink"] == 15
    text = fusefs("stats", v.mnt).stdout
    assert "requests:" in text and "segment cache:   hit rate" in text
    assert "compaction:      idle" in text and "no cycle yet" in text
    done = v.umount("--compact")
    assert done.stdout.startswith(f"Unmounted {v.mnt} ({v.dir}); compacted: "), done.stdout
    assert "pack file" in done.stdout and "folded the metadata log" in done.stdout
    assert done.stdout.count("\n") == 1
    v.mount()
    assert sorted(os.listdir(v.mnt)) == sorted(f"f{i}" for i in range(15, 20))


def test_passwd_masterkey_and_extpass(vault_factory, tmp_path: Path, request) -> None:  # type: ignore[no-untyped-def]
    request.addfinalizer(lambda: force_cleanup(tmp_path / "m"))
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    done = fusefs("init", tmp_path / "v", "--passfile", pw, *FAST_KDF, "--print-masterkey")
    master = next(line.strip() for line in done.stdout.splitlines() if line.count("-") == 7)
    (tmp_path / "m").mkdir()
    new = tmp_path / "new"
    new.write_text("new password\n")
    done = fusefs("passwd", tmp_path / "v", "--passfile", pw, "--new-passfile", new, *FAST_KDF)
    assert done.returncode == 0, done.stderr
    done = fusefs("mount", tmp_path / "v", tmp_path / "m", "--passfile", pw)
    assert done.returncode == EXIT_WRONG_KEY
    done = fusefs("passwd", tmp_path / "v", "--passfile", pw, "--new-passfile", new)
    assert done.returncode == EXIT_WRONG_KEY and "wrong password" in one_line_error(done)

    helper = tmp_path / "askpass.sh"
    helper.write_text("#!/bin/sh\necho 'new password'\n")
    helper.chmod(0o755)
    done = fusefs("mount", tmp_path / "v", tmp_path / "m", "--extpass", str(helper))
    assert done.returncode == 0, done.stderr
    try:
        (tmp_path / "m" / "f").write_text("via extpass")
    finally:
        assert fusefs("umount", tmp_path / "m").returncode == 0

    keyfile = tmp_path / "master"
    keyfile.write_text(master + "\n")
    done = fusefs("mount", tmp_path / "v", tmp_path / "m", "--masterkey", "--passfile", keyfile)
    assert done.returncode == 0, done.stderr
    try:
        assert (tmp_path / "m" / "f").read_text() == "via extpass"
    finally:
        assert fusefs("umount", tmp_path / "m").returncode == 0
    # A forgotten password: reset it with the master key.
    done = fusefs(
        "passwd", tmp_path / "v", "--masterkey", "--passfile", keyfile, "--new-passfile", pw,
        *FAST_KDF,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = fusefs("mount", tmp_path / "v", tmp_path / "m", "--passfile", pw)
    assert done.returncode == 0
    assert fusefs("umount", tmp_path / "m").returncode == 0

    done = fusefs("mount", tmp_path / "v", tmp_path / "m", "--extpass", "false")
    assert done.returncode == EXIT_USAGE and "exit status 1" in one_line_error(done)
    done = fusefs("mount", tmp_path / "v", tmp_path / "m", "--extpass", "no-such-cmd-xyz")
    assert done.returncode == EXIT_USAGE and "not found" in one_line_error(done)
    assert not is_mounted(tmp_path / "m")


def test_init_gives_the_root_directory_to_whoever_ran_it(tmp_path: Path) -> None:
    """uid, gid, 0777 less the umask, times now: not root:root 0755 of 1970."""
    import subprocess

    from fusefs import _native

    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    before = time.time_ns()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fusefs",
            "init",
            str(tmp_path / "v"),
            "--passfile",
            str(pw),
            *FAST_KDF,
            "-q",
        ],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        preexec_fn=lambda: os.umask(0o027),
        timeout=60,
        check=False,
    )
    after = time.time_ns()
    assert (done.returncode, done.stderr.decode()) == (0, "")
    with _native.Vault.open(str(tmp_path / "v"), PASSWORD.encode()) as v:
        root = v.getattr(_native.ROOT_INO)
    assert (root.uid, root.gid, root.mode) == (os.getuid(), os.getgid(), 0o40750)
    for t in (root.atime_ns, root.mtime_ns, root.ctime_ns):
        assert before <= t <= after
