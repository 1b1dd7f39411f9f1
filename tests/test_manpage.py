"""The manual pages: made from the CLI's own help, current, rendering, found by man(1).

scripts/make_manpage.py writes wheel-data/data/share/man/man1/*.1 from the
click commands; the pages are committed and shipped in the wheel's data
(pyproject.toml), so these tests hold them to the CLI.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from fusefs.cli import cli

REPO = Path(__file__).resolve().parent.parent
MAN_DIR = REPO / "wheel-data" / "data" / "share" / "man" / "man1"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_manpage", REPO / "scripts/make_manpage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render(page: Path) -> str:
    """The page as man(1) shows it (groff's warnings fail the test)."""
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed (Debian package groff-base)")
    done = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-P-cbou", str(page)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stderr == "", done.stderr
    # Undo the hyphenation and the Unicode hyphen groff writes at line ends.
    return re.sub(r"[\u2010-]\n\s+", "", done.stdout).replace("\u2010", "-").replace("\u2212", "-")


def test_the_committed_pages_are_what_the_cli_makes() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_manpage.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in MAN_DIR.glob("*.1")) == sorted(
        ["fusefs.1", *(f"fusefs-{name}.1" for name in cli.commands)]
    )


def test_check_catches_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = load_generator()
    for page in MAN_DIR.glob("*.1"):
        shutil.copy(page, tmp_path / page.name)
    monkeypatch.setattr(generator, "MAN_DIR", tmp_path)
    assert generator.main(["--check"]) == 0
    page = tmp_path / "fusefs-mount.1"
    page.write_text(page.read_text().replace("\\-\\-idle", "\\-\\-idle\\-time"))
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 0  # regenerating mends it
    assert generator.main(["--check"]) == 0


def test_main_page_renders_and_lists_every_command() -> None:
    text = render(MAN_DIR / "fusefs.1")
    assert text.startswith("FUSEFS(1)")
    for name, command in cli.commands.items():
        assert f"fusefs-{name}(1)" in text
        assert " ".join(command.get_short_help_str(limit=200).split()) in " ".join(text.split())
    assert "fusefs VAULT MNT -o OPTIONS" in text
    for code in ("0", "2", "7", "130"):
        assert re.search(rf"^\s+{code}\s+\S", text, re.M)


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_command_page_renders_with_every_option(name: str) -> None:
    command = cli.commands[name]
    text = render(MAN_DIR / f"fusefs-{name}.1")
    assert text.startswith(f"FUSEFS-{name.upper()}(1)")
    flat = " ".join(text.split())
    assert f"fusefs {name} [OPTIONS]" in flat
    for param in command.params:
        for opt in [*param.opts, *param.secondary_opts]:
            if opt.startswith("-"):
                assert re.search(rf"(^|[ ,]){re.escape(opt)}\b", flat), opt
            else:
                assert (param.metavar or opt.upper()) in flat  # an argument: in the synopsis
        help_text = getattr(param, "help", None)
        if help_text:
            assert " ".join(help_text.split())[:40] in flat


def test_pages_ship_as_wheel_data_under_share_man() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    data = REPO / config["tool"]["maturin"]["data"]
    assert MAN_DIR.is_relative_to(data / "data")  # <prefix>/ + share/man/man1/...
    assert MAN_DIR.relative_to(data / "data") == Path("share/man/man1")


def test_man_finds_the_pages_of_a_prefix_whose_bin_is_on_path(tmp_path: Path) -> None:
    """man-db maps <prefix>/bin on PATH to <prefix>/share/man: the layout pip
    installs the wheel's data into (<prefix>/share/man/man1) is found by 'man fusefs'."""
    if shutil.which("man") is None:
        pytest.skip("man is not installed (Debian package man-db)")
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    shutil.copytree(MAN_DIR, prefix / "share" / "man" / "man1")
    (prefix / "bin" / "fusefs").write_text("#!/bin/sh\n")
    (prefix / "bin" / "fusefs").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("MANPATH", "MANPAGER", "PAGER")}
    env["PATH"] = f"{prefix / 'bin'}:/usr/bin:/bin"
    for page in ("fusefs", "fusefs-mount"):
        where = subprocess.run(["man", "-w", page], capture_output=True, text=True, env=env)
        assert where.stdout.strip() == str(prefix / "share/man/man1" / f"{page}.1"), where.stderr
    shown = subprocess.run(
        ["man", "fusefs-mount"], capture_output=True, text=True, env={**env, "MANWIDTH": "100"}
    )
    assert shown.returncode == 0 and "--passfile FILE" in shown.stdout
