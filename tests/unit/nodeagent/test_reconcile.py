"""Reconcile pass of one PF against a fake netlink adapter: VF policy and failures."""

from __future__ import annotations

import errno
import logging
import time

import pytest
from fakes import FakeLinks

from api.v1alpha1.types import LACPState
from nodeagent.links import VFLinkState
from nodeagent.metrics import Metrics
from nodeagent.reconcile import PFReconciler, Trigger, TriggerKind
from nodeagent.vfpolicy import plan_vf_changes

AUTO, ENABLE, DISABLE = VFLinkState.AUTO, VFLinkState.ENABLE, VFLinkState.DISABLE
EXPIRED_PARTNER = 0x8F


def poll() -> Trigger:
    return Trigger(TriggerKind.POLL, time.monotonic())


async def test_down_disables_auto_vfs_in_one_write(links: FakeLinks, metrics: Metrics) -> None:
    pf = links.add_bonded_pf("ens5f0", vfs=[AUTO, AUTO, AUTO], partner=EXPIRED_PARTNER)
    reconciler = PFReconciler("ens5f0", links, metrics)

    result = await reconciler.reconcile(poll())

    assert result.status.lacp_state == LACPState.DOWN
    assert result.status.reason == "PartnerExpired"
    assert links.vf_states("ens5f0") == [DISABLE, DISABLE, DISABLE]
    assert links.writes == [(pf.index, [(0, DISABLE), (1, DISABLE), (2, DISABLE)])]
    assert result.status.vfs.disabled == 3


async def test_enable_vfs_untouched_down_and_up(links: FakeLinks, metrics: Metrics) -> None:
    """VFs 1-3 enable, 0 and 4 auto: only 0 and 4 follow LACP."""
    links.add_bonded_pf("ens5f0", vfs=[AUTO, ENABLE, ENABLE, ENABLE, AUTO])
    reconciler = PFReconciler("ens5f0", links, metrics)
    await reconciler.reconcile(poll())
    assert links.vf_states("ens5f0") == [AUTO, ENABLE, ENABLE, ENABLE, AUTO]

    links.set_lacp("ens5f0", 0x8F, 0x37)
    await reconciler.reconcile(poll())
    assert links.vf_states("ens5f0") == [DISABLE, ENABLE, ENABLE, ENABLE, DISABLE]

    links.set_lacp("ens5f0", 0x3F, 0x3F)
    await reconciler.reconcile(poll())
    assert links.vf_states("ens5f0") == [AUTO, ENABLE, ENABLE, ENABLE, AUTO]


def test_policy_table() -> None:
    from nodeagent.links import VFInfo

    vfs = [VFInfo(i, s) for i, s in enumerate([AUTO, ENABLE, DISABLE])]

    assert plan_vf_changes(LACPState.DOWN, vfs) == [(0, DISABLE)]
    assert plan_vf_changes(LACPState.UP, vfs) == [(2, AUTO)]
    assert plan_vf_changes(LACPState.UNKNOWN, vfs) == []


async def test_healthy_pass_writes_nothing(links: FakeLinks, metrics: Metrics) -> None:
    links.add_bonded_pf("ens5f0", vfs=[AUTO, ENABLE])
    reconciler = PFReconciler("ens5f0", links, metrics)

    result = await reconciler.reconcile(poll())

    assert result.status.lacp_state == LACPState.UP
    assert links.writes == []
    assert result.vfs_changed is False


async def test_other_writer_corrected_next_pass(links: FakeLinks, metrics: Metrics) -> None:
    links.add_bonded_pf("ens5f0", vfs=[AUTO, AUTO], partner=EXPIRED_PARTNER)
    reconciler = PFReconciler("ens5f0", links, metrics)
    await reconciler.reconcile(poll())
    links.set_vf("ens5f0", 1, AUTO)  # the SR-IOV CNI attaches a pod

    result = await reconciler.reconcile(poll())

    assert links.vf_states("ens5f0") == [DISABLE, DISABLE]
    assert result.vfs_changed is True


