"""fusefs.requestloop: pyfuse3's trio primitives with a fast path, off a mount.

The mount tests run every request through these primitives; here each
promise is checked on its own with a pipe standing in for the FUSE device.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path

import pyfuse3
import pytest
import trio
import trio.testing

from fusefs import requestloop


@pytest.fixture
def pipe():  # type: ignore[no-untyped-def]
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


def test_queued_request_is_taken_without_yielding(pipe) -> None:  # type: ignore[no-untyped-def]
    r, w = pipe
    os.write(w, b"x")
    ran: list[int] = []

    async def main() -> None:
        requestloop._readiness.streak = 0
        async with trio.open_nursery() as n:
            n.start_soon(lambda: _append(ran))
            await requestloop.wait_readable(r)
            # Not one scheduler pass: the other task has not started.
            assert ran == []

    trio.run(main)
    assert ran == [1]


async def _append(ran: list[int]) -> None:
    ran.append(1)


def test_other_tasks_run_at_least_every_max_streak_requests(pipe) -> None:  # type: ignore[no-untyped-def]
    """An always-readable device must not starve the rest of the loop."""
    r, w = pipe
    os.write(w, b"x")
    calls = 10 * requestloop.MAX_STREAK
    ticks_at_call: list[int] = []
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async def main() -> None:
        async with trio.open_nursery() as n:
            n.start_soon(ticker)
            await trio.lowlevel.checkpoint()
            for _ in range(calls):
                await requestloop.wait_readable(r)
                ticks_at_call.append(ticks)
            n.cancel_scope.cancel()

    trio.run(main)
    # Trio runs each runnable task once per batch, and the loop's slices on
    # both sides of a batch boundary can be adjacent: two streaks at most.
    longest_run = max(len(run) for run in _runs_of_equal(ticks_at_call))
    assert longest_run <= 2 * (requestloop.MAX_STREAK + 1)
    assert ticks_at_call[-1] >= calls // (2 * (requestloop.MAX_STREAK + 1))


def _runs_of_equal(values: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for v in values:
        if runs and runs[-1][-1] == v:
            runs[-1].append(v)
        else:
            runs.append([v])
    return runs


def test_waits_through_trio_when_nothing_is_queued(pipe) -> None:  # type: ignore[no-untyped-def]
    r, w = pipe
    order: list[str] = []

    async def writer() -> None:
        await trio.sleep(0.05)
        order.append("written")
        os.write(w, b"x")

    async def main() -> None:
        async with trio.open_nursery() as n:
            n.start_soon(writer)
            with trio.fail_after(5):
                await requestloop.wait_readable(r)
            order.append("readable")

    trio.run(main)
    assert order == ["written", "readable"]


def test_read_lock_free_is_taken_without_yielding_and_held_lock_waits() -> None:
    events: list[str] = []

    async def main() -> None:
        lock = requestloop.ReadLock()

        async def other() -> None:
            events.append("other starts")
            async with lock:
                events.append("other has the lock")

        async with trio.open_nursery() as n:
            n.start_soon(other)
            async with lock:
                events.append("main has the lock")
                await trio.sleep(0.01)  # other starts and must wait
                events.append("main releases")

    trio.run(main)
    assert events == ["main has the lock", "other starts", "main releases", "other has the lock"]


def _trio_names_used_by_pyfuse3() -> set[str]:
    """Every ``trio.X.Y`` the installed pyfuse3's code uses, from its shipped sources.

    pyfuse3 3.5 ships its Cython sources (``__init__.pyx``, ``*.pxi``) beside
    the compiled module, and ``_pyfuse3.py``/``asyncio.py``. Comments and
    docstrings are left out: a name in prose (``trio.run_sync_in_worker_thread``
    in a docstring of 3.5) is not a use.
    """
    package = Path(pyfuse3.__file__).parent
    cython = sorted([*package.glob("*.pyx"), *package.glob("*.pxi")])
    if not cython:
        pytest.skip(f"pyfuse3 {pyfuse3.__version__} ships no .pyx/.pxi sources to read")
    names: set[str] = set()
    for source in [*cython, *sorted(package.glob("*.py"))]:
        text = re.sub(r"'''.*?'''|\"\"\".*?\"\"\"", "", source.read_text(), flags=re.S)
        text = re.sub(r"#.*", "", text)
        names.update(re.findall(r"(?<![\w.])trio((?:\.\w+)+)", text))
    return {name.lstrip(".") for name in names}


def test_provides_everything_pyfuse3_takes_from_trio() -> None:
    """pyfuse3 reaches trio only as ``pyfuse3.trio``; every name it uses must resolve.

    The names are read from the installed pyfuse3's own sources, so a new
    pyfuse3 that uses a new trio name fails here rather than in a daemon.
    """
    used = _trio_names_used_by_pyfuse3()
    # The scan sees the two primitives the fast path replaces (else it is blind).
    assert {"Lock", "lowlevel.wait_readable"} <= used, used
    ns = requestloop.trio_for_pyfuse3()
    for dotted in sorted(used):
        ours: object = ns
        theirs: object = trio
        for part in dotted.split("."):
            assert hasattr(ours, part), f"trio.{dotted} is used by pyfuse3 but not provided"
            ours, theirs = getattr(ours, part), getattr(theirs, part)
        if dotted not in ("Lock", "lowlevel", "lowlevel.wait_readable"):
            assert ours is theirs, f"trio.{dotted} does not fall through to trio"
    shim = Path(pyfuse3.__file__).parent / "asyncio.py"
    if shim.exists():
        enable = shim.read_text()
        assert re.search(r"pyfuse3\.trio\s*=", enable), "pyfuse3 no longer swaps trio this way"


def test_every_other_trio_name_falls_through() -> None:
    ns = requestloop.trio_for_pyfuse3()
    assert ns.Lock is requestloop.ReadLock
    assert ns.lowlevel.wait_readable is requestloop.wait_readable
    # Names pyfuse3 3.5 does not use, at both levels, are trio's own.
    assert ns.sleep is trio.sleep and ns.Event is trio.Event
    assert ns.to_thread.run_sync is trio.to_thread.run_sync
    assert ns.lowlevel.checkpoint is trio.lowlevel.checkpoint
    assert ns.lowlevel.current_task is trio.lowlevel.current_task
    with pytest.raises(AttributeError):
        ns.no_such_name  # noqa: B018
    with pytest.raises(AttributeError):
        ns.lowlevel.no_such_name  # noqa: B018


def test_unverified_pyfuse3_keeps_its_own_loop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = pyfuse3.trio
    monkeypatch.delenv("FUSEFS_REQUEST_LOOP", raising=False)
    monkeypatch.setattr(pyfuse3, "__version__", "3.6.0")
    try:
        with caplog.at_level(logging.WARNING, logger="fusefs.requestloop"):
            assert requestloop.install() is False
        assert pyfuse3.trio is original
        assert [r.getMessage() for r in caplog.records] == [
            "pyfuse3 3.6.0: the fast request loop was verified on pyfuse3 3.5 only; "
            "running pyfuse3's own loop"
        ]
    finally:
        pyfuse3.trio = original


def test_verified_versions() -> None:
    assert requestloop.verified("3.5.0") and requestloop.verified("3.5.2")
    assert requestloop.verified("3.5")
    assert not requestloop.verified("3.4.0") and not requestloop.verified("3.50.0")
    assert not requestloop.verified("3.6.0") and not requestloop.verified("4.0")


def test_install_and_opt_out(monkeypatch: pytest.MonkeyPatch) -> None:
    original = pyfuse3.trio
    try:
        monkeypatch.setenv("FUSEFS_REQUEST_LOOP", "trio")
        assert requestloop.install() is False
        assert pyfuse3.trio is original
        monkeypatch.delenv("FUSEFS_REQUEST_LOOP")
        assert requestloop.install() is True
        assert pyfuse3.trio.lowlevel.wait_readable is requestloop.wait_readable
    finally:
        pyfuse3.trio = original


def _timed_wait(r: int, write_after: float, *, dense: bool, writer: str) -> tuple[float, int]:
    """Seconds wait_readable took with the pipe written to after ``write_after``
    (by a thread, or by a trio task), and how many requests it took without trio."""
    rs = requestloop._readiness
    out: list[float] = []

    async def main() -> None:
        rs.streak, rs.dense = 0, dense
        async with trio.open_nursery() as n:
            if writer == "task":

                async def write_later() -> None:
                    await trio.sleep(write_after)
                    os.write(_w[0], b"x")

                n.start_soon(write_later)
                await trio.testing.wait_all_tasks_blocked()  # the writer is asleep
            else:
                threading.Timer(write_after, lambda: os.write(_w[0], b"x")).start()
            t0 = time.perf_counter()
            await requestloop.wait_readable(r)
            out.append(time.perf_counter() - t0)

    trio.run(main)
    os.read(r, 1)
    return out[0], rs.streak


_w: list[int] = [-1]


@pytest.fixture
def long_spin(pipe, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(requestloop, "SPIN_US", 200_000)
    _w[0] = pipe[1]
    return pipe[0]


def test_spins_for_a_request_a_thread_sends_soon_when_requests_are_dense(long_spin) -> None:  # type: ignore[no-untyped-def]
    took, streak = _timed_wait(long_spin, 0.02, dense=True, writer="thread")
    assert took < 0.15 and streak == 1  # caught while spinning, not through trio


def test_does_not_spin_when_requests_are_sparse(long_spin) -> None:  # type: ignore[no-untyped-def]
    took, streak = _timed_wait(long_spin, 0.02, dense=False, writer="thread")
    assert took < 0.15 and streak == 0  # slept through trio


def test_does_not_spin_while_work_is_out_in_a_thread(long_spin, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(requestloop.in_flight, "count", 1)
    took, streak = _timed_wait(long_spin, 0.02, dense=True, writer="thread")
    assert took < 0.15 and streak == 0


def test_never_spins_past_another_tasks_timer(long_spin) -> None:  # type: ignore[no-untyped-def]
    # The writer is a trio task asleep until 20 ms: spinning the full 200 ms
    # would hold it up; the spin ends at its timer instead.
    took, _ = _timed_wait(long_spin, 0.02, dense=True, writer="task")
    assert took < 0.15


def test_spin_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for text, want in (("0", 0), ("250", 250), ("", 100), ("fast", 100), ("-5", 100)):
        monkeypatch.setenv("FUSEFS_REQUEST_SPIN_US", text)
        assert requestloop._spin_us_from_env() == want, text
