"""``fusefs fsck VAULT [--repair]``: check every invariant of a vault (the
core's checker, :mod:`crypto_core::fsck`), report each finding by check,
inode and path, and with ``--repair`` repair what can be.

Exit codes are e2fsck's, so scripts written for fsck(8) read them right:
0 nothing found, 1 findings all repaired, 4 findings left uncorrected, 8
operational error (the vault cannot be opened: wrong password, in use,
damaged beyond opening); 2 is a bad command line, as for every fusefs
command.

Opening the vault is the first check (the config must unlock and
authenticate; the snapshot and log must replay). Opening is also the usual
recovery of a mount: a torn log tail is cut, orphaned inodes are
reclaimed, a damaged metadata file is mended from its copy, and the report
says so. With ``--repair`` the vault is opened with salvage: log records
damaged in both copies are read past, and the report lists them.

A mounted vault (its lock held by the daemon) is checked read-only: the
open writes nothing (no tail cut, no copy mended, no orphan reclaimed) and
takes no lock, so the daemon's writes and compaction go on meanwhile. What
is read may then be behind or mid-change; findings are confirmed by
checking again (up to :data:`MOUNTED_TRIES` times in all) and only those
found every time are reported. ``--repair`` still needs the vault unmounted.
"""

from __future__ import annotations

import enum
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from fusefs.cli.common import (
    CONTEXT_SETTINGS,
    accept_rollback_option,
    expensive_kdf_option,
    password_options,
)
from fusefs.exitcodes import ExitCode, QuietError
from fusefs.password import isatty
from fusefs.reports import describe_opening, opening_mended

if TYPE_CHECKING:
    from collections.abc import Callable

    from fusefs._native import Vault


#: Checks of a mounted vault before a finding counts (see the module doc).
MOUNTED_TRIES = 3


class FsckExit(enum.IntEnum):
    CLEAN = 0
    REPAIRED = 1
    ERRORS_LEFT = 4
    OPERATIONAL = 8


EPILOG = "\n".join(
    [
        "\b",
        "Exit codes (as e2fsck's):",
        "  0    no finding: the vault is consistent",
        "  1    findings all repaired (--repair), or damage the opening mended from copies",
        "  2    bad command line",
        "  4    findings left uncorrected (listed on standard output)",
        "  8    operational error: the vault cannot be opened (wrong password, in use, damaged)",
    ]
)


@click.command(epilog=EPILOG, context_settings=CONTEXT_SETTINGS)
@click.argument("vault_dir", metavar="VAULT", type=click.Path(file_okay=False))
@password_options
@expensive_kdf_option
@click.option(
    "--masterkey",
    is_flag=True,
    help="Unlock with the printed master key (asked like the password) instead of the password.",
)
@click.option("--quick", is_flag=True, help="Metadata only: read no file data.")
@click.option(
    "--repair",
    is_flag=True,
    help="Repair what can be (lost+found, link counts, dangling entries, copies, "
    "unreadable log records), then check again.",
)
@accept_rollback_option
@click.option("--json", "as_json", is_flag=True, help="The whole report as one JSON object.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary: findings only.")
@click.option(
    "--checkpoint-interval",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="How often a check of every frame records how far it got in the vault's log, "
    "so that an interrupted check resumes there (not when the vault is mounted).",
)
def fsck(
    vault_dir: str,
    passfile: str | None,
    extpass: str | None,
    masterkey: bool,
    quick: bool,
    repair: bool,
    accept_rollback: bool,
    as_json: bool,
    quiet: bool,
    checkpoint_interval: float,
) -> int:
    """Check VAULT: every directory entry, link count, segment map and pack,
    and (unless --quick) every frame of every file, read and authenticated.

    A mounted vault is checked read-only, best effort (what the daemon
    changes meanwhile can look damaged: a finding counts only if it is found
    again on a second and third look); --repair needs it unmounted. Each
    finding is one line naming its check, the inode and a path of it. With
    --repair, each repair is one line too, and the findings left after it
    are listed again.
    """
    try:
        return _fsck(
            vault_dir,
            passfile,
            extpass,
            masterkey,
            quick,
            repair,
            accept_rollback,
            as_json,
            quiet,
            checkpoint_interval,
        )
    except QuietError as e:
        sys.stderr.write(f"fusefs: error: {e.message}\n")
        return FsckExit.OPERATIONAL
    except KeyboardInterrupt:
        sys.stderr.write("fusefs: error: interrupted\n")
        return FsckExit.OPERATIONAL


