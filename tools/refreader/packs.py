"""Reading file contents from packs, ``packs/*.pack`` (FORMAT.md §8), read-only.

Frames are found only through segment maps: :meth:`Packs.segment` reads
``stored_len`` bytes at a segref's offset, opens them under the file's key
and the AAD of §8.2 with the layout the frame's generation selects (format 1
or 2: an upgraded vault has both, §11), and decodes the body. A missing pack, a frame past its
end or one that does not open is damage naming the pack and offset.

A frame the log carried (§9.2 WriteSegmentsCarried, WriteSegmentsPatched) that
its segment still refers to may be missing from its pack: a crash lost the
pack's unsynced tail, or the whole new pack with its header. Its stored bytes
are taken from the record, or, for a patch, from the pack if the frame there
authenticates, else sealed again from the patch (``patches``); the same checks
apply to them as to any frame. A pack that holds other bytes at that place
(a byte that differs and is not zero) is damage, as a missing pack is.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from refreader import v2_files
from refreader.carried import Carried, agrees_with_pack
from refreader.errors import IntegrityError, UsageError
from refreader.fields import Damaged, Segref
from refreader.layouts import Layout, frame_layout
from refreader.log import VaultKeys
from refreader.patches import Unrebuilt, patched_plaintext
from refreader.primitives import aead_open, make_aead
from refreader.state import State, carried_frames


class Packs:
    """Open pack files of one vault (each header checked once), read in ``state``: its
    legacy generation high picks each frame's layout (§8.2), its carried frames stand in
    for frames the packs lost."""

    def __init__(self, vault: str, layout: Layout, keys: VaultKeys, state: State) -> None:
        self.directory = os.path.join(vault, "packs")
        self.files = layout.files
        self.keys = keys
        self.legacy_generation_high = state.legacy_generation_high
        self.segment_size = state.segment_size  # a patched frame is sealed with it
        self.carried = carried_frames(state)  # the live ones, by segref
        self.carried_by_frame = state.carried.by_frame  # every one: bases of patches
        self._open: dict[int, BinaryIO] = {}

    def close(self) -> None:
        for f in self._open.values():
            f.close()
        self._open.clear()

    def _file(self, number: int) -> BinaryIO:
        name = f"packs/{number:016x}.pack"
        try:
            return open(os.path.join(self.directory, f"{number:016x}.pack"), "rb")  # noqa: SIM115
        except OSError as e:
            raise IntegrityError(f"{name}: cannot open: {e.strerror or e}") from None

    def _check_header(self, number: int, header: bytes) -> None:
        name = f"packs/{number:016x}.pack"
        try:
            parsed = self.files.parse_pack_header(header)
        except Damaged as e:
            raise IntegrityError(f"{name}: damaged header: {e}") from None
        if parsed.vault_id != self.keys.vault_id or parsed.number != number:
            raise IntegrityError(f"{name}: header names another vault or pack number")

    def _pack(self, number: int) -> BinaryIO:
        f = self._open.get(number)
        if f is not None:
            return f
        f = self._file(number)
        try:
            self._check_header(number, f.read(64))
        except IntegrityError:
            f.close()
            raise
        self._open[number] = f
        return f

    def _stored(self, ref: Segref, where: str) -> bytes:
        """The frame's bytes as its pack holds them."""
        f = self._pack(ref.pack)
        f.seek(ref.offset)
        frame = f.read(ref.stored_len)
        if len(frame) != ref.stored_len:
            raise IntegrityError(f"{where}: frame lies past the end of its pack")
        return frame

    def _held(self, ref: Segref) -> bytes:
        """What the pack holds at a carried frame's place, up to its end: a crash may have
        cut it there, and cut the header too if the pack was new (a file shorter than 64
        bytes or whose 64 bytes are zeros); any other header must be this pack's."""
        with self._file(ref.pack) as f:
            header = f.read(64)
            if len(header) == 64 and any(header):
                self._check_header(ref.pack, header)
            f.seek(ref.offset)
            return f.read(ref.stored_len)

    def segment(self, file_id: bytes, index: int, ref: Segref) -> bytes:
        """The plaintext of segment ``index`` of the file ``file_id``."""
        where = f"packs/{ref.pack:016x}.pack offset {ref.offset}"
        frames = frame_layout(ref.generation, self.legacy_generation_high)
        if ref.offset < 64 or ref.stored_len < frames.FRAME_OVERHEAD or not ref.plain_len:
            raise IntegrityError(f"{where}: impossible segref {ref}")
        carried = self.carried.get(ref)
        if carried is None:
            return self._plaintext(file_id, index, ref, self._stored(ref, where), where)
        if isinstance(carried.carry, bytes):
            self._check_lost(ref, self._held(ref), carried.carry, where)
            return self._plaintext(file_id, index, ref, carried.carry, where)
        return self._patched(file_id, carried, where)

    def _patched(self, file_id: bytes, carried: Carried, where: str) -> bytes:
        """A frame a patch carried: the pack's frame if it authenticates, else sealed
        again from the patch (§9.2 WriteSegmentsPatched)."""
        index, ref = carried.index, carried.ref
        held = self._held(ref)
        whole = len(held) == ref.stored_len
        opened = self._open_frame(file_id, index, ref, held) if whole else None
        if opened is not None:
            return self._decode(ref, opened, where)
        if ref.generation <= self.legacy_generation_high:
            raise IntegrityError(f"{where}: a patch carries a frame of format 1 (§9.2)")
        try:
            plain = patched_plaintext(
                carried,
                self.carried_by_frame,
                lambda base, frame: self._base_plaintext(file_id, index, base, frame),
            )
        except Unrebuilt as e:
            raise IntegrityError(
                f"{where}: frame lost (it does not authenticate) and the log's patch "
                f"cannot rebuild it: {e}"
            ) from None
        frame = self._seal(file_id, index, ref, plain)
        if len(frame) != ref.stored_len:
            raise IntegrityError(
                f"{where}: the patched frame seals to {len(frame)} bytes, "
                f"its stored length is {ref.stored_len}"
            )
        self._check_lost(ref, held, frame, where)
        return plain

    def _base_plaintext(
        self, file_id: bytes, index: int, base: Segref, frame: bytes | None
    ) -> bytes:
        """A patch's base: from the stored bytes a record carried, else from its pack."""
        if frame is None:
            return self.segment(file_id, index, base)
        where = f"the log's copy of packs/{base.pack:016x}.pack offset {base.offset}"
        return self._plaintext(file_id, index, base, frame, where)

    def _check_lost(self, ref: Segref, held: bytes, frame: bytes, where: str) -> None:
        if not agrees_with_pack(held, frame):
            raise IntegrityError(
                f"{where}: the pack holds another frame than the one the log carries "
                f"(generation {ref.generation})"
            )

    def _seal(self, file_id: bytes, index: int, ref: Segref, plain: bytes) -> bytes:
        """``plain`` sealed as a format-2 raw frame: the same bytes every time (§9.2)."""
        nonce, _ = v2_files.split_frame(b"", ref.generation)
        key = v2_files.file_key(self.keys.master, file_id)
        aad = v2_files.frame_aad(self.keys.vault_id, file_id, index, ref.generation, ref.plain_len)
        sealed_plain = v2_files.raw_frame_plaintext(plain, self.segment_size)
        return make_aead(self.keys.cipher, key).encrypt(nonce, sealed_plain, aad)

    def _open_frame(self, file_id: bytes, index: int, ref: Segref, frame: bytes) -> bytes | None:
        """The frame's sealed plaintext, or None if it does not authenticate."""
        frames = frame_layout(ref.generation, self.legacy_generation_high)
        nonce, sealed = frames.split_frame(frame, ref.generation)
        key = frames.file_key(self.keys.master, file_id)
        aad = frames.frame_aad(self.keys.vault_id, file_id, index, ref.generation, ref.plain_len)
        return aead_open(make_aead(self.keys.cipher, key), nonce, sealed, aad)

    def _plaintext(
        self, file_id: bytes, index: int, ref: Segref, frame: bytes, where: str
    ) -> bytes:
        """The segment's plaintext from its frame's stored bytes: opened, then decoded."""
        plain = self._open_frame(file_id, index, ref, frame)
        if plain is None:
            raise IntegrityError(f"{where}: frame failed authentication")
        return self._decode(ref, plain, where)

    def _decode(self, ref: Segref, plain: bytes, where: str) -> bytes:
        """The segment's plaintext from its frame's opened (sealed) plaintext."""
        frames = frame_layout(ref.generation, self.legacy_generation_high)
        encoding: int
        body: bytes
        try:
            encoding, body = frames.frame_body(plain)
        except Damaged as e:
            raise IntegrityError(f"{where}: {e}") from None
        if encoding == frames.ENCODING_RAW:
            data = body
        elif encoding == frames.ENCODING_ZSTD:
            data = _unzstd(body, ref.plain_len, where)
        else:
            raise IntegrityError(f"{where}: unknown encoding {encoding}")
        if len(data) != ref.plain_len:
            raise IntegrityError(f"{where}: {len(data)} bytes where {ref.plain_len} expected")
        return data


def _unzstd(body: bytes, plain_len: int, where: str) -> bytes:
    try:
        import zstandard
    except ImportError:
        raise UsageError("the zstandard package is required: pip install zstandard") from None
    try:
        return bytes(
            zstandard.ZstdDecompressor().decompress(
                body, max_output_size=plain_len, allow_extra_data=False
            )
        )
    except zstandard.ZstdError as e:
        raise IntegrityError(f"{where}: undecodable zstd body ({e})") from None
