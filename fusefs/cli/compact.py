"""``fusefs compact VAULT``: compact an unmounted vault now, and say what it did.

Packs whose share of dead bytes (frames no file points at any more) is at
least ``--dead-ratio`` are rewritten with only their live frames; then the
metadata log is folded into a new snapshot. The report gives the vault's
size on disk before and after, by kind of file, and the time taken. A
mounted vault compacts itself in the background (see ``fusefs stats``) and
once more with ``fusefs umount --compact``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click

from fusefs.cli.common import (
    CONTEXT_SETTINGS,
    accept_rollback_option,
    expensive_kdf_option,
    password_options,
)
from fusefs.exitcodes import ExitCode, QuietError, epilog
from fusefs.reports import describe_compaction

MIB = 2**20


@click.command(
    epilog=epilog(
        ExitCode.WRONG_KEY, ExitCode.INTEGRITY, ExitCode.IO, ExitCode.MOUNT, ExitCode.PASSWORD
    ),
    context_settings=CONTEXT_SETTINGS,
)
@click.argument("vault_dir", metavar="VAULT", type=click.Path(file_okay=False))
@password_options
@expensive_kdf_option
@click.option(
    "--masterkey",
    is_flag=True,
    help="Unlock with the printed master key (asked like the password) instead of the password.",
)
@click.option(
    "--dead-ratio",
    type=click.FloatRange(0.0, 1.0),
    default=0.5,
    show_default=True,
    metavar="R",
    help="Rewrite the packs at least this share of which is dead (0: every pack with any).",
)
@accept_rollback_option
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def compact(
    vault_dir: str,
    passfile: str | None,
    extpass: str | None,
    masterkey: bool,
    dead_ratio: float,
    accept_rollback: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Compact the unmounted VAULT: reclaim dead space in its packs and fold
    its metadata log into a snapshot."""
    from fusefs import _native
    from fusefs.cli.open_errors import describe_open_error
    from fusefs.cli.vault import unlock

    vault = unlock(
        vault_dir, passfile, extpass, masterkey, cache_bytes=0, accept_rollback=accept_rollback
    )
    try:
        before = _sizes(vault.telemetry().to_dict())
        started = time.monotonic()
        cycle = vault.compact(log=True, packs=True, pack_dead_ratio=dead_ratio).to_dict()
        seconds = time.monotonic() - started
        after = _sizes(vault.telemetry().to_dict())
    except (_native.FusefsError, OSError) as e:
        raise QuietError(*describe_open_error(e, vault_dir)) from e
    finally:
        vault.close()
    report: dict[str, Any] = {
        "vault": os.path.abspath(vault_dir),
        "before": before,
        "after": after,
        "seconds": round(seconds, 3),
        **cycle,
    }
    if as_json:
        click.echo(json.dumps(report, sort_keys=True))
    elif not quiet:
        for line in describe(report):
            click.echo(line)


def _sizes(t: dict[str, Any]) -> dict[str, int]:
    return {
        "packs": t["packs"],
        "pack_bytes": t["pack_bytes"],
        "live_bytes": t["live_bytes"],
        "dead_bytes": t["dead_bytes"],
        "log_bytes": t["log_bytes"],
        "snapshot_bytes": t["snapshot_bytes"],
    }


def describe(r: dict[str, Any]) -> list[str]:
    """The report in words: one line of result, then sizes before and after."""

    b, a = r["before"], r["after"]
    total_b = b["pack_bytes"] + b["log_bytes"] + b["snapshot_bytes"]
    total_a = a["pack_bytes"] + a["log_bytes"] + a["snapshot_bytes"]
    return [
        f"Compacted {r['vault']} in {r['seconds']:.1f} s: {describe_compaction(r)}.",
        f"  on disk: {total_b / MIB:,.1f} MiB -> {total_a / MIB:,.1f} MiB",
        f"  packs:   {b['packs']:,} ({b['pack_bytes'] / MIB:,.1f} MiB, "
        f"{b['dead_bytes'] / MIB:,.1f} MiB dead) -> {a['packs']:,} "
        f"({a['pack_bytes'] / MIB:,.1f} MiB, {a['dead_bytes'] / MIB:,.1f} MiB dead)",
        f"  log:     {b['log_bytes'] / MIB:,.2f} MiB -> {a['log_bytes'] / MIB:,.2f} MiB; "
        f"snapshots {b['snapshot_bytes'] / MIB:,.2f} MiB -> {a['snapshot_bytes'] / MIB:,.2f} MiB",
    ]
