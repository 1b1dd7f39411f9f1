"""The engine's reports in words, for the command line and the daemon's log:
what a compaction did, what opening a vault found and did.

Imports nothing of fusefs (the daemon and every command may use it).
"""

from __future__ import annotations

from typing import Any


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def describe_compaction(report: dict[str, Any]) -> str:
    """A compaction report (``Vault.compact().to_dict()``) in words, one clause each part."""
    parts = []
    packs, logs = report.get("packs"), report.get("log")
    if packs and (packs["packs_deleted"] or packs["bytes_reclaimed"]):
        n = packs["packs_deleted"]
        parts.append(
            f"reclaimed {_mib(packs['bytes_reclaimed'])} from {n} pack file{'s' * (n != 1)}"
            f" (copying {_mib(packs['bytes_copied'])} still in use)"
        )
    elif packs:
        parts.append("no pack file had enough dead space to be worth rewriting")
    if logs:
        n, m = logs["log_files_deleted"], logs["snapshots_deleted"]
        parts.append(
            f"folded the metadata log into a new snapshot (removed {n} log file{'s' * (n != 1)}"
            f" and {m} older snapshot{'s' * (m != 1)})"
        )
    return "; ".join(parts) if parts else "nothing needed compacting"


#: The end of the engine's note for a vault this machine never saw.
NEW_VAULT_NOTE = "rollback protection starts now"


def opening_mended(opened: dict[str, Any]) -> bool:
    """True if opening the vault mended damage: a metadata file restored
    from its copy. (Packs no record refers to, torn tails and orphans are
    what a crash leaves, not damage.)"""
    return bool(
        opened.get("config") == "mended"
        or opened.get("log_files_mended")
        or opened.get("snapshots_mended")
        or opened.get("chain_breaks")
    )


def describe_opening(opened: dict[str, Any]) -> list[str]:
    """What opening the vault did (``Vault.bootstrap_report()``) beyond the
    ordinary, one line each; empty when it only loaded and replayed."""
    # (A vault new to this machine is not news: the mount's log says so.)
    notes = opened.get("local_state_notes", [])
    lines = [str(note) for note in notes if not str(note).endswith(NEW_VAULT_NOTE)]
    if opened.get("upgraded"):
        _, snapshot, deleted = opened["upgraded"]
        lines.append(
            f"the vault was upgraded from format 1 to format 2 (snapshot {snapshot}; "
            f"{deleted} files of format 1 removed)"
        )
    for why in opened.get("chain_breaks", []):
        lines.append(f"log file {why}")
    if opened.get("read_only"):
        # Nothing was written: what would have been cut or mended is left
        # for the next read-write open.
        if opened["torn_bytes_cut"]:
            lines.append(
                f"a torn log tail of {opened['torn_bytes_cut']} bytes was passed over "
                "(read-only: left for the next read-write open to cut)"
            )
        for name in opened.get("log_files_mended", []):
            lines.append(f"log file {name} was read from its copy (read-only: not rewritten)")
        for number in opened.get("snapshots_mended", []):
            lines.append(f"snapshot {number} was read from its copy (read-only: not rewritten)")
        if opened.get("config") == "mended":
            lines.append("fusefs.conf was read from its copy (read-only: not rewritten)")
        for number, why in opened["bad_snapshots"]:
            lines.append(f"snapshot {number} could not be read ({why}); an older one was used")
        return lines
    if opened["torn_bytes_cut"]:
        lines.append(f"opening cut a torn log tail of {opened['torn_bytes_cut']} bytes")
    if opened["removed_torn_log_file"]:
        lines.append(f"opening removed a torn log file {opened['removed_torn_log_file']}")
    for number, why in opened["bad_snapshots"]:
        lines.append(f"snapshot {number} could not be read ({why}); an older one was used")
    if opened.get("stray_packs_removed"):
        n = len(opened["stray_packs_removed"])
        lines.append(
            f"opening removed {n} pack file{'s' * (n != 1)} no record refers to "
            "(left by a session that ended before recording them)"
        )
    if opened.get("carried_frames_restored"):
        n = opened["carried_frames_restored"]
        lines.append(
            f"opening wrote back {n} fsync'd frame{'s' * (n != 1)} that a crash took "
            "from the packs (the log carried them)"
        )
    if opened["orphans_reclaimed"]:
        n = len(opened["orphans_reclaimed"])
        lines.append(f"opening reclaimed {n} orphaned inode{'s' * (n != 1)} (unlinked while open)")
    if opened.get("config") == "mended":
        lines.append("fusefs.conf did not read; it was restored from its copy (mirror/fusefs.conf)")
    for name in opened.get("log_files_mended", []):
        lines.append(f"log file {name} was damaged or missing; it was mended from its copy")
    for number in opened.get("snapshots_mended", []):
        lines.append(f"snapshot {number} was damaged or missing; it was restored from its copy")
    for first, last, file, why in opened.get("records_lost", []):
        what = f"record {first}" if first == last else f"records {first}..{last}"
        where = f" in log/{file}" if file else ""
        lines.append(f"{what}{where} could not be read ({why}): their changes are lost")
    for seq, why in opened.get("records_unapplied", []):
        lines.append(f"record {seq} could not be applied ({why}): its change is lost")
    n = opened.get("copies_refreshed", 0) + (opened.get("config") == "copy-refreshed")
    if n:
        lines.append(
            f"{n} metadata cop{'ies were' if n != 1 else 'y was'} missing or behind "
            "(after a crash, or made before copies existed): rewritten"
        )
    return lines
