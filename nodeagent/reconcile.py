"""One reconcile pass for one PF: read the kernel, decide, write the VFs, build status.

Every trigger (poll, netlink event, LACPDU) runs the same pass, which re-resolves
the PF and its bond by name, so a renamed, re-created or late PF is picked up
without a restart. Reads of one PF's passes may overlap, but their decisions and
writes run one at a time, newest read last. A VF is reported as set only after the
kernel acked the write.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from api.v1alpha1.types import InterfaceStatus, LACPState
from nodeagent.lacp import BondMode, LACPContext, LACPRate, Verdict, carries_traffic, decide
from nodeagent.links import Link, LinkReader, VFInfo, VFLinkState, VFWriteError
from nodeagent.metrics import Metrics
from nodeagent.vfpolicy import count_vfs, plan_restore, plan_vf_changes

log = logging.getLogger(__name__)

# A VF write that keeps failing with the same errno is logged at ERROR once per this
# many seconds and at DEBUG in between. The metric counts every attempt.
REPEATED_ERROR_LOG_INTERVAL_S = 60.0


class TriggerKind(StrEnum):
    """Cause of a pass, also the label of the reaction time metric."""

    POLL = "poll"
    NETLINK = "netlink"
    LACPDU = "lacpdu"
    LACPDU_RECHECK = "lacpdu-recheck"
    LACPDU_TIMEOUT = "lacpdu-timeout"
    RESYNC = "resync"
    RESTORE = "restore"


@dataclass(frozen=True)
class Trigger:
    """Cause of a pass; ``at`` is time.monotonic() when the cause was seen."""

    kind: TriggerKind
    at: float


@dataclass(frozen=True)
class PassResult:
    """Outcome of one pass, for the agent to report and to re-bind its sockets."""

    status: InterfaceStatus
    pf_index: int | None
    bond_index: int | None
    state_changed: bool
    vfs_changed: bool
    vf_write_failed: bool
    read_failed: bool = False  # the indexes are unknown or stale, not absent


@dataclass(frozen=True)
class _Reading:
    pf: Link | None
    bond: Link | None
    context: LACPContext


class PFReconciler:
    """Keeps the VFs of one PF in line with its LACP verdict."""

    def __init__(self, name: str, reader: LinkReader, metrics: Metrics) -> None:
        self.name = name
        self._reader = reader
        self._metrics = metrics
        self._lock = asyncio.Lock()
        self._verdict: Verdict | None = None
        self._status = InterfaceStatus(
            name=name,
            lacp_state=LACPState.UNKNOWN,
            reason="NotYetRead",
            message="the agent has not read this interface yet",
        )
        self._seen_in_lacp_bond = False
        self._managing = True
        self._error_logged_at: dict[tuple[int, int], float] = {}
        self._pass_started = self._read_done = 0.0
        self._read_sequence = self._applied_sequence = 0
        self._bond_cache: tuple[Link, int] | None = None
        self.last_reaction_s: float | None = None

    @property
    def status(self) -> InterfaceStatus:
        """Status after the newest pass."""
        return self._status

    async def reconcile(self, trigger: Trigger) -> PassResult:
        """Run one pass; VF writes happen only while the agent manages the VFs.

        Reads of several passes may overlap, so a pass triggered by an event does not
        wait for a slow poll. Decisions and writes are serialized, and a pass whose
        read is older than the read of an applied pass writes nothing.
        """
        self._read_sequence += 1
        sequence = self._read_sequence
        started = time.monotonic()
        try:
            reading = await self._read(trigger)
        except (OSError, TimeoutError) as error:
            log.error(
                "reading interface failed, keeping the last decision",
                extra={"interface": self.name, "error": str(error)},
            )
            return PassResult(self._status, None, None, False, False, False, read_failed=True)
        read_done = time.monotonic()
        async with self._lock:
            if sequence < self._applied_sequence:
                return PassResult(self._status, None, None, False, False, False, read_failed=True)
            self._applied_sequence = sequence
            self._pass_started, self._read_done = started, read_done
            return await self._apply(reading, trigger)

    async def restore(self) -> bool:
        """Stop managing the VFs and put every ``disable`` VF back to ``auto``.

        Returns True when no VF of this PF is left in ``disable`` (also when the PF
        does not exist); False when a write failed, so the caller retries.
        """
        async with self._lock:
            self._managing = False
            try:
                pf = await self._reader.get_link(self.name)
            except OSError as error:
                log.error(
                    "reading interface failed", extra={"interface": self.name, "error": str(error)}
                )
                return False
            if pf is None:
                return True
            changes = plan_restore(pf.vfs)
            failed = await self._write(pf, changes, Trigger(TriggerKind.RESTORE, time.monotonic()))
            vfs = _apply_changes(pf.vfs, changes, failed)
            self._status = self._status.model_copy(update={"vfs": count_vfs(vfs)})
            return not failed

    async def _apply(self, reading: _Reading, trigger: Trigger) -> PassResult:
        verdict = decide(reading.context)
        if reading.context.master_is_bond and reading.context.bond_mode == BondMode.IEEE_802_3AD:
            self._seen_in_lacp_bond = True
        state_changed = self._note_verdict(verdict)

        pf = reading.pf
        failed: list[int] = []
        changes: list[tuple[int, VFLinkState]] = []
        if pf is not None and self._managing:
            changes = plan_vf_changes(verdict.state, pf.vfs)
            failed = await self._write(pf, changes, trigger)
        vfs = _apply_changes(pf.vfs if pf else (), changes, failed)

        self._status = self._build_status(reading, verdict, vfs, state_changed)
        return PassResult(
            status=self._status,
            pf_index=pf.index if pf else None,
            bond_index=reading.bond.index if reading.bond else None,
            state_changed=state_changed,
            vfs_changed=len(changes) > len(failed),
            vf_write_failed=bool(failed),
        )

    async def _read(self, trigger: Trigger) -> _Reading:
        pf = await self._reader.get_link(self.name)
        if pf is None:
            self._bond_cache = None
            return _Reading(None, None, LACPContext(pf_found=False))
        cached = self._bond_cache
        bond: Link | None
        if (
            trigger.kind in _FAST_PATH_TRIGGERS
            and cached is not None
            and pf.master == cached[0].index
            and _state_bytes_fail(pf)
        ):
            # Fast path for a failure that an event announced. The PF's own state bytes
            # already give Down. The bond's fields could turn that into Unknown only if
            # the PF changed bonds (its master ifindex shows that) or its bond gained a
            # member, and the next poll re-reads them all. Skipping two requests
            # halves the reaction time.
            bond, members = cached
        else:
            bond, members = await self._read_bond(pf)
        is_bond = bond is not None and bond.kind == "bond"
        bond_info = bond.bond if bond is not None else None
        mode = bond_info.mode if bond_info else None
        slave = pf.slave
        context = LACPContext(
            pf_found=True,
            master_name=bond.name if bond else "",
            master_is_bond=is_bond,
            bond_mode=mode,
            member_count=members,
            actor_state=slave.actor_state if slave else None,
            partner_state=slave.partner_state if slave else None,
            aggregator_id=slave.aggregator_id if slave else None,
            active_aggregator_id=bond_info.active_aggregator_id if bond_info else None,
            partner_mac=bond_info.partner_mac if bond_info else None,
            lacp_rate=bond_info.lacp_rate if bond_info else None,
            seen_in_lacp_bond=self._seen_in_lacp_bond,
        )
        return _Reading(pf, bond, context)

    async def _read_bond(self, pf: Link) -> tuple[Link | None, int]:
        """Read the PF's master and count its members; cache them for the fast path."""
        bond = await self._reader.get_link_by_index(pf.master) if pf.master else None
        self._bond_cache = None
        if bond is None or bond.kind != "bond" or bond.bond is None:
            return bond, 1
        if bond.bond.mode != BondMode.IEEE_802_3AD:
            return bond, 1
        members = await self._reader.count_members(bond.index)
        if members == 1:
            self._bond_cache = (bond, members)
        return bond, members

    def _note_verdict(self, verdict: Verdict) -> bool:
        """Log and count a change of the verdict; return True when the state changed."""
        previous = self._verdict
        self._verdict = verdict
        self._metrics.record_lacp_state(self.name, verdict.state)
        fields = {"interface": self.name, "reason": verdict.reason.value, "detail": verdict.message}
        if previous is None or previous.state != verdict.state:
            self._metrics.record_transition(self.name, verdict.state, verdict.reason.value)
            if verdict.state == LACPState.UP:
                log.info("lacp is up", extra={**fields, "notes": list(verdict.notes)})
            elif verdict.state == LACPState.DOWN:
                log.warning("lacp is down", extra=fields)
            else:
                log.warning("lacp state is unknown", extra=fields)
            return True
        if previous.reason != verdict.reason:
            log.info("lacp reason changed", extra={**fields, "previous": previous.reason.value})
        for note in set(verdict.notes) - set(previous.notes):
            log.warning("lacp note", extra={"interface": self.name, "note": note})
        return False

    async def _write(
        self, pf: Link, changes: list[tuple[int, VFLinkState]], trigger: Trigger
    ) -> list[int]:
        """Write ``changes`` in one RTM_SETLINK, falling back to one per VF; return failed VFs."""
        if not changes:
            return []
        try:
            await self._reader.set_vf_link_states(pf.index, changes)
        except (VFWriteError, OSError, TimeoutError) as error:
            if len(changes) == 1:
                self._log_write_error(pf, changes[0], error)
                return [changes[0][0]]
            log.warning(
                "batched vf link state write failed, writing vfs one by one",
                extra={
                    "interface": self.name,
                    "vfs": [vf for vf, _ in changes],
                    "errno": _errno_name(error),
                },
            )
            return await self._write_each(pf, changes, trigger)
        self._note_written(pf, changes, trigger)
        return []

    async def _write_each(
        self, pf: Link, changes: list[tuple[int, VFLinkState]], trigger: Trigger
    ) -> list[int]:
        failed: list[int] = []
        for change in changes:
            try:
                await self._reader.set_vf_link_states(pf.index, [change])
            except (VFWriteError, OSError, TimeoutError) as error:
                self._log_write_error(pf, change, error)
                failed.append(change[0])
            else:
                self._note_written(pf, [change], trigger)
        return failed

    def _note_written(
        self, pf: Link, changes: list[tuple[int, VFLinkState]], trigger: Trigger
    ) -> None:
        acked = time.monotonic()
        reaction = acked - trigger.at
        self.last_reaction_s = reaction
        # Where the reaction time went: waiting for the pass, reading, writing.
        timing = {
            "wait_ms": round((self._pass_started - trigger.at) * 1000, 3),
            "read_ms": round((self._read_done - self._pass_started) * 1000, 3),
            "write_ms": round((acked - self._read_done) * 1000, 3),
        }
        self._metrics.record_vf_writes(self.name, "ok", len(changes))
        self._metrics.record_reaction(trigger.kind.value, reaction)
        for vf, state in changes:
            self._error_logged_at = {
                key: at for key, at in self._error_logged_at.items() if key[0] != vf
            }
            log.info(
                "vf link state was set",
                extra={
                    "interface": self.name,
                    "ifindex": pf.index,
                    "id": vf,
                    "state": state.label,
                    "trigger": trigger.kind.value,
                    "reaction_ms": round(reaction * 1000, 3),
                    **timing,
                },
            )

    def _log_write_error(
        self, pf: Link, change: tuple[int, VFLinkState], error: BaseException
    ) -> None:
        vf, state = change
        code = _errno_value(error)
        self._metrics.record_vf_writes(self.name, _errno_name(error), 1)
        now = time.monotonic()
        logged_at = self._error_logged_at.get((vf, code))
        level = logging.DEBUG
        if logged_at is None or now - logged_at >= REPEATED_ERROR_LOG_INTERVAL_S:
            level = logging.ERROR
            self._error_logged_at[(vf, code)] = now
        log.log(
            level,
            "setting vf link state failed, retrying next interval",
            extra={
                "interface": self.name,
                "ifindex": pf.index,
                "id": vf,
                "state": state.label,
                "errno": code,
                "error": _errno_name(error),
                "detail": str(error),
            },
        )

    def _build_status(
        self, reading: _Reading, verdict: Verdict, vfs: tuple[VFInfo, ...], changed: bool
    ) -> InterfaceStatus:
        context = reading.context
        message = verdict.message
        if verdict.notes:
            message = message + "; " + "; ".join(verdict.notes)
        rate = ""
        if context.lacp_rate is not None:
            rate = "fast" if context.lacp_rate == LACPRate.FAST else "slow"
        transition_time = self._status.last_transition_time
        if changed or transition_time is None:
            transition_time = datetime.now(UTC)
        bond_name = context.master_name if context.master_is_bond else ""
        return InterfaceStatus(
            name=self.name,
            lacp_state=verdict.state,
            reason=verdict.reason.value,
            message=message,
            bond=bond_name,
            lacp_rate=rate,
            actor_state=context.actor_state,
            partner_state=context.partner_state,
            partner_mac=context.partner_mac or "",
            aggregator_id=context.aggregator_id,
            active_aggregator_id=context.active_aggregator_id,
            vfs=count_vfs(vfs),
            last_transition_time=transition_time,
        )


_FAST_PATH_TRIGGERS = frozenset(
    {
        TriggerKind.NETLINK,
        TriggerKind.LACPDU,
        TriggerKind.LACPDU_RECHECK,
        TriggerKind.LACPDU_TIMEOUT,
    }
)


def _state_bytes_fail(pf: Link) -> bool:
    """Return True when the PF's actor and partner states are present and not both healthy."""
    slave = pf.slave
    if slave is None or slave.actor_state is None or slave.partner_state is None:
        return False
    return not (carries_traffic(slave.actor_state) and carries_traffic(slave.partner_state))


def _apply_changes(
    vfs: tuple[VFInfo, ...], changes: list[tuple[int, VFLinkState]], failed: list[int]
) -> tuple[VFInfo, ...]:
    written = {vf: state for vf, state in changes if vf not in failed}
    return tuple(
        replace(vf, link_state=written[vf.index]) if vf.index in written else vf for vf in vfs
    )


def _errno_value(error: BaseException) -> int:
    if isinstance(error, VFWriteError):
        return error.errno
    if isinstance(error, TimeoutError):
        return errno.ETIMEDOUT
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno
    return 0


def _errno_name(error: BaseException) -> str:
    return errno.errorcode.get(_errno_value(error), "unknown")
