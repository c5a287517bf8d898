"""Upstream-style comparison agent for the benchmarks: poll only, PFs in turn, VFs one by one.

It models the behaviour of the upstream Go daemon (openshift/pf-status-relay,
pkg/lacp/lacp.go ``Monitor``). A ticker fires every pollingInterval. For each PF in
turn it reads the link with its VFs and bond slave data (one RTM_GETLINK), applies
the upstream rule, and writes each VF that needs a change in its own RTM_SETLINK.
There are no netlink event subscriptions and no packet sockets, so a failure is seen
at the next tick at the earliest.

Same host, same kernel, same topology and same pollingInterval as the real agent;
the netlink code is the lean ``hack.bench.rtnl`` client, so this agent pays less per
poll than the Go daemon's generic decoder would, never more.

Run: ``python -m hack.bench.upstream_agent --interfaces ens5f0,ens5f1``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from hack.bench.rtnl import VF_AUTO, VF_DISABLE, NetlinkError, Rtnl, ifindex

log = logging.getLogger("upstream-agent")

UP_BITS = 0x3C
"""Aggregation, Synchronization, Collecting, Distributing."""
DOWN_BITS = 0xC0
"""Defaulted, Expired."""


def upstream_lacp_up(actor: int, partner: int) -> bool:
    """Apply the upstream rule: both sides have 0x3c set and neither 0x40 nor 0x80."""
    return all(state & UP_BITS == UP_BITS and not state & DOWN_BITS for state in (actor, partner))


def vf_writes(up: bool, vf_states: Sequence[int]) -> list[tuple[int, int]]:
    """Return the (vf, state) writes for one PF.

    Up turns disabled VFs to auto, down turns auto VFs to disable, and VFs in
    ``enable`` are never touched.
    """
    source, target = (VF_DISABLE, VF_AUTO) if up else (VF_AUTO, VF_DISABLE)
    return [(vf, target) for vf, state in enumerate(vf_states) if state == source]


def poll_pf(rtnl: Rtnl, name: str, index: int) -> None:
    """Read one PF and write each VF that needs a change, one RTM_SETLINK per VF."""
    sample = rtnl.get_link(index)
    if not sample.vf_states or sample.actor is None or sample.partner is None:
        return
    up = upstream_lacp_up(sample.actor, sample.partner)
    for vf, state in vf_writes(up, sample.vf_states):
        try:
            rtnl.set_vf_states(index, [(vf, state)])
        except NetlinkError as error:
            log.error("failed to set vf link state: %s vf %s: %s", name, vf, error)
            continue
        log.info("vf link state was set: %s vf %s state %s", name, vf, state)


def run(interfaces: list[str], interval_s: float) -> None:
    """Poll every ``interval_s`` until SIGTERM or SIGINT."""
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    indexes = {name: ifindex(name) for name in interfaces}
    rtnl = Rtnl()
    log.info("upstream-style agent started: %s every %s s", interfaces, interval_s)
    next_tick = time.monotonic() + interval_s
    try:
        while not stopping:
            time.sleep(max(0.0, next_tick - time.monotonic()))
            # Like Go's time.Ticker, a tick that falls due while a poll runs is dropped.
            next_tick += interval_s * max(1, int((time.monotonic() - next_tick) // interval_s) + 1)
            for name, index in indexes.items():
                try:
                    poll_pf(rtnl, name, index)
                except OSError as error:
                    log.warning("failed to fetch interface %s: %s", name, error)
    finally:
        rtnl.close()
        log.info("upstream-style agent stopped")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interfaces", required=True, help="PF names, comma-separated")
    parser.add_argument(
        "--polling-interval", type=int, default=1000, help="milliseconds between polls (1000)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    run([name for name in args.interfaces.split(",") if name], args.polling_interval / 1000)


if __name__ == "__main__":
    main()
