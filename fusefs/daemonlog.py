"""Where a mount's log goes, so that a user can find it without having asked.

``--log FILE`` names the place. Otherwise a mount in front logs to stderr,
and a background daemon (whose stderr is gone once it is ready) logs to the
system log, identifying as ``fusefs`` (``journalctl -t fusefs``, or
/var/log/syslog), when the syslog socket exists; where it does not (a
container, a minimal system), to ``$XDG_STATE_HOME/fusefs/VAULT.log``
(``~/.local/state/fusefs/VAULT.log`` by default), VAULT being the vault
directory's name.

The socket is ``/dev/log`` unless the environment's ``FUSEFS_SYSLOG_SOCKET``
names another one (empty: do not use syslog at all, log to the file); that
is how the tests reach both places, and how a user can choose the file.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import stat
import sys
from dataclasses import dataclass

from fusefs import statedir

SYSLOG_SOCKET_ENV = "FUSEFS_SYSLOG_SOCKET"
DEFAULT_SYSLOG_SOCKET = "/dev/log"
#: What the system log shows as the program (its SYSLOG_IDENTIFIER).
SYSLOG_IDENT = "fusefs"

_FILE_FORMAT = "%(asctime)s fusefs[%(process)d] %(levelname)s %(message)s"
# syslog stamps the time itself; "ident[pid]: " is the tag syslog and the journal parse.
_SYSLOG_FORMAT = SYSLOG_IDENT + "[%(process)d]: %(levelname)s %(message)s"


class LogError(Exception):
    """The chosen log file cannot be opened; ``str()`` is one line."""


@dataclass(frozen=True)
class LogPlace:
    """Where the log went: ``where`` for messages to the user, ``file`` if it is one
    (the daemon's stderr goes there too, so nothing it prints is lost)."""

    where: str
    file: str | None


def state_log_file(vault_dir: str) -> str:
    """``$XDG_STATE_HOME/fusefs/<vault name>.log`` (``~/.local/state`` when unset;
    see :mod:`fusefs.statedir`)."""
    name = os.path.basename(os.path.normpath(vault_dir)) or "vault"
    return os.path.join(statedir.fusefs_state_dir(), f"{name}.log")


def configure(vault_dir: str, log_file: str | None, *, foreground: bool) -> LogPlace:
    """Send the root logger to the place described in the module docstring."""
    handler: logging.Handler
    if log_file is not None:
        handler, place = _file_handler(log_file), LogPlace(log_file, log_file)
    elif foreground:
        handler, place = logging.StreamHandler(sys.stderr), LogPlace("stderr", None)
        handler.setFormatter(logging.Formatter(_FILE_FORMAT))
    else:
        syslog = _syslog_handler()
        if syslog is not None:
            handler, place = syslog, LogPlace("the system log, journalctl -t fusefs", None)
        else:
            path = state_log_file(vault_dir)
            try:
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            except OSError as e:
                raise LogError(f"cannot create the log directory of {path}: {e.strerror}") from e
            handler, place = _file_handler(path), LogPlace(path, path)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.handlers[:] = [handler]
    logging.getLogger("pyfuse3").setLevel(logging.WARNING)
    return place


def _file_handler(path: str) -> logging.Handler:
    try:
        handler = logging.FileHandler(path)
    except OSError as e:
        raise LogError(f"cannot open log file {path}: {e.strerror}") from e
    handler.setFormatter(logging.Formatter(_FILE_FORMAT))
    return handler


def _syslog_handler() -> logging.Handler | None:
    """A handler on the syslog socket, or None where there is none to connect to."""
    socket_path = os.environ.get(SYSLOG_SOCKET_ENV, DEFAULT_SYSLOG_SOCKET)
    if not socket_path:
        return None
    try:
        if not stat.S_ISSOCK(os.stat(socket_path).st_mode):
            return None
    except OSError:
        return None
    # The handler ignores a failed connection (and retries at each record);
    # here nobody listening means the file is the better place.
    handler = logging.handlers.SysLogHandler(
        address=socket_path, facility=logging.handlers.SysLogHandler.LOG_DAEMON
    )
    sock = getattr(handler, "socket", None)  # set by createSocket (not in typeshed)
    if sock is None or sock.fileno() == -1:
        handler.close()
        return None
    handler.setFormatter(logging.Formatter(_SYSLOG_FORMAT))
    return handler
