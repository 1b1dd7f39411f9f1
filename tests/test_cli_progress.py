"""The progress line (fusefs/cli/progress.py): rendering at 40 and 80 columns,
unknown sizes, resumed runs, the summary; and on a real pseudo-terminal."""

from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import KEY, side_files
from test_cli import MiB, Terminal, interrupt_after_checkpoint

from fusefs.cli.progress import (
    DELAY_SECONDS,
    Progress,
    human_bytes,
    human_duration,
    render_line,
    render_summary,
)

GiB = 2**30
ANSI = re.compile(r"\x1b\[K")


@pytest.mark.parametrize("width", [40, 80, 20, 200])
def test_line_fits_the_width(width: int) -> None:
    for total in (None, 3 * GiB):
        line = render_line("encrypt", GiB, total, 0, 4.0, width)
        assert len(line) <= width - 1, (width, line)


def test_known_size_at_80_columns_has_bar_percent_counts_rate_and_eta() -> None:
    line = render_line("encrypt", GiB, 3 * GiB, 0, 4.0, 80)
    assert line == (
        "encrypt [#########------------------]  33% 1.0 GiB/3.0 GiB 256.0 MiB/s ETA 0:08"
    )
    assert len(line) == 79  # the bar takes what the numbers leave


def test_known_size_at_40_columns_drops_the_bar_keeps_percent_and_eta() -> None:
    line = render_line("encrypt", GiB, 3 * GiB, 0, 4.0, 40)
    assert line == "encrypt  33% ETA 0:08 256.0 MiB/s 1.0 G"[:39]
    assert "[" not in line and "ETA 0:08" in line


def test_unknown_size_is_a_counter_and_a_rate() -> None:
    assert render_line("encrypt", 3 * MiB, None, 0, 2.0, 80) == "encrypt 3.0 MiB 1.5 MiB/s"
    assert render_line("decrypt", 0, None, 0, 0.0, 80) == "decrypt 0 B 0 B/s"


def test_resumed_run_counts_only_its_own_bytes() -> None:
    # Resumed at 2 GiB of 3; 512 MiB more in 2 s: 256 MiB/s and 2 s to go, not 1.25 GiB/s.
    line = render_line("encrypt", 2 * GiB + 512 * MiB, 3 * GiB, 2 * GiB, 2.0, 80)
    assert "83%" in line and "256.0 MiB/s" in line and "ETA 0:02" in line
    assert render_summary("encrypt", 3 * GiB, 2 * GiB, 4.0) == (
        "fusefs: encrypt: 1.0 GiB in 4.0 s (256.0 MiB/s), resumed at 2.0 GiB"
    )


