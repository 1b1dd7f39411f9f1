"""The side files of a file run, ``OUT.fusefs-part`` and ``OUT.fusefs-ckpt``:
their names, what an error message says of them, and where a checkpoint
says a run resumes.

A resumed run never removes them, whatever ends it (the engine's
``cleanup_on_error`` in rustlib/core/src/api.rs): with the wrong IN, hours
of work were once lost that way. Only ``--force`` on a fresh run gives them
up.

Nothing here loads the native module.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

PART_SUFFIX = ".fusefs-part"
CHECKPOINT_SUFFIX = ".fusefs-ckpt"
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
