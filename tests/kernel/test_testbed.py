"""The kernel testbed itself: does it reproduce what a real node and switch do?

The node agent's tests trust this topology to stand for real hardware, so these
tests pin down the behaviour they rely on: LACP negotiates between the PF's bond
and the switch's bond, each failure injection leaves carrier up and produces its
own signature (only the partner changes when the switch stops hearing us; our
own port expires when we stop hearing the switch), unblocking recovers, and VF
link states can be set and read back. Timings are recorded because emulation
(qemu TCG) stretches them, and the agent's tests need honest margins.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from topology import LACP_HEALTHY, Topology

pytestmark = pytest.mark.kernel

EXPIRED = 0x80
DEFAULTED = 0x40
SYNC = 0x08
COLLECTING = 0x10
DISTRIBUTING = 0x20


@dataclass(frozen=True)
class Sample:
    t: float
    actor: int | None
    partner: int | None
    switch_actor: int | None
    switch_partner: int | None
    carrier: bool

    def __str__(self) -> str:
        def h(v: int | None) -> str:
            return "--" if v is None else f"{v:02x}"

        return (
            f"{self.t:5.2f}s host {h(self.actor)}/{h(self.partner)} "
            f"switch {h(self.switch_actor)}/{h(self.switch_partner)} carrier {self.carrier}"
        )


def observe(
    topo: Topology,
    pf: int,
    seconds: float,
    interval: float = 0.02,
    until: Callable[[Sample], bool] | None = None,
) -> list[Sample]:
    """Every change of the four LACP state bytes and carrier over a time window,
    ending early after the first sample that satisfies ``until``."""
    start = time.monotonic()
    trace: list[Sample] = []
    last: tuple[object, ...] | None = None
    while (now := time.monotonic() - start) < seconds:
        host, switch = topo.lacp_state(pf), topo.switch_lacp_state(pf)
        key = (host.actor, host.partner, switch.actor, switch.partner, topo.carrier(pf))
        if key != last:
            trace.append(Sample(now, *key))
            last = key
            if until is not None and until(trace[-1]):
                break
        time.sleep(interval)
    return trace


def first(trace: list[Sample], what: str, cond: Callable[[Sample], object]) -> Sample:
    for s in trace:
        if cond(s):
            return s
    raise AssertionError(f"never saw {what}:\n" + "\n".join(map(str, trace)))


def test_lacp_negotiates_on_both_sides(topology: Topology) -> None:
    topology.wait_negotiated(timeout=30.0)
    for pf in topology.pfs:
        host, switch = topology.lacp_state(pf.index), topology.switch_lacp_state(pf.index)
        assert (host.actor, host.partner) == (LACP_HEALTHY, LACP_HEALTHY), host
        assert (switch.actor, switch.partner) == (LACP_HEALTHY, LACP_HEALTHY), switch
        assert host.mii_up and switch.mii_up
        assert host.aggregator_id is not None
        assert topology.carrier(pf.index)
        # netdevsim does not drive operstate: "unknown" with carrier, never "down".
        assert topology.operstate(pf.index) in ("up", "unknown")
        # The host's partner is the switch's port: its MAC is not the zero default.
        assert host.partner_mac not in (None, "00:00:00:00:00:00")


def test_block_at_switch_changes_only_the_partner(
    topology: Topology, timings: dict[str, object]
) -> None:
    """The switch stops hearing us: at first only our view of the partner changes.

    The switch's port expires (0x8f) and later defaults (0x4f); once defaulted it
    only sends at the slow rate, so ~3 s after that our own port expires too. The
    window in which "actor healthy, partner not" holds is therefore bounded.
    """
    pf = 0
    topology.wait_negotiated(pfs=[pf])
    topology.block_lacp_at_switch(pf)
    try:
        trace = observe(topology, pf, seconds=14.0, until=lambda s: s.actor != LACP_HEALTHY)
    finally:
        topology.unblock(pf)
    shown = "\n".join(map(str, trace))
    changed = first(trace, "host partner leaving 0x3f", lambda s: s.partner != LACP_HEALTHY)
    timings["at switch: host partner leaves 0x3f s"] = changed.t
    timings["at switch: host partner state"] = f"0x{changed.partner or 0:02x}"
    switch_expired = first(
        trace, "switch actor expiring", lambda s: (s.switch_actor or 0) & EXPIRED
    )
    timings["at switch: switch actor expired s"] = switch_expired.t
    switch_defaulted = first(
        trace, "switch actor defaulted", lambda s: (s.switch_actor or 0) & DEFAULTED
    )
    timings["at switch: switch actor defaulted s"] = switch_defaulted.t
    host_expired = first(trace, "host actor leaving 0x3f", lambda s: s.actor != LACP_HEALTHY)
    timings["at switch: host actor leaves 0x3f too s"] = host_expired.t
    timings["at switch: host actor state then"] = f"0x{host_expired.actor or 0:02x}"
    assert 1.5 <= changed.t <= 6.0, shown
    assert changed.partner is not None and changed.partner & EXPIRED, shown
    # Until the switch defaults it keeps sending fast, in sync: our port stays healthy.
    # Then either its last PDU (no sync) drops our collecting/distributing at once
    # (0x0f), or our port expires ~3 s later for lack of fast PDUs (0x8f).
    assert all(s.actor == LACP_HEALTHY for s in trace if s.t < switch_defaulted.t), shown
    assert host_expired.t >= switch_defaulted.t, shown
    assert all(s.carrier for s in trace), shown
    recovered = topology.wait_negotiated(timeout=40.0, pfs=[pf])
    timings["at switch: recovery after unblock s"] = recovered


def test_block_to_host_expires_our_port(topology: Topology, timings: dict[str, object]) -> None:
    pf = 1
    topology.wait_negotiated(pfs=[pf])
    topology.block_lacp_to_host(pf)
    try:
        trace = observe(topology, pf, seconds=6.0, until=lambda s: bool((s.actor or 0) & EXPIRED))
        expired = first(trace, "host actor expiring", lambda s: (s.actor or 0) & EXPIRED)
    finally:
        topology.unblock(pf)
    timings["to host: actor expired s"] = expired.t
    timings["to host: expired states"] = f"0x{expired.actor:02x}/0x{expired.partner:02x}"
    assert 2.0 <= expired.t <= 4.5, "\n".join(map(str, trace))
    assert expired.actor is not None and expired.actor & EXPIRED
    assert expired.partner is not None and not expired.partner & SYNC
    assert all(s.carrier for s in trace)
    recovered = topology.wait_negotiated(timeout=30.0, pfs=[pf])
    timings["to host: recovery from expired s"] = recovered
    assert recovered < 5.0


def test_block_to_host_reaches_defaulted(topology: Topology, timings: dict[str, object]) -> None:
    pf = 1
    topology.wait_negotiated(pfs=[pf])
    topology.block_lacp_to_host(pf)
    try:
        trace = observe(
            topology, pf, seconds=12.0, until=lambda s: bool((s.actor or 0) & DEFAULTED)
        )
    finally:
        topology.unblock(pf)
    defaulted = first(trace, "host actor defaulted", lambda s: (s.actor or 0) & DEFAULTED)
    timings["to host: actor defaulted s"] = defaulted.t
    timings["to host: defaulted states"] = f"0x{defaulted.actor:02x}/0x{defaulted.partner:02x}"
    assert 4.5 <= defaulted.t <= 9.0, "\n".join(map(str, trace))
    assert defaulted.actor is not None
    assert not defaulted.actor & (COLLECTING | DISTRIBUTING)
    assert all(s.carrier for s in trace)
    recovered = topology.wait_negotiated(timeout=40.0, pfs=[pf])
    timings["to host: recovery from defaulted s"] = recovered


def test_vf_link_states_round_trip(topology: Topology) -> None:
    pf = topology.pfs[0]
    n = pf.num_vfs
    assert n >= 2
    topology.set_vf_link_states(pf.index, {i: "auto" for i in range(n)})
    assert topology.vf_link_states(pf.index) == ["auto"] * n
    wanted = {0: "enable", 1: "disable"}
    topology.set_vf_link_states(pf.index, wanted)  # type: ignore[arg-type]
    topology.set_vf_link_state(pf.index, n - 1, "disable")
    states = topology.vf_link_states(pf.index)
    assert states[0] == "enable"
    assert states[1] == "disable"
    assert states[n - 1] == "disable"
    topology.set_vf_link_states(pf.index, {i: "auto" for i in range(n)})
    assert topology.vf_link_states(pf.index) == ["auto"] * n


def test_num_vfs_can_change_and_limit_is_recorded(
    topology: Topology, timings: dict[str, object]
) -> None:
    pf = topology.pfs[1]
    before = pf.num_vfs
    assert topology.max_vfs_default is not None
    try:
        topology.set_num_vfs(pf.index, 2)
        assert topology.vf_link_states(pf.index) == ["auto", "auto"]
        if topology.max_vfs_raisable:
            topology.set_num_vfs(pf.index, 16)
            assert len(topology.vf_link_states(pf.index)) == 16
            assert topology.max_vfs(pf.index) >= 16
    finally:
        topology.set_num_vfs(pf.index, before)
    assert len(topology.vf_link_states(pf.index)) == before
    # Changing VFs does not disturb LACP on the PF.
    topology.wait_negotiated(timeout=10.0, pfs=[pf.index])
