"""fusefs.mount.serve's order of startup and teardown, off a mount.

pyfuse3's init/main/close are replaced by recorders and the vault by a tiny
class that records its calls: what is checked is the order in which the
mount's exit stack acquires and releases them, whatever ends the mount.
"""

from __future__ import annotations

import os
from typing import Any

import pyfuse3
import pytest
import trio

from fusefs import control, mount, requestloop


class RecordingVault:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def start_compaction(self, tick_ms: int, flush_ms: int) -> None:
        self.events.append("start_compaction")

    def stop_compaction(self) -> None:
        self.events.append("stop_compaction")

    def compact(self) -> Any:
        self.events.append("compact")
        report = {"log": None, "packs": None}
        return type("Report", (), {"to_dict": lambda self: report})()

    def close(self) -> None:
        self.events.append("vault.close")

    def bootstrap_report(self) -> dict[str, Any]:
        return {
            "torn_bytes_cut": 0,
            "removed_torn_log_file": None,
            "bad_snapshots": [],
            "orphans_reclaimed": [],
        }


def serve(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    events: list[str],
    *,
    read_only: bool = False,
    compact: bool = False,
    init_fails: bool = False,
    main_fails: bool = False,
) -> list[str]:
    """Run serve() with pyfuse3 and the vault recorded into ``events``."""
    ops_seen: list[Any] = []

    def init(ops: Any, mountpoint: str, options: set[str]) -> None:
        ops_seen.append(ops)
        if init_fails:
            # As libfuse and fusermount3 do: the reason on fd 2, then failure.
            os.write(2, b"fuse: mounting failed\nfusermount3: the reason it gives\n\n")
            raise RuntimeError("fuse_session_mount failed")
        events.append("pyfuse3.init")

    async def main() -> None:
        events.append("pyfuse3.main")
        await trio.lowlevel.checkpoint()
        ops_seen[0].control.compact_at_unmount = compact
        if main_fails:
            raise ValueError("the loop crashed")

    def close(unmount: bool = True) -> None:
        events.append(f"pyfuse3.close(unmount={unmount})")

    monkeypatch.setattr(pyfuse3, "init", init)
    monkeypatch.setattr(pyfuse3, "main", main)
    monkeypatch.setattr(pyfuse3, "close", close)
    monkeypatch.setattr(requestloop, "install", lambda: True)
    opts = mount.MountOptions(
        vault_dir=str(tmp_path / "vault"), mountpoint=str(tmp_path / "mnt"), read_only=read_only
    )

    def open_vault() -> Any:
        events.append("open_vault")
        return RecordingVault(events)

    mount.serve(opts, open_vault, on_ready=lambda: events.append("ready"))
    return events


def test_a_normal_end(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    assert serve(monkeypatch, tmp_path, [], compact=True) == [
        "open_vault",
        "pyfuse3.init",
        "start_compaction",
        "ready",
        "pyfuse3.main",
        # The kernel unmounted: the session closes without unmounting, then
        # compaction stops, the vault is compacted as asked, and closed.
        "pyfuse3.close(unmount=False)",
        "stop_compaction",
        "compact",
        "vault.close",
    ]


def test_read_only_neither_starts_compaction_nor_compacts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    assert serve(monkeypatch, tmp_path, [], read_only=True, compact=True) == [
        "open_vault",
        "pyfuse3.init",
        "ready",
        "pyfuse3.main",
        "pyfuse3.close(unmount=False)",
        "stop_compaction",
        "vault.close",
    ]


def test_a_crash_of_the_loop_unmounts_before_anything_else(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    events: list[str] = []
    with pytest.raises(BaseException, match="the loop crashed|multiple|1 sub-exception"):
        serve(monkeypatch, tmp_path, events, compact=True, main_fails=True)
    assert events == [
        "open_vault",
        "pyfuse3.init",
        "start_compaction",
        "ready",
        "pyfuse3.main",
        "pyfuse3.close(unmount=True)",
        "stop_compaction",
        "compact",
        "vault.close",
    ]


def test_a_failed_init_closes_the_vault(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    events: list[str] = []
    stderr_before = os.fstat(2)
    with pytest.raises(control.MountError) as info:
        serve(monkeypatch, tmp_path, events, init_fails=True)
    # The last line fd 2 got quotes the reason (all of it is logged), and fd 2 is back.
    assert (
        str(info.value) == f"cannot mount on {tmp_path / 'mnt'}: fusermount3: the reason it gives"
    )
    assert os.fstat(2).st_ino == stderr_before.st_ino
    # Nothing was mounted or started: no session to close; stopping
    # compaction that never started is a no-op of the engine.
    assert events == ["open_vault", "stop_compaction", "vault.close"]


def test_what_serves_the_mount_failing_to_load_closes_the_vault(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # Loaded beside the open (fusefs.preload): the vault is open by then.
    monkeypatch.setattr(mount, "SERVING_MODULES", (*mount.SERVING_MODULES, "fusefs_no_such"))
    events: list[str] = []
    with pytest.raises(ModuleNotFoundError, match="fusefs_no_such"):
        serve(monkeypatch, tmp_path, events)
    assert events == ["open_vault", "vault.close"]
