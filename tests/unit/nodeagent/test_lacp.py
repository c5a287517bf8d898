"""The LACP rule over every actor and partner state pair, and every context reason."""

from __future__ import annotations

import pytest

from api.v1alpha1.types import LACPState
from nodeagent.lacp import LACPContext, PortState, Reason, decide

ALL_STATES = range(256)


def healthy_context(actor: int, partner: int, **changes: object) -> LACPContext:
    values: dict[str, object] = {
        "master_name": "bond0",
        "master_is_bond": True,
        "bond_mode": 4,
        "member_count": 1,
        "actor_state": actor,
        "partner_state": partner,
        "aggregator_id": 1,
        "active_aggregator_id": 1,
        "partner_mac": "02:00:00:00:00:01",
        "lacp_rate": 1,
    }
    values.update(changes)
    return LACPContext(**values)  # type: ignore[arg-type]


def expected_up(state: int) -> bool:
    """Independent statement: bits 7..3 must read 0b00111 (no Expired, no Defaulted,
    Distributing, Collecting and Synchronization set); bits 2..0 do not matter."""
    return (state >> 3) == 0b00111


def upstream_up(state: int) -> bool:
    """Upstream's rule: Aggregation, Sync, Collecting, Distributing all set, and
    neither Defaulted nor Expired."""
    return (state & 0x3C) == 0x3C and not state & 0xC0


def test_rule_all_state_pairs() -> None:
    mismatches = []
    for actor in ALL_STATES:
        for partner in ALL_STATES:
            verdict = decide(healthy_context(actor, partner))
            want = LACPState.UP if expected_up(actor) and expected_up(partner) else LACPState.DOWN
            if verdict.state != want:
                mismatches.append((actor, partner, verdict.state))

    assert mismatches == []


def test_rule_never_unknown_with_full_data() -> None:
    states = {decide(healthy_context(a, p)).state for a in ALL_STATES for p in ALL_STATES}

    assert states == {LACPState.UP, LACPState.DOWN}


def test_rule_counts() -> None:
    up = sum(
        1
        for a in ALL_STATES
        for p in ALL_STATES
        if decide(healthy_context(a, p)).state == LACPState.UP
    )

    # 8 values of bits 0..2 per side are Up.
    assert up == 8 * 8


def test_rule_differs_from_upstream_only_on_aggregation() -> None:
    for actor in ALL_STATES:
        for partner in ALL_STATES:
            ours = decide(healthy_context(actor, partner)).state == LACPState.UP
            theirs = upstream_up(actor) and upstream_up(partner)
            if ours != theirs:
                assert ours and not theirs, (actor, partner)
                assert not (actor & partner & PortState.AGGREGATION), (actor, partner)


def test_down_reason_names_the_failing_bit() -> None:
    for actor in ALL_STATES:
        for partner in ALL_STATES:
            verdict = decide(healthy_context(actor, partner))
            if verdict.state == LACPState.UP:
                assert verdict.reason == Reason.NEGOTIATED
                continue
            reason = verdict.reason
            if reason == Reason.ACTOR_EXPIRED:
                assert actor & 0x80
            elif reason == Reason.ACTOR_DEFAULTED:
                assert actor & 0x40
                assert not actor & 0x80
            elif reason == Reason.PARTNER_EXPIRED:
                assert partner & 0x80
                assert not actor & 0xC0
            elif reason == Reason.PARTNER_DEFAULTED:
                assert partner & 0x40
                assert not partner & 0x80
                assert not actor & 0xC0
            elif reason == Reason.NOT_SYNCHRONIZED:
                assert not (actor & partner & 0x08)
            elif reason == Reason.NOT_COLLECTING_DISTRIBUTING:
                assert actor & partner & 0x08
                assert (actor & 0x30) != 0x30 or (partner & 0x30) != 0x30
            else:
                pytest.fail(f"unexpected reason {reason} for {actor:#x}/{partner:#x}")


