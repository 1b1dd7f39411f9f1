"""The vault commands of the ``fusefs`` CLI: init, mount, umount, info, passwd, stats.

Registered on the group of :mod:`fusefs.cli`, so ``fusefs --help`` lists
them beside encrypt/decrypt. Every refusal is one
line and an exit code from :mod:`fusefs.exitcodes`. Passwords come from
``--passfile FILE``, ``--extpass CMD`` or a terminal prompt, never argv.
"""

from __future__ import annotations

import errno
import json
import os
import re
import time
from typing import TYPE_CHECKING, Any

import click

from fusefs.cli.common import (
    CONTEXT_SETTINGS,
    DIRECTORY,
    FILE,
    CompressCommand,
    SizeType,
    accept_rollback_option,
    compress_option,
    expensive_kdf_option,
    kdf_kib,
    kdf_options,
    password_options,
    quiet_option,
)
from fusefs.cli.open_errors import describe_open_error
from fusefs.exitcodes import ExitCode, QuietError, epilog
from fusefs.password import isatty

if TYPE_CHECKING:
    from collections.abc import Callable

    from fusefs._native import Vault

SEGMENT_MIN, SEGMENT_MAX = 16 * 1024, 2**20
CONFIG_NAME = "fusefs.conf"


class DurationType(click.ParamType):  # type: ignore[type-arg]
    """Seconds: ``90``, ``90s``, ``15m``, ``2h``."""

    name = "time"
    _UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(value).lower())
        if match is None or float(match[1]) <= 0:
            self.fail(f"{value!r} is not a time such as 90, 90s, 15m or 2h", param, ctx)
        return float(match[1]) * self._UNITS[match[2]]


def _vault_info(vault_dir: str) -> dict[str, Any]:
    """The vault's public config, or a one-line refusal naming what is wrong."""
    from fusefs import _native

    if not os.path.exists(vault_dir):
        raise QuietError(f"vault {vault_dir} does not exist", ExitCode.IO)
    if not os.path.isdir(vault_dir):
        raise QuietError(f"vault {vault_dir} is not a directory", ExitCode.IO)
    if not os.path.exists(os.path.join(vault_dir, CONFIG_NAME)) and not os.path.exists(
        os.path.join(vault_dir, "mirror", CONFIG_NAME)  # its copy: the open restores it
    ):
        raise QuietError(
            f"{vault_dir} is not a fusefs vault (it has no {CONFIG_NAME})", ExitCode.IO
        )
    try:
        return _native.vault_info(vault_dir)
    except (_native.FusefsError, OSError) as e:
        from fusefs.errors import exit_code_for

        raise QuietError(f"vault {vault_dir}: {e}", exit_code_for(e)) from e


def _kib(n: int) -> str:
    return f"{n // 1024} MiB" if n % 1024 == 0 else f"{n} KiB"


def read_secret(passfile: str | None, extpass: str | None, masterkey: bool) -> bytearray:
    """The password, or with ``masterkey`` the printed master key, from its source."""
    from fusefs.password import read_password

    return read_password(
        passfile,
        extpass,
        prompt="Master key" if masterkey else "Password",
        what="master key" if masterkey else "password",
    )


def open_with_secret(
    vault_dir: str,
    secret: bytearray,
    masterkey: bool,
    *,
    cache_bytes: int | None = None,
    salvage: bool = False,
    read_only: bool = False,
    beside_writer: bool = False,
    accept_rollback: bool = False,
    local_state_dir: str | None = None,
) -> Vault:
    """Open ``vault_dir`` with what :func:`read_secret` returned (the engine
    copies it into a zeroizing buffer; the caller wipes ``secret``); with
    ``read_only`` writing nothing to it (``beside_writer``: even while it
    is mounted, best effort). Rollback protection keeps its local state in
    ``local_state_dir`` (by default :func:`fusefs.statedir.local_state_dir`);
    ``accept_rollback`` opens a vault behind it anyway."""
    from fusefs import _native, statedir

    kwargs: dict[str, Any] = {
        "salvage": salvage,
        "read_only": read_only,
        "beside_writer": beside_writer,
        "local_state_dir": local_state_dir or statedir.local_state_dir(),
        "accept_rollback": accept_rollback,
    }
    if cache_bytes is not None:
        kwargs["cache_bytes"] = cache_bytes
    if masterkey:
        return _native.Vault.open_with_master_key(vault_dir, secret, **kwargs)
    return _native.Vault.open(vault_dir, secret, **kwargs)


