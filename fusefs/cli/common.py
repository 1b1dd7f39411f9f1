"""What the commands of the ``fusefs`` CLI share: help settings, option types and options.

Paths are :class:`PathArg`: click completes them (files or directories) but
checks nothing, so each command keeps its own one-line refusals.

Imports neither the native module nor any command, so every command module
can import it (and ``fusefs --help`` stays cheap).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from fusefs.exitcodes import ExitCode, QuietError, epilog

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
#: The group's epilog: every exit code. Each command lists only its own (``epilog(...)``).
EPILOG = epilog()

if TYPE_CHECKING:
    _IntParamType = click.ParamType[int]  # generic since click 8.2
else:
    _IntParamType = click.ParamType


class SizeType(_IntParamType):
    """A byte count: ``65536``, ``64K``, ``64KiB``, ``1M``, ``1MiB`` (K = 1024)."""

    name = "size"
    _PATTERN = re.compile(r"\s*(\d+)\s*(?:([kmg])(?:i?b)?|b)?\s*", re.IGNORECASE)
    _UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = self._PATTERN.fullmatch(str(value))
        if match is None:
            self.fail(f"{value!r} is not a size such as 65536, 64K or 1M", param, ctx)
        return int(match[1]) * self._UNITS[(match[2] or "").lower()]


class PathArg(click.Path):
    """A path for shell completion only: click offers file (or, with
    ``directory=True``, directory) names, and passes the text through unchecked.

    click's own checks (``exists=True`` and the like) would replace the
    commands' one-line refusals and exit codes with click's usage errors, and
    could not allow ``-`` only where it means standard input or output.
    """

    def __init__(self, *, directory: bool = False) -> None:
        super().__init__(file_okay=not directory, dir_okay=True, readable=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value


FILE = PathArg()
DIRECTORY = PathArg(directory=True)


class CompressType(_IntParamType):
    """``zstd`` or ``zstd:LEVEL`` (1-22), the zstd level; ``none`` for no compression."""

    name = "compress"
    DEFAULT_LEVEL = 3
    PATTERN = re.compile(r"zstd(?::(\d+))?|none", re.IGNORECASE)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, int):
            return value
        text = str(value).strip()
        match = self.PATTERN.fullmatch(text)
        if match is not None and text.lower() == "none":
            return None
        if match is None or not 1 <= int(match[1] or self.DEFAULT_LEVEL) <= 22:
            self.fail(f"{value!r} is not zstd or zstd:LEVEL with LEVEL 1-22", param, ctx)
        return int(match[1] or self.DEFAULT_LEVEL)


class CompressCommand(click.Command):
    """A command whose ``--compress`` may come without its value, meaning ``zstd``.

    ``--compress zstd[:LEVEL]`` is the one syntax of ``init`` and ``encrypt``;
    encrypt's old bare flag still works, even right before IN (see
    :func:`bare_compress_as_zstd`).
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, bare_compress_as_zstd(args))


def bare_compress_as_zstd(args: list[str]) -> list[str]:
    """Mark each bare ``--compress`` as ``--compress=zstd``.

    The word after ``--compress`` is its value if it reads as one (``zstd``,
    ``zstd:N``, ``none``), or if it is no existing path and has neither ``/``
    nor ``.`` (a mistyped value such as ``gzip`` then gets its own error);
    otherwise, an option or a path such as IN, the flag stands alone.
    """
    out = list(args)
    for i, arg in enumerate(out):
        if arg == "--":
            break
        if arg != "--compress":
            continue
        following = out[i + 1] if i + 1 < len(out) else "-"
        if CompressType.PATTERN.fullmatch(following.strip()) is not None:
            continue
        looks_like_path = (
            following.startswith("-") or "/" in following or "." in following
        ) or os.path.lexists(following)
        if looks_like_path:
            out[i] = "--compress=zstd"
    return out


def compress_option(help_text: str) -> Callable[[F], F]:
    return click.option(
        "--compress",
        type=CompressType(),
        default=None,
        metavar="zstd[:LEVEL]",
        help=f"{help_text} Level 1-22, default 3; 'none' for no compression; "
        "a bare --compress means zstd.",
    )


