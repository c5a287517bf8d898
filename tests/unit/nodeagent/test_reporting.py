"""Reporter: token bucket, coalescing to the newest state, retries, restored flag."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fakes import wait_until

from api.report import REPORT_ANNOTATION, ReportReason, parse_event
from api.v1alpha1.types import InterfaceStatus, LACPState
from nodeagent.metrics import Metrics
from nodeagent.reporting import MonitorIdentity, Reporter, ReportSendError, TokenBucket

IDENTITY = MonitorIdentity("pfsr", "monitor-a", "uid-1")


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail = False

    async def send(self, event: dict[str, Any]) -> None:
        if self.fail:
            raise ReportSendError("connection refused")
        self.events.append(event)


def status(state: LACPState) -> list[InterfaceStatus]:
    return [InterfaceStatus(name="ens5f0", lacp_state=state, reason="Negotiated")]


def test_bucket_burst_then_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=1.0, burst=10, clock=clock)

    taken = [bucket.take() for _ in range(10)]
    wait = bucket.take()
    clock.now = 1.0
    after_one_second = bucket.take()

    assert taken == [0.0] * 10
    assert wait == 1.0
    assert after_one_second == 0.0
    assert bucket.take() > 0


def test_bucket_caps_at_burst() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=1.0, burst=3, clock=clock)
    clock.now = 1000.0

    assert [bucket.take() for _ in range(4)][:3] == [0.0, 0.0, 0.0]
    assert bucket.take() > 0


async def test_coalesces_to_newest_state(metrics: Metrics) -> None:
    sink = RecordingSink()
    current = {"state": LACPState.UP}
    clock = ManualClock()
    reporter = Reporter(
        IDENTITY,
        "node-1",
        sink,
        lambda: status(current["state"]),
        metrics,
        bucket=TokenBucket(rate=1.0, burst=1, clock=clock),
    )
    task = asyncio.create_task(reporter.run())
    reporter.notify(ReportReason.LACP_UP, "first")
    await wait_until(lambda: len(sink.events) == 1)

    for i in range(20):  # over the cap: no token until the clock moves
        current["state"] = LACPState.DOWN if i % 2 else LACPState.UP
        reporter.notify(ReportReason.LACP_DOWN if i % 2 else ReportReason.LACP_UP, f"n{i}")
        await asyncio.sleep(0)
    current["state"] = LACPState.DOWN
    clock.now = 5.0
    await wait_until(lambda: len(sink.events) >= 2)
    await asyncio.sleep(0.02)
    task.cancel()

    assert len(sink.events) == 2
    newest = parse_event(sink.events[1])
    assert newest is not None
    assert newest.interfaces[0].lacp_state == LACPState.DOWN
    assert sink.events[1]["note"] == "n19"
    assert newest.sequence == 2


async def test_event_body_is_a_report(metrics: Metrics) -> None:
    sink = RecordingSink()
    reporter = Reporter(IDENTITY, "node-1", sink, lambda: status(LACPState.DOWN), metrics)
    reporter.notify(ReportReason.LACP_DOWN, "ens5f0: lacp is down")

    assert await reporter.send_pending() is True

    event = sink.events[0]
    assert event["reason"] == "LACPDown"
    assert event["type"] == "Warning"
    assert event["regarding"]["uid"] == "uid-1"
    payload = json.loads(event["metadata"]["annotations"][REPORT_ANNOTATION])
    assert payload["node"] == "node-1"
    assert payload["restored"] is False
    assert payload["interfaces"][0]["lacpState"] == "Down"


async def test_failure_keeps_state_for_retry(metrics: Metrics) -> None:
    sink = RecordingSink()
    sink.fail = True
    reporter = Reporter(IDENTITY, "node-1", sink, lambda: status(LACPState.UP), metrics)
    reporter.notify(ReportReason.LACP_UP, "up")

    failed = await reporter.send_pending()
    sink.fail = False
    retried = await reporter.send_pending()

    assert failed is False
    assert retried is True
    assert len(sink.events) == 1
    assert sink.events[0]["reason"] == "LACPUp"


async def test_restored_flag_reported(metrics: Metrics) -> None:
    sink = RecordingSink()
    reporter = Reporter(IDENTITY, "node-1", sink, lambda: status(LACPState.UP), metrics)
    reporter.restored = True
    reporter.notify(ReportReason.VFS_RESTORED, "vfs restored")

    await reporter.send_pending()

    report = parse_event(sink.events[0])
    assert report is not None
    assert report.restored is True
    assert sink.events[0]["reason"] == "VFsRestored"


async def test_periodic_report_without_changes(metrics: Metrics) -> None:
    sink = RecordingSink()
    reporter = Reporter(
        IDENTITY, "node-1", sink, lambda: status(LACPState.UP), metrics, interval_s=0.01
    )
    task = asyncio.create_task(reporter.run())
    await wait_until(lambda: len(sink.events) >= 2)
    task.cancel()

    assert {event["reason"] for event in sink.events} == {"StateReport"}
