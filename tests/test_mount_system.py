"""fusefs in the system: mount(8) and /etc/fstab, a systemd user service, logs.

The mount(8) tests run the real chain (mount -> /sbin/mount.fuse3 -> the
program ``fusefs`` on the PATH of ``sh``) in a private mount namespace
(``unshare -m``), where a scratch directory holding a ``fusefs`` script
(standing for the installed entry point: it execs ``python -m fusefs`` of
this tree) is bind-mounted over /usr/local/bin: mount(8) clears PATH for
its helpers, so the shell's default PATH is where the program must be.
Everything mounted there is unmounted inside the same namespace.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from mounting import FAST_KDF, PASSWORD, REPO, fuse_unavailable, fusefs, is_mounted

from fusefs import control
from fusefs.cli import fstab, run

README = REPO / "README.md"


# --- the option strings and the helper's arguments (no mount) --------------------------------


def test_split_options_keeps_quoted_commas_and_decodes_fstab_escapes() -> None:
    assert fstab.split_options('ro,extpass="pass show a,b",,idle=15m') == [
        "ro",
        "extpass=pass show a,b",
        "idle=15m",
    ]
    assert fstab.split_options(r"extpass=cat\040/etc/pw") == ["extpass=cat /etc/pw"]
    with pytest.raises(fstab.QuietError, match="unbalanced"):
        fstab.split_options('extpass="x')


def test_parse_options_maps_ours_ignores_the_generic_ones_refuses_the_rest() -> None:
    opts = fstab.parse_options(
        [
            "rw,passfile=/p,allow_other,masterkey,nosuid,noexec,idle=2h,log=/l",
            "defaults,noauto,nofail,_netdev,user,users,x-systemd.automount,"
            "x-systemd.requires=a.mount,comment=x,dev,suid,noatime,ro",
        ]
    )
    assert opts.values == {"passfile": "/p", "idle": "2h", "log": "/l"}
    assert opts.read_only and opts.allow_other and opts.masterkey
    assert opts.kernel_flags == {"nosuid", "noexec"}
    with pytest.raises(fstab.QuietError, match="unknown mount option 'bogus'"):
        fstab.parse_options(["ro,bogus"])
    assert fstab.parse_options(["ro,bogus"], sloppy=True).read_only
    with pytest.raises(fstab.QuietError, match="passfile needs a value"):
        fstab.parse_options(["passfile"])
    with pytest.raises(fstab.QuietError, match="ro takes no value"):
        fstab.parse_options(["ro=1"])
    with pytest.raises(fstab.QuietError, match="given twice"):
        fstab.parse_options(["passfile=/a,passfile=/b"])


def test_helper_argv_translates_mounts_convention() -> None:
    argv = fstab.helper_argv(
        ["/v", "/m", "-n", "-v", "-o", 'extpass="a,b",ro,dev,suid', "-t", "fuse.fusefs"]
    )
    assert argv == ["mount", "/v", "/m", "-o", 'extpass="a,b"', "-o", "ro"]
    # Read back by the mount command's own -o parser, the value keeps its comma.
    assert fstab.parse_options(argv[4::2]).values == {"extpass": "a,b"}
    # Silent on success, as mount(8), unless -v.
    assert fstab.helper_argv(["/v", "/m", "-s", "-o", "ro,bogus"]) == [
        "mount",
        "-q",
        "/v",
        "/m",
        "-o",
        "ro",
    ]
    assert fstab.helper_argv(["/v", "/m", "-f", "-o", "ro"]) is None  # fake: checked only
    for bad, message in (
        (["/v"], "usage"),
        (["/v", "/m", "-x"], "unknown option -x"),
        (["/v", "/m", "-t", "ext4"], "not fusefs"),
        (["/v", "/m", "-f", "-o", "bogus"], "unknown mount option"),
    ):
        with pytest.raises(fstab.QuietError, match=message):
            fstab.helper_argv(bad)


def test_fusefs_vault_mnt_o_is_the_mount_command(tmp_path: Path) -> None:
    """How mount.fuse3 runs us: ``fusefs VAULT MNT -o OPTS``; bad options are one line."""
    done = fusefs(tmp_path / "v", tmp_path / "m", "-o", "passfile=/p,bogus,dev,suid")
    assert done.returncode == 2
    assert (
        done.stderr == "fusefs: error: unknown mount option 'bogus' (see 'fusefs mount --help')\n"
    )
    done = fusefs(tmp_path / "v", tmp_path / "m", "-o", "passfile=/p,dev,suid")
    assert (done.returncode, done.stderr) == (
        5,
        f"fusefs: error: vault {tmp_path / 'v'} does not exist\n",
    )
    # A mistyped command stays a mistyped command.
    done = fusefs("mout", tmp_path / "v", tmp_path / "m")
    assert done.returncode == 2 and "No such command 'mout'" in done.stderr
    # The mount.fusefs entry point; -f (fake) only checks.
    assert run([str(tmp_path / "v"), str(tmp_path / "m"), "-f", "-o", "ro"], mount_helper=True) == 0


def test_mount_o_and_its_flag_twice_is_refused(tmp_path: Path) -> None:
    done = fusefs("mount", tmp_path / "v", tmp_path / "m", "--passfile", "/a", "-o", "passfile=/b")
    assert done.returncode == 2
    assert done.stderr == "fusefs: error: --passfile and -o passfile= given both\n"


# --- mount(8) and fstab, for real ------------------------------------------------------------

needs_mount = pytest.mark.skipif(
    fuse_unavailable() is not None or shutil.which("unshare") is None,
    reason=str(fuse_unavailable() or "no unshare(1)"),
)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory every user may enter (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="fusefs-sys-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_vault(root: Path) -> tuple[Path, Path, Path]:
    vault, mnt, passfile = root / "vault", root / "mnt", root / "vault.pass"
    passfile.write_text(PASSWORD + "\n")
    mnt.mkdir()
    fusefs("init", vault, "--passfile", passfile, "-q", *FAST_KDF, check=True)
    return vault, mnt, passfile


def entry_point(bin_dir: Path) -> Path:
    """A ``fusefs`` script standing for the installed one: this tree's CLI."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "fusefs"
    script.write_text(
        f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(REPO))} "
        f'exec {shlex.quote(sys.executable)} -m fusefs "$@"\n'
    )
    script.chmod(0o755)
    return script


