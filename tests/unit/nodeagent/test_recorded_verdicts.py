"""Real Linux 6.12 messages through the real decoder and the reconcile pass.

Each case pairs a recorded PF message with its recorded bond message, serves them
from an in-memory reader and checks the verdict and reason the agent reaches.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from api.v1alpha1.types import LACPState
from nodeagent.links import Link, VFLinkState
from nodeagent.metrics import Metrics
from nodeagent.netlink import decode_link_message
from nodeagent.reconcile import PFReconciler, Trigger, TriggerKind

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "netlink"


def load(name: str) -> Link:
    index = FIXTURES / "index.json"
    if not index.exists():
        pytest.skip("no recorded fixtures in tests/fixtures/netlink (make kernel-fixtures)")
    entries: list[dict[str, Any]] = json.loads(index.read_text())["fixtures"]
    entry = next(e for e in entries if e["name"] == name)
    return decode_link_message((FIXTURES / entry["file"]).read_bytes())


class RecordedLinks:
    """Serves decoded fixtures; the PF's master ifindex points at the given bond."""

    def __init__(self, pf: Link, bond: Link | None) -> None:
        self.pf = pf
        self.bond = bond
        self.writes: list[list[tuple[int, VFLinkState]]] = []

    async def get_link(self, name: str) -> Link | None:
        return self.pf if name == self.pf.name else None

    async def get_link_by_index(self, index: int) -> Link | None:
        if self.bond is not None and index == self.pf.master:
            return self.bond
        return None

    async def count_members(self, master_index: int) -> int:
        return 1

    async def set_vf_link_states(self, pf_index: int, changes: Any) -> None:
        self.writes.append(list(changes))


@pytest.mark.parametrize(
    ("pf_fixture", "bond_fixture", "state", "reason"),
    [
        ("slave_healthy", "bond_master_8023ad", LACPState.UP, "Negotiated"),
        ("slave_partner_expired", "bond_master_8023ad", LACPState.DOWN, "PartnerExpired"),
        ("slave_actor_expired", "bond_master_8023ad", LACPState.DOWN, "ActorExpired"),
        ("slave_actor_defaulted", "bond_master_8023ad", LACPState.DOWN, "ActorDefaulted"),
        ("slave_active_backup", "bond_master_active_backup", LACPState.UNKNOWN, "BondNotLACP"),
        ("pf_no_bond", None, LACPState.UNKNOWN, "NotInBond"),
    ],
)
async def test_recorded_verdict(
    pf_fixture: str, bond_fixture: str | None, state: LACPState, reason: str, metrics: Metrics
) -> None:
    pf = load(pf_fixture)
    bond = load(bond_fixture) if bond_fixture else None
    reader = RecordedLinks(pf, bond)
    reconciler = PFReconciler(pf.name, reader, metrics)

    result = await reconciler.reconcile(Trigger(TriggerKind.POLL, time.monotonic()))

    assert result.status.lacp_state == state
    assert result.status.reason == reason


async def test_recorded_partner_expired_writes(metrics: Metrics) -> None:
    """VFs auto, enable, disable, disable, auto: only 0 and 4 are written."""
    pf = load("slave_partner_expired")
    reader = RecordedLinks(pf, load("bond_master_8023ad"))
    reconciler = PFReconciler(pf.name, reader, metrics)

    await reconciler.reconcile(Trigger(TriggerKind.POLL, time.monotonic()))

    assert reader.writes == [[(0, VFLinkState.DISABLE), (4, VFLinkState.DISABLE)]]
