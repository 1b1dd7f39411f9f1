"""fusefs: transparent encryption for Linux, and standalone encrypted streams.

The engine is the native module :mod:`fusefs._native` (Rust); this package
re-exports its public API::

    from fusefs import Key, EncryptParams, encrypt_path, decrypt_path

    key = Key.from_password(b"correct horse")
    encrypt_path("report.pdf", "report.pdf.fusefs", key)
    decrypt_path("report.pdf.fusefs", "copy.pdf", key)

Exceptions live in :mod:`fusefs.errors`, trio adapters in :mod:`fusefs.aio`,
the command line in :mod:`fusefs.cli`.

Everything is imported lazily (PEP 562) so that ``import fusefs`` stays cheap:
the CLI pays only for what a command uses, and ``fusefs --help`` never loads
the extension.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fusefs._native import (
        ROOT_INO,
        Attr,
        Cipher,
        EncryptParams,
        Format,
        Job,
        Key,
        ParallelismProfile,
        TelemetrySnapshot,
        Vault,
        decrypt_file,
        decrypt_path,
        encrypt_file,
        encrypt_path,
        spawn_decrypt_path,
        spawn_encrypt_path,
    )
    from fusefs.errors import (
        CancelledError,
        FormatError,
        FusefsError,
        IntegrityError,
        ParamsError,
        QuietError,
        ResumeError,
        StreamIOError,
        WrongKeyError,
    )

    __version__: str

__all__ = [
    "ROOT_INO",
    "Attr",
    "CancelledError",
    "Cipher",
    "EncryptParams",
    "Format",
    "FormatError",
    "FusefsError",
    "IntegrityError",
    "Job",
    "Key",
    "ParallelismProfile",
    "ParamsError",
    "QuietError",
    "ResumeError",
    "StreamIOError",
    "TelemetrySnapshot",
    "Vault",
    "WrongKeyError",
    "__version__",
    "decrypt_file",
    "decrypt_path",
    "encrypt_file",
    "encrypt_path",
    "spawn_decrypt_path",
    "spawn_encrypt_path",
]

# The exceptions come through fusefs.errors (which adds QuietError); the rest
# straight from the extension.
_ERRORS = frozenset(
    [
        "CancelledError",
        "FormatError",
        "FusefsError",
        "IntegrityError",
        "ParamsError",
        "QuietError",
        "ResumeError",
        "StreamIOError",
        "WrongKeyError",
    ]
)


def _version() -> str:
    # importlib.metadata costs tens of milliseconds: only on demand.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fusefs")
    except PackageNotFoundError:
        return "0.0.0"


if not TYPE_CHECKING:
    # Hidden from type checkers: a module-level __getattr__ would make every
    # attribute of fusefs, misspelt ones included, type as Any. They see the
    # imports above instead, so ``fusefs.Vaultt`` is a type error.

    def __getattr__(name: str) -> Any:
        if name == "__version__":
            value: Any = _version()
        elif name in __all__:
            module = "fusefs.errors" if name in _ERRORS else "fusefs._native"
            value = getattr(importlib.import_module(module), name)
        else:
            raise AttributeError(f"module 'fusefs' has no attribute {name!r}")
        globals()[name] = value  # cache: __getattr__ runs once per name
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