def _fsck(
    vault_dir: str,
    passfile: str | None,
    extpass: str | None,
    masterkey: bool,
    quick: bool,
    repair: bool,
    accept_rollback: bool,
    as_json: bool,
    quiet: bool,
    checkpoint_interval: float = 2.0,
) -> int:
    from fusefs.cli.vault import open_with_secret, unlock
    from fusefs.password import wipe

    started = time.monotonic()
    # A copy of the secret, once the vault turned out to be in use (the
    # confirming looks open it again; unlock wipes its own at once).
    mounted: list[bytearray] = []

    def beside_the_daemon(secret: bytearray) -> Vault:
        if repair:
            raise QuietError(
                f"vault {vault_dir} is in use (mounted?): unmount it to repair "
                "(without --repair it is checked read-only)",
                ExitCode.MOUNT,
            )
        mounted.append(bytearray(secret))
        return open_beside(secret)

    def open_beside(secret: bytearray) -> Vault:
        # The daemon may delete a file between the listing and the reading
        # of it (log compaction): such an open fails, a later one does not.
        for attempt in range(MOUNTED_TRIES):
            try:
                return open_with_secret(
                    vault_dir,
                    secret,
                    masterkey,
                    cache_bytes=0,
                    read_only=True,
                    beside_writer=True,
                    accept_rollback=accept_rollback,
                )
            except _native_errors():
                if attempt + 1 == MOUNTED_TRIES:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")

    vault = unlock(
        vault_dir,
        passfile,
        extpass,
        masterkey,
        cache_bytes=0,
        salvage=repair,
        accept_rollback=accept_rollback,
        when_busy=beside_the_daemon,
    )
    bar = None if quiet or as_json or not isatty(sys.stderr) else _Progress()
    try:
        opened = vault.bootstrap_report()
        report: dict[str, Any] = vault.fsck(
            quick=quick, progress=bar, repair=repair, checkpoint_every=checkpoint_interval
        )
        if mounted:
            report = _confirm(report, lambda: open_beside(mounted[0]), quick)
    finally:
        vault.close()
        for copy in mounted:
            wipe(copy)
        if bar is not None:
            bar.close()
    report["mounted"] = bool(mounted)
    report["opened"] = opened
    report["vault"] = os.path.abspath(vault_dir)
    report["seconds"] = round(time.monotonic() - started, 3)
    report["quick"] = quick
    report["repair"] = repair
    findings = report["findings"]
    left = report["remaining"] if repair else findings
    if as_json:
        click.echo(json.dumps(report, sort_keys=True))
    else:
        for line in describe_opening(opened):
            click.echo(f"fusefs: {line}", err=True)
        for f in findings:
            click.echo(f["text"])
        for line in report["repairs"]:
            click.echo(f"repaired: {line}")
        for f in report["remaining"]:
            click.echo(f"left: {f['text']}")
        for line in report["known_damage"]:
            click.echo(f"fusefs: known damage: {line}", err=True)
        if mounted:
            click.echo(
                "fusefs: the vault is in use: checked read-only beside it (best effort)", err=True
            )
        if report.get("frames_resumed"):
            click.echo(
                f"fusefs: resumed an interrupted check after {report['frames_resumed']:,} "
                "frames it had verified",
                err=True,
            )
        if not quiet:
            click.echo(_summary(report), err=True)
    if left:
        return FsckExit.ERRORS_LEFT
    return FsckExit.REPAIRED if findings or opening_mended(opened) else FsckExit.CLEAN


def _confirm(first: dict[str, Any], reopen: Callable[[], Vault], quick: bool) -> dict[str, Any]:
    """The findings of ``first`` that checks of fresh opens find again
    (a mounted vault: what its daemon changed between reads is gone on
    another look, real damage stays). Each new open sees the daemon's
    latest durable state."""
    report = first
    for _ in range(MOUNTED_TRIES - 1):
        if not report["findings"]:
            break
        seen = {f["text"] for f in report["findings"]}
        try:
            vault = reopen()
        except (OSError, _native_errors()) as e:
            raise QuietError(
                f"the vault changed too much while being checked: {e}", ExitCode.MOUNT
            ) from e
        try:
            again: dict[str, Any] = vault.fsck(quick=quick, progress=None, repair=False)
        finally:
            vault.close()
        again["findings"] = [f for f in again["findings"] if f["text"] in seen]
        report = again
    return report


def _native_errors() -> type[Exception]:
    from fusefs import _native

    return _native.FusefsError


def _summary(r: dict[str, Any]) -> str:
    n = len(r["findings"])
    what = "metadata checked" if r["quick"] else f"{_count(r['frames_verified'], 'frame')} verified"
    verdict = "clean" if n == 0 else f"{n} finding{'s' * (n != 1)}"
    if r["repair"] and n:
        left = len(r["remaining"])
        verdict += ", all repaired" if left == 0 else f", {left} left after repair"
    return (
        f"{r['vault']}: {verdict}: {_count(r['inodes'], 'inode')} "
        f"({_count(r['files'], 'file')}, {_count(r['directories'], 'directory')}), "
        f"{_count(r['packs'], 'pack')}, {what} "
        f"({r['bytes_verified'] / 2**20:,.1f} MiB) in {r['seconds']:.1f} s"
    )


def _count(n: int, noun: str) -> str:
    if n == 1:
        return f"1 {noun}"
    return f"{n:,} {noun[:-1] + 'ies' if noun.endswith('y') else noun + 's'}"


class _Progress:
    """``fsck: 42% 1.2/2.9 GiB`` on one terminal line, redrawn at most 10 times a second."""

    def __init__(self) -> None:
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 or total == 0:
            return
        self.last = now
        gib = 2**30
        line = f"fsck: {done / total:4.0%} {done / gib:.1f}/{total / gib:.1f} GiB verified"
        sys.stderr.write("\r" + line[: max(10, _columns() - 1)])
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _columns() -> int:
    import shutil

    return shutil.get_terminal_size().columns
