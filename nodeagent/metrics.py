"""The agent's metrics: OpenTelemetry instruments exported on a Prometheus endpoint.

Instruments are created on a MeterProvider passed in, so unit tests read them with an
in-memory reader and production serves them with ``serve_prometheus``.
"""

from __future__ import annotations

import logging

from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from api.v1alpha1.types import LACPState

log = logging.getLogger(__name__)

METER_NAME = "pf-status-relay-agent"
REACTION_HISTOGRAM = "pfsr_agent_reaction_seconds"
# Seconds. The target is 0.1 s from the kernel's state change to the VFs written, and
# a poll-triggered reaction can take a whole polling interval (up to 60 s).
REACTION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)
LACP_STATE_VALUES = {LACPState.UP: 1, LACPState.DOWN: 0, LACPState.UNKNOWN: -1}


def histogram_views() -> list[View]:
    """Return the views that give the reaction histogram its buckets."""
    return [
        View(
            instrument_name=REACTION_HISTOGRAM,
            aggregation=ExplicitBucketHistogramAggregation(boundaries=REACTION_BUCKETS),
        )
    ]


class Metrics:
    """Instruments that the reconcile pass, the event sources and the reporter record."""

    def __init__(self, meter: Meter) -> None:
        self._lacp_state = meter.create_gauge(
            "pfsr_agent_lacp_state",
            description="LACP verdict per PF: 1 Up, 0 Down, -1 Unknown.",
        )
        self._transitions = meter.create_counter(
            "pfsr_agent_lacp_transitions", description="Changes of the LACP verdict per PF."
        )
        self._vf_writes = meter.create_counter(
            "pfsr_agent_vf_writes",
            description="VF link state writes by result (ok, or the errno name).",
        )
        self._reaction = meter.create_histogram(
            REACTION_HISTOGRAM,
            unit="s",
            description=(
                "Time from the trigger (netlink event, LACPDU receive or poll start) "
                "to the kernel's ack of the VF write."
            ),
        )
        self._event_socket_reopens = meter.create_counter(
            "pfsr_agent_event_socket_reopens",
            description="Reopens of the netlink event or LACPDU socket after an error.",
        )
        self._reports = meter.create_counter(
            "pfsr_agent_reports", description="Kubernetes Events sent, by result."
        )

    def record_lacp_state(self, interface: str, state: LACPState) -> None:
        """Set the LACP state gauge of ``interface``."""
        self._lacp_state.set(LACP_STATE_VALUES[state], {"interface": interface})

    def record_transition(self, interface: str, state: LACPState, reason: str) -> None:
        """Count a change of the verdict of ``interface`` to ``state``."""
        self._transitions.add(1, {"interface": interface, "state": state.value, "reason": reason})

    def record_vf_writes(self, interface: str, result: str, count: int) -> None:
        """Count ``count`` VF writes with ``result`` ("ok" or an errno name)."""
        self._vf_writes.add(count, {"interface": interface, "result": result})

    def record_reaction(self, trigger: str, seconds: float) -> None:
        """Record the time from a trigger to the acked VF write."""
        self._reaction.record(seconds, {"trigger": trigger})

    def record_socket_reopen(self, socket_kind: str) -> None:
        """Count a reopen of the ``socket_kind`` socket."""
        self._event_socket_reopens.add(1, {"socket": socket_kind})

    def record_report(self, result: str) -> None:
        """Count a report sent ("ok") or failed ("error")."""
        self._reports.add(1, {"result": result})


def serve_prometheus(port: int, address: str = "0.0.0.0") -> Metrics:
    """Start the Prometheus endpoint on ``port`` and return instruments that feed it."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import start_http_server

    reader = PrometheusMetricReader()
    provider = MeterProvider(metric_readers=[reader], views=histogram_views())
    start_http_server(port, addr=address)
    log.info("metrics endpoint started", extra={"port": port})
    return Metrics(provider.get_meter(METER_NAME))


def in_memory_metrics() -> Metrics:
    """Return instruments that record into a provider with no reader (no export)."""
    return Metrics(MeterProvider(views=histogram_views()).get_meter(METER_NAME))
