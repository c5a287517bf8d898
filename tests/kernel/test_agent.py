"""The real agent engine and netlink adapter against bonding and netdevsim in the guest.

Each test runs ``nodeagent.agent.Agent`` in this process with the real
``NetlinkClient``, link event socket and LACPDU packet sockets, and no Kubernetes
reporting. Failures are injected at the switch side of the testbed:

* the switch stops receiving the host's LACPDUs (its ingress drops them): only the
  host's partner state changes, and only incoming LACPDUs reveal it at once;
* the host stops receiving the switch's LACPDUs: the host's actor expires and the
  kernel sends a link notification.

Reaction time is measured from outside the agent: a sampler task reads the PF over
netlink every few milliseconds and timestamps the first read where the kernel's state
no longer carries traffic and the first read where every ``auto`` VF reads
``disable``. Because the sampler reads at intervals, the true reaction lies between
(disabled - first bad read) and (disabled - last good read); both are reported. The
median upper bound is checked against the 100 ms target, and every round against
half a polling interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import statistics
import struct
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from topology import PFSpec, Topology, TopologyError

from nodeagent.agent import Agent
from nodeagent.lacp import carries_traffic
from nodeagent.lacpdu import LACPDUListener
from nodeagent.linkevents import LinkEventSocket
from nodeagent.links import Link, VFInfo, VFLinkState
from nodeagent.metrics import in_memory_metrics
from nodeagent.netlink import NetlinkClient

pytestmark = pytest.mark.kernel

POLL_S = 1.0
TARGET_S = 0.1
# Every round must beat half a polling interval, which only the event paths can do:
# a round that waited for the poll would take up to a whole interval. The 100 ms
# target is checked on the median, because one emulated read of the PF under host
# load can take longer than the target by itself.
EVENT_PATH_LIMIT_S = POLL_S / 2
SAMPLE_PERIOD_S = 0.005
ROUNDS = int(os.environ.get("PFSR_AGENT_ROUNDS", "5"))
# VFs 1-3 pinned up by the user, 0 and 4 following LACP.
C4_STATES = ["auto", "enable", "enable", "enable", "auto"]
REACTIONS: dict[str, list[dict[str, Any]]] = {}


class LogRecords(logging.Handler):
    """Records of the ``nodeagent`` loggers during one test."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, text: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.getMessage() == text]


@pytest.fixture
def agent_logs() -> AsyncIterator[LogRecords]:
    handler = LogRecords()
    logger = logging.getLogger("nodeagent")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler  # type: ignore[misc]
    logger.removeHandler(handler)
    logger.setLevel(previous)


@contextlib.asynccontextmanager
async def running_agent(
    interfaces: Sequence[str],
    reader: Any = None,
    event_buffer: int | None = None,
) -> AsyncIterator[Agent]:
    client = NetlinkClient()
    metrics = in_memory_metrics()

    def events() -> LinkEventSocket:
        return LinkEventSocket() if event_buffer is None else LinkEventSocket(event_buffer)

    agent = Agent(list(interfaces), POLL_S, reader or client, metrics, event_source_factory=events)
    agent.attach_socket_binder(LACPDUListener(agent.on_lacpdu, metrics))
    task = asyncio.create_task(agent.run())
    try:
        await asyncio.wait_for(agent.first_poll.wait(), 30)
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        client.close()


