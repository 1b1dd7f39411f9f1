"""The trio adapters in fusefs.aio."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import trio
from support import KEY, OTHER_KEY, S, mixed_data, side_files

from fusefs import EncryptParams, Format, Key, ParallelismProfile, aio, errors

MiB = 2**20


def key() -> Key:
    return Key.from_raw(KEY)


def test_path_round_trip(tmp_path: Path) -> None:
    data = mixed_data(5 * S + 1)
    (tmp_path / "p").write_bytes(data)

    async def main() -> None:
        t = await aio.encrypt_path(
            tmp_path / "p", tmp_path / "e", key(), EncryptParams(segment_size=S)
        )
        assert t.plaintext_bytes == len(data) and t.segments == 6
        t = await aio.decrypt_path(str(tmp_path / "e"), str(tmp_path / "d"), key())
        assert t.plaintext_bytes == len(data)

    trio.run(main)
    assert (tmp_path / "d").read_bytes() == data


def test_file_round_trip_and_concurrency() -> None:
    """Several runs at once on one trio loop, each on its own worker thread."""
    inputs = [mixed_data(S * i + 3, seed=i) for i in range(8)]
    outputs: dict[int, bytes] = {}

    async def one(i: int) -> None:
        fmt = Format.V1 if i % 2 else Format.V2
        enc = io.BytesIO()
        await aio.encrypt_file(io.BytesIO(inputs[i]), enc, key(), EncryptParams(format=fmt))
        dec = io.BytesIO()
        await aio.decrypt_file(io.BytesIO(enc.getvalue()), dec, key(), ParallelismProfile.single())
        outputs[i] = dec.getvalue()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for i in range(len(inputs)):
                nursery.start_soon(one, i)

    trio.run(main)
    assert [outputs[i] for i in range(len(inputs))] == inputs


def test_errors_propagate(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(b"secret")

    async def main() -> None:
        await aio.encrypt_path(tmp_path / "p", tmp_path / "e", key())
        with pytest.raises(errors.WrongKeyError) as info:
            await aio.decrypt_path(tmp_path / "e", tmp_path / "d", Key.from_raw(OTHER_KEY))
        assert info.value.kind == "wrong_key"
        with pytest.raises(errors.StreamIOError):
            await aio.encrypt_path(tmp_path / "missing", tmp_path / "x", key())
        with pytest.raises(errors.FormatError):
            await aio.decrypt_file(io.BytesIO(b"not a stream"), io.BytesIO(), key())

    trio.run(main)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e", "p"]


def test_cancellation_stops_the_job(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(os.urandom(96 * MiB))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0.001)

    async def main() -> float:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            t0 = trio.current_time()
            with trio.move_on_after(0.02) as scope:
                await aio.encrypt_path(
                    tmp_path / "p",
                    tmp_path / "e",
                    key(),
                    EncryptParams(checkpoint_bytes=0),
                    ParallelismProfile.single(),
                )
            elapsed: float = trio.current_time() - t0
            nursery.cancel_scope.cancel()
        assert scope.cancelled_caught
        return elapsed

    elapsed = trio.run(main)
    assert elapsed < 5  # the cancelled run did not go on to the end
    assert ticks >= 5  # the event loop kept running while the engine worked
    # The job has stopped and cleaned up: no output, no side files.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_cancelled_v2_run_can_resume(tmp_path: Path) -> None:
    data = os.urandom(48 * MiB)
    (tmp_path / "p").write_bytes(data)
    part, ckpt = side_files(tmp_path / "e")
    params = EncryptParams(segment_size=64 * 1024, checkpoint_bytes=MiB)

    async def main() -> None:
        async with trio.open_nursery() as nursery:

            async def cancel_at_checkpoint() -> None:
                while not ckpt.exists():
                    await trio.sleep(0.0005)
                nursery.cancel_scope.cancel()

            nursery.start_soon(cancel_at_checkpoint)
            await aio.encrypt_path(
                tmp_path / "p", tmp_path / "e", key(), params, ParallelismProfile.single()
            )
            raise AssertionError("the run ended before its first checkpoint")
        assert part.exists() and ckpt.exists() and not (tmp_path / "e").exists()
        await aio.encrypt_path(tmp_path / "p", tmp_path / "e", key(), params, None, True)
        await aio.decrypt_path(tmp_path / "e", tmp_path / "d", key())

    trio.run(main)
    assert (tmp_path / "d").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "e", "p"]