def test_units_and_durations() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1536, 5 * MiB, 3 * GiB)] == [
        "0 B", "1023 B", "1.5 KiB", "5.0 MiB", "3.0 GiB",
    ]  # fmt: skip
    assert [human_duration(s) for s in (0, 7.4, 754, 3723)] == ["0:00", "0:07", "12:34", "1:02:03"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_waits_a_second_then_redraws_in_place_and_sums_up() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress("encrypt", out, clock=clock, width=lambda: 40)
    clock.now += DELAY_SECONDS / 2
    p.update(MiB, None)
    assert out.getvalue() == ""  # a quick run says nothing
    clock.now += DELAY_SECONDS
    p.update(3 * MiB, None)
    clock.now += 1.0
    p.update(5 * MiB, None)
    p.finish()
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # redraws never scroll
    assert "\rencrypt 3.0 MiB" in text and "\rencrypt 5.0 MiB" in text
    assert text.endswith("\r\x1b[Kfusefs: encrypt: 5.0 MiB in 2.5 s (2.0 MiB/s)\n")


def test_quick_run_has_no_summary_and_abort_erases() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress("decrypt", out, clock=clock, width=lambda: 80)
    p.update(10, 10)
    p.finish()
    assert out.getvalue() == ""
    p = Progress("decrypt", out, clock=clock, width=lambda: 80)
    clock.now += 2
    p.update(5, 10)
    p.abort()
    assert out.getvalue().endswith("\r\x1b[K") and "fusefs:" not in out.getvalue()


def test_resumed_progress_says_where_first() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress("encrypt", out, start=GiB, clock=clock, width=lambda: 80)
    clock.now += 2
    p.update(GiB + 512 * MiB, 2 * GiB)
    assert out.getvalue().startswith("fusefs: encrypt: resuming at 1.0 GiB of 2.0 GiB\n\r")


# --- on a pseudo-terminal ------------------------------------------------------------


def drawn_lines(output: bytes) -> list[str]:
    """Each state of the screen's last line: split at CR and LF, escapes removed."""
    return [ANSI.sub("", s) for s in re.split(r"[\r\n]+", output.decode()) if s]


def test_on_a_40_column_terminal_no_redraw_wraps(tmp_path: Path) -> None:
    with open(tmp_path / "plain", "wb") as f:
        f.truncate(1024 * MiB)  # to /dev/null: over a second, so the line shows
    (tmp_path / "key").write_bytes(KEY)
    env_columns = os.environ.pop("COLUMNS", None)
    try:
        t = Terminal(
            "encrypt", "--keyfile", "key", "--threads", "1", "plain", "-", cwd=tmp_path,
            columns=40, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        assert t.finish() == 0, t.output
    finally:
        if env_columns is not None:
            os.environ["COLUMNS"] = env_columns
    lines = drawn_lines(t.output)
    assert any("ETA" in line for line in lines), t.output
    # Every redraw fits; the summary, said once and never redrawn, may wrap.
    assert all(len(line) <= 39 for line in lines[:-1]), lines
    assert lines[-1].startswith("fusefs: encrypt: 1.0 GiB in ")


def test_standard_input_shows_a_counter_after_a_second(tmp_path: Path) -> None:
    """stdin has no size: a byte counter and rate (it showed nothing for 30 s before)."""
    (tmp_path / "key").write_bytes(KEY)
    primary, secondary = os.openpty()
    root = str(Path(__file__).resolve().parent.parent)
    p = subprocess.Popen(
        [sys.executable, "-m", "fusefs", "encrypt", "--keyfile", "key", "-", "enc"],
        stdin=subprocess.PIPE,
        stderr=secondary,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": root},
    )
    os.close(secondary)
    assert p.stdin is not None
    output = b""
    deadline = time.monotonic() + 30
    while b"MiB/s" not in output and time.monotonic() < deadline:
        p.stdin.write(b"\0" * MiB)
        p.stdin.flush()
        if select.select([primary], [], [], 0.05)[0]:
            output += os.read(primary, 4096)
    p.stdin.close()
    assert p.wait(30) == 0
    os.close(primary)
    line = drawn_lines(output)[-1]
    assert re.fullmatch(r"encrypt [\d.]+ (KiB|MiB) [\d.]+ (KiB|MiB)/s", line), output
    assert "ETA" not in line and "%" not in line


def test_resume_says_where_and_rates_this_runs_bytes(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    with open(plain, "wb") as f:
        f.truncate(1536 * MiB)  # what is left after the checkpoint takes over a second
    (tmp_path / "key").write_bytes(KEY)
    enc = tmp_path / "enc"
    interrupt_after_checkpoint(
        ["encrypt", "--keyfile", tmp_path / "key", "--threads", "1", plain, enc],
        side_files(enc)[1],
    )
    t = Terminal(
        "encrypt", "--keyfile", "key", "--threads", "1", "--resume", "plain", "enc", cwd=tmp_path
    )
    assert t.finish() == 0, t.output
    lines = drawn_lines(t.output)
    where = re.fullmatch(r"fusefs: encrypt: resuming at ([\d.]+) MiB of 1\.5 GiB", lines[0])
    assert where is not None, lines
    done = re.fullmatch(
        r"fusefs: encrypt: ([\d.]+) (MiB|GiB) in [\d.]+ s \([\d.]+ MiB/s\), "
        r"resumed at ([\d.]+) MiB",
        lines[-1],
    )
    assert done is not None, lines
    this_run = float(done[1]) * (1024 if done[2] == "GiB" else 1)
    assert abs(this_run + float(done[3]) - 1536) <= 52 and done[3] == where[1]  # 0.1 GiB
