"""The one rule that turns what the kernel reports about a PF into Up, Down or Unknown.

Every verdict of the agent comes from ``decide``, a pure function, so the whole rule
can be read in one place and tested over every actor and partner state pair. Each
verdict carries a CamelCase reason and a message that names what the user should check.

The rule, first match wins:

1. The PF does not exist: Unknown, PFNotFound.
2. The PF has no master, or its master is not a bond: NotInBond.
3. The bond is not in 802.3ad mode: BondNotLACP.
   For 2 and 3 the verdict is Down when this agent has seen the PF in an 802.3ad
   bond before (the PF left its bond: it sends no LACPDUs, so the switch takes its
   port out of the LAG within the LACP timeout and traffic is dropped), and Unknown
   when it never has (the monitor may name the wrong interface, and disabling VFs
   on a configuration error would cut pods off).
4. The bond has more than one member: Unknown, MultipleMembers.
5. The actor or partner state, or the aggregator ids, are absent: Unknown,
   NoLACPData. The kernel adds them only in 802.3ad mode once the port has an
   aggregator, so absence never means Up.
6. Actor Expired, actor Defaulted, partner Expired, partner Defaulted, in that order:
   Down with that reason.
7. The partner MAC is all zeros: Down, NoPartner.
8. The PF's aggregator is not the bond's active aggregator: Down, AggregatorMismatch.
9. Actor or partner lacks Synchronization: Down, NotSynchronized.
10. Actor or partner lacks Collecting or Distributing: Down, NotCollectingDistributing.
11. Otherwise Up.

In state bytes, rules 6, 9, 10 and 11 reduce to: Up needs, on both sides,
``state & 0xf8 == 0x38`` (Synchronization, Collecting and Distributing set, Defaulted
and Expired clear). The Aggregation bit is not required: a partner that marks its
port individual but synchronizes, collects and distributes (Open vSwitch sends 0x3b
for a single-port bond) carries traffic, so it is Up with a note. The LACP_Activity
and LACP_Timeout bits never change the verdict; a slow rate is reported as a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag, StrEnum

from api.v1alpha1.types import LACPState

ZERO_MAC = "00:00:00:00:00:00"


class PortState(IntFlag):
    """IEEE 802.1AX port state bits, as in the actor and partner state bytes."""

    ACTIVITY = 0x01
    TIMEOUT = 0x02  # set: short timeout (fast rate, 1 s LACPDUs, 3 s expiry)
    AGGREGATION = 0x04  # clear: the port is individual
    SYNCHRONIZATION = 0x08
    COLLECTING = 0x10
    DISTRIBUTING = 0x20
    DEFAULTED = 0x40  # no LACPDU received, partner information is the default
    EXPIRED = 0x80  # LACPDUs stopped arriving


CARRIES_TRAFFIC = PortState.SYNCHRONIZATION | PortState.COLLECTING | PortState.DISTRIBUTING


class BondMode(IntEnum):
    """Bonding modes, as IFLA_BOND_MODE encodes them."""

    BALANCE_RR = 0
    ACTIVE_BACKUP = 1
    BALANCE_XOR = 2
    BROADCAST = 3
    IEEE_802_3AD = 4
    BALANCE_TLB = 5
    BALANCE_ALB = 6


class LACPRate(IntEnum):
    """IFLA_BOND_AD_LACP_RATE values."""

    SLOW = 0
    FAST = 1


class Reason(StrEnum):
    """Reason of a verdict; the user-facing CamelCase names."""

    NEGOTIATED = "Negotiated"
    PF_NOT_FOUND = "PFNotFound"
    NOT_IN_BOND = "NotInBond"
    BOND_NOT_LACP = "BondNotLACP"
    MULTIPLE_MEMBERS = "MultipleMembers"
    NO_LACP_DATA = "NoLACPData"
    ACTOR_EXPIRED = "ActorExpired"
    ACTOR_DEFAULTED = "ActorDefaulted"
    PARTNER_EXPIRED = "PartnerExpired"
    PARTNER_DEFAULTED = "PartnerDefaulted"
    NO_PARTNER = "NoPartner"
    AGGREGATOR_MISMATCH = "AggregatorMismatch"
    NOT_SYNCHRONIZED = "NotSynchronized"
    NOT_COLLECTING_DISTRIBUTING = "NotCollectingDistributing"


@dataclass(frozen=True)
class LACPContext:
    """Everything ``decide`` needs about one PF, read from the kernel in one pass."""

    pf_found: bool = True
    master_name: str = ""
    master_is_bond: bool = False
    bond_mode: int | None = None
    member_count: int = 1
    actor_state: int | None = None
    partner_state: int | None = None
    aggregator_id: int | None = None
    active_aggregator_id: int | None = None
    partner_mac: str | None = None
    lacp_rate: int | None = None
    seen_in_lacp_bond: bool = False


@dataclass(frozen=True)
class Verdict:
    """Outcome of ``decide``: the state, why, and notes that do not change the state."""

    state: LACPState
    reason: Reason
    message: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def left_bond(self) -> bool:
        """True when the verdict is Down because the PF is no longer in an 802.3ad bond."""
        return self.state == LACPState.DOWN and self.reason in _LEFT_BOND_REASONS


_LEFT_BOND_REASONS = frozenset({Reason.NOT_IN_BOND, Reason.BOND_NOT_LACP})


def carries_traffic(state: int) -> bool:
    """Return True when one side's state byte allows traffic: rule 11 for one side."""
    flags = PortState(state & 0xFF)
    bad = flags & (PortState.EXPIRED | PortState.DEFAULTED)
    return not bad and (flags & CARRIES_TRAFFIC) == CARRIES_TRAFFIC