def quiet_option(what: str) -> Callable[[F], F]:
    """``-q``/``--quiet``: the same flag on every command that prints more than its result."""
    return click.option("-q", "--quiet", is_flag=True, help=f"Quiet: {what}.")


def accept_rollback_option(f: F) -> F:
    """``--accept-rollback``: of every command that opens a vault to change it."""
    return click.option(
        "--accept-rollback",
        is_flag=True,
        help="Open VAULT even if it is behind what this machine saw of it (its log cut, a "
        "snapshot deleted, an older copy put back): this machine then takes it as it is.",
    )(f)


def key_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--passfile``, ``--extpass`` and ``--keyfile`` of the stream commands."""
    f = click.option(
        "--keyfile",
        metavar="FILE",
        type=FILE,
        help="Raw key: a file of exactly 32 bytes (instead of a password).",
    )(f)
    return password_options(f)


def password_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--extpass",
        metavar="CMD",
        help="Run CMD (split like a shell, not run by one) and use the first line it prints.",
    )(f)
    f = click.option(
        "--passfile",
        metavar="FILE",
        type=FILE,
        help="Use the first line of FILE. Without --passfile or --extpass the password is "
        "asked on the terminal.",
    )(f)
    return f


def _lift_kdf_limit(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        from fusefs import _native

        _native.allow_expensive_kdf(True)
    return value


def expensive_kdf_option(f: F) -> F:
    """``--allow-expensive-kdf``: obey Argon2id costs beyond the engine's limit.

    The costs stored in a stream header or vault config are read before
    anything is authenticated, so a crafted file could make one unlock take
    gigabytes and minutes; the engine refuses costs beyond its limit
    (crypto/kdf_policy.rs) unless this is given. Process-wide: the mount
    daemon inherits it.
    """
    return click.option(
        "--allow-expensive-kdf",
        is_flag=True,
        expose_value=False,
        callback=_lift_kdf_limit,
        help="Pay Argon2id costs above 1 GiB, 16 passes, 16 lanes or 16x the default work "
        "(refused otherwise: they are read before anything is authenticated). "
        "Only for files you trust.",
    )(f)


#: Appended to the engine's refusal of too expensive costs.
KDF_LIMIT_HINT = "; pass --allow-expensive-kdf if you trust this file"


def kdf_hint(e: BaseException) -> str:
    """What to add to the one-line message of ``e``: the way past the KDF limit."""
    return KDF_LIMIT_HINT if getattr(e, "kind", None) == "kdf_too_expensive" else ""


def kdf_options(default_memory: str, where: str) -> Callable[[F], F]:
    """``--kdf-memory``, ``--kdf-passes`` (the Argon2id costs of a new
    password), ``--insecure-kdf`` (below the floor) and ``--allow-expensive-kdf``."""

    def add(f: F) -> F:
        f = expensive_kdf_option(f)
        f = click.option(
            "--insecure-kdf",
            is_flag=True,
            help="Accept Argon2id costs below OWASP's floor (19 MiB with 2 passes, 46 MiB with "
            "1, ...): a password stretched that little is cheap to guess.",
        )(f)
        f = click.option(
            "--kdf-passes",
            type=click.IntRange(1, 64),
            default=3,
            show_default=True,
            metavar="N",
            help="Argon2id passes for the password.",
        )(f)
        return click.option(
            "--kdf-memory",
            type=SizeType(),
            default=default_memory,
            show_default=True,
            metavar="SIZE",
            help=f"Argon2id memory for the password ({where}; more is slower to attack).",
        )(f)

    return add


def kdf_kib(kdf_memory: int, kdf_passes: int, insecure_kdf: bool) -> int:
    """``--kdf-memory`` in KiB, refused outside 8K..4G, or (without
    ``--insecure-kdf``) below the floor together with ``--kdf-passes``."""
    if not 8 * 1024 <= kdf_memory <= 4 * 2**30:
        raise QuietError("--kdf-memory must be between 8K and 4G", ExitCode.USAGE)
    m_kib = kdf_memory // 1024
    if not insecure_kdf:
        from fusefs import _native

        problem = _native.kdf_floor_problem(m_kib, kdf_passes)
        if problem is not None:
            raise QuietError(f"{problem}; --insecure-kdf accepts them", ExitCode.USAGE)
    return m_kib