def in_namespace(
    script: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the shell ``script`` in a private mount namespace; mounts it leaves die with it."""
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-euc", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def mount_and_use(bin_dir: Path, mnt: Path, mount_command: str) -> str:
    """Shell: put ``fusefs`` on mount's PATH, mount, show the mount, write and read, unmount."""
    q = shlex.quote
    return f"""
mount --bind {q(str(bin_dir))} /usr/local/bin
export PATH=/usr/local/bin:$PATH
trap 'fusermount3 -u -z {q(str(mnt))} 2>/dev/null || true' EXIT
{mount_command}
grep " {mnt} " /proc/self/mounts
echo through-mount8 > {q(str(mnt / "f"))}
cat {q(str(mnt / "f"))}
fusefs umount -q {q(str(mnt))}
grep -c " {mnt} " /proc/self/mounts || true
"""


@needs_mount
def test_mount_t_fuse_fusefs_runs_the_installed_entry_point(scratch: Path) -> None:
    vault, mnt, passfile = make_vault(scratch)
    bin_dir = scratch / "bin"
    entry_point(bin_dir)
    options = f"passfile={passfile},nosuid,noexec,idle=15m,nofail,_netdev,x-systemd.automount"
    done = in_namespace(
        mount_and_use(bin_dir, mnt, f"mount -t fuse.fusefs {vault} {mnt} -o {options}"),
        {"FUSEFS_SYSLOG_SOCKET": "", "XDG_STATE_HOME": str(scratch / "state")},
    )
    assert done.returncode == 0, done.stderr
    mount_line, data, left = done.stdout.splitlines()
    source, point, fstype, flags = mount_line.split()[:4]
    assert (source, point, fstype) == (str(vault), str(mnt), "fuse.fusefs")
    assert {"nosuid", "noexec", "rw"} <= set(flags.split(","))
    assert (data, left) == ("through-mount8", "0")
    assert "mounted" in (scratch / "state" / "fusefs" / "vault.log").read_text()


def readme_fstab_line() -> list[str]:
    lines = [x.split() for x in README.read_text().splitlines() if " fuse.fusefs " in x]
    fields = [f for f in lines if len(f) == 6 and f[2] == "fuse.fusefs"]
    assert len(fields) == 1, "README shows one fstab line"
    return fields[0]


@needs_mount
def test_readmes_fstab_line_mounts_with_mount_fstab(scratch: Path) -> None:
    """The README's fstab line, its paths made scratch ones, via ``mount --fstab FILE MNT``;
    and the same with ``extpass=cat\\040FILE`` (fstab's escape for a space)."""
    vault, mnt, passfile = make_vault(scratch)
    bin_dir = scratch / "bin"
    entry_point(bin_dir)
    source, _target, fstype, options, dump, passno = readme_fstab_line()
    assert options.startswith("passfile=")
    options = re.sub(r"^passfile=[^,]*", f"passfile={passfile}", options)
    table = scratch / "fstab"
    for opts in (options, options.replace(f"passfile={passfile}", rf"extpass=cat\040{passfile}")):
        table.write_text(f"# test\n{vault}  {mnt}  {fstype}  {opts}  {dump}  {passno}\n")
        done = in_namespace(
            mount_and_use(bin_dir, mnt, f"mount --fstab {table} {mnt}"),
            {"FUSEFS_SYSLOG_SOCKET": "", "XDG_STATE_HOME": str(scratch / "state")},
        )
        assert done.returncode == 0, (opts, done.stderr)
        assert done.stdout.splitlines()[1:] == ["through-mount8", "0"]
        assert {"nosuid", "nodev"} <= set(done.stdout.split()[3].split(","))


def readme_unit() -> str:
    match = re.search(r"```ini\n(# ~/.config/systemd/user/.*?)```", README.read_text(), re.S)
    assert match, "README shows the systemd user unit"
    return match[1]


@needs_mount
def test_readmes_systemd_unit_start_and_stop_commands(scratch: Path) -> None:
    """ExecStart returns with the vault mounted; ExecStop unmounts and the daemon is gone.
    Run as written, ``%h`` a scratch home and the binary this tree's entry point."""
    home = scratch / "home"
    home.mkdir()
    script = entry_point(scratch / "bin")
    unit = readme_unit().replace("/usr/local/bin/fusefs", str(script))
    (home / ".config" / "fusefs").mkdir(parents=True)
    (home / ".config" / "fusefs" / "vault.pass").write_text(PASSWORD + "\n")
    (home / "Private").mkdir()
    pw = home / ".config" / "fusefs" / "vault.pass"
    fusefs("init", home / "vault", "--passfile", pw, "-q", *FAST_KDF, check=True)
    commands = dict(re.findall(r"^(ExecStart|ExecStop)=(.*)$", unit, re.M))
    assert re.search(r"^Type=forking$", unit, re.M)
    # As systemd runs a user unit: HOME, and no XDG_STATE_HOME (conftest.py sets one).
    env = {k: v for k, v in os.environ.items() if k != "XDG_STATE_HOME"}
    env.update(HOME=str(home), FUSEFS_SYSLOG_SOCKET="")
    mnt = home / "Private"
    try:
        start = subprocess.run(
            shlex.split(commands["ExecStart"].replace("%h", str(home))),
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert start.returncode == 0, start.stderr
        assert is_mounted(mnt)
        (mnt / "f").write_text("from the unit")
        pid = int(os.getxattr(mnt, b"fusefs.pid"))
        stop = subprocess.run(
            shlex.split(commands["ExecStop"].replace("%h", str(home))),
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert stop.returncode == 0, stop.stderr
        assert not is_mounted(mnt)
        assert control.wait_for_exit(pid, 10)  # umount already waited for it
        # No --log and no syslog: the log is in the state directory under HOME.
        assert "mounted" in (home / ".local/state/fusefs/vault.log").read_text()
    finally:
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)])
    if shutil.which("systemd-analyze"):
        unit_file = scratch / "fusefs-private.service"
        unit_file.write_text(unit.replace("%h", str(home)))
        verify = subprocess.run(
            ["systemd-analyze", "verify", "--user", str(unit_file)],
            capture_output=True, text=True, timeout=60,
            env={**env, "XDG_RUNTIME_DIR": str(scratch)},
        )  # fmt: skip
        assert (verify.returncode, verify.stderr) == (0, "")