def decide(context: LACPContext) -> Verdict:
    """Apply the rule in this module's docstring to ``context``."""
    if not context.pf_found:
        return _unknown(Reason.PF_NOT_FOUND, "interface not found: check the name in the monitor")
    if not context.master_is_bond:
        where = (
            f"master {context.master_name} is not a bond"
            if context.master_name
            else ("it has no master")
        )
        return _left_bond(
            context,
            Reason.NOT_IN_BOND,
            f"PF is not in a bond ({where}): enslave it to an 802.3ad bond of its own",
        )
    if context.bond_mode != BondMode.IEEE_802_3AD:
        mode = _mode_name(context.bond_mode)
        return _left_bond(
            context,
            Reason.BOND_NOT_LACP,
            f"bond {context.master_name} is in mode {mode}, not 802.3ad: set mode 802.3ad",
        )
    if context.member_count != 1:
        return _unknown(
            Reason.MULTIPLE_MEMBERS,
            f"bond {context.master_name} has {context.member_count} "
            "members: each PF needs an 802.3ad bond of its own",
        )
    if (
        context.actor_state is None
        or context.partner_state is None
        or context.aggregator_id is None
        or context.active_aggregator_id is None
    ):
        return _unknown(
            Reason.NO_LACP_DATA,
            "the kernel reports no LACP state for this port yet "
            "(no aggregator assigned): wait for negotiation or check the bond",
        )
    return _decide_states(context, context.actor_state & 0xFF, context.partner_state & 0xFF)


def _decide_states(context: LACPContext, actor_state: int, partner_state: int) -> Verdict:
    actor = PortState(actor_state)
    partner = PortState(partner_state)
    if PortState.EXPIRED in actor:
        return _down(
            Reason.ACTOR_EXPIRED,
            "no LACPDU received from the switch for 3 timeouts: "
            "check that the switch port runs LACP and sends to this host",
        )

    if PortState.DEFAULTED in actor:
        return _down(
            Reason.ACTOR_DEFAULTED,
            "no LACPDU received from the switch, the host "
            "uses default partner values: check the switch port's LACP configuration",
        )

    if PortState.EXPIRED in partner:
        return _down(
            Reason.PARTNER_EXPIRED,
            "the switch reports that it stopped receiving this "
            "host's LACPDUs: check the switch port and the path towards it",
        )

    if PortState.DEFAULTED in partner:
        return _down(
            Reason.PARTNER_DEFAULTED,
            "the switch port never received this host's "
            "LACPDUs: check the switch port and the path towards it",
        )

    if context.partner_mac in (None, "", ZERO_MAC):
        return _down(
            Reason.NO_PARTNER,
            "the bond has no LACP partner (partner MAC is all "
            "zeros): check the cabling and the switch's LACP configuration",
        )

    if context.aggregator_id != context.active_aggregator_id:
        return _down(
            Reason.AGGREGATOR_MISMATCH,
            f"PF is in aggregator {context.aggregator_id} "
            f"but the bond's active aggregator is {context.active_aggregator_id}: "
            "check that the switch ports belong to one LAG",
        )

    missing_sync = [
        name
        for name, flags in (("actor", actor), ("partner", partner))
        if PortState.SYNCHRONIZATION not in flags
    ]

    if missing_sync:
        return _down(
            Reason.NOT_SYNCHRONIZED,
            f"{' and '.join(missing_sync)} not in "
            "synchronization: negotiation is in progress or the switch rejected the LAG",
        )

    not_forwarding = [
        name
        for name, flags in (("actor", actor), ("partner", partner))
        if (flags & CARRIES_TRAFFIC) != CARRIES_TRAFFIC
    ]

    if not_forwarding:
        return _down(
            Reason.NOT_COLLECTING_DISTRIBUTING,
            f"{' and '.join(not_forwarding)} not "
            "collecting and distributing: the port does not forward traffic yet",
        )
    return Verdict(
        LACPState.UP,
        Reason.NEGOTIATED,
        "actor and partner are in synchronization, collecting and distributing",
        _notes(context, actor, partner),
    )


def _notes(context: LACPContext, actor: PortState, partner: PortState) -> tuple[str, ...]:
    notes: list[str] = []
    if PortState.AGGREGATION not in partner:
        notes.append("partner is individual")
    if PortState.AGGREGATION not in actor:
        notes.append("actor is individual")
    if context.lacp_rate == LACPRate.SLOW or PortState.TIMEOUT not in actor:
        notes.append("slow lacp rate: set lacp_rate fast so a failure is seen in 3 s, not 90 s")
    return tuple(notes)


def _mode_name(mode: int | None) -> str:
    if mode is None:
        return "unknown"
    try:
        return BondMode(mode).name.lower().replace("_", "-")
    except ValueError:
        return str(mode)


def _left_bond(context: LACPContext, reason: Reason, message: str) -> Verdict:
    if context.seen_in_lacp_bond:
        return Verdict(LACPState.DOWN, reason, message)
    return _unknown(reason, message)


def _unknown(reason: Reason, message: str) -> Verdict:
    return Verdict(LACPState.UNKNOWN, reason, message)


def _down(reason: Reason, message: str) -> Verdict:
    return Verdict(LACPState.DOWN, reason, message)
