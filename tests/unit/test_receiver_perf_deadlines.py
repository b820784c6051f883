"""The receiver's shared inbox deadline (``Deadlines``), which replaced a timer per request: an await
past its deadline ends in TimeoutError, one in time is untouched, and a cancellation from elsewhere
stays a cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest

from ingestion_patterns.push.receiver.app import Deadlines


async def _sleep_then(seconds: float, value: str = "done") -> str:
    await asyncio.sleep(seconds)
    return value


def test_an_await_past_its_deadline_times_out_and_one_in_time_returns():
    async def scenario() -> None:
        deadlines = Deadlines(0.2, sweep_seconds=0.02)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await deadlines.run(_sleep_then(5))
        assert 0.2 <= time.monotonic() - started < 1.0
        assert await deadlines.run(_sleep_then(0.01)) == "done"
        # Many at once, some late: each gets its own outcome, and nothing is left waiting.
        results = await asyncio.gather(
            *(deadlines.run(_sleep_then(0.01 if i % 2 else 5, str(i))) for i in range(20)), return_exceptions=True
        )
        assert [type(r) if isinstance(r, BaseException) else r for r in results] == [
            str(i) if i % 2 else TimeoutError for i in range(20)
        ]
        assert not deadlines._waiting and not deadlines._expired
        await asyncio.sleep(0.05)
        assert deadlines._sweep is None  # the sweep stops when nothing waits

    asyncio.run(scenario())


def test_a_cancellation_from_elsewhere_stays_a_cancellation():
    async def scenario() -> None:
        deadlines = Deadlines(10)
        task = asyncio.create_task(deadlines.run(_sleep_then(5)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not deadlines._waiting

    asyncio.run(scenario())
