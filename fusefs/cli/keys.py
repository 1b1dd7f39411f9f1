"""``fusefs masterkey VAULT``: print a vault's master key again, from its password.

``init`` prints the master key only to a terminal (or with
``--print-masterkey``), so this is how a key not printed then, or lost, is
shown later. Asking for it is explicit, so it goes to standard output
whatever that is.

The binding has no way to unseal the master key from ``fusefs.conf`` alone:
the vault is opened (and closed at once), so a vault mounted at the time is
refused as in use.
"""

from __future__ import annotations

import click

from fusefs.cli.common import (
    CONTEXT_SETTINGS,
    DIRECTORY,
    accept_rollback_option,
    expensive_kdf_option,
    password_options,
)
from fusefs.exitcodes import ExitCode, epilog


@click.command(
    epilog=epilog(
        ExitCode.WRONG_KEY, ExitCode.INTEGRITY, ExitCode.IO, ExitCode.MOUNT, ExitCode.PASSWORD
    ),
    context_settings=CONTEXT_SETTINGS,
)
@click.argument("vault_dir", metavar="VAULT", type=DIRECTORY)
@password_options
@expensive_kdf_option
@accept_rollback_option
def masterkey(
    vault_dir: str, passfile: str | None, extpass: str | None, accept_rollback: bool
) -> None:
    """Print VAULT's master key (asks the password; the vault must not be mounted).

    Keep it offline: it opens the vault without the password.
    """
    from fusefs.cli.vault import unlock

    with unlock(vault_dir, passfile, extpass, accept_rollback=accept_rollback) as vault:
        key = vault.print_master_key()
    click.echo(key)
