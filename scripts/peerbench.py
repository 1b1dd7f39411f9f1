"""What the peer benchmarks (``bench_fs.py``, ``bench_sync.py``) share.

Where the vaults live (``--where tmpfs|disk|both``, ``--disk-dir``), the other
fusefs checkouts run beside the installed one (``--build NAME=REPO_DIR``: how a
"before" and an "after" build are measured back to back in one run), one-line
errors for bad options, installing missing peers, and the summary tables
(fastest / median over interleaved rounds, and each fusefs build against the
best peer). Not a test; a helper module of the scripts in this directory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

TMPFS_DIR = Path("/dev/shm/peerbench")
#: Under the machine's root disk (/tmp is often a tmpfs; /var/tmp is not).
DISK_DIR = Path("/var/tmp/peerbench")
WHERE = ("tmpfs", "disk", "both")


def fail(message: str, code: int = 2) -> NoReturn:
    """Bad input ends the run with one line on stderr, never a traceback."""
    print(f"{Path(sys.argv[0]).name}: {message}", file=sys.stderr)
    sys.exit(code)


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block in front)."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see --help)")


def add_common_options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--runs", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument(
        "--where",
        choices=WHERE,
        default="both",
        help=f"vault on tmpfs ({TMPFS_DIR}), on the disk (--disk-dir), or both (default)",
    )
    ap.add_argument(
        "--disk-dir",
        type=Path,
        default=DISK_DIR,
        help=f"work directory on the disk (default {DISK_DIR})",
    )
    add_build_option(ap)


def add_build_option(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--build",
        action="append",
        default=[],
        metavar="NAME=REPO_DIR",
        help="also run the fusefs of another checkout, labelled NAME (repeatable)",
    )


# --- where the vaults live ------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """A work directory for vaults and mount points: ``tmpfs`` or ``disk``."""

    name: str
    work_dir: Path

    @property
    def title(self) -> str:
        return f"vault on {self.name} ({self.work_dir}, {fstype_of(self.work_dir)})"


def fstype_of(path: Path) -> str:
    """The type of the file system holding ``path`` (the longest mount prefix)."""
    best, fstype = "", "?"
    real = os.path.realpath(path)
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            point = fields[1].replace("\\040", " ")
            inside = real == point or real.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, fstype = point, fields[2]
    return fstype


def locations(where: str, disk_dir: Path) -> list[Location]:
    """The work directories ``--where`` asks for, created; a one-line error if one cannot be."""
    chosen = []
    if where in ("tmpfs", "both"):
        chosen.append(Location("tmpfs", TMPFS_DIR))
    if where in ("disk", "both"):
        chosen.append(Location("disk", disk_dir.resolve()))
    for loc in chosen:
        try:
            loc.work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            fail(f"cannot create the work directory {loc.work_dir}: {e.strerror}")
        if not os.access(loc.work_dir, os.W_OK | os.X_OK):
            fail(f"the work directory {loc.work_dir} is not writable")
    if len(chosen) == 2 and fstype_of(chosen[1].work_dir) == "tmpfs":
        print(f"warning: {chosen[1].work_dir} is on a tmpfs, not a disk", file=sys.stderr)
    return chosen


# --- other fusefs checkouts -----------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    """A fusefs checkout run as ``python3 -m fusefs`` from its own directory."""

    name: str
    repo: Path

    def env(self) -> dict[str, str]:
        """The environment that makes ``python3 -m fusefs`` this checkout's fusefs.

        PYTHONSAFEPATH keeps the current directory out of sys.path, so a run
        started inside another checkout still imports this one."""
        return dict(os.environ, PYTHONPATH=str(self.repo), PYTHONSAFEPATH="1")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "fusefs"]

    @contextlib.contextmanager
    def on_path(self) -> Iterator[dict[str, str]]:
        """An environment whose ``fusefs`` on PATH is this checkout (for peers.sh)."""
        with tempfile.TemporaryDirectory(prefix=f"fusefs-{self.name}-") as tmp:
            wrapper = Path(tmp) / "fusefs"
            wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m fusefs "$@"\n')
            wrapper.chmod(0o755)
            env = self.env()
            env["PATH"] = f"{tmp}:{env.get('PATH', '')}"
            yield env


def parse_builds(specs: Sequence[str], taken: Sequence[str]) -> list[Build]:
    """``NAME=REPO_DIR`` options as builds; a one-line error for a bad one."""
    builds: list[Build] = []
    names = set(taken)
    for spec in specs:
        name, sep, repo_text = spec.partition("=")
        if not sep or not name or not repo_text:
            fail(f"--build {spec!r}: expected NAME=REPO_DIR")
        if name in names:
            fail(f"--build {spec!r}: the name {name!r} is already taken")
        repo = Path(repo_text).expanduser().resolve()
        if not (repo / "fusefs" / "__init__.py").is_file():
            fail(f"--build {spec!r}: {repo} has no fusefs/ package")
        if not list((repo / "fusefs").glob("_native*.so")):
            fail(f"--build {spec!r}: {repo}/fusefs has no native module (build or copy it)")
        build = Build(name, repo)
        check = subprocess.run(
            [*build.command(), "--help"], env=build.env(), cwd=repo, capture_output=True
        )
        if check.returncode != 0:
            last = (check.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
            fail(f"--build {spec!r}: python3 -m fusefs does not run there: {last}")
        names.add(name)
        builds.append(build)
    return builds


def ensure_installed(packages: Sequence[str]) -> None:
    """Install the Debian packages whose command of the same name is missing."""
    missing = [p for p in packages if shutil.which(p) is None]
    if missing:
        print(f"installing {' '.join(missing)} ...", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        done = subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env)
        if done.returncode != 0:
            fail(f"could not install {' '.join(missing)} (apt-get install failed)", 1)


# --- the summary ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    higher_is_better: bool

    def best(self, values: Sequence[float]) -> float:
        return max(values) if self.higher_is_better else min(values)

    def ratio(self, ours: float, peer: float) -> float:
        """How many times better fusefs is than the peer (> 1: fusefs is better)."""
        num, den = (ours, peer) if self.higher_is_better else (peer, ours)
        return num / den if den else float("inf")


def summarise(
    title: str, columns: Sequence[Column], rows: dict[str, list[list[float]]], ours: Sequence[str]
) -> None:
    """One table: fastest / median of every column per file system (a row per
    round in ``rows[fs]``), then each of ``ours`` against the best other one."""
    width = max(22, *(len(c.name) + 2 for c in columns))
    print(f"\n{title}")
    print(f"{'fs':<10}" + "".join(f"{c.name:>{width}}" for c in columns))
    print(f"{'':<10}" + "".join(f"{'fastest / median':>{width}}" for _ in columns))
    summary: dict[str, list[tuple[float, float]]] = {}
    for fs, runs in rows.items():
        if not runs:
            print(f"{fs:<10} (no successful run)")
            continue
        cols = list(zip(*runs, strict=True))
        summary[fs] = [
            (c.best(v), statistics.median(v)) for c, v in zip(columns, cols, strict=True)
        ]
        cells = "".join(f"{b:>{width - 10}.2f} / {m:<7.2f}" for b, m in summary[fs])
        print(f"{fs:<10}{cells}")
    peers = [fs for fs in summary if fs not in ours]
    for mine in (fs for fs in ours if fs in summary):
        if not peers:
            break
        print(f"\n{mine} vs the best peer (> 1.00: {mine} is better), fastest / median:")
        for k, col in enumerate(columns):
            ours_best, ours_median = summary[mine][k]
            peer_best = col.best([summary[p][k][0] for p in peers])
            peer_median = col.best([summary[p][k][1] for p in peers])
            who = next(p for p in peers if summary[p][k][0] == peer_best)
            print(
                f"  {col.name:<16} {col.ratio(ours_best, peer_best):5.2f} / "
                f"{col.ratio(ours_median, peer_median):5.2f}   (best peer: {who})"
            )


def unmount_leftovers(points: Sequence[Path]) -> None:
    """Detach whatever is still mounted on ``points`` (after an error or Ctrl-C)."""
    mounted = set()
    with open("/proc/mounts") as mounts:
        for line in mounts:
            mounted.add(line.split()[1].replace("\\040", " "))
    for point in points:
        if str(point) in mounted:
            print(f"unmounting the leftover mount {point}", file=sys.stderr)
            subprocess.run(["fusermount3", "-u", "-z", str(point)], capture_output=True)
