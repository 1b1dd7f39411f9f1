"""The kernel's table of mounts (``/proc/self/mountinfo``), read without
touching the mounts themselves.

Looking at a FUSE mount point (``stat``, ``statfs``) asks its daemon, which
may be dead, busy, or refuse another user outright (``EACCES`` unless it
was mounted with ``allow_other``). The mount table answers what the CLI
needs first, for any user and whatever the daemon's state: is this path a
mount point, of which file system, mounted by whom, from which vault.

One line of mountinfo (proc(5))::

    36 35 0:42 / /home/ann/private rw,nosuid,nodev,relatime shared:1 -
        fuse.fusefs /home/ann/vault rw,user_id=1000,group_id=1000,default_permissions

(one line, folded here)
fields: mount id, parent id, ``major:minor`` of the device, root within the
file system, mount point, per-mount options, optional fields up to ``-``,
the file system type (``fuse.<subtype>``), the source (our ``fsname``: the
vault's path) and the super-block options, where FUSE records the uid of
the user who mounted (``user_id=``). Space, tab, newline and backslash are
escaped as ``\\ooo``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

MOUNTINFO = "/proc/self/mountinfo"
#: The type of a fusefs mount (FUSE with ``subtype=fusefs``).
FSTYPE = "fuse.fusefs"


@dataclass(frozen=True)
class MountEntry:
    point: str
    fstype: str
    source: str
    major: int
    minor: int
    super_options: tuple[str, ...]

    @property
    def is_fusefs(self) -> bool:
        return self.fstype == FSTYPE

    @property
    def owner_uid(self) -> int | None:
        """The uid of the user who mounted it (FUSE mounts only)."""
        for option in self.super_options:
            if option.startswith("user_id="):
                return int(option.removeprefix("user_id="))
        return None


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def parse_line(line: str) -> MountEntry | None:
    fields = line.split()
    try:
        sep = fields.index("-", 6)
        major, minor = fields[2].split(":")
        return MountEntry(
            point=_unescape(fields[4]),
            fstype=fields[sep + 1],
            source=_unescape(fields[sep + 2]),
            major=int(major),
            minor=int(minor),
            super_options=tuple(fields[sep + 3].split(",")) if len(fields) > sep + 3 else (),
        )
    except (ValueError, IndexError):
        return None


def entries() -> list[MountEntry]:
    """Every mount this process sees, oldest first; empty if the table is unreadable."""
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return [e for e in map(parse_line, lines) if e is not None]


def _real(path: str) -> str:
    # realpath() of a FUSE mount point may not stat it (the daemon could be
    # dead): resolve the parent and keep the last component as it is.
    if os.path.islink(path):
        return os.path.realpath(path)
    path = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def find(point: str) -> MountEntry | None:
    """The mount on ``point`` (the newest, where several are stacked), or None."""
    target = _real(point)
    for entry in reversed(entries()):
        if entry.point == target:
            return entry
    return None


def mounts_of_vault(vault_dir: str) -> list[MountEntry]:
    """The fusefs mounts whose source is ``vault_dir``."""
    target = os.path.realpath(vault_dir)
    return [e for e in entries() if e.is_fusefs and os.path.realpath(e.source) == target]