async def test_unhealthy_pf_does_not_block_healthy(links: FakeLinks, metrics: Metrics) -> None:
    links.add_plain_pf("ens5f0", vfs=[AUTO, AUTO])
    links.add_bonded_pf("ens5f1", vfs=[DISABLE, DISABLE])
    broken = PFReconciler("ens5f0", links, metrics)
    healthy = PFReconciler("ens5f1", links, metrics)

    broken_status = (await broken.reconcile(poll())).status
    healthy_status = (await healthy.reconcile(poll())).status

    assert broken_status.lacp_state == LACPState.UNKNOWN
    assert broken_status.reason == "NotInBond"
    assert "802.3ad" in broken_status.message
    assert links.vf_states("ens5f0") == [AUTO, AUTO]
    assert healthy_status.lacp_state == LACPState.UP
    assert links.vf_states("ens5f1") == [AUTO, AUTO]


async def test_vfs_added_and_removed(
    links: FakeLinks, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    links.add_bonded_pf("ens5f0", vfs=[AUTO, AUTO], partner=EXPIRED_PARTNER)
    reconciler = PFReconciler("ens5f0", links, metrics)
    await reconciler.reconcile(poll())

    links.set_vfs("ens5f0", [DISABLE, DISABLE, AUTO, AUTO])  # sriov_numvfs raised
    grown = (await reconciler.reconcile(poll())).status
    links.set_vfs("ens5f0", [DISABLE])  # sriov_numvfs lowered
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        shrunk = (await reconciler.reconcile(poll())).status
        again = (await reconciler.reconcile(poll())).status

    assert grown.vfs.total == 4
    assert grown.vfs.disabled == 4
    assert links.vf_states("ens5f0") == [DISABLE]
    assert shrunk.vfs.total == 1
    assert again.vfs.total == 1
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_write_error_falls_back_per_vf(
    links: FakeLinks, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    pf = links.add_bonded_pf("ens5f0", vfs=[AUTO, AUTO, AUTO], partner=EXPIRED_PARTNER)
    links.fail_vfs[(pf.index, 1)] = errno.EOPNOTSUPP
    reconciler = PFReconciler("ens5f0", links, metrics)

    with caplog.at_level(logging.INFO):
        result = await reconciler.reconcile(poll())

    assert links.vf_states("ens5f0") == [DISABLE, AUTO, DISABLE]
    assert result.vf_write_failed is True
    assert result.status.vfs.disabled == 2
    set_lines = [r for r in caplog.records if r.getMessage() == "vf link state was set"]
    assert sorted(r.id for r in set_lines) == [0, 2]  # type: ignore[attr-defined]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].id == 1  # type: ignore[attr-defined]
    assert errors[0].errno == errno.EOPNOTSUPP  # type: ignore[attr-defined]
    assert errors[0].interface == "ens5f0"  # type: ignore[attr-defined]


async def test_write_error_retried_next_pass(
    links: FakeLinks, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    pf = links.add_bonded_pf("ens5f0", vfs=[AUTO], partner=EXPIRED_PARTNER)
    links.fail_vfs[(pf.index, 0)] = errno.EINVAL
    reconciler = PFReconciler("ens5f0", links, metrics)
    with caplog.at_level(logging.DEBUG):
        await reconciler.reconcile(poll())
        await reconciler.reconcile(poll())
        del links.fail_vfs[(pf.index, 0)]
        await reconciler.reconcile(poll())

    assert len(links.writes) == 3
    assert links.vf_states("ens5f0") == [DISABLE]
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if "vf" in r.getMessage()]
    assert messages == [
        (logging.ERROR, "setting vf link state failed, retrying next interval"),
        (logging.DEBUG, "setting vf link state failed, retrying next interval"),
        (logging.INFO, "vf link state was set"),
    ]


async def test_pf_missing_then_appears(links: FakeLinks, metrics: Metrics) -> None:
    reconciler = PFReconciler("ens5f0", links, metrics)
    missing = await reconciler.reconcile(poll())
    links.add_bonded_pf("ens5f0", vfs=[DISABLE], partner=0x3F)

    found = await reconciler.reconcile(poll())

    assert missing.status.reason == "PFNotFound"
    assert missing.status.lacp_state == LACPState.UNKNOWN
    assert missing.pf_index is None
    assert found.status.lacp_state == LACPState.UP
    assert found.pf_index == links.links["ens5f0"].index
    assert links.vf_states("ens5f0") == [AUTO]


async def test_bond_recreated_new_index(links: FakeLinks, metrics: Metrics) -> None:
    links.add_bonded_pf("ens5f0", vfs=[AUTO], bond_name="bond0")
    reconciler = PFReconciler("ens5f0", links, metrics)
    first = await reconciler.reconcile(poll())
    links.delete("bond0")
    links.release("ens5f0")

    gone = await reconciler.reconcile(poll())
    links.delete("ens5f0")
    links.add_bonded_pf("ens5f0", vfs=[DISABLE], bond_name="bond0")
    back = await reconciler.reconcile(poll())

    assert gone.status.lacp_state == LACPState.DOWN
    assert gone.status.reason == "NotInBond"
    assert back.bond_index != first.bond_index
    assert back.status.lacp_state == LACPState.UP
    assert links.vf_states("ens5f0") == [AUTO]


async def test_never_bonded_pf_left_alone(links: FakeLinks, metrics: Metrics) -> None:
    links.add_plain_pf("ens5f0", vfs=[AUTO, DISABLE])
    reconciler = PFReconciler("ens5f0", links, metrics)

    result = await reconciler.reconcile(poll())

    assert result.status.lacp_state == LACPState.UNKNOWN
    assert links.writes == []


async def test_no_lacp_data_keeps_vfs(links: FakeLinks, metrics: Metrics) -> None:
    links.add_bonded_pf("ens5f0", vfs=[AUTO, DISABLE], actor=None, partner=None)
    reconciler = PFReconciler("ens5f0", links, metrics)

    result = await reconciler.reconcile(poll())

    assert result.status.reason == "NoLACPData"
    assert result.status.lacp_state == LACPState.UNKNOWN
    assert links.writes == []


async def test_read_failure_keeps_last_decision(links: FakeLinks, metrics: Metrics) -> None:
    links.add_bonded_pf("ens5f0", vfs=[AUTO], partner=EXPIRED_PARTNER)
    reconciler = PFReconciler("ens5f0", links, metrics)
    await reconciler.reconcile(poll())
    links.fail_reads = OSError(errno.EBUSY, "busy")

    result = await reconciler.reconcile(poll())

    assert result.status.lacp_state == LACPState.DOWN
    assert result.read_failed is True
    assert result.vf_write_failed is False
    assert links.vf_states("ens5f0") == [DISABLE]


async def test_restore_puts_vfs_back(links: FakeLinks, metrics: Metrics) -> None:
    links.add_bonded_pf("ens5f0", vfs=[AUTO, ENABLE, AUTO], partner=EXPIRED_PARTNER)
    reconciler = PFReconciler("ens5f0", links, metrics)
    await reconciler.reconcile(poll())
    assert links.vf_states("ens5f0") == [DISABLE, ENABLE, DISABLE]

    restored = await reconciler.restore()
    await reconciler.reconcile(poll())  # still down: no longer managed

    assert restored is True
    assert links.vf_states("ens5f0") == [AUTO, ENABLE, AUTO]


async def test_status_fields(links: FakeLinks, metrics: Metrics) -> None:
    links.add_bonded_pf("ens5f0", vfs=[AUTO, ENABLE], partner=0x3B, bond_name="bond0")
    reconciler = PFReconciler("ens5f0", links, metrics)

    status = (await reconciler.reconcile(poll())).status

    assert status.lacp_state == LACPState.UP
    assert status.bond == "bond0"
    assert status.lacp_rate == "fast"
    assert status.actor_state == 0x3F
    assert status.partner_state == 0x3B
    assert status.partner_mac == "02:00:00:00:00:01"
    assert status.aggregator_id == 1
    assert status.active_aggregator_id == 1
    assert "partner is individual" in status.message
    assert (status.vfs.total, status.vfs.managed, status.vfs.disabled) == (2, 1, 0)
    assert status.last_transition_time is not None


def netlink_trigger() -> Trigger:
    return Trigger(TriggerKind.NETLINK, time.monotonic())


async def test_event_failure_skips_bond_read(links: FakeLinks, metrics: Metrics) -> None:
    links.add_bonded_pf("ens5f0", vfs=[AUTO])
    reconciler = PFReconciler("ens5f0", links, metrics)
    await reconciler.reconcile(poll())
    links.calls.clear()
    links.set_lacp("ens5f0", 0x3F, 0x8F)

    result = await reconciler.reconcile(netlink_trigger())

    assert links.calls == ["get_link"]
    assert result.status.reason == "PartnerExpired"
    assert links.vf_states("ens5f0") == [DISABLE]


async def test_event_recovery_reads_bond(links: FakeLinks, metrics: Metrics) -> None:
    links.add_bonded_pf("ens5f0", vfs=[AUTO], partner=EXPIRED_PARTNER)
    reconciler = PFReconciler("ens5f0", links, metrics)
    await reconciler.reconcile(poll())
    links.calls.clear()
    links.set_lacp("ens5f0", 0x3F, 0x3F)

    result = await reconciler.reconcile(netlink_trigger())

    assert links.calls == ["get_link", "get_link_by_index", "count_members"]
    assert result.status.lacp_state == LACPState.UP


async def test_poll_always_reads_bond(links: FakeLinks, metrics: Metrics) -> None:
    links.add_bonded_pf("ens5f0", vfs=[AUTO], partner=EXPIRED_PARTNER)
    reconciler = PFReconciler("ens5f0", links, metrics)
    await reconciler.reconcile(poll())
    links.calls.clear()

    await reconciler.reconcile(poll())

    assert links.calls == ["get_link", "get_link_by_index", "count_members"]


async def test_event_after_new_bond_reads_bond(links: FakeLinks, metrics: Metrics) -> None:
    links.add_bonded_pf("ens5f0", vfs=[AUTO], bond_name="bond0")
    reconciler = PFReconciler("ens5f0", links, metrics)
    await reconciler.reconcile(poll())
    links.delete("bond0")
    links.delete("ens5f0")
    links.add_bonded_pf("ens5f0", vfs=[AUTO], partner=EXPIRED_PARTNER, bond_name="bond0")
    links.calls.clear()

    result = await reconciler.reconcile(netlink_trigger())

    assert links.calls == ["get_link", "get_link_by_index", "count_members"]
    assert result.status.reason == "PartnerExpired"


async def test_stale_read_does_not_write(links: FakeLinks, metrics: Metrics) -> None:
    """A slow poll that read healthy state must not undo a newer event's disable."""
    import asyncio

    links.add_bonded_pf("ens5f0", vfs=[AUTO, AUTO])
    reconciler = PFReconciler("ens5f0", links, metrics)
    await reconciler.reconcile(poll())
    release = asyncio.Event()
    original = links.get_link_by_index

    async def slow_bond_read(index: int):  # type: ignore[no-untyped-def]
        await release.wait()
        return await original(index)

    links.get_link_by_index = slow_bond_read  # type: ignore[method-assign]
    links.set_vfs("ens5f0", [DISABLE, AUTO])  # so a healthy verdict would write
    slow_poll = asyncio.create_task(reconciler.reconcile(poll()))
    await asyncio.sleep(0)  # the poll has read the PF and waits on the bond
    links.set_lacp("ens5f0", 0x3F, EXPIRED_PARTNER)

    event = await reconciler.reconcile(netlink_trigger())  # fast path: PF read only
    release.set()
    stale = await slow_poll

    assert event.status.lacp_state == LACPState.DOWN
    assert stale.read_failed is True
    assert stale.vfs_changed is False
    assert links.vf_states("ens5f0") == [DISABLE, DISABLE]
