"""The side files of a file run, ``OUT.fusefs-part`` and ``OUT.fusefs-ckpt``,
and how the CLI keeps them through a ``--resume`` that is refused.

The engine removes them when a resumed run fails for a reason it judges
final (a changed input, a checkpoint of another run, a damaged part file):
with the wrong IN, hours of work were lost that way. The CLI holds a hard
link to each for the length of a ``--resume`` run and puts back whatever the
engine removed, so nothing of an interrupted run is ever lost to a refusal;
the error then names the kept files. (The engine itself could keep them; see
``cleanup_on_error`` in rustlib/core/src/api.rs.)

Nothing here loads the native module.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

PART_SUFFIX = ".fusefs-part"
CHECKPOINT_SUFFIX = ".fusefs-ckpt"
#: The hard links held during a ``--resume`` run (left only if the CLI is killed).
KEEP_SUFFIX = ".keep"
#: Where a checkpoint records the input bytes consumed (FORMAT.md, section 5).
_CHECKPOINT_MAGIC = b"fusefsck"
_INPUT_OFFSET_AT = 40
_CHECKPOINT_LEN = 144


@dataclass(frozen=True)
class SideFiles:
    """The partial output and resume checkpoint of the run writing ``dst``."""

    part: str
    checkpoint: str

    @classmethod
    def of(cls, dst: str) -> SideFiles:
        return cls(dst + PART_SUFFIX, dst + CHECKPOINT_SUFFIX)

    def existing(self) -> list[str]:
        return [p for p in (self.part, self.checkpoint) if os.path.lexists(p)]

    def kept_note(self) -> str:
        """`` (kept A and B ...)``: what an error message adds while they exist."""
        kept = self.existing()
        if not kept:
            return ""
        if os.path.exists(self.checkpoint):
            return f" (kept {' and '.join(kept)}: continue with --resume)"
        return f" (kept {' and '.join(kept)})"

    def remove(self) -> None:
        for path in self.existing():
            os.unlink(path)

    def resume_offset(self) -> int:
        """The input offset the checkpoint records, 0 if it cannot be read.

        Only for display (where the run resumes): the engine verifies the
        checkpoint's MAC before it trusts any of it.
        """
        try:
            with open(self.checkpoint, "rb") as f:
                data = f.read(_CHECKPOINT_LEN + 1)
        except OSError:
            return 0
        if len(data) != _CHECKPOINT_LEN or not data.startswith(_CHECKPOINT_MAGIC):
            return 0
        (offset,) = struct.unpack_from("<Q", data, _INPUT_OFFSET_AT)
        return int(offset)


class ResumeGuard:
    """Hard links to the side files while a ``--resume`` run may remove them.

    ``with ResumeGuard(side) as guard: ...`` links each existing side file to
    ``<name>.keep``; :meth:`restore` (after a failure) puts back every file
    the run removed, and leaving the block drops the links. A file system
    without hard links gets no guard (the run is not refused for it).
    """

    def __init__(self, side: SideFiles) -> None:
        self.side = side
        self.links: list[tuple[str, str]] = []

    def __enter__(self) -> ResumeGuard:
        for path in (self.side.part, self.side.checkpoint):
            keep = path + KEEP_SUFFIX
            if os.path.lexists(keep) and not os.path.lexists(path):
                os.replace(keep, path)  # a killed earlier run's link: the only copy
            if not os.path.lexists(path):
                continue
            try:
                if os.path.lexists(keep):
                    os.unlink(keep)
                os.link(path, keep, follow_symlinks=False)
            except OSError:
                continue
            self.links.append((path, keep))
        return self

    def restore(self) -> None:
        """Put back each guarded file the run removed."""
        for path, keep in self.links:
            if not os.path.lexists(path):
                os.replace(keep, path)

    def __exit__(self, *exc: object) -> None:
        for _path, keep in self.links:
            try:
                os.unlink(keep)
            except FileNotFoundError:
                pass
