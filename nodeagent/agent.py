"""The agent's engine: runs reconcile passes on every trigger and on a timer.

Three sources start a pass for a PF, and none is trusted alone:

- netlink link notifications for the PF, its bond, or a link that takes a monitored
  name (the kernel notifies when a bond member's state flips, not for a partner-only
  change);
- each LACPDU the switch sends, read again about 50 ms later in case the bonding
  driver had not recorded it yet, and the moment the host's port would expire if
  no further LACPDU arrives;
- a poll of every PF every polling interval, the safety net.

Triggers for one PF that arrive while its pass runs are merged into one more pass,
which reads fresh state. The poll never stops: a lost event socket is reopened and
every PF is re-read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from api.report import ReportReason
from api.v1alpha1.types import InterfaceStatus, LACPState
from nodeagent.lacp import PortState
from nodeagent.lacpdu import LACPDU
from nodeagent.links import EventSocketLost, LinkEvent, LinkReader
from nodeagent.metrics import Metrics
from nodeagent.reconcile import PassResult, PFReconciler, Trigger, TriggerKind

log = logging.getLogger(__name__)

# The bonding driver records a LACPDU in the same softirq that delivers it to packet
# sockets, so the first read usually finds the new state (it did in every measured
# round of the kernel tier). The second read covers a PDU that the driver processed
# after the agent's read, which can happen when the agent runs on another CPU.
LACPDU_RECHECK_DELAY_S = 0.05
HEALTHY_INTERVALS = 3
# The host's port expires when no LACPDU arrived for 3 timeouts: 3 s at the fast rate
# (PortState.TIMEOUT set in the actor state), 90 s at the slow rate. The bonding
# driver checks every 100 ms, and the kernel's link notification may come later than
# the expiry, so the agent re-reads at the expected expiry and a few times after it.
SHORT_EXPIRY_S = 3.0
LONG_EXPIRY_S = 90.0
EXPIRY_RECHECK_OFFSETS_S = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)


class EventSource(Protocol):
    """Link notification socket (``nodeagent.linkevents.LinkEventSocket`` in production)."""

    async def receive(self) -> list[LinkEvent]: ...

    def close(self) -> None: ...


class SocketBinder(Protocol):
    """Packet socket owner (``nodeagent.lacpdu.LACPDUListener`` in production)."""

    def bind(self, pf: str, ifindex: int | None) -> None: ...

    def close(self) -> None: ...


ReportCallback = Callable[[ReportReason, str], None]

_STATE_REASONS = {
    LACPState.UP: ReportReason.LACP_UP,
    LACPState.DOWN: ReportReason.LACP_DOWN,
    LACPState.UNKNOWN: ReportReason.LACP_UNKNOWN,
}


@dataclass
class _PFTriggers:
    wake: asyncio.Event
    pending: Trigger | None = None
    recheck: asyncio.TimerHandle | None = None
    expiry_watch: list[asyncio.TimerHandle] = field(default_factory=list)
    last_failed: bool = False


class Agent:
    """Reconcilers of all monitored PFs and the loops that trigger them."""

    def __init__(
        self,
        interfaces: list[str],
        polling_interval_s: float,
        reader: LinkReader,
        metrics: Metrics,
        report: ReportCallback | None = None,
        event_source_factory: Callable[[], EventSource] | None = None,
    ) -> None:
        self.polling_interval_s = polling_interval_s
        self.reconcilers = {name: PFReconciler(name, reader, metrics) for name in interfaces}
        self._metrics = metrics
        self._report = report or (lambda reason, note: None)
        self._event_source_factory = event_source_factory
        self._socket_binder: SocketBinder | None = None
        self._triggers: dict[str, _PFTriggers] = {}
        self._pf_by_index: dict[int, str] = {}
        self._pf_by_bond: dict[int, str] = {}
        self._last_pdu: dict[str, tuple[int, int]] = {}
        self.started_at = time.monotonic()
        self.last_poll_completed: float | None = None
        self.first_poll = asyncio.Event()
        self.restored = False

    def set_report_callback(self, report: ReportCallback) -> None:
        """Send transition reports to ``report``."""
        self._report = report

    def attach_socket_binder(self, binder: SocketBinder) -> None:
        """Use ``binder`` to keep one packet socket per PF bound to the PF's ifindex."""
        self._socket_binder = binder

    def snapshot(self) -> list[InterfaceStatus]:
        """Return the newest status of every PF, in configuration order."""
        return [reconciler.status for reconciler in self.reconcilers.values()]

    def healthy(self, now: float | None = None) -> bool:
        """Return True when the poll loop completed a pass within the last 3 intervals."""
        now = time.monotonic() if now is None else now
        reference = self.last_poll_completed or self.started_at
        return now - reference <= HEALTHY_INTERVALS * self.polling_interval_s

    async def run(self) -> None:
        """Run the poll loop, the per-PF trigger loops and the event loop until cancelled."""
        log.info(
            "agent started",
            extra={
                "interfaces": list(self.reconcilers),
                "polling_interval_ms": int(self.polling_interval_s * 1000),
            },
        )
        self._triggers = {name: _PFTriggers(asyncio.Event()) for name in self.reconcilers}
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._poll_loop(), name="poll")
                for name in self.reconcilers:
                    group.create_task(self._trigger_loop(name), name=f"trigger-{name}")
                if self._event_source_factory is not None:
                    group.create_task(self._event_loop(self._event_source_factory), name="events")
        finally:
            for triggers in self._triggers.values():
                if triggers.recheck is not None:
                    triggers.recheck.cancel()
                for handle in triggers.expiry_watch:
                    handle.cancel()
            if self._socket_binder is not None:
                self._socket_binder.close()
            log.info("agent stopped")

    def trigger(self, pf: str, trigger: Trigger) -> None:
        """Ask for a pass of ``pf``; merged with a pass already pending."""
        triggers = self._triggers.get(pf)
        if triggers is None:
            return
        if triggers.pending is None or trigger.at < triggers.pending.at:
            triggers.pending = trigger
        triggers.wake.set()

    def on_lacpdu(self, pf: str, pdu: LACPDU) -> None:
        """Re-read ``pf`` now and ``LACPDU_RECHECK_DELAY_S`` later when the PDU has news.

        The kernel copies a LACPDU's actor state into the partner state it reports. A
        PDU that repeats the previous one and whose actor state equals the partner
        state of the newest pass changes nothing, so it starts no pass. Skipping
        these saves two passes per PF per second at the fast rate.
        """
        self._watch_expiry(pf, pdu)
        states = (pdu.actor_state, pdu.partner_state)
        previous = self._last_pdu.get(pf)
        self._last_pdu[pf] = states
        reconciler = self.reconcilers.get(pf)
        known_partner = reconciler.status.partner_state if reconciler else None
        unchanged = known_partner is not None and known_partner & 0xFF == pdu.actor_state
        if previous == states and unchanged:
            return
        self.trigger(pf, Trigger(TriggerKind.LACPDU, pdu.received_at))
        triggers = self._triggers.get(pf)
        if triggers is None or triggers.recheck is not None:
            return

        def recheck() -> None:
            triggers.recheck = None
            self.trigger(pf, Trigger(TriggerKind.LACPDU_RECHECK, pdu.received_at))

        loop = asyncio.get_running_loop()
        triggers.recheck = loop.call_later(LACPDU_RECHECK_DELAY_S, recheck)

    def _watch_expiry(self, pf: str, pdu: LACPDU) -> None:
        """Schedule re-reads for when the host's port expires unless another PDU arrives."""
        triggers = self._triggers.get(pf)
        reconciler = self.reconcilers.get(pf)
        if triggers is None or reconciler is None:
            return
        for handle in triggers.expiry_watch:
            handle.cancel()
        actor = reconciler.status.actor_state
        fast = actor is None or bool(actor & PortState.TIMEOUT)
        expiry_in = pdu.received_at + (SHORT_EXPIRY_S if fast else LONG_EXPIRY_S)
        expiry_in -= time.monotonic()

        def expire() -> None:
            self.trigger(pf, Trigger(TriggerKind.LACPDU_TIMEOUT, time.monotonic()))

        loop = asyncio.get_running_loop()
        triggers.expiry_watch = [
            loop.call_later(max(0.0, expiry_in + offset), expire)
            for offset in EXPIRY_RECHECK_OFFSETS_S
        ]

    async def restore(self) -> bool:
        """Stop managing VFs and put every ``disable`` VF back to ``auto`` on every PF.

        Returns True when every PF is restored; the caller retries on False.
        """
        results = [await reconciler.restore() for reconciler in self.reconcilers.values()]
        self.restored = all(results)
        return self.restored

    async def reconcile_all(self, kind: TriggerKind) -> None:
        """Run one pass of every PF concurrently."""
        trigger = Trigger(kind, time.monotonic())
        async with asyncio.TaskGroup() as group:
            for name in self.reconcilers:
                group.create_task(self._reconcile(name, trigger))

    async def _poll_loop(self) -> None:
        while True:
            started = time.monotonic()
            await self.reconcile_all(TriggerKind.POLL)
            self.last_poll_completed = time.monotonic()
            self.first_poll.set()
            elapsed = self.last_poll_completed - started
            await asyncio.sleep(max(0.0, self.polling_interval_s - elapsed))

    async def _trigger_loop(self, pf: str) -> None:
        triggers = self._triggers[pf]
        while True:
            await triggers.wake.wait()
            triggers.wake.clear()
            trigger, triggers.pending = triggers.pending, None
            if trigger is not None:
                await self._reconcile(pf, trigger)

    async def _reconcile(self, pf: str, trigger: Trigger) -> None:
        result = await self.reconcilers[pf].reconcile(trigger)
        self._after_pass(pf, result)

    def _after_pass(self, pf: str, result: PassResult) -> None:
        if result.read_failed:
            return  # nothing was decided: no index, socket or report changes
        self._update_indexes(pf, result)
        status = result.status
        triggers = self._triggers.get(pf)
        newly_failed = result.vf_write_failed and not (triggers and triggers.last_failed)
        if triggers is not None:
            triggers.last_failed = result.vf_write_failed
        if result.state_changed:
            self._report(
                _STATE_REASONS[status.lacp_state],
                f"{pf}: lacp is {status.lacp_state.value.lower()} ({status.reason})",
            )
        elif result.vfs_changed:
            self._report(
                ReportReason.VF_LINK_STATE_CHANGED,
                f"{pf}: vf link states set, {status.vfs.disabled} disabled",
            )
        if newly_failed:
            self._report(
                ReportReason.VF_LINK_STATE_FAILED,
                f"{pf}: setting vf link state failed, see the agent log",
            )

    def _update_indexes(self, pf: str, result: PassResult) -> None:
        self._pf_by_index = {k: v for k, v in self._pf_by_index.items() if v != pf}
        self._pf_by_bond = {k: v for k, v in self._pf_by_bond.items() if v != pf}
        if result.pf_index is not None:
            self._pf_by_index[result.pf_index] = pf
        if result.bond_index is not None:
            self._pf_by_bond[result.bond_index] = pf
        if self._socket_binder is not None:
            self._socket_binder.bind(pf, result.pf_index)

    def pf_for_event(self, event: LinkEvent) -> str | None:
        """Return the monitored PF that ``event`` concerns, or None."""
        if event.index in self._pf_by_index:
            return self._pf_by_index[event.index]
        if event.index in self._pf_by_bond:
            return self._pf_by_bond[event.index]
        if event.name in self.reconcilers:
            return event.name
        if event.master is not None and event.master in self._pf_by_bond:
            return self._pf_by_bond[event.master]
        return None

    async def _event_loop(self, factory: Callable[[], EventSource]) -> None:
        while True:
            try:
                source = factory()
            except OSError as error:
                log.error(
                    "opening netlink event socket failed, retrying",
                    extra={"error": str(error), "retry_s": self.polling_interval_s},
                )
                await asyncio.sleep(self.polling_interval_s)
                continue
            log.info("netlink event socket opened")
            # Notifications may have been lost before the socket existed: re-read all.
            for name in self.reconcilers:
                self.trigger(name, Trigger(TriggerKind.RESYNC, time.monotonic()))
            try:
                await self._dispatch_events(source)
            except EventSocketLost as error:
                log.warning(
                    "netlink event socket lost, reopening and resynchronizing",
                    extra={"error": str(error)},
                )
                self._metrics.record_socket_reopen("netlink")
            finally:
                source.close()

    async def _dispatch_events(self, source: EventSource) -> None:
        while True:
            for event in await source.receive():
                pf = self.pf_for_event(event)
                if pf is not None:
                    self.trigger(pf, Trigger(TriggerKind.NETLINK, event.received_at))
