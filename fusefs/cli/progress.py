"""The progress line of ``encrypt``/``decrypt`` on a terminal, and its summary.

One line on stderr, redrawn in place (``\\r`` and erase-to-end), never wider
than the terminal less one column (a line that fills the last column wraps,
and each redraw would then scroll a new line). It appears only once a run has
lasted :data:`DELAY_SECONDS`, so quick runs print nothing; a run that showed it
ends with one summary line (bytes, time, rate). A known size gives a bar, a
percentage and an ETA; an unknown one (standard input) a byte counter and rate.

After ``--resume`` the run starts at the checkpoint's offset: the line says
where, and rate and ETA count only the bytes processed by this run.

The caller decides whether there is a terminal and whether ``-q`` was given;
:class:`Progress` only draws. Pure rendering is in :func:`render_line` and
:func:`render_summary` so it is tested without a terminal.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import IO

#: A run shorter than this shows no progress line (and no summary).
DELAY_SECONDS = 1.0
#: The bar's width is what the terminal leaves, but within these bounds.
BAR_MIN, BAR_MAX = 10, 30
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(n: float) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 GiB``: binary units, one decimal above bytes."""
    for unit in _UNITS:
        if abs(n) < 1024 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    """``0:07``, ``12:34``, ``1:02:03``."""
    s = max(int(seconds + 0.5), 0)
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def rate_of(done: int, start: int, elapsed: float) -> float:
    """Bytes per second of this run: what it processed (``done - start``) over its time."""
    return max(done - start, 0) / elapsed if elapsed > 0 else 0.0


def render_line(
    label: str, done: int, total: int | None, start: int, elapsed: float, width: int
) -> str:
    """The progress line for ``width`` columns: at most ``width - 1`` characters.

    ``total`` None is an unknown size; ``start`` is where this run began (the
    resume offset, else 0).
    """
    rate = rate_of(done, start, elapsed)
    speed = f"{human_bytes(rate)}/s"
    if total is None:
        parts = [label, human_bytes(done), speed]
        return _fit(" ".join(parts), width)
    fraction = min(done / total, 1.0) if total > 0 else 1.0
    eta = f"ETA {human_duration((total - done) / rate)}" if rate > 0 else "ETA --:--"
    counts = f"{human_bytes(done)}/{human_bytes(total)}"
    tail = f"{fraction:4.0%} {counts} {speed} {eta}"
    room = width - 1 - len(label) - len(tail) - 4  # spaces and brackets
    if room >= BAR_MIN:
        cells = min(room, BAR_MAX)
        filled = int(fraction * cells)
        return f"{label} [{'#' * filled}{'-' * (cells - filled)}] {tail}"
    # No room for a bar: the numbers that matter most first.
    return _fit(f"{label} {fraction:4.0%} {eta} {speed} {counts}", width)


def render_summary(label: str, done: int, start: int, elapsed: float) -> str:
    """The final line: what this run processed, in what time, at what rate."""
    line = (
        f"fusefs: {label}: {human_bytes(done - start)} in {elapsed:.1f} s "
        f"({human_bytes(rate_of(done, start, elapsed))}/s)"
    )
    if start:
        line += f", resumed at {human_bytes(start)}"
    return line


def render_resumed(label: str, start: int, total: int | None) -> str:
    """Said once when a run resumes: from where."""
    of = f" of {human_bytes(total)}" if total else ""
    return f"fusefs: {label}: resuming at {human_bytes(start)}{of}"


def _fit(text: str, width: int) -> str:
    return text[: max(width - 1, 1)]


def terminal_width(stream: IO[str]) -> int:
    """The columns of the terminal ``stream`` is (``COLUMNS`` first, as shutil does)."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        columns = 0
    return columns or shutil.get_terminal_size().columns


class Progress:
    """Draws the progress of one run on ``stream`` (a terminal: the caller checks).

    Call :meth:`update` as often as convenient (it draws at most every
    :data:`REDRAW_SECONDS`) and :meth:`finish` or :meth:`abort` once.
    """

    REDRAW_SECONDS = 0.1

    def __init__(
        self,
        label: str,
        stream: IO[str],
        *,
        start: int = 0,
        clock: Callable[[], float] = time.monotonic,
        width: Callable[[], int] | None = None,
    ) -> None:
        self.label = label
        self.stream = stream
        self.start = start
        self.clock = clock
        self.width = width if width is not None else (lambda: terminal_width(stream))
        self.began = clock()
        self.drawn_at: float | None = None
        self.done = start
        self.total: int | None = None

    def update(self, done: int, total: int | None) -> None:
        """Record ``done`` bytes of ``total`` (None or 0: unknown) and maybe redraw."""
        self.done, self.total = done, total or None
        now = self.clock()
        if now - self.began < DELAY_SECONDS:
            return
        if self.drawn_at is not None and now - self.drawn_at < self.REDRAW_SECONDS:
            return
        if self.drawn_at is None and self.start:
            self._write(render_resumed(self.label, self.start, self.total) + "\n")
        self.drawn_at = now
        line = render_line(self.label, done, self.total, self.start, now - self.began, self.width())
        self._write(f"\r{line}\x1b[K")

    def finish(self) -> None:
        """The run succeeded: replace the line by the summary (if a line was shown)."""
        if self.drawn_at is None:
            return
        elapsed = self.clock() - self.began
        summary = render_summary(self.label, self.done, self.start, elapsed)
        self._write(f"\r\x1b[K{summary}\n")  # said once: may wrap, never redrawn

    def abort(self) -> None:
        """The run failed: erase the line, so the error is the last thing said."""
        if self.drawn_at is not None:
            self._write("\r\x1b[K")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
