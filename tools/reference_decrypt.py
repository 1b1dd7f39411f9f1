#!/usr/bin/env python3
"""Independent reference reader for fusefs streams and vaults.

Written only from FORMAT.md, without reading the Rust code and sharing no
code with ``fusefs/``, so that it can cross-check the engine and serve as the
escape hatch if the native build is lost. The code is the small package
``tools/refreader/`` (one concept per module); this script is its command line.

Requirements (pure Python, nothing from ``fusefs``):
    cryptography >= 44   (AESGCM, ChaCha20Poly1305, HKDF, HMAC, Argon2id)
    zstandard            (pip install zstandard)

Usage:
    python tools/reference_decrypt.py (--keyfile FILE | --passfile FILE) IN OUT
        decode one stream (FORMAT.md §1-§4) IN into OUT;
    python tools/reference_decrypt.py --vault VAULT
            (--passfile FILE | --keyfile FILE | --masterkey-file FILE) DEST
        export the tree of VAULT (§6-§10), opened read-only, into DEST, which
        must not exist or be an empty directory. --keyfile holds the 32 raw
        bytes of the master key, --masterkey-file its printed form (§6.4).

Exit status: 0 success; 1 wrong password or key (including the wrong kind of
key); 2 usage error, bad key file, unreadable input, missing vault, DEST not
empty, unwritable output; 3 integrity or format failure (truncated,
tampered, not a stream, a damaged vault file, ...). On error exactly one
line ``reference_decrypt: error: <message>`` is printed to standard error;
warnings (a snapshot skipped, a device or xattr that could not be made) are
lines ``reference_decrypt: warning: <message>``. OUT or DEST is only created
(by renaming a temporary sibling) once everything was verified and written.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for refreader

from refreader.errors import DecodeError, IntegrityError, UsageError, WrongKeyError  # noqa: E402
from refreader.keyfiles import read_keyfile, read_masterkey_file, read_passfile  # noqa: E402
from refreader.primitives import aead_open, argon2id_master, hkdf, payload_info  # noqa: E402
from refreader.stream import (  # noqa: E402
    DecodeResult,
    Header,
    StreamKeys,
    decrypt_file,
    decrypt_stream,
    derive_stream_keys,
    open_header,
    parse_header,
    v1_nonce,
)

__all__ = [
    "DecodeError",
    "DecodeResult",
    "Header",
    "IntegrityError",
    "StreamKeys",
    "UsageError",
    "WrongKeyError",
    "aead_open",
    "argon2id_master",
    "decrypt_file",
    "decrypt_stream",
    "derive_stream_keys",
    "export_vault",
    "hkdf",
    "main",
    "open_header",
    "parse_header",
    "payload_info",
    "v1_nonce",
]

PROG = "reference_decrypt"


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="reference_decrypt.py",
        description="Reference decoder for fusefs v1/v2 streams (FORMAT.md).",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--keyfile", metavar="FILE", help="file of exactly 32 raw key bytes")
    group.add_argument("--passfile", metavar="FILE", help="password = first line of FILE")
    parser.add_argument("input", metavar="IN")
    parser.add_argument("output", metavar="OUT")
    return parser


def _build_vault_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="reference_decrypt.py --vault",
        description="Export a fusefs vault's tree, read-only (FORMAT.md §6-§10).",
        allow_abbrev=False,
    )
    parser.add_argument("--vault", metavar="VAULT", required=True, help="the vault directory")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--passfile", metavar="FILE", help="password = first line of FILE")
    group.add_argument("--keyfile", metavar="FILE", help="the master key, 32 raw bytes")
    group.add_argument(
        "--masterkey-file", metavar="FILE", help="the printed master key (64 hex digits)"
    )
    parser.add_argument("dest", metavar="DEST", help="new or empty directory for the tree")
    return parser


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def export_vault(
    vault: str,
    dest: str,
    *,
    password: bytes | None = None,
    master_key: bytes | None = None,
    warn: object = _warn,
) -> None:
    """Open ``vault`` read-only with a password or the raw master key and export its
    tree into ``dest`` (see refreader.export). Raises a DecodeError subclass."""
    from refreader.export import check_dest, export_tree
    from refreader.packs import Packs
    from refreader.vault import Secret, open_vault

    check_dest(dest)  # before the slow part: a usage error comes first
    opened = open_vault(vault, Secret(password, master_key), warn)  # type: ignore[arg-type]
    state = opened.state
    packs = Packs(vault, opened.layout, opened.keys, state)
    try:
        export_tree(opened.state, packs, dest, warn)  # type: ignore[arg-type]
    finally:
        packs.close()


def _run_vault(argv: list[str]) -> None:
    args = _build_vault_parser().parse_args(argv)
    if args.passfile is not None:
        export_vault(args.vault, args.dest, password=read_passfile(args.passfile))
    elif args.keyfile is not None:
        export_vault(args.vault, args.dest, master_key=read_keyfile(args.keyfile))
    else:
        export_vault(args.vault, args.dest, master_key=read_masterkey_file(args.masterkey_file))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if any(a == "--vault" or a.startswith("--vault=") for a in argv):
            _run_vault(argv)
        else:
            args = _build_parser().parse_args(argv)
            if args.keyfile is not None:
                decrypt_file(args.input, args.output, key=read_keyfile(args.keyfile))
            else:
                decrypt_file(args.input, args.output, password=read_passfile(args.passfile))
    except DecodeError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI promises no traceback
        print(f"{PROG}: error: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