def test_open_vswitch_individual_partner_is_up() -> None:
    verdict = decide(healthy_context(0x3F, 0x3B))

    assert verdict.state == LACPState.UP
    assert "partner is individual" in verdict.notes


def test_healthy_pair_has_no_notes() -> None:
    verdict = decide(healthy_context(0x3F, 0x3F))

    assert verdict.state == LACPState.UP
    assert verdict.notes == ()


def test_slow_rate_is_a_note_not_a_failure() -> None:
    verdict = decide(healthy_context(0x3D, 0x3D, lacp_rate=0))

    assert verdict.state == LACPState.UP
    assert any("slow lacp rate" in note for note in verdict.notes)


@pytest.mark.parametrize(
    ("actor", "partner", "reason"),
    [
        (0x8F, 0x37, Reason.ACTOR_EXPIRED),  # the switch stopped sending
        (0x4F, 0x00, Reason.ACTOR_DEFAULTED),  # later in that failure
        (0x3F, 0x8F, Reason.PARTNER_EXPIRED),  # the switch stopped receiving
        (0x3F, 0x4F, Reason.PARTNER_DEFAULTED),
        (0x0F, 0x3F, Reason.NOT_COLLECTING_DISTRIBUTING),
        (0x37, 0x3F, Reason.NOT_SYNCHRONIZED),
    ],
)
def test_measured_failure_states(actor: int, partner: int, reason: Reason) -> None:
    verdict = decide(healthy_context(actor, partner))

    assert verdict.state == LACPState.DOWN
    assert verdict.reason == reason


@pytest.mark.parametrize(
    ("changes", "state", "reason"),
    [
        ({"pf_found": False}, LACPState.UNKNOWN, Reason.PF_NOT_FOUND),
        ({"master_is_bond": False, "master_name": ""}, LACPState.UNKNOWN, Reason.NOT_IN_BOND),
        ({"master_is_bond": False, "master_name": "br0"}, LACPState.UNKNOWN, Reason.NOT_IN_BOND),
        ({"bond_mode": 1}, LACPState.UNKNOWN, Reason.BOND_NOT_LACP),
        ({"master_is_bond": False, "seen_in_lacp_bond": True}, LACPState.DOWN, Reason.NOT_IN_BOND),
        ({"bond_mode": 1, "seen_in_lacp_bond": True}, LACPState.DOWN, Reason.BOND_NOT_LACP),
        ({"member_count": 2}, LACPState.UNKNOWN, Reason.MULTIPLE_MEMBERS),
        ({"actor_state": None}, LACPState.UNKNOWN, Reason.NO_LACP_DATA),
        ({"partner_state": None}, LACPState.UNKNOWN, Reason.NO_LACP_DATA),
        ({"aggregator_id": None}, LACPState.UNKNOWN, Reason.NO_LACP_DATA),
        ({"partner_mac": "00:00:00:00:00:00"}, LACPState.DOWN, Reason.NO_PARTNER),
        ({"partner_mac": None}, LACPState.DOWN, Reason.NO_PARTNER),
        ({"aggregator_id": 2}, LACPState.DOWN, Reason.AGGREGATOR_MISMATCH),
    ],
)
def test_context_reasons(changes: dict[str, object], state: LACPState, reason: Reason) -> None:
    verdict = decide(healthy_context(0x3F, 0x3F, **changes))

    assert verdict.state == state
    assert verdict.reason == reason
    assert verdict.message


def test_absent_attributes_never_up() -> None:
    for actor in (None, 0x3F):
        for partner in (None, 0x3F):
            if actor is not None and partner is not None:
                continue
            verdict = decide(healthy_context(0x3F, 0x3F, actor_state=actor, partner_state=partner))
            assert verdict.state == LACPState.UNKNOWN


def test_partner_state_high_byte_ignored() -> None:
    verdict = decide(healthy_context(0x3F, 0x013F))

    assert verdict.state == LACPState.UP