def unlock(
    vault_dir: str,
    passfile: str | None,
    extpass: str | None,
    masterkey: bool = False,
    *,
    cache_bytes: int | None = None,
    salvage: bool = False,
    accept_rollback: bool = False,
    when_busy: Callable[[bytearray], Vault] | None = None,
) -> Vault:
    """Open the unmounted vault ``vault_dir`` for an offline command; every
    refusal (not a vault, no password, wrong one, in use, rolled back) is
    one line. ``salvage``: read past log records damaged in both copies
    (repair). ``accept_rollback``: open it even if it is behind what this
    machine saw. ``when_busy``: how to open it instead when it is in use
    (given the secret), rather than refusing."""
    from fusefs import _native
    from fusefs.password import wipe

    _vault_info(vault_dir)
    secret = read_secret(passfile, extpass, masterkey)
    try:
        try:
            return open_with_secret(
                vault_dir,
                secret,
                masterkey,
                cache_bytes=cache_bytes,
                salvage=salvage,
                accept_rollback=accept_rollback,
            )
        except OSError as e:
            if when_busy is None or e.errno != errno.EBUSY:
                raise
            return when_busy(secret)
    except (_native.FusefsError, OSError) as e:
        raise QuietError(*describe_open_error(e, vault_dir)) from e
    finally:
        wipe(secret)


# --- init ----------------------------------------------------------------------------


@click.command(
    cls=CompressCommand,
    epilog=epilog(ExitCode.IO, ExitCode.PASSWORD),
    context_settings=CONTEXT_SETTINGS,
)
@click.argument("vault_dir", metavar="VAULT", type=DIRECTORY)
@click.option(
    "--cipher",
    type=click.Choice(["aes-256-gcm", "chacha20-poly1305"]),
    default="aes-256-gcm",
    show_default=True,
    help="AEAD cipher of every frame, log record and snapshot.",
)
@click.option(
    "--segment-size",
    type=SizeType(),
    default="64K",
    show_default=True,
    metavar="SIZE",
    help="Plaintext bytes per sealed segment, 16K to 1M.",
)
@compress_option("Compress segments with zstd before sealing.")
@password_options
@kdf_options("64M", "stored in fusefs.conf; paid at every unlock")
@click.option(
    "--print-masterkey",
    is_flag=True,
    help="Print the master key to standard output even if it is not a terminal (a pipe, a log).",
)
@quiet_option("no messages, and no master key without --print-masterkey")
def init(
    vault_dir: str,
    cipher: str,
    segment_size: int,
    compress: int | None,
    passfile: str | None,
    extpass: str | None,
    kdf_memory: int,
    kdf_passes: int,
    insecure_kdf: bool,
    print_masterkey: bool,
    quiet: bool,
) -> None:
    """Create a new vault in the empty (or new) directory VAULT.

    The master key opens the vault even if the password is lost (fusefs mount
    --masterkey, fusefs passwd --masterkey). It is printed only to a terminal,
    where no script or log keeps it, unless --print-masterkey asks for it;
    'fusefs masterkey VAULT' prints it again from the password.
    """
    from fusefs import _native
    from fusefs.password import read_password, wipe

    if not SEGMENT_MIN <= segment_size <= SEGMENT_MAX or segment_size & (segment_size - 1):
        raise QuietError("--segment-size must be a power of two between 16K and 1M", ExitCode.USAGE)
    m_kib = kdf_kib(kdf_memory, kdf_passes, insecure_kdf)
    created_dir = False
    if os.path.lexists(vault_dir):
        if not os.path.isdir(vault_dir):
            raise QuietError(f"{vault_dir} exists and is not a directory", ExitCode.IO)
        if os.listdir(vault_dir):
            raise QuietError(
                f"{vault_dir} is not empty: a vault needs an empty directory", ExitCode.IO
            )
    else:
        parent = os.path.dirname(os.path.abspath(vault_dir))
        if not os.path.isdir(parent):
            raise QuietError(f"cannot create {vault_dir}: {parent} does not exist", ExitCode.IO)
    password = read_password(passfile, extpass, prompt="New password", confirm=True)
    if not os.path.lexists(vault_dir):
        try:
            os.mkdir(vault_dir, 0o700)
        except OSError as e:
            wipe(password)
            raise QuietError(f"cannot create {vault_dir}: {e.strerror}", ExitCode.IO) from e
        created_dir = True
    try:
        vault = _native.Vault.create(
            vault_dir,
            password,
            cipher=cipher,
            segment_size=segment_size,
            compression_level=compress,
            argon2_m_kib=m_kib,
            argon2_t=kdf_passes,
        )
        wipe(password)
        try:
            _own_root(vault)
            master_key = vault.print_master_key()
        finally:
            vault.close()
    except BaseException as e:
        wipe(password)
        _remove_partial_vault(vault_dir, created_dir)
        if isinstance(e, (_native.FusefsError, OSError)):
            raise QuietError(*describe_open_error(e, vault_dir)) from e
        raise
    if not quiet:
        click.echo(
            f"Created vault {vault_dir} ({cipher}, {segment_size // 1024} KiB segments).", err=True
        )
    _show_master_key(vault_dir, master_key, explicit=print_masterkey, quiet=quiet)


