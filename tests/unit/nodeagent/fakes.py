"""In-memory netlink adapter for reconcile and agent unit tests.

It holds links as the real adapter returns them and applies VF writes to them, so a
test asserts the VF states that a pass leaves behind, like it would read them back
from the kernel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace

from nodeagent.links import BondInfo, BondSlaveInfo, Link, VFInfo, VFLinkState, VFWriteError

HEALTHY = 0x3F
PARTNER_MAC = "02:00:00:00:00:01"


class FakeLinks:
    """Links by name; ``fail_vfs`` maps a VF index to the errno its writes get."""

    def __init__(self) -> None:
        self.links: dict[str, Link] = {}
        self.fail_vfs: dict[tuple[int, int], int] = {}
        self.fail_reads: OSError | None = None
        self.writes: list[tuple[int, list[tuple[int, VFLinkState]]]] = []
        self.calls: list[str] = []
        self.read_names: list[str] = []
        self.next_index = 10

    def add_bonded_pf(
        self,
        name: str,
        vfs: Sequence[VFLinkState] = (VFLinkState.AUTO,) * 3,
        actor: int | None = HEALTHY,
        partner: int | None = HEALTHY,
        bond_name: str | None = None,
        mode: int = 4,
        lacp_rate: int = 1,
    ) -> Link:
        bond_name = bond_name or f"bond-{name}"[:15]
        bond = Link(
            index=self._index(),
            name=bond_name,
            kind="bond",
            bond=BondInfo(
                mode=mode,
                lacp_rate=lacp_rate,
                active_aggregator_id=1,
                num_ports=1,
                actor_key=9,
                partner_key=9,
                partner_mac=PARTNER_MAC,
            ),
        )
        self.links[bond_name] = bond
        pf = Link(
            index=self._index(),
            name=name,
            master=bond.index,
            slave_kind="bond",
            slave=BondSlaveInfo(
                state=0, mii_status=0, aggregator_id=1, actor_state=actor, partner_state=partner
            ),
            num_vfs=len(vfs),
            vfs=tuple(VFInfo(i, state) for i, state in enumerate(vfs)),
        )
        self.links[name] = pf
        return pf

    def add_plain_pf(self, name: str, vfs: Sequence[VFLinkState]) -> Link:
        pf = Link(
            index=self._index(),
            name=name,
            num_vfs=len(vfs),
            vfs=tuple(VFInfo(i, state) for i, state in enumerate(vfs)),
        )
        self.links[name] = pf
        return pf

    def set_lacp(self, name: str, actor: int | None, partner: int | None) -> None:
        pf = self.links[name]
        assert pf.slave is not None
        self.links[name] = replace(
            pf, slave=replace(pf.slave, actor_state=actor, partner_state=partner)
        )

    def set_vf(self, name: str, vf: int, state: VFLinkState) -> None:
        pf = self.links[name]
        self.links[name] = replace(
            pf, vfs=tuple(replace(v, link_state=state) if v.index == vf else v for v in pf.vfs)
        )

    def set_vfs(self, name: str, states: Sequence[VFLinkState]) -> None:
        self.links[name] = replace(
            self.links[name],
            num_vfs=len(states),
            vfs=tuple(VFInfo(i, state) for i, state in enumerate(states)),
        )

    def vf_states(self, name: str) -> list[VFLinkState]:
        return [vf.link_state for vf in self.links[name].vfs]

    def release(self, name: str) -> None:
        """Take the PF out of its bond, as `ip link set PF nomaster` does."""
        self.links[name] = replace(self.links[name], master=None, slave_kind=None, slave=None)

    def delete(self, name: str) -> None:
        del self.links[name]

    def _index(self) -> int:
        self.next_index += 1
        return self.next_index

    async def get_link(self, name: str) -> Link | None:
        self.calls.append("get_link")
        self.read_names.append(name)
        if self.fail_reads is not None:
            raise self.fail_reads
        return self.links.get(name)

    async def get_link_by_index(self, index: int) -> Link | None:
        self.calls.append("get_link_by_index")
        if self.fail_reads is not None:
            raise self.fail_reads
        for link in self.links.values():
            if link.index == index:
                return replace(link, vfs=())
        return None

    async def count_members(self, master_index: int) -> int:
        self.calls.append("count_members")
        return sum(1 for link in self.links.values() if link.master == master_index)

    async def set_vf_link_states(
        self, pf_index: int, changes: Sequence[tuple[int, VFLinkState]]
    ) -> None:
        self.writes.append((pf_index, list(changes)))
        for vf, _ in changes:
            code = self.fail_vfs.get((pf_index, vf))
            if code is not None:
                raise VFWriteError(code, "fake failure")
        name = next(n for n, link in self.links.items() if link.index == pf_index)
        for vf, _ in changes:
            if vf >= len(self.links[name].vfs):
                raise VFWriteError(22, "vf out of range")
        for vf, state in changes:
            self.set_vf(name, vf, state)


async def wait_until(condition: Callable[[], bool], limit_s: float = 5.0) -> None:
    """Wait until ``condition`` holds; fail after ``limit_s`` (a hang guard, not a timing check)."""
    async with asyncio.timeout(limit_s):
        while not condition():  # noqa: ASYNC110 - the fakes have no event to wait on
            await asyncio.sleep(0.005)
