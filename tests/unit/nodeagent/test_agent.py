"""The agent engine with a fake adapter: triggers, event socket loss, health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from fakes import FakeLinks, wait_until

from api.report import ReportReason
from nodeagent.agent import Agent
from nodeagent.lacpdu import LACPDU
from nodeagent.links import EventSocketLost, LinkEvent, VFLinkState
from nodeagent.metrics import Metrics

AUTO, DISABLE = VFLinkState.AUTO, VFLinkState.DISABLE
SLOW_POLL_S = 60.0  # so that only events can explain a reaction


class FakeEvents:
    """Event source fed by the test; ``fail`` makes the next receive lose the socket."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[LinkEvent] | Exception] = asyncio.Queue()
        self.closed = False

    async def receive(self) -> list[LinkEvent]:
        item = await self.queue.get()
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self.closed = True


@pytest.fixture
async def running(
    links: FakeLinks, metrics: Metrics
) -> AsyncIterator[tuple[Agent, list[FakeEvents], list[tuple[ReportReason, str]]]]:
    sources: list[FakeEvents] = []
    reports: list[tuple[ReportReason, str]] = []

    def factory() -> FakeEvents:
        sources.append(FakeEvents())
        return sources[-1]

    links.add_bonded_pf("ens5f0", vfs=[AUTO, AUTO])
    links.add_bonded_pf("ens5f1", vfs=[AUTO])
    agent = Agent(
        ["ens5f0", "ens5f1"],
        SLOW_POLL_S,
        links,
        metrics,
        report=lambda reason, note: reports.append((reason, note)),
        event_source_factory=factory,
    )
    task = asyncio.create_task(agent.run())
    await asyncio.wait_for(agent.first_poll.wait(), 5)
    yield agent, sources, reports
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def event(links: FakeLinks, name: str) -> LinkEvent:
    link = links.links[name]
    return LinkEvent(False, link.index, link.name, link.master, time.monotonic())


async def test_netlink_event_reacts_before_poll(links: FakeLinks, running: tuple) -> None:
    agent, sources, reports = running
    links.set_lacp("ens5f0", 0x8F, 0x37)

    sources[0].queue.put_nowait([event(links, "ens5f0")])
    await wait_until(lambda: links.vf_states("ens5f0") == [DISABLE, DISABLE])

    assert links.vf_states("ens5f1") == [AUTO]
    assert (ReportReason.LACP_DOWN, "ens5f0: lacp is down (ActorExpired)") in reports
    assert agent.reconcilers["ens5f0"].last_reaction_s is not None


async def test_bond_event_maps_to_pf(links: FakeLinks, running: tuple) -> None:
    agent, sources, _ = running
    links.set_lacp("ens5f1", 0x3F, 0x8F)

    sources[0].queue.put_nowait([event(links, "bond-ens5f1")])
    await wait_until(lambda: links.vf_states("ens5f1") == [DISABLE])

    assert agent.pf_for_event(event(links, "bond-ens5f1")) == "ens5f1"


async def test_unrelated_event_ignored(links: FakeLinks, running: tuple) -> None:
    agent, _, _ = running
    other = LinkEvent(False, 999, "eth9", None, time.monotonic())

    assert agent.pf_for_event(other) is None


async def test_other_writer_corrected_on_event(links: FakeLinks, running: tuple) -> None:
    _, sources, _ = running
    links.set_lacp("ens5f0", 0x3F, 0x8F)
    sources[0].queue.put_nowait([event(links, "ens5f0")])
    await wait_until(lambda: links.vf_states("ens5f0") == [DISABLE, DISABLE])

    links.set_vf("ens5f0", 0, AUTO)  # the kernel notifies the PF's change
    sources[0].queue.put_nowait([event(links, "ens5f0")])

    await wait_until(lambda: links.vf_states("ens5f0") == [DISABLE, DISABLE])