# --- logs and mount failures ---------------------------------------------------------------


@needs_mount
def test_background_mount_logs_to_syslog_when_its_socket_exists(scratch: Path) -> None:
    vault, mnt, passfile = make_vault(scratch)
    syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslog.bind(str(scratch / "log"))
    syslog.settimeout(30)
    env = {**os.environ, "FUSEFS_SYSLOG_SOCKET": str(scratch / "log")}
    try:
        done = fusefs("mount", vault, mnt, "--passfile", passfile, env=env)
        assert done.returncode == 0, done.stderr
        pid = int(os.getxattr(mnt, b"fusefs.pid"))
        # <daemon.info> fusefs[PID]: INFO mounted ... (after what the
        # opening had to say: where the keys are, a vault new to this machine)
        want = f"<30>fusefs[{pid}]: INFO mounted {vault} on {mnt}"
        records: list[str] = []
        while len(records) < 5 and not any(r.startswith(want) for r in records):
            records.append(syslog.recv(4096).decode())
        assert any(r.startswith(want) for r in records), records
        fusefs("umount", mnt, check=True)
    finally:
        syslog.close()
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)])


@needs_mount
def test_background_mount_without_syslog_logs_to_the_state_directory(scratch: Path) -> None:
    vault, mnt, passfile = make_vault(scratch)
    env = {
        **os.environ,
        "FUSEFS_SYSLOG_SOCKET": str(scratch / "no-such-socket"),
        "XDG_STATE_HOME": str(scratch / "state"),
    }
    try:
        done = fusefs("mount", vault, mnt, "--passfile", passfile, env=env)
        assert done.returncode == 0, done.stderr
        fusefs("umount", mnt, check=True)
    finally:
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)])
    log = (scratch / "state" / "fusefs" / "vault.log").read_text()
    assert f"INFO mounted {vault} on {mnt}" in log and "INFO vault closed" in log