def _show_master_key(vault_dir: str, master_key: str, *, explicit: bool, quiet: bool) -> None:
    """The master key on standard output: framed on a terminal, bare (for a
    script that asked with --print-masterkey) elsewhere, else one line on how
    to get it later."""
    on_terminal = isatty(click.get_text_stream("stdout"))
    if on_terminal and (explicit or not quiet):
        click.echo("Master key: it opens the vault if the password is lost. Keep it safe, offline:")
        click.echo(f"\n    {master_key}\n")
    elif explicit:
        click.echo(master_key)
    elif not quiet:
        click.echo(
            "fusefs: master key not printed (standard output is not a terminal): "
            f"'fusefs masterkey {vault_dir}' prints it from the password",
            err=True,
        )


def _own_root(vault: Vault) -> None:
    """Give the new vault's root directory to the user who ran ``init``, as
    ``mkdir`` would: their uid and gid, mode 0777 less their umask, times now
    (the engine's empty state is root:root 0755 of 1970, which an ordinary
    user cannot even create a file in)."""
    from fusefs._native import ROOT_INO

    umask = os.umask(0)
    os.umask(umask)
    now = time.time_ns()
    vault.setattr(
        ROOT_INO,
        mode=0o777 & ~umask,
        uid=os.getuid(),
        gid=os.getgid(),
        atime_ns=now,
        mtime_ns=now,
    )


