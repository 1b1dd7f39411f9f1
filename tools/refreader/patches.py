"""Rebuilding a patched frame (FORMAT.md §9.2 WriteSegmentsPatched, carry kind 2).

A patch's plaintext ``P`` is the first ``keep`` bytes of its base's plaintext,
zeros to the plain length, then the patch's bytes at ``offset``. The base is
the frame its segment referred to just before the record; its plaintext comes
from its pack where the pack holds it intact (it authenticates: a sync of the
packs made it durable, after which its own base may have been punched), else
from the record after the snapshot that carried it (its stored bytes, or its
own patch over its own base: a chain of patches, walked down the same way to
a frame its pack holds, a frame with bytes, or a patch without base) or, when
no record carried it, from its pack. The frame is then ``P`` sealed as a format-2 raw frame,
which is deterministic (nonce = generation, zero padding): the stored bytes
the pack holds, or held before a crash lost them.

A base that cannot be read or authenticated, or whose generation is not the
patch's base generation, leaves the frame unrebuilt (:class:`Unrebuilt`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from refreader.carried import Carried, FrameKey, Patch
from refreader.errors import IntegrityError
from refreader.fields import Segref


class Unrebuilt(Exception):
    """A patched frame whose base is missing, of another generation or unreadable."""


#: (segref, the base's stored bytes as a record carried them or None) -> its plaintext,
#: read from those bytes or else from its pack; raises IntegrityError if it does not open.
ReadBase = Callable[[Segref, bytes | None], bytes]


def patched_plaintext(
    patched: Carried, by_frame: Mapping[FrameKey, Carried], read_base: ReadBase
) -> bytes:
    """``P`` of a frame a patch carried, its chain of bases resolved first."""
    chain = [patched]
    while True:
        top = chain[-1]
        assert isinstance(top.carry, Patch)
        if top.carry.base_generation == 0:
            plain = b""
            break
        base = _base_of(top, top.carry)
        prior = by_frame.get((top.ino, top.index, base.generation))
        if prior is not None and isinstance(prior.carry, Patch):
            try:
                plain = read_base(base, None)  # made durable by a sync of the packs
                break
            except IntegrityError:
                pass  # lost with the pack's tail: rebuilt from its own patch
            chain.append(prior)  # generations fall down the chain: it ends
            continue
        ref, frame = base, None
        if prior is not None and isinstance(prior.carry, bytes):
            ref, frame = prior.ref, prior.carry  # its stored bytes, as the record carried them
        try:
            plain = read_base(ref, frame)
        except IntegrityError as e:
            raise Unrebuilt(f"its base (generation {base.generation}) does not read: {e}") from None
        break
    for link in reversed(chain):
        assert isinstance(link.carry, Patch)
        plain = apply_patch(plain, link.carry, link.ref.plain_len)
    return plain


def _base_of(carried: Carried, patch: Patch) -> Segref:
    base = carried.base
    if base is None:
        raise Unrebuilt(
            f"its base (generation {patch.base_generation}) is gone: segment {carried.index} "
            "had no frame before the record"
        )
    if base.generation != patch.base_generation:
        raise Unrebuilt(
            f"the segment's frame before the record has generation {base.generation}, "
            f"the patch's base {patch.base_generation}"
        )
    return base


def apply_patch(base: bytes, patch: Patch, plain_len: int) -> bytes:
    """The first ``keep`` bytes of ``base``, zeros to ``plain_len``, the patch at its offset
    (the decoder bounds ``keep`` and the patch by ``plain_len``; the base by nothing)."""
    if patch.keep > len(base):
        raise Unrebuilt(f"the patch keeps {patch.keep} bytes of a base of {len(base)}")
    plain = bytearray(base[: patch.keep])
    plain.extend(bytes(plain_len - patch.keep))
    plain[patch.offset : patch.offset + len(patch.data)] = patch.data
    return bytes(plain)