@needs_mount
def test_a_mount_fusermount3_refuses_quotes_its_reason_and_the_log(scratch: Path) -> None:
    """As a non-root user (nobody), allow_other without user_allow_other in
    /etc/fuse.conf: fusermount3 refuses, and says why on a stderr the daemon
    had no terminal for. /dev/fuse is root's alone here, so the namespace
    gets a world-usable node of it, as a Debian system has."""
    if "\nuser_allow_other" in "\n" + Path("/etc/fuse.conf").read_text():
        pytest.skip("/etc/fuse.conf allows allow_other to every user")
    vault, mnt, passfile = make_vault(scratch)
    (scratch / "state").mkdir()
    subprocess.run(["chown", "-R", "nobody:", str(scratch)], check=True)
    q = shlex.quote
    fuse = scratch / "fuse"
    run_as_nobody = (
        f"{q(sys.executable)} {q(str(REPO / 'tests' / 'as_user.py'))} 65534 65534 "
        f"mount {q(str(vault))} {q(str(mnt))} --passfile {q(str(passfile))} --allow-other"
    )
    done = in_namespace(
        f"mknod {fuse} c 10 229\nchmod 666 {fuse}\nmount --bind {fuse} /dev/fuse\n"
        f"trap 'fusermount3 -u -z {q(str(mnt))} 2>/dev/null || true' EXIT\n{run_as_nobody}",
        {
            "PYTHONPATH": str(REPO),
            "FUSEFS_SYSLOG_SOCKET": "",
            "XDG_STATE_HOME": str(scratch / "state"),
        },
    )
    log = scratch / "state" / "fusefs" / "vault.log"
    reason = (
        "fusermount3: option allow_other only allowed if 'user_allow_other' is set in "
        "/etc/fuse.conf"
    )
    assert done.returncode == 7, done.stderr
    assert done.stderr == f"fusefs: error: cannot mount on {mnt}: {reason} (log: {log})\n"
    assert reason in log.read_text()
