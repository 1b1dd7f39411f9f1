"""What the commands of the ``fusefs`` CLI share: help settings, option types and options.

Imports neither the native module nor any command, so every command module
can import it (and ``fusefs --help`` stays cheap).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from fusefs.exitcodes import ExitCode, QuietError, epilog

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
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


def key_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--keyfile",
        metavar="FILE",
        help="Raw key: a file of exactly 32 bytes. Excludes --passfile.",
    )(f)
    f = click.option(
        "--passfile",
        metavar="FILE",
        help="Password: the first line of FILE, without its line ending. Without "
        "--passfile or --keyfile the password is asked on the terminal.",
    )(f)
    return f


def password_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--extpass",
        metavar="CMD",
        help="Run CMD (split like a shell, not run by one) and use the first line it prints.",
    )(f)
    f = click.option(
        "--passfile",
        metavar="FILE",
        help="Use the first line of FILE. Without --passfile or --extpass the password is "
        "asked on the terminal.",
    )(f)
    return f


def kdf_options(default_memory: str, where: str) -> Callable[[F], F]:
    """``--kdf-memory`` and ``--kdf-passes``: the Argon2id costs of a new password."""

    def add(f: F) -> F:
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


def kdf_kib(kdf_memory: int) -> int:
    """``--kdf-memory`` in KiB, refused outside 8K..4G."""
    if not 8 * 1024 <= kdf_memory <= 4 * 2**30:
        raise QuietError("--kdf-memory must be between 8K and 4G", ExitCode.USAGE)
    return kdf_memory // 1024
