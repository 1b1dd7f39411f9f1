"""The peer benchmarks' machinery (scripts/bench_sync.py, bench_fs.py, peerbench.py).

Not their timings (benchmarks never pass or fail on speed): their option
errors, the ratios of the summary, another checkout run as ``--build``, and a
round of bench_sync on a real mount that counts the daemon's requests right
and leaves no mount behind, also when a workload fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from mounting import fuse_unavailable

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"


@pytest.fixture
def scripts() -> Iterator[tuple[ModuleType, ModuleType]]:
    """(peerbench, bench_sync), imported from scripts/ as the scripts import each other."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        import bench_sync
        import peerbench

        yield peerbench, bench_sync
    finally:
        sys.path.remove(str(SCRIPTS))


@pytest.mark.parametrize("script", ["bench_sync.py", "bench_fs.py"])
@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--fs", "nofs"], "unknown file system 'nofs'"),
        (["--build", "x=/"], "has no fusefs/ package"),
        (["--build", "x"], "expected NAME=REPO_DIR"),
        (["--runs", "0"], "must be at least 1"),
        (["--where", "mars"], "invalid choice: 'mars'"),
        (["--disk-dir", "{file}/sub", "--where", "disk"], "cannot create the work directory"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    script: str, options: list[str], says: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = [o.replace("{file}", str(blocker)) for o in options]
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and says in lines[0], done.stderr


def test_ratio_says_how_many_times_better(scripts: tuple[ModuleType, ModuleType]) -> None:
    peerbench, _ = scripts
    assert peerbench.Column("MB/s", True).ratio(300.0, 200.0) == 1.5
    assert peerbench.Column("µs", False).ratio(300.0, 150.0) == 0.5


def test_summary_compares_every_build_with_the_best_peer(
    scripts: tuple[ModuleType, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    peerbench, _ = scripts
    columns = [peerbench.Column("lat µs", False), peerbench.Column("IOPS", True)]
    rows = {
        "fusefs": [[100.0, 900.0], [120.0, 1100.0]],
        "peer1": [[50.0, 2000.0], [60.0, 2200.0]],
        "peer2": [[200.0, 3000.0], [400.0, 3300.0]],
        "after": [[40.0, 4000.0]],
    }
    peerbench.summarise("t", columns, rows, ["fusefs", "after"])
    fusefs, after = capsys.readouterr().out.split("after vs the best peer")
    # latency: 50 / 100 fastest, 55 / 110 median (peer1); IOPS: 1100 / 3300, 1000 / 3150 (peer2)
    assert re.search(r"lat µs +0\.50 / +0\.50 +\(best peer: peer1\)", fusefs)
    assert re.search(r"IOPS +0\.33 / +0\.32 +\(best peer: peer2\)", fusefs)
    # a build is compared with the peers only, not with fusefs: 50 / 40, 55 / 40
    assert re.search(r"lat µs +1\.25 / +1\.38 +\(best peer: peer1\)", after)


def test_a_build_runs_its_own_checkout_from_anywhere(
    scripts: tuple[ModuleType, ModuleType], tmp_path: Path
) -> None:
    peerbench, _ = scripts
    decoy = tmp_path / "fusefs"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise SystemExit('the wrong fusefs')\n")
    build = peerbench.Build("mine", REPO)
    with build.on_path() as env:
        where = subprocess.run(
            ["sh", "-c", 'fusefs --help >/dev/null && head -2 "$(command -v fusefs)"'],
            env=env,
            cwd=tmp_path,  # a fusefs/ here must not be the one imported
            capture_output=True,
            text=True,
        )
    assert where.returncode == 0, where.stderr
    assert "-m fusefs" in where.stdout


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    reason = fuse_unavailable()
    if reason is not None:
        pytest.skip(reason)
    if shutil.which("fio") is None:
        pytest.skip("fio is not installed")
    if not list((REPO / "fusefs").glob("_native*.so")):
        pytest.skip("the native module is not built")
    return tmp_path


def tiny(fsync_count: int = 10) -> argparse.Namespace:
    return argparse.Namespace(
        fsync_count=fsync_count, fio_size_mb=4, fio_runtime=0.5, seq_mb=1, sqlite_count=10
    )


def mounted_points() -> set[str]:
    with open("/proc/mounts") as mounts:
        return {line.split()[1] for line in mounts}


def test_a_round_counts_the_requests_of_each_workload_and_unmounts(
    scripts: tuple[ModuleType, ModuleType], work_dir: Path
) -> None:
    peerbench, bench_sync = scripts
    fs = bench_sync.Fusefs("mine", peerbench.Build("mine", REPO))
    where = peerbench.Location("here", work_dir)
    figures, requests = bench_sync.one_round(fs, where, tiny(fsync_count=12))
    assert len(figures) == len(bench_sync.COLUMNS) and all(x > 0 for x in figures)
    assert list(requests) == ["fsync4k", "randwrite", "seq8k", "sqlite"]
    # each of the 12 appends is flushed by its own fsync
    assert requests["fsync4k"]["fsync"] == 12
    assert requests["fsync4k"]["write"] == 12
    assert requests["sqlite"]["fsync"] >= 10
    assert str(work_dir / "sync-mine.mnt") not in mounted_points()
    assert os.listdir(work_dir) == []


def test_a_failing_workload_still_unmounts(
    scripts: tuple[ModuleType, ModuleType], work_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peerbench, bench_sync = scripts

    def broken(mnt: Path, size_mb: int) -> float:
        raise bench_sync.BenchError("seq8k broke")

    monkeypatch.setattr(bench_sync, "seq8k", broken)
    fs = bench_sync.Fusefs("mine", peerbench.Build("mine", REPO))
    with pytest.raises(bench_sync.BenchError, match="seq8k broke"):
        bench_sync.one_round(fs, peerbench.Location("here", work_dir), tiny())
    assert str(work_dir / "sync-mine.mnt") not in mounted_points()
    assert os.listdir(work_dir) == []


# --- bench_fuse_floor.py: the pyfuse3 floor (nullfs) ------------------------------------------


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--fs", "nofs"], "unknown file system 'nofs'"),
        (["--build", "x"], "expected NAME=REPO_DIR"),
        (["--runs", "0"], "must be at least 1"),
        (["--fsync-count", "0"], "must be at least 1"),
        (["--runs", "many"], "invalid int value: 'many'"),
    ],
)
def test_floor_bad_options_are_one_line_and_exit_2(options: list[str], says: str) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_fuse_floor.py"), *options],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and says in lines[0], done.stderr


@pytest.fixture
def floor() -> Iterator[ModuleType]:
    """bench_fuse_floor, imported from scripts/ as the scripts import each other."""
    reason = fuse_unavailable()
    if reason is not None:
        pytest.skip(reason)
    sys.path.insert(0, str(SCRIPTS))
    try:
        import bench_fuse_floor

        yield bench_fuse_floor
    finally:
        sys.path.remove(str(SCRIPTS))


def test_nullfs_answers_every_fsync_and_counts_the_requests(
    floor: ModuleType, tmp_path: Path
) -> None:
    mnt, proc = floor.mount("nullfs", tmp_path, {})
    try:
        fd = os.open(mnt / "f", os.O_WRONLY | os.O_CREAT, 0o644)
        dfd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.write(fd, b"x" * 4096)
            counting = floor.Counting(mnt, True)
            for _ in range(4):
                os.fsync(fd)
            for _ in range(3):
                os.fsync(dfd)
            counting.stop("fsyncs")
        finally:
            os.close(fd)
            os.close(dfd)
    finally:
        floor.unmount("nullfs", mnt, proc, {})
    ops = counting.per_workload["fsyncs"]
    # Answered, not ENOSYS: the kernel sends every one of them (with ENOSYS it
    # would have stopped after the first of each kind). Reading the counts
    # (getxattr) is not counted.
    assert ops.get("fsync") == 4 and ops.get("fsyncdir") == 3, ops
    assert "getxattr" not in ops, ops
    assert str(mnt) not in mounted_points()


def test_a_failing_round_is_left_out_and_the_rest_kept(
    floor: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def one(fs: str, count: bool) -> tuple[list[float], dict[str, dict[str, int]]]:
        if fs == "broken":
            raise floor.RoundFailed(f"{fs}.mnt did not come up")
        return [1.0, 2.0], ({"untar": {"create": 3}} if count else {})

    results, counts = floor.run_rounds(["nullfs", "broken"], 3, one, tmp_path)
    assert results == {"nullfs": [[1.0, 2.0]] * 3, "broken": []}
    assert counts == {"nullfs": {"untar": {"create": 3}}}, "counted in the last round only"
    assert capsys.readouterr().err.count("broken failed, left out") == 3
