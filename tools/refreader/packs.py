"""Reading file contents from packs, ``packs/*.pack`` (FORMAT.md §8), read-only.

Frames are found only through segment maps: :meth:`Packs.segment` reads
``stored_len`` bytes at a segref's offset, opens them under the file's key
and the AAD of §8.2 with the layout the frame's generation selects (format 1
or 2: an upgraded vault has both, §11), and decodes the body. A missing pack, a frame past its
end or one that does not open is damage naming the pack and offset.

A frame the log carried (§9.2 WriteSegmentsCarried) that its segment still refers
to is taken from the record instead: the pack may have lost it in a crash (its
tail, or the whole pack with its header, was never synced), and the carried bytes
are the frame's exact stored bytes, so the same checks apply to them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import BinaryIO

from refreader.errors import IntegrityError, UsageError
from refreader.fields import Damaged, Segref
from refreader.layouts import Layout, frame_layout
from refreader.log import VaultKeys
from refreader.primitives import aead_open, make_aead


class Packs:
    """Open pack files of one vault (each header checked once)."""

    def __init__(
        self,
        vault: str,
        layout: Layout,
        keys: VaultKeys,
        legacy_generation_high: int,
        carried: Mapping[Segref, bytes] | None = None,
    ) -> None:
        self.directory = os.path.join(vault, "packs")
        self.files = layout.files
        self.keys = keys
        self.legacy_generation_high = legacy_generation_high  # the state's (§8.2)
        self.carried = carried or {}  # the state's live carried frames (carried_frames)
        self._open: dict[int, BinaryIO] = {}

    def close(self) -> None:
        for f in self._open.values():
            f.close()
        self._open.clear()

    def _pack(self, number: int) -> BinaryIO:
        f = self._open.get(number)
        if f is not None:
            return f
        name = f"packs/{number:016x}.pack"
        try:
            f = open(os.path.join(self.directory, f"{number:016x}.pack"), "rb")  # noqa: SIM115
        except OSError as e:
            raise IntegrityError(f"{name}: cannot open: {e.strerror or e}") from None
        try:
            header = self.files.parse_pack_header(f.read(64))
        except Damaged as e:
            f.close()
            raise IntegrityError(f"{name}: damaged header: {e}") from None
        if header.vault_id != self.keys.vault_id or header.number != number:
            f.close()
            raise IntegrityError(f"{name}: header names another vault or pack number")
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

    def segment(self, file_id: bytes, index: int, ref: Segref) -> bytes:
        """The plaintext of segment ``index`` of the file ``file_id``."""
        where = f"packs/{ref.pack:016x}.pack offset {ref.offset}"
        frames = frame_layout(ref.generation, self.legacy_generation_high)
        if ref.offset < 64 or ref.stored_len < frames.FRAME_OVERHEAD or not ref.plain_len:
            raise IntegrityError(f"{where}: impossible segref {ref}")
        frame = self.carried.get(ref)
        if frame is None:
            frame = self._stored(ref, where)
        nonce, sealed = frames.split_frame(frame, ref.generation)
        key = frames.file_key(self.keys.master, file_id)
        aad = frames.frame_aad(self.keys.vault_id, file_id, index, ref.generation, ref.plain_len)
        plain = aead_open(make_aead(self.keys.cipher, key), nonce, sealed, aad)
        if plain is None:
            raise IntegrityError(f"{where}: frame failed authentication")
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
