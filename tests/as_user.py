"""Run ``fusefs`` as another user, from an interpreter only root can read.

``python as_user.py UID GID ARGS...``: imports, as root, every module a
mount needs (this Python lives under /root, which other users cannot
enter), then drops to UID:GID for good and runs the CLI with ARGS, exiting
with its status. The mount tests use it to meet fusermount3 as a non-root
user would.
"""

from __future__ import annotations

import logging.handlers  # noqa: F401
import os
import shlex  # noqa: F401
import sys
import tempfile  # noqa: F401

import pyfuse3  # noqa: F401
import trio  # noqa: F401

import fusefs._native  # noqa: F401
import fusefs.cli
import fusefs.cli.vault  # noqa: F401  (the group imports it only when mount runs)
import fusefs.daemonlog  # noqa: F401
import fusefs.errors  # noqa: F401
import fusefs.fs  # noqa: F401
import fusefs.mount  # noqa: F401
import fusefs.password  # noqa: F401
import fusefs.requestloop  # noqa: F401

uid, gid = int(sys.argv[1]), int(sys.argv[2])
os.setgroups([])
os.setresgid(gid, gid, gid)
os.setresuid(uid, uid, uid)
sys.exit(fusefs.cli.run(sys.argv[3:]))
