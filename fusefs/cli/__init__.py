"""The ``fusefs`` command line: streams (``encrypt``, ``decrypt``) and vaults
(``init``, ``mount``, ``umount``, ``info``, ``passwd``, ``masterkey``, ``stats``,
``fsck``, ``compact``).

Every failure ends in exactly one line on stderr, ``fusefs: error: <message>``,
and an exit code from :mod:`fusefs.exitcodes`; an unexpected exception prints
``fusefs: internal error: ...`` (with its traceback only when the environment
has ``FUSEFS_DEBUG=1``) and exits 1.

The commands live in :mod:`fusefs.cli.stream`, :mod:`fusefs.cli.vault` and
:mod:`fusefs.cli.keys` (what they share in :mod:`fusefs.cli.common`); this module is the group that
gathers them and the entry point. A command's module is imported when the
command is looked up (:class:`LazyCommands`), so ``fusefs mount``, whose
start-up before its fork is on the path of every mount, imports neither the
stream commands nor fsck's. ``--help``/``--version`` do not load the native
module.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any, NoReturn

import click

from fusefs.cli import fstab
from fusefs.cli.common import CONTEXT_SETTINGS, EPILOG
from fusefs.exitcodes import ExitCode, QuietError

DEBUG_ENV = "FUSEFS_DEBUG"


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    import fusefs

    click.echo(f"fusefs {fusefs.__version__}")
    ctx.exit(0)


#: Each command: the module of :mod:`fusefs.cli` that defines it (as a
#: function of the command's name).
COMMANDS = {
    "encrypt": "stream",
    "decrypt": "stream",
    "init": "vault",
    "mount": "vault",
    "umount": "mounted",
    "info": "vault",
    "passwd": "vault",
    "masterkey": "keys",
    "stats": "mounted",
    "fsck": "fsck",
    "compact": "compact",
}


class LazyCommands(MutableMapping[str, click.Command]):
    """The group's commands by name, each imported at its first lookup.

    Importing every command module cost ``fusefs mount`` about a fifth of
    what it did before its fork (the stream commands, fsck, compact: 30-40
    ms of ~190 under load, ``python -X importtime``), which every mount
    waits for. Click looks a command up through this mapping (``get``) when
    it runs one, and looks up every one for the help listing; names alone
    (``in``, ``len``, iteration) import nothing.
    """

    def __init__(self, where: dict[str, str]) -> None:
        self._where = dict(where)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            module = self._where[name]  # KeyError: no such command
            command = getattr(importlib.import_module(f"fusefs.cli.{module}"), name)
            assert isinstance(command, click.Command), name
            self._loaded[name] = command
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command  # found here first: no module to import
        self._where.setdefault(name, "")

    def __delitem__(self, name: str) -> None:
        del self._where[name]
        self._loaded.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


@click.group(
    context_settings=CONTEXT_SETTINGS,
    epilog=EPILOG,
    no_args_is_help=True,
    commands=LazyCommands(COMMANDS),
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and exit.",
)
def cli() -> None:
    """Encrypted vaults mounted as ordinary directories, and standalone encrypted streams.

    A vault is a directory of ciphertext: 'fusefs init VAULT', then 'fusefs
    mount VAULT MNT', and programs use plain files in MNT until 'fusefs
    umount MNT'. A stream is one file: 'fusefs encrypt IN OUT' and 'fusefs
    decrypt IN OUT' (OUT appears only after every byte of IN verified).
    """


# --- entry point ------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _error(message: str) -> None:
    sys.stderr.write(f"fusefs: error: {_one_line(message)}\n")


# click >= 8.2 raises this for a bare ``fusefs``; older versions print the help themselves.
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def run(argv: Sequence[str] | None = None, *, mount_helper: bool = False) -> int:
    """Run the command line and return the exit code (never raises, but SystemExit).

    ``fusefs VAULT MNT -o OPTS`` (how mount(8), through mount.fuse3, runs a
    ``fuse.fusefs`` mount) and, with ``mount_helper``, every argv (the
    ``mount.fusefs`` script) are mount(8)'s helper convention: see
    :mod:`fusefs.cli.fstab`.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if mount_helper or fstab.is_helper_call(args, cli.commands):
            translated = fstab.helper_argv(args)
            if translated is None:  # mount -f: a fake mount, only checked
                return ExitCode.OK
            args = translated
        rv = cli.main(args=args, prog_name="fusefs", standalone_mode=False)
        return rv if isinstance(rv, int) else ExitCode.OK
    except _NO_ARGS_IS_HELP as e:
        click.echo(e.format_message(), err=True)
        return ExitCode.USAGE
    except click.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        _error(e.format_message() + hint)
        return e.exit_code
    except click.ClickException as e:
        _error(e.format_message())
        return e.exit_code
    except click.Abort:
        _error("aborted")
        return ExitCode.INTERRUPTED
    except KeyboardInterrupt:
        _error("interrupted")
        return ExitCode.INTERRUPTED
    except QuietError as e:
        # Every refusal of every command, whatever raised it (MountError too).
        return _report(e, e.exit_code)
    except SystemExit:
        raise
    except BaseException as e:
        try:
            from fusefs.errors import exit_code_for

            code = exit_code_for(e)
        except Exception:  # e.g. the native module itself failed to import
            code = ExitCode.ERROR
        return _report(e, code)


def _report(e: BaseException, code: ExitCode) -> int:
    if code != ExitCode.ERROR:
        _error(str(e))
        return code
    sys.stderr.write(f"fusefs: internal error: {_one_line(f'{type(e).__name__}: {e}')}\n")
    if os.environ.get(DEBUG_ENV) == "1":
        import traceback

        traceback.print_exception(e)
    return ExitCode.ERROR


def mount_helper_main() -> NoReturn:
    """Console entry point ``mount.fusefs``: mount(8)'s helper convention."""
    main(mount_helper=True)


def main(argv: Sequence[str] | None = None, *, mount_helper: bool = False) -> NoReturn:
    """Console entry point (``fusefs`` script and ``python -m fusefs``)."""
    code = run(argv, mount_helper=mount_helper)
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        # The reader went away: do not let interpreter shutdown complain too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    # Skip interpreter finalization (about 10 ms of tearing down modules, a
    # measurable share of a short run). Nothing of ours needs it: output is
    # flushed above, files are closed by the engine, and a thread still in
    # the engine after Ctrl-C would otherwise be stopped mid-call by
    # finalization, which aborts the process.
    sys.stderr.flush()
    os._exit(int(code))
