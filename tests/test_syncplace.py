"""Where an fsync runs (fusefs.syncplace): inline while syncs are quick, else in a worker."""

from __future__ import annotations

import time

import pytest

from fusefs.syncplace import INLINE_MAX_SECONDS, WEIGHT, SyncPlacement


def test_quick_syncs_run_inline() -> None:
    p = SyncPlacement()
    assert p.inline
    for _ in range(20):
        assert p.timed(lambda: 7) == 7
    assert p.inline
    assert p.average < INLINE_MAX_SECONDS


def test_one_slow_sync_moves_syncs_to_a_worker_and_quick_ones_bring_them_back() -> None:
    p = SyncPlacement()
    p.timed(time.sleep, INLINE_MAX_SECONDS / WEIGHT * 2)
    assert not p.inline
    quick = 0
    while not p.inline:
        p.note(0.0)
        quick += 1
    # The average decays by (1 - WEIGHT) per quick sync: a handful, not one.
    assert 3 <= quick <= 40


def test_a_failing_sync_is_timed_and_raises() -> None:
    p = SyncPlacement()

    def slow_failure() -> None:
        time.sleep(INLINE_MAX_SECONDS / WEIGHT * 2)
        raise OSError(5, "EIO")

    with pytest.raises(OSError):
        p.timed(slow_failure)
    assert not p.inline