async def test_lost_socket_reopened_and_resynced(links: FakeLinks, running: tuple) -> None:
    _, sources, _ = running
    links.set_lacp("ens5f1", 0x8F, 0x37)  # a change whose notification was dropped

    sources[0].queue.put_nowait(EventSocketLost("[Errno 105] No buffer space available"))
    await wait_until(lambda: len(sources) == 2)
    await wait_until(lambda: links.vf_states("ens5f1") == [DISABLE])

    assert sources[0].closed is True
    links.set_lacp("ens5f1", 0x3F, 0x3F)
    sources[1].queue.put_nowait([event(links, "ens5f1")])
    await wait_until(lambda: links.vf_states("ens5f1") == [AUTO])


async def test_lacpdu_triggers_read_and_recheck(links: FakeLinks, running: tuple) -> None:
    agent, _, _ = running
    reads = links.read_names
    reads.clear()
    links.set_lacp("ens5f0", 0x3F, 0x8F)

    agent.on_lacpdu("ens5f0", LACPDU(0x8F, 0x3F, time.monotonic()))
    await wait_until(lambda: reads.count("ens5f0") >= 2)

    assert links.vf_states("ens5f0") == [DISABLE, DISABLE]
    assert reads.count("ens5f1") == 0


async def test_trigger_merges_pending(links: FakeLinks, metrics: Metrics) -> None:
    links.add_bonded_pf("ens5f0", vfs=[AUTO])
    agent = Agent(["ens5f0"], SLOW_POLL_S, links, metrics)
    task = asyncio.create_task(agent.run())
    await asyncio.wait_for(agent.first_poll.wait(), 5)
    from nodeagent.reconcile import Trigger, TriggerKind

    early = Trigger(TriggerKind.NETLINK, 1.0)
    agent.trigger("ens5f0", Trigger(TriggerKind.LACPDU, 2.0))
    agent.trigger("ens5f0", early)
    pending = agent._triggers["ens5f0"].pending

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pending == early


def test_health_after_three_intervals(links: FakeLinks, metrics: Metrics) -> None:
    agent = Agent(["ens5f0"], 1.0, links, metrics)
    agent.last_poll_completed = 100.0

    assert agent.healthy(now=102.9) is True
    assert agent.healthy(now=103.1) is False


async def test_poll_keeps_running_without_events(links: FakeLinks, metrics: Metrics) -> None:
    links.add_bonded_pf("ens5f0", vfs=[AUTO])
    agent = Agent(["ens5f0"], 0.01, links, metrics)  # no event source at all
    task = asyncio.create_task(agent.run())
    await asyncio.wait_for(agent.first_poll.wait(), 5)
    links.set_lacp("ens5f0", 0x3F, 0x8F)

    await wait_until(lambda: links.vf_states("ens5f0") == [DISABLE])

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert agent.healthy() is True


async def test_repeated_lacpdu_starts_no_pass(links: FakeLinks, running: tuple) -> None:
    agent, _, _ = running
    reads = links.read_names
    reads.clear()
    healthy = LACPDU(0x3F, 0x3F, time.monotonic())

    agent.on_lacpdu("ens5f1", healthy)  # first PDU seen: read
    await wait_until(lambda: reads.count("ens5f1") >= 2)  # the read and its recheck
    await asyncio.sleep(0.1)
    reads.clear()
    agent.on_lacpdu("ens5f1", LACPDU(0x3F, 0x3F, time.monotonic()))  # nothing new
    await asyncio.sleep(0.1)
    skipped = list(reads)
    agent.on_lacpdu("ens5f1", LACPDU(0x8F, 0x3F, time.monotonic()))  # the switch expired
    await wait_until(lambda: reads.count("ens5f1") >= 1)

    assert skipped == []


async def test_missing_lacpdus_trigger_read(
    links: FakeLinks, running: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No PDU within the expiry time: the agent re-reads without any event or poll."""
    import nodeagent.agent

    agent, _, _ = running
    monkeypatch.setattr(nodeagent.agent, "SHORT_EXPIRY_S", 0.05)
    agent.on_lacpdu("ens5f0", LACPDU(0x3F, 0x3F, time.monotonic()))
    links.set_lacp("ens5f0", 0x8F, 0x37)  # the kernel expires the port, says nothing

    await wait_until(lambda: links.vf_states("ens5f0") == [DISABLE, DISABLE])

    assert agent.reconcilers["ens5f0"].status.reason == "ActorExpired"
