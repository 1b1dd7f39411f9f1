"""The commands for a running mount: ``fusefs umount`` and ``fusefs stats``.

Both talk to the mount's daemon through :mod:`fusefs.control` (the mount
point is the address; the vault's directory finds its mount), and both are
for the user who mounted, or root.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from fusefs.cli.common import CONTEXT_SETTINGS, DIRECTORY
from fusefs.exitcodes import ExitCode, QuietError, epilog
from fusefs.reports import describe_compaction, describe_opening


@click.command(epilog=epilog(ExitCode.IO, ExitCode.MOUNT), context_settings=CONTEXT_SETTINGS)
@click.argument("mountpoint", metavar="MNT", type=DIRECTORY)
@click.option("--compact", is_flag=True, help="Compact the vault after unmounting.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def umount(mountpoint: str, compact: bool, quiet: bool) -> None:
    """Flush and unmount MNT; return when the daemon has finished and exited.

    MNT may also be the vault's directory: its mount is found. Everything is
    made durable first: if the vault cannot be written (its disk is full),
    MNT stays mounted, nothing is lost, and the command fails. A dead mount
    (its daemon was killed) is detached so MNT can be mounted again. Only
    the user who mounted (or root) may unmount.
    """
    from fusefs import control

    mnt = os.path.abspath(control.find_mount(mountpoint))
    state = control.mount_state(mnt)
    if state == "stale":
        control.kernel_unmount(mnt, lazy=True)
        click.echo(f"fusefs: {mnt} was a dead mount (its daemon was gone); detached it", err=True)
        return
    entry = control.require_mount(mnt)
    if not control.reachable(mnt):
        # Root, and another user's mount without allow_other: the daemon
        # cannot be asked anything, but the kernel's unmount still makes it
        # write back everything and close the vault on its own.
        control.kernel_unmount(mnt)
        if not quiet:
            click.echo(
                f"Unmounted {mnt} ({entry.source}); its daemon, of "
                f"{control.user_name(entry.owner_uid or 0)}, finishes writing on its own."
            )
        return
    pid = control.daemon_pid(mnt)
    # Everything durable first: a vault that cannot be written (a full disk)
    # keeps its mount, and its data, until the cause is fixed (exit IO).
    control.sync(mnt)
    read_only = control.is_read_only(mnt)
    if compact and read_only:
        click.echo(f"fusefs: {mnt} is mounted read-only: nothing to compact", err=True)
    elif compact:
        control.set_compact_at_unmount(mnt, True)
    report_path = control.ask_for_report(mnt, entry)
    try:
        control.kernel_unmount(mnt)
    except BaseException:
        if report_path is not None:
            os.unlink(report_path)
        raise
    if not control.wait_for_exit(pid, timeout=2.0):
        what = "compacting the vault" if compact and not read_only else "finishing"
        click.echo(f"fusefs: waiting for the daemon (pid {pid}): {what}...", err=True)
        control.wait_for_exit(pid)
    report = None if report_path is None else control.read_report(report_path)
    if report_path is not None and (report is None or not report.get("closed")):
        reason = (report or {}).get("error") or "it died or was killed"
        raise QuietError(
            f"{mnt} is unmounted, but its daemon (pid {pid}) ended before finishing "
            f"({reason}); what was synced before the unmount is on disk, and the next mount "
            "recovers the vault",
            ExitCode.IO,
        )
    if quiet:
        return
    line = f"Unmounted {mnt} ({entry.source})"
    if report is not None and report.get("compaction") is not None:
        line += "; compacted: " + describe_compaction(report["compaction"])
    click.echo(line + ".")


@click.command(epilog=epilog(ExitCode.IO, ExitCode.MOUNT), context_settings=CONTEXT_SETTINGS)
@click.argument("mountpoint", metavar="MNT", type=DIRECTORY)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def stats(mountpoint: str, as_json: bool) -> None:
    """Live telemetry of the mount at MNT (or of the mounted vault MNT).

    Rates are over the time since the previous 'stats' of this mount (or
    since it was mounted).
    """
    from fusefs import control

    data = control.stats(os.path.abspath(control.find_mount(mountpoint)))
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
        return
    _print_mount_stats(data)


def _seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _compaction_state(d: dict[str, Any]) -> str:
    e = d["engine"]
    if e.get("compacting_now"):
        state = "running now"
    elif e["compaction_running"]:
        state = "idle (runs in the background when worth it)"
    else:
        state = "off (read-only mount)" if d["read_only"] else "off"
    ago = e.get("last_compaction_seconds_ago")
    if ago is not None:
        state += f"; last cycle {_seconds(ago)} ago"
        if e.get("last_compaction_reclaimed_bytes") is not None:
            state += f", reclaimed {e['last_compaction_reclaimed_bytes'] / 2**20:,.1f} MiB"
    elif not e.get("compacting_now"):
        state += "; no cycle yet this mount"
    if d["compact_at_unmount"]:
        state += "; again at unmount"
    return state


def _print_mount_stats(d: dict[str, Any]) -> None:
    e = d["engine"]
    mib = 2**20
    ops = sum(d["fuse_ops"].values())
    hits, misses = e.get("cache_hits", 0), e.get("cache_misses", 0)
    hit_rate = f"{hits / (hits + misses):.1%}" if hits + misses else "n/a (nothing read yet)"
    r = d["rates"]
    rows = [
        ("vault", d["vault"]),
        ("daemon pid", d["pid"]),
        (
            "uptime",
            f"{_seconds(d['uptime_seconds'])} (idle {d['idle_seconds']:.1f} s, "
            f"{d['open_files']} open file{'s' * (d['open_files'] != 1)})",
        ),
        ("requests", f"{ops:,} ({r['requests_per_second']:,.1f}/s)"),
        (
            "read",
            f"{d['fuse_bytes_read'] / mib:,.1f} MiB "
            f"({r['fuse_bytes_read_per_second'] / 1e6:,.2f} MB/s)",
        ),
        (
            "written",
            f"{d['fuse_bytes_written'] / mib:,.1f} MiB "
            f"({r['fuse_bytes_written_per_second'] / 1e6:,.2f} MB/s)",
        ),
        ("rates over", f"the last {r['seconds']:,.1f} s (since the previous stats)"),
        (
            "segment cache",
            f"hit rate {hit_rate}, {e['cache_bytes'] / mib:,.1f} of "
            f"{e['cache_capacity'] / mib:,.0f} MiB (decrypted segments)",
        ),
        ("inodes", f"{e['inodes']:,}"),
        (
            "packs",
            f"{e['packs']:,} ({e['live_bytes'] / mib:,.1f} MiB live, "
            f"{e['dead_bytes'] / mib:,.1f} MiB dead)",
        ),
        (
            "log",
            f"{e.get('log_bytes', e['log_bytes_since_snapshot']) / mib:,.1f} MiB "
            f"({e['log_bytes_since_snapshot'] / mib:,.1f} MiB since the last snapshot)",
        ),
        ("compaction", _compaction_state(d)),
    ]
    for line in describe_opening(d["opened"]):
        rows.append(("at mount", line))
    for key, value in rows:
        click.echo(f"{key + ':':<16} {value}")
    top = sorted(d["fuse_ops"].items(), key=lambda kv: -kv[1])[:8]
    click.echo(f"{'busiest ops:':<16} " + ", ".join(f"{k} {v:,}" for k, v in top))