async def wait_for(condition: Callable[[], bool], limit_s: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > limit_s:
            raise AssertionError(f"{what}: not reached within {limit_s} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def vf_states(client: NetlinkClient, pf: str) -> list[str]:
    link = await client.get_link(pf)
    assert link is not None, f"{pf} not found"
    return [vf.link_state.label for vf in link.vfs]


async def set_vf_states(topo: Topology, pf: str, states: Sequence[str]) -> None:
    wanted = {i: s for i, s in enumerate(states) if i < topo.pf(pf).num_vfs}
    await asyncio.to_thread(topo.set_vf_link_states, pf, wanted)  # type: ignore[arg-type]


async def healthy_baseline(topo: Topology, pf: str, states: Sequence[str]) -> list[str]:
    """Unblock, negotiate, and set the VFs while no agent runs; return the states set."""
    await asyncio.to_thread(topo.unblock, pf)
    await asyncio.to_thread(topo.wait_negotiated, 40.0)
    count = topo.pf(pf).num_vfs
    wanted = [states[i] if i < len(states) else "auto" for i in range(count)]
    await set_vf_states(topo, pf, wanted)
    return wanted


def _attributes(buffer: bytes, offset: int, end: int) -> dict[int, tuple[int, int]]:
    """Return {type: (start, end)} of the netlink attributes in buffer[offset:end]."""
    found = {}
    while offset + 4 <= end:
        length, attr_type = struct.unpack_from("=HH", buffer, offset)
        if length < 4:
            break
        found[attr_type & 0x3FFF] = (offset + 4, offset + length)
        offset += (length + 3) & ~3
    return found


def _vf_states(buffer: bytes, start: int, end: int) -> dict[int, int]:
    states = {}
    offset = start
    while offset + 4 <= end:
        length, _ = struct.unpack_from("=HH", buffer, offset)
        inner = _attributes(buffer, offset + 4, offset + length)
        if 5 in inner:  # IFLA_VF_LINK_STATE: {u32 vf, u32 link_state}
            vf, state = struct.unpack_from("=II", buffer, inner[5][0])
            states[vf] = state
        offset += (length + 3) & ~3
    return states


class Sampler(threading.Thread):
    """Reads the PF in a thread; timestamps when its state turned bad and VFs disabled.

    It parses replies with struct, not pyroute2, and runs outside the agent's event
    loop, so its timestamps do not wait for the agent. A state read happened between
    the send and the receive of its request, so the bounds use the side of that window
    that keeps them conservative.
    """

    def __init__(self, pf: str, watched: list[int]) -> None:
        super().__init__(daemon=True)
        self.pf = pf
        self.watched = watched
        self.last_good: float | None = None  # send time of the last good read
        self.first_bad: float | None = None  # receive time of the first bad read
        self.disabled_sent: float | None = None
        self.disabled_received: float | None = None
        self.samples = 0
        self.last_vfs: dict[int, int] = {}
        self._stop_event = threading.Event()
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        self._sock.bind((0, 0))
        name = self.pf.encode() + b"\0"
        attrs = _nla(3, name) + _nla(29, struct.pack("=I", 1 | 8))  # VF, skip stats
        body = struct.pack("=BxHiII", 0, 0, 0, 0, 0) + attrs
        self._request = struct.pack("=IHHII", 16 + len(body), 18, 1, 0, 0) + body

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)
        self._sock.close()

    def run(self) -> None:
        while not self._stop_event.is_set():
            sent = time.monotonic()
            self._sock.send(self._request)
            reply = self._sock.recv(1 << 16)
            received = time.monotonic()
            self.samples += 1
            self._note(reply, sent, received)
            time.sleep(SAMPLE_PERIOD_S)

    def _note(self, reply: bytes, sent: float, received: float) -> None:
        length, message_type = struct.unpack_from("=IH", reply)
        if message_type != 16:  # not RTM_NEWLINK
            return
        top = _attributes(reply, 32, length)
        actor = partner = None
        if 18 in top:  # IFLA_LINKINFO > IFLA_INFO_SLAVE_DATA > 7 actor, 8 partner
            info = _attributes(reply, *top[18])
            if 5 in info:
                slave = _attributes(reply, *info[5])
                if 7 in slave:
                    actor = reply[slave[7][0]]
                if 8 in slave:
                    partner = struct.unpack_from("=H", reply, slave[8][0])[0]
        self.last_vfs = _vf_states(reply, *top[22]) if 22 in top else {}
        good = (
            actor is not None
            and partner is not None
            and carries_traffic(actor)
            and carries_traffic(partner)
        )
        if self.first_bad is None:
            if good:
                self.last_good = sent
            else:
                self.first_bad = received
        disabled = all(self.last_vfs.get(i) == int(VFLinkState.DISABLE) for i in self.watched)
        if self.first_bad is not None and self.disabled_received is None and disabled:
            self.disabled_sent = sent
            self.disabled_received = received


def _nla(attr_type: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, attr_type) + payload + b"\0" * ((-length) % 4)


async def measure_failure(
    topo: Topology,
    pf: str,
    block: Callable[[str], None],
    mode: str,
    logs: LogRecords,
    baseline: list[str],
) -> dict[str, Any]:
    """Block LACP one way, measure the reaction, unblock, and wait for the VFs to recover."""
    watched = [i for i, s in enumerate(baseline) if s == "auto"]
    sampler = Sampler(pf, watched)
    sampler.start()
    try:
        await wait_for(lambda: sampler.last_good is not None, 10, "first good sample")
        logs.records.clear()
        blocked_at = time.monotonic()
        await asyncio.to_thread(block, pf)
        await wait_for(lambda: sampler.disabled_received is not None, 30, f"{pf} VFs disabled")
        assert sampler.first_bad is not None
        assert sampler.last_good is not None
        assert sampler.disabled_received is not None
        assert sampler.disabled_sent is not None
        set_lines = [
            r
            for r in logs.messages("vf link state was set")
            if getattr(r, "interface", "") == pf and getattr(r, "state", "") == "disable"
        ]
        result = {
            "mode": mode,
            "lower_s": max(0.0, sampler.disabled_sent - sampler.first_bad),
            "upper_s": sampler.disabled_received - sampler.last_good,
            "kernel_bad_after_block_s": sampler.first_bad - blocked_at,
            "agent_trigger": getattr(set_lines[0], "trigger", None) if set_lines else None,
            "agent_reaction_s": (
                getattr(set_lines[0], "reaction_ms", 0.0) / 1000 if set_lines else None
            ),
            "agent_wait_read_write_ms": [
                getattr(set_lines[0], key, None) for key in ("wait_ms", "read_ms", "write_ms")
            ]
            if set_lines
            else None,
            "samples": sampler.samples,
        }
        pinned = [i for i, s in enumerate(baseline) if s == "enable"]
        assert [sampler.last_vfs.get(i) for i in pinned] == [int(VFLinkState.ENABLE)] * len(pinned)
    finally:
        sampler.stop()
    await asyncio.to_thread(topo.unblock, pf)
    check = NetlinkClient()
    try:
        result["recovery_s"] = await wait_for_states(check, pf, baseline, 40)
    finally:
        check.close()
    await asyncio.to_thread(topo.wait_negotiated, 40.0)
    REACTIONS.setdefault(mode, []).append(result)
    return result


async def wait_for_states(
    client: NetlinkClient, pf: str, wanted: list[str], limit_s: float
) -> float:
    start = time.monotonic()
    while True:
        states = await vf_states(client, pf)
        if states == wanted:
            return time.monotonic() - start
        if time.monotonic() - start > limit_s:
            raise AssertionError(f"{pf} VFs {states}, expected {wanted} within {limit_s} s")
        await asyncio.sleep(0.02)


def summarize(values: list[float]) -> dict[str, float]:
    return {
        "min_ms": round(min(values) * 1000, 1),
        "median_ms": round(statistics.median(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


@pytest.fixture(scope="module", autouse=True)
def reaction_report(timings: dict[str, object]) -> Any:
    yield
    summary: dict[str, Any] = {"target_ms": TARGET_S * 1000, "rounds": REACTIONS}
    for mode, rounds in REACTIONS.items():
        upper = summarize([r["upper_s"] for r in rounds])
        lower = summarize([r["lower_s"] for r in rounds])
        summary[f"{mode} upper bound"] = upper
        summary[f"{mode} lower bound"] = lower
        timings[f"agent reaction {mode} (ms, upper bound min/median/max)"] = (
            f"{upper['min_ms']}/{upper['median_ms']}/{upper['max_ms']}"
        )
        timings[f"agent reaction {mode} (ms, lower bound min/median/max)"] = (
            f"{lower['min_ms']}/{lower['median_ms']}/{lower['max_ms']}"
        )
        timings[f"agent triggers {mode}"] = ",".join(str(r["agent_trigger"]) for r in rounds)
    out = os.environ.get("PFSR_RESULTS_DIR") or os.environ.get("PFSR_RESULTS")
    if out and REACTIONS:
        Path(out, "agent-reaction.json").write_text(json.dumps(summary, indent=2) + "\n")


def assert_reaction_times(results: Sequence[dict[str, Any]]) -> None:
    """Check the target on the median and the event path on every round.

    Every round is measured before the check, so a failure shows them all.
    """
    upper = [r["upper_s"] for r in results]
    assert statistics.median(upper) <= TARGET_S, results
    assert [value <= EVENT_PATH_LIMIT_S for value in upper] == [True] * len(upper), results


async def test_switch_stops_receiving(topology: Topology, agent_logs: LogRecords) -> None:
    """Switch ingress drops our LACPDUs: only incoming LACPDUs show it at once."""
    pf = topology.pfs[0].name
    baseline = await healthy_baseline(topology, pf, C4_STATES)
    async with running_agent([pf]) as agent:
        results = [
            await measure_failure(
                topology,
                pf,
                topology.block_lacp_at_switch,
                "switch-stops-receiving",
                agent_logs,
                baseline,
            )
            for _ in range(ROUNDS)
        ]
        assert_reaction_times(results)
        assert agent.reconcilers[pf].status.lacp_state == "Up"


async def test_host_stops_receiving(topology: Topology, agent_logs: LogRecords) -> None:
    """The switch's LACPDUs stop reaching the host: its actor expires, netlink notifies."""
    pf = topology.pfs[1].name
    baseline = await healthy_baseline(topology, pf, C4_STATES)
    async with running_agent([pf]):
        results = [
            await measure_failure(
                topology,
                pf,
                topology.block_lacp_to_host,
                "host-stops-receiving",
                agent_logs,
                baseline,
            )
            for _ in range(ROUNDS)
        ]
        assert_reaction_times(results)


async def test_other_writer_corrected(topology: Topology, agent_logs: LogRecords) -> None:
    """While down, a VF set back to auto by another writer is disabled again."""
    pf = topology.pfs[0].name
    baseline = await healthy_baseline(topology, pf, C4_STATES)
    client = NetlinkClient()
    try:
        async with running_agent([pf]):
            await asyncio.to_thread(topology.block_lacp_at_switch, pf)
            down = ["disable" if s == "auto" else s for s in baseline]
            await wait_for_states(client, pf, down, 20)

            # The write happens while ip runs: between the call and its return.
            called_at = time.monotonic()
            await asyncio.to_thread(topology.set_vf_link_state, pf, 0, "auto")
            returned_at = time.monotonic()
            await wait_for_states(client, pf, down, POLL_S + 1.0)
            corrected_at = time.monotonic()
            REACTIONS.setdefault("other-writer", []).append(
                {
                    "upper_s": corrected_at - called_at,
                    "lower_s": corrected_at - returned_at,
                    "agent_trigger": None,
                }
            )

            await asyncio.to_thread(topology.unblock, pf)
            await wait_for_states(client, pf, baseline, 40)
    finally:
        client.close()
    await asyncio.to_thread(topology.wait_negotiated, 40.0)


async def test_restore_on_monitor_deletion(topology: Topology, agent_logs: LogRecords) -> None:
    pf = topology.pfs[0].name
    baseline = await healthy_baseline(topology, pf, C4_STATES)
    client = NetlinkClient()
    try:
        async with running_agent([pf]) as agent:
            await asyncio.to_thread(topology.block_lacp_at_switch, pf)
            down = ["disable" if s == "auto" else s for s in baseline]
            await wait_for_states(client, pf, down, 20)

            restored = await agent.restore()
            after_restore = await vf_states(client, pf)
            await asyncio.sleep(POLL_S * 2.5)  # passes keep running but no longer write
            later = await vf_states(client, pf)

            assert restored is True
            assert after_restore == baseline
            assert later == baseline
            assert agent.reconcilers[pf].status.lacp_state == "Down"
        await asyncio.to_thread(topology.unblock, pf)
    finally:
        client.close()
    await asyncio.to_thread(topology.wait_negotiated, 40.0)


async def test_vf_count_changes(topology: Topology, agent_logs: LogRecords) -> None:
    """sriov_numvfs changes while down: new VFs get disabled, removed ones vanish."""
    pf = topology.pfs[1].name
    original = topology.pf(pf).num_vfs
    await healthy_baseline(topology, pf, ["auto"] * original)
    client = NetlinkClient()
    try:
        async with running_agent([pf]) as agent:
            await asyncio.to_thread(topology.block_lacp_at_switch, pf)
            await wait_for_states(client, pf, ["disable"] * original, 20)

            fewer = max(1, original - 2)
            await asyncio.to_thread(topology.set_num_vfs, pf, fewer)
            await wait_for_states(client, pf, ["disable"] * fewer, POLL_S + 1.0)
            await wait_for(
                lambda: agent.reconcilers[pf].status.vfs.total == fewer,
                POLL_S + 1.0,
                "status shows fewer VFs",
            )

            await asyncio.to_thread(topology.set_num_vfs, pf, original)
            await wait_for_states(client, pf, ["disable"] * original, POLL_S + 1.0)
            await wait_for(
                lambda: agent.reconcilers[pf].status.vfs.disabled == original,
                POLL_S + 1.0,
                "status shows all VFs disabled",
            )

            await asyncio.to_thread(topology.unblock, pf)
            await wait_for_states(client, pf, ["auto"] * original, 40)
    finally:
        client.close()
    errors = [r.getMessage() for r in agent_logs.records if r.levelno >= logging.ERROR]
    assert errors == []
    await asyncio.to_thread(topology.wait_negotiated, 40.0)


@dataclass
class PhantomVF:
    """The real adapter, plus one VF in ``auto`` that the PF does not have.

    netdevsim accepts every link state for a VF it has, so the way to get a real
    EINVAL from the kernel is a VF index out of range, which is also what the agent
    meets when sriov_numvfs shrinks between its read and its write.
    """

    client: NetlinkClient
    pf: str
    phantom: int
    phantom_writes: int = 0

    async def get_link(self, name: str) -> Link | None:
        link = await self.client.get_link(name)
        if link is not None and name == self.pf:
            link = replace(link, vfs=(*link.vfs, VFInfo(self.phantom, VFLinkState.AUTO)))
        return link

    async def get_link_by_index(self, index: int) -> Link | None:
        return await self.client.get_link_by_index(index)

    async def count_members(self, master_index: int) -> int:
        return await self.client.count_members(master_index)

    async def set_vf_link_states(self, pf_index: int, changes: Any) -> None:
        if any(vf == self.phantom for vf, _ in changes):
            self.phantom_writes += 1
        await self.client.set_vf_link_states(pf_index, changes)


async def test_write_einval_falls_back(topology: Topology, agent_logs: LogRecords) -> None:
    pf = topology.pfs[0].name
    baseline = await healthy_baseline(topology, pf, C4_STATES)
    phantom_index = topology.pf(pf).num_vfs  # first index past the last VF
    client = NetlinkClient()
    reader = PhantomVF(client, pf, phantom_index)
    try:
        async with running_agent([pf], reader=reader):
            await asyncio.to_thread(topology.block_lacp_at_switch, pf)
            down = ["disable" if s == "auto" else s for s in baseline]
            await wait_for_states(client, pf, down, 20)
            await wait_for(lambda: reader.phantom_writes >= 4, POLL_S * 4, "write retried")

            errors = [r for r in agent_logs.records if r.levelno == logging.ERROR]
            set_ids = {getattr(r, "id", None) for r in agent_logs.messages("vf link state was set")}
            assert len(errors) >= 1
            assert getattr(errors[0], "errno", None) == 22  # EINVAL from the kernel
            assert getattr(errors[0], "id", None) == phantom_index
            assert getattr(errors[0], "interface", None) == pf
            assert phantom_index not in set_ids
            assert {0, 4} <= set_ids

            await asyncio.to_thread(topology.unblock, pf)
            await wait_for_states(client, pf, baseline, 40)
    finally:
        client.close()
    await asyncio.to_thread(topology.wait_negotiated, 40.0)


async def test_late_and_unbonded_pfs(topology: Topology, agent_logs: LogRecords) -> None:
    """PFs missing at start appear; one without a bond is reported, the other acted on."""
    bonded, plain = "ens6f0", "ens6f1"
    extra = Topology(
        [
            PFSpec(bonded, num_vfs=2, bond="bond6"),
            # Named although unused: Topology's leftover cleanup deletes bond{i} of
            # a spec without a bond name, which is the session topology's bond1.
            PFSpec(plain, num_vfs=2, bond="bond7", bond_mode=None),
        ],
        dev_id_base=30,
        switch_netns="pfsr-switch-b",
    )
    healthy_pf = topology.pfs[1].name
    await healthy_baseline(topology, healthy_pf, ["auto"] * topology.pf(healthy_pf).num_vfs)
    client = NetlinkClient()
    try:
        async with running_agent([bonded, plain, healthy_pf]) as agent:
            statuses = agent.reconcilers
            assert statuses[bonded].status.reason == "PFNotFound"
            assert statuses[plain].status.reason == "PFNotFound"

            await asyncio.to_thread(setup_with_retry, extra)
            await asyncio.to_thread(extra.wait_negotiated, 40.0)
            await wait_for(
                lambda: statuses[bonded].status.lacp_state == "Up",
                POLL_S + 1.0,
                "late PF picked up",
            )
            await wait_for(
                lambda: statuses[plain].status.reason == "NotInBond",
                POLL_S + 1.0,
                "unbonded PF reported",
            )
            assert statuses[plain].status.lacp_state == "Unknown"
            assert statuses[healthy_pf].status.lacp_state == "Up"

            await asyncio.to_thread(extra.block_lacp_at_switch, bonded)
            await wait_for_states(client, bonded, ["disable", "disable"], 20)
            assert await vf_states(client, plain) == ["auto", "auto"]
            assert statuses[healthy_pf].status.lacp_state == "Up"
            await asyncio.to_thread(extra.unblock, bonded)
            await wait_for_states(client, bonded, ["auto", "auto"], 40)
    finally:
        client.close()
        await asyncio.to_thread(extra.teardown)


def setup_with_retry(extra: Topology, attempts: int = 3) -> None:
    """Build ``extra``, retrying when a new netdevsim port is renamed under it.

    udev in the guest renames a new port (eth0 to eni30np1) at some point after it
    appears, so the topology's own rename can find the old name gone.
    """
    for attempt in range(1, attempts + 1):
        try:
            extra.setup()
            return
        except TopologyError:
            extra.teardown()
            if attempt == attempts:
                raise


def ip_batch(commands: list[str]) -> None:
    subprocess.run(
        ["ip", "-batch", "-"],
        input="\n".join(commands) + "\n",
        text=True,
        check=True,
        capture_output=True,
    )


async def test_bond_recreated(topology: Topology, agent_logs: LogRecords) -> None:
    """The bond is deleted and re-created (new ifindex): followed without a restart."""
    spec = topology.pfs[1]
    pf, bond = spec.name, spec.bond
    assert bond is not None
    await healthy_baseline(topology, pf, ["auto"] * spec.num_vfs)
    client = NetlinkClient()
    try:
        async with running_agent([pf]) as agent:
            reconciler = agent.reconcilers[pf]
            old_bond = await client.get_link(bond)
            assert old_bond is not None

            await asyncio.to_thread(ip_batch, [f"link del {bond}"])
            await wait_for(
                lambda: reconciler.status.reason == "NotInBond", POLL_S + 1.0, "PF out of its bond"
            )
            assert reconciler.status.lacp_state == "Down"
            await wait_for_states(client, pf, ["disable"] * spec.num_vfs, POLL_S + 1.0)

            await asyncio.to_thread(
                ip_batch,
                [
                    f"link add {bond} type bond mode 802.3ad lacp_rate fast miimon 100",
                    f"link set dev {pf} master {bond}",
                    f"link set dev {bond} up",
                ],
            )
            await asyncio.to_thread(topology.wait_negotiated, 40.0)
            await wait_for_states(client, pf, ["auto"] * spec.num_vfs, POLL_S + 1.0)
            new_bond = await client.get_link(bond)
            assert new_bond is not None
            assert new_bond.index != old_bond.index
            assert reconciler.status.lacp_state == "Up"
            assert reconciler.status.bond == bond
    finally:
        client.close()


async def test_event_socket_overflow(topology: Topology, agent_logs: LogRecords) -> None:
    """ENOBUFS on the event socket: reopened, resynced, and the agent keeps reacting."""
    pf = topology.pfs[1].name
    count = topology.pf(pf).num_vfs
    await healthy_baseline(topology, pf, ["auto"] * count)
    client = NetlinkClient()
    try:
        # The kernel raises a tiny SO_RCVBUF to its minimum (about 2 KiB): a few
        # notifications overflow it.
        async with running_agent([pf], event_buffer=1024):
            flips = [f"link set dev {pf} vf 0 state {s}" for s in ["enable", "auto"] * 100]
            # Deliberately blocking calls: the event loop must not read the socket
            # while the kernel queues the notifications, so the queue overflows.
            ip_batch(flips)
            time.sleep(0.5)  # noqa: ASYNC251
            await wait_for(
                lambda: bool(
                    agent_logs.messages("netlink event socket lost, reopening and resynchronizing")
                ),
                5,
                "ENOBUFS seen",
            )
            await wait_for(
                lambda: bool(agent_logs.messages("netlink event socket opened")[1:]),
                5,
                "event socket reopened",
            )

            await asyncio.to_thread(topology.block_lacp_to_host, pf)
            await wait_for_states(client, pf, ["disable"] * count, 20)
            await asyncio.to_thread(topology.unblock, pf)
            await wait_for_states(client, pf, ["auto"] * count, 40)
    finally:
        client.close()
    await asyncio.to_thread(topology.wait_negotiated, 40.0)