def _remove_partial_vault(vault_dir: str, created_dir: bool) -> None:
    """Undo a failed init: remove what it wrote (the directory was empty or new)."""
    import shutil

    if created_dir:
        shutil.rmtree(vault_dir, ignore_errors=True)
        return
    for name in os.listdir(vault_dir):
        path = os.path.join(vault_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


# --- mount --------------------------------------------------------------------


@click.command(
    epilog=epilog(
        ExitCode.WRONG_KEY, ExitCode.INTEGRITY, ExitCode.IO, ExitCode.MOUNT, ExitCode.PASSWORD
    ),
    context_settings=CONTEXT_SETTINGS,
)
@click.argument("vault_dir", metavar="VAULT", type=DIRECTORY)
@click.argument("mountpoint", metavar="MNT", type=DIRECTORY)
@password_options
@expensive_kdf_option
@click.option("-f", "--foreground", is_flag=True, help="Stay in front; Ctrl-C unmounts.")
@click.option("--read-only", is_flag=True, help="Mount read-only.")
@click.option(
    "--allow-other", is_flag=True, help="Let other users in (kernel permission checks still apply)."
)
@click.option(
    "--idle",
    type=DurationType(),
    default=None,
    metavar="TIME",
    help="Unmount after TIME (90s, 15m, 2h) without requests and with no file open.",
)
@click.option(
    "--log", "log_file", metavar="FILE", type=FILE, help="Append the daemon's log to FILE."
)
@click.option(
    "--masterkey",
    is_flag=True,
    help="Unlock with the printed master key (asked like the password) instead of the password.",
)
@accept_rollback_option
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
@click.option(
    "-o",
    "--options",
    "option_strings",
    multiple=True,
    metavar="OPTS",
    help="Options as in /etc/fstab, comma-separated: passfile=FILE, extpass=CMD, ro, rw, "
    "allow_other, idle=TIME, log=FILE, masterkey (as the options above), nosuid, nodev, "
    "noexec (kernel mount flags); the generic ones of mount(8) and systemd (defaults, noauto, "
    "nofail, _netdev, user, x-systemd.*, ...) are ignored. Quote a value holding commas: "
    'extpass="CMD".',
)
def mount(
    vault_dir: str,
    mountpoint: str,
    passfile: str | None,
    extpass: str | None,
    foreground: bool,
    read_only: bool,
    allow_other: bool,
    idle: float | None,
    log_file: str | None,
    masterkey: bool,
    accept_rollback: bool,
    quiet: bool,
    option_strings: tuple[str, ...],
) -> None:
    """Mount VAULT on the empty directory MNT.

    Returns once the mount is ready, with the file system served by a daemon
    in the background (with -f, in front). Unmount with 'fusefs umount MNT'.

    Without --log, the background daemon logs to the system log as 'fusefs'
    (journalctl -t fusefs) or, where there is no /dev/log, to
    $XDG_STATE_HOME/fusefs/VAULT.log (~/.local/state/fusefs/VAULT.log); the
    environment's FUSEFS_SYSLOG_SOCKET names another syslog socket (empty:
    the file). In /etc/fstab: 'VAULT MNT fuse.fusefs passfile=FILE,noauto 0 0'.
    """
    from fusefs import statedir
    from fusefs.cli.fstab import parse_options
    from fusefs.mount import MountOptions, check_mountpoint
    from fusefs.mount import mount as do_mount

    fstab = parse_options(option_strings)
    given = {"passfile": passfile, "extpass": extpass, "idle": idle, "log": log_file}
    for name in fstab.values:
        if given[name] is not None:
            raise QuietError(f"--{name} and -o {name}= given both", ExitCode.USAGE)
    passfile = fstab.values.get("passfile", passfile)
    extpass = fstab.values.get("extpass", extpass)
    log_file = fstab.values.get("log", log_file)
    if "idle" in fstab.values:
        idle = DurationType().convert(fstab.values["idle"], None, click.get_current_context())
    read_only = read_only or fstab.read_only
    allow_other = allow_other or fstab.allow_other
    masterkey = masterkey or fstab.masterkey
    _vault_info(vault_dir)
    vault_dir = os.path.abspath(vault_dir)
    mnt = os.path.abspath(mountpoint)
    check_mountpoint(mnt)
    real_vault, real_mnt = os.path.realpath(vault_dir), os.path.realpath(mnt)
    if real_mnt == real_vault or real_mnt.startswith(real_vault + os.sep):
        raise QuietError(f"mount point {mnt} is inside the vault {vault_dir}", ExitCode.USAGE)
    if real_vault.startswith(real_mnt + os.sep):
        raise QuietError(f"the vault {vault_dir} is inside the mount point {mnt}", ExitCode.USAGE)
    if log_file is not None:
        log_file = os.path.abspath(log_file)
    from fusefs import hardening
    from fusefs.password import wipe

    # Before the password is read: no core dump of this process or of the
    # daemon it forks (which inherits both) can hold it or the keys.
    hardening.protect_process()
    secret = read_secret(passfile, extpass, masterkey)
    state_dir = statedir.local_state_dir()  # here: the daemon changes to "/" first

    def open_vault() -> Vault:
        # Called once, in the daemon: the password is wiped as soon as the
        # engine has derived the key, and nothing keeps it for later.
        try:
            return open_with_secret(
                vault_dir,
                secret,
                masterkey,
                read_only=read_only,
                accept_rollback=accept_rollback,
                local_state_dir=state_dir,
            )
        finally:
            wipe(secret)

    opts = MountOptions(
        vault_dir=vault_dir,
        mountpoint=mnt,
        read_only=read_only,
        allow_other=allow_other,
        idle_seconds=idle,
        log_file=log_file,
        foreground=foreground,
        kernel_flags=frozenset(fstab.kernel_flags),
    )
    try:
        do_mount(opts, open_vault, lambda e: describe_open_error(e, vault_dir))
    finally:
        wipe(secret)  # the parent's copy (the daemon wiped its own)
    if not quiet and not foreground:
        mode = "read-only" if read_only else "read-write"
        click.echo(f"Mounted {vault_dir} on {mnt} ({mode}); 'fusefs umount {mnt}' to unmount.")


# --- info / passwd ----------------------------------------------------------------


@click.command(epilog=epilog(ExitCode.INTEGRITY, ExitCode.IO), context_settings=CONTEXT_SETTINGS)
@click.argument("vault_dir", metavar="VAULT", type=DIRECTORY)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def info(vault_dir: str, as_json: bool) -> None:
    """Show VAULT's format, cipher and settings (no password needed; nothing secret)."""
    data = _vault_info(vault_dir)
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
        return
    level = data["compression_level"]
    rows = [
        ("vault", os.path.abspath(vault_dir)),
        ("format version", data["version"]),
        ("vault id", data["vault_id"]),
        ("created", data["created"]),
        ("cipher", data["cipher"]),
        ("segment size", f"{data['segment_size'] // 1024} KiB"),
        ("compression", "none" if level is None else f"zstd level {level}"),
        (
            "password KDF",
            f"argon2id, {_kib(data['argon2_m_kib'])}, {data['argon2_t']} passes",
        ),
    ]
    for key, value in rows:
        click.echo(f"{key + ':':<16} {value}")


@click.command(
    epilog=epilog(ExitCode.WRONG_KEY, ExitCode.INTEGRITY, ExitCode.IO, ExitCode.PASSWORD),
    context_settings=CONTEXT_SETTINGS,
)
@click.argument("vault_dir", metavar="VAULT", type=DIRECTORY)
@password_options
@click.option(
    "--new-passfile",
    metavar="FILE",
    type=FILE,
    help="Take the new password from the first line of FILE.",
)
@click.option("--new-extpass", metavar="CMD", help="Take the new password from CMD's output.")
@click.option(
    "--masterkey",
    is_flag=True,
    help="Prove access with the printed master key instead of the current password.",
)
@kdf_options("64M", "stored in fusefs.conf; paid at every unlock")
def passwd(
    vault_dir: str,
    passfile: str | None,
    extpass: str | None,
    new_passfile: str | None,
    new_extpass: str | None,
    masterkey: bool,
    kdf_memory: int,
    kdf_passes: int,
    insecure_kdf: bool,
) -> None:
    """Change VAULT's password (the data is not re-encrypted; works while mounted)."""
    from fusefs import _native
    from fusefs.password import read_password, wipe

    _vault_info(vault_dir)
    m_kib = kdf_kib(kdf_memory, kdf_passes, insecure_kdf)
    what = "master key" if masterkey else "password"
    old = read_password(
        passfile, extpass, prompt="Master key" if masterkey else "Current password", what=what
    )
    try:
        new = read_password(
            new_passfile, new_extpass, prompt="New password", confirm=True, what="new password"
        )
    except BaseException:
        wipe(old)
        raise
    try:
        _native.change_vault_password(
            vault_dir,
            old,
            new,
            old_is_master_key=masterkey,
            argon2_m_kib=m_kib,
            argon2_t=kdf_passes,
        )
    except (_native.FusefsError, OSError) as e:
        raise QuietError(*describe_open_error(e, vault_dir)) from e
    finally:
        wipe(old)
        wipe(new)
    click.echo(f"Password of {vault_dir} changed.", err=True)
