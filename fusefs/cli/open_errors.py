"""One line and an exit code for each way opening or mounting a vault fails."""

from __future__ import annotations

import errno

import click

from fusefs.cli.common import kdf_hint
from fusefs.exitcodes import ExitCode, QuietError


def describe_open_error(e: BaseException, vault_dir: str) -> tuple[str, ExitCode]:
    """(one line, exit code) for an exception from opening or mounting a vault."""
    from fusefs import _native
    from fusefs.errors import exit_code_for

    if isinstance(e, QuietError):  # MountError too
        return e.message, e.exit_code
    if isinstance(e, _native.WrongKeyError):
        return f"wrong password or master key for vault {vault_dir}", ExitCode.WRONG_KEY
    if isinstance(e, OSError) and e.errno == errno.EBUSY:
        return f"vault {vault_dir} is in use: {e.strerror or e}", ExitCode.MOUNT
    if isinstance(e, KeyboardInterrupt):
        return "interrupted", ExitCode.INTERRUPTED
    code = exit_code_for(e)
    if code == ExitCode.ERROR:
        return f"internal error: {type(e).__name__}: {e}", code
    if getattr(e, "kind", None) == "rolled_back":
        return f"vault {vault_dir}: {_with_command(str(e))}", code
    if getattr(e, "kind", None) in ("log_corrupt", "snapshot_corrupt"):
        # Damaged in both copies: what can still be read is salvaged by fsck.
        return f"vault {vault_dir}: {e} (fusefs fsck --repair salvages what can be read)", code
    return f"vault {vault_dir}: {e}{kdf_hint(e)}", code


def _with_command(message: str) -> str:
    """The engine's "--accept-rollback opens it anyway" as the command to
    run again: "fusefs mount --accept-rollback opens it anyway"."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return message
    return message.replace("--accept-rollback", f"{ctx.command_path} --accept-rollback")
