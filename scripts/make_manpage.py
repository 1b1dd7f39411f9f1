#!/usr/bin/env python3
"""Write fusefs's manual pages from the CLI's own help: fusefs.1, and fusefs-COMMAND.1
for each command (as git does), into wheel-data/data/share/man/man1/.

    python3 scripts/make_manpage.py          # (re)write the pages
    python3 scripts/make_manpage.py --check  # exit 1 if they differ from the CLI

The pages are committed, and installed with the package (pyproject.toml's
``[tool.maturin] data``) as ``<prefix>/share/man/man1``; tests/test_manpage.py
fails when they no longer match the CLI, so a changed option cannot leave
them behind. Everything comes from the click commands: their help, usage,
options (the same text ``--help`` shows) and the exit-code table; nothing
depends on the time or the installed version, so regenerating is stable.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fusefs.cli import cli  # noqa: E402
from fusefs.exitcodes import ExitCode  # noqa: E402

MAN_DIR = ROOT / "wheel-data" / "data" / "share" / "man" / "man1"

#: What the environment changes, for fusefs.1 (the variables the code reads).
ENVIRONMENT = {
    "FUSEFS_DEBUG": "1: an internal error prints its traceback too.",
    "FUSEFS_SYSLOG_SOCKET": "The syslog socket a background mount logs to (default /dev/log);"
    " empty: log to the state directory's file instead.",
    "XDG_STATE_HOME": "Where a background mount without --log and without syslog logs:"
    " $XDG_STATE_HOME/fusefs/VAULT.log (default ~/.local/state).",
}
SEE_ALSO_SYSTEM = ["mount(8)", "fstab(5)", "mount.fuse3(8)", "fusermount3(1)"]


def roff(text: str) -> str:
    """Text as roff: backslashes escaped, hyphens literal, no line read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + x if x.startswith((".", "'")) else x for x in text.split("\n"))


def paragraphs(help_text: str) -> list[str]:
    """click's help as roff paragraphs; a ``\\b`` paragraph stays as written."""
    out = []
    for block in inspect.cleandoc(help_text.split("\f")[0]).split("\n\n"):
        if block.startswith("\b\n"):
            out.append(".nf\n" + roff(block[2:]) + "\n.fi")
        else:
            out.append(roff(" ".join(block.split())))
    return out


def title(name: str, summary: str) -> list[str]:
    return [
        f'.TH {name.upper()} 1 "" "fusefs" "User Commands"',
        ".SH NAME",
        f"{roff(name)} \\- {roff(summary)}",
    ]


def exit_status() -> list[str]:
    lines = [".SH EXIT STATUS"]
    for code in ExitCode:
        lines += [".TP", f".B {code.value}", roff(code.__doc__ or "")]
    return lines


def options(command: click.Command, ctx: click.Context) -> list[str]:
    lines = [".SH OPTIONS"]
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        lines += [".TP", f".B {roff(names)}", roff(" ".join(help_text.split()))]
    return lines


def command_page(name: str, command: click.Command) -> str:
    ctx = click.Context(command, info_name=f"fusefs {name}", **command.context_settings)
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = title(f"fusefs-{name}", command.get_short_help_str(limit=200))
    lines += [".SH SYNOPSIS", f".B fusefs {name}", roff(usage), ".SH DESCRIPTION"]
    lines += "\n.PP\n".join(paragraphs(command.help or "")).split("\n")
    lines += options(command, ctx) + exit_status()
    lines += [".SH SEE ALSO", "\\fBfusefs\\fR(1)"]
    return "\n".join(lines) + "\n"


def main_page(commands: dict[str, click.Command]) -> str:
    ctx = click.Context(cli, info_name="fusefs", **cli.context_settings)
    lines = title("fusefs", cli.get_short_help_str(limit=200))
    lines += [
        ".SH SYNOPSIS",
        ".B fusefs",
        "[\\-\\-version] [\\-h] COMMAND [ARGS]...",
        ".br",
        ".B fusefs",
        "VAULT MNT \\-o OPTIONS",
        ".SH DESCRIPTION",
    ]
    lines += "\n.PP\n".join(paragraphs(cli.help or "")).split("\n")
    lines += [
        ".PP",
        roff(
            "The second form is how mount(8), through mount.fuse3(8), runs a file system of"
            " type fuse.fusefs (from /etc/fstab, or mount -t fuse.fusefs): the same as"
            " 'fusefs mount VAULT MNT -o OPTIONS'; see fusefs-mount(1)."
        ),
        ".SH COMMANDS",
    ]
    for name, command in commands.items():
        summary = command.get_short_help_str(limit=200)
        lines += [".TP", f"\\fBfusefs\\-{roff(name)}\\fR(1)", roff(summary)]
    lines += options(cli, ctx)
    lines += [".SH ENVIRONMENT"]
    for var, text in ENVIRONMENT.items():
        lines += [".TP", f".B {roff(var)}", roff(text)]
    lines += exit_status()
    see_also = [f"fusefs-{name}(1)" for name in commands] + SEE_ALSO_SYSTEM
    lines += [".SH SEE ALSO", roff(", ".join(see_also))]
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """File name -> roff, for every page."""
    commands = {name: cli.commands[name] for name in sorted(cli.commands)}
    out = {"fusefs.1": main_page(commands)}
    for name, command in commands.items():
        out[f"fusefs-{name}.1"] = command_page(name, command)
    return out


def main(argv: list[str]) -> int:
    wanted = pages()
    if argv == ["--check"]:
        present = {p.name: p.read_text() for p in MAN_DIR.glob("*.1")}
        if present != wanted:
            stale = set(present) ^ set(wanted) | {n for n in wanted if present.get(n) != wanted[n]}
            names = ", ".join(sorted(stale))
            print(f"make_manpage: stale pages: {names}; run {sys.argv[0]}", file=sys.stderr)
            return 1
        return 0
    if argv:
        print("usage: make_manpage.py [--check]", file=sys.stderr)
        return 2
    MAN_DIR.mkdir(parents=True, exist_ok=True)
    for old in MAN_DIR.glob("*.1"):
        if old.name not in wanted:
            old.unlink()
    for name, text in wanted.items():
        (MAN_DIR / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
