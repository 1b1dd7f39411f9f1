"""Where fusefs keeps what it remembers for a user, outside every vault.

One definition of the user's state directory (the XDG base directory
spec's ``$XDG_STATE_HOME``, ``~/.local/state`` when unset or relative)
and of what fusefs puts there:

* ``fusefs/VAULT.log``: a background daemon's log where there is no system
  log (:mod:`fusefs.daemonlog`);
* ``fusefs/vaults/<vault id>.state``: the *local state* of each vault this
  user opened: how far its log was durable here and its newest snapshot,
  so that an open can refuse a vault rolled back behind what this machine
  saw (FORMAT.md §11). ``$FUSEFS_STATE_DIR`` names another directory for
  these files.
"""

from __future__ import annotations

import os

#: The environment variable naming the directory of the vaults' local state.
STATE_DIR_ENV = "FUSEFS_STATE_DIR"


def state_home() -> str:
    """``$XDG_STATE_HOME``, or ``~/.local/state`` when it is unset or relative
    (the XDG spec ignores a relative value; so does this)."""
    state = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):
        state = os.path.join(os.path.expanduser("~"), ".local", "state")
    return state


def fusefs_state_dir() -> str:
    """``<state home>/fusefs``: the daemon logs' directory."""
    return os.path.join(state_home(), "fusefs")


def local_state_dir() -> str:
    """The directory of the vaults' local state, absolute (a daemon changes
    to ``/`` before it opens the vault): ``$FUSEFS_STATE_DIR``, else
    ``<state home>/fusefs/vaults``."""
    chosen = os.environ.get(STATE_DIR_ENV, "")
    if chosen:
        return os.path.abspath(chosen)
    return os.path.join(fusefs_state_dir(), "vaults")
