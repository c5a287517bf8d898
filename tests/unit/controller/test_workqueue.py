"""Work queue contract: de-duplication, one key at a time, delays and rate limits on fake time."""

from __future__ import annotations

import pytest

from controller.workqueue import (
    ItemExponentialLimiter,
    ShutDownError,
    TokenBucketLimiter,
    WorkQueue,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_queue(clock: FakeClock) -> WorkQueue[str]:
    return WorkQueue(
        item_limiter=ItemExponentialLimiter(base=1.0, maximum=60.0),
        bucket=TokenBucketLimiter(rate=1.0, burst=2, clock=clock),
        clock=clock,
    )


async def test_add_deduplicates_waiting_keys() -> None:
    queue = make_queue(FakeClock())
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert len(queue) == 2
    assert await queue.get() == "a"
    assert await queue.get() == "b"
    assert len(queue) == 0


async def test_key_in_processing_is_not_handed_out_twice() -> None:
    queue = make_queue(FakeClock())
    queue.add("a")
    first = await queue.get()
    queue.add("a")
    # Still processing: the key waits as dirty, not in the queue.
    assert len(queue) == 0
    queue.done(first)
    assert len(queue) == 1
    assert await queue.get() == "a"


async def test_done_without_new_add_does_not_requeue() -> None:
    queue = make_queue(FakeClock())
    queue.add("a")
    queue.done(await queue.get())
    assert len(queue) == 0


async def test_add_after_waits_for_clock() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    queue.add_after("late", 10.0)
    queue.add_after("early", 5.0)
    assert len(queue) == 0
    clock.now += 10.0
    assert await queue.get() == "early"
    assert await queue.get() == "late"


async def test_add_after_earliest_time_wins() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    queue.add_after("a", 30.0)
    queue.add_after("a", 2.0)
    queue.add_after("a", 20.0)
    clock.now += 2.0
    assert await queue.get() == "a"
    queue.done("a")
    clock.now += 40.0
    queue.add("b")
    # The superseded 30 s and 20 s entries must not bring "a" back.
    assert await queue.get() == "b"
    assert len(queue) == 0


async def test_add_rate_limited_backs_off_exponentially() -> None:
    limiter: ItemExponentialLimiter[str] = ItemExponentialLimiter(base=1.0, maximum=60.0)
    delays = [limiter.when("a") for _ in range(8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert limiter.num_requeues("a") == 8
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 1.0


async def test_rate_limited_key_becomes_ready_after_its_delay() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    queue.add_rate_limited("a")
    queue.add_rate_limited("a")
    assert queue.num_requeues("a") == 2
    clock.now += 1.0
    assert await queue.get() == "a"
    queue.done("a")
    queue.forget("a")
    assert queue.num_requeues("a") == 0


def test_token_bucket_limits_overall_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucketLimiter(rate=2.0, burst=2, clock=clock)
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.5)
    assert bucket.reserve() == pytest.approx(1.0)
    clock.now += 10.0
    assert bucket.reserve() == 0.0


async def test_rate_limited_delay_uses_bucket_when_longer() -> None:
    clock = FakeClock()
    queue = WorkQueue[str](
        item_limiter=ItemExponentialLimiter(base=0.001, maximum=60.0),
        bucket=TokenBucketLimiter(rate=1.0, burst=1, clock=clock),
        clock=clock,
    )
    queue.add_rate_limited("a")
    queue.add_rate_limited("b")  # bucket empty: b waits one second
    clock.now += 0.01
    assert await queue.get() == "a"
    assert len(queue) == 0
    clock.now += 1.0
    assert await queue.get() == "b"


async def test_shut_down_drains_then_raises() -> None:
    queue = make_queue(FakeClock())
    queue.add("a")
    queue.add_after("later", 5.0)
    queue.shut_down()
    queue.add("b")
    assert await queue.get() == "a"
    with pytest.raises(ShutDownError):
        await queue.get()


async def test_depth_callback_follows_queue_length() -> None:
    depths: list[int] = []
    queue = WorkQueue[str](clock=FakeClock(), on_depth=depths.append)
    queue.add("a")
    queue.add("b")
    await queue.get()
    assert depths == [1, 2, 1]
