"""Metrics and traces of the controller through OpenTelemetry.

Metrics go to a Prometheus registry that the metrics endpoint serves. Every
Telemetry instance has its own registry and providers, so two controllers in one
process (as in the leader election tests) do not mix their numbers. Traces use the
SDK tracer: one span per reconcile. Spans are exported to the console only when
``OTEL_TRACES_EXPORTER=console``; otherwise they are created and dropped, since this
product ships no OTLP exporter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry

SERVICE_NAME = "pf-status-relay-controller"
# Seconds; a reconcile reads caches and makes at most a few API calls.
RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]


@dataclass
class Counts:
    """Plain totals kept next to the OpenTelemetry instruments, for logs and tests."""

    status_writes: int = 0
    status_conflicts: int = 0
    daemonset_writes: int = 0
    watch_restarts: int = 0
    reconciles: int = 0
    watch_restart_reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class Telemetry:
    """The controller's instruments and tracer."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self) -> None:
        resource = Resource.create({"service.name": SERVICE_NAME})
        reader = PrometheusMetricReader(registry=self.registry, scope_info_enabled=False)
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        meter = self.meter_provider.get_meter("controller")
        self._reconcile_duration = meter.create_histogram(
            "pfsr_reconcile_duration",
            unit="s",
            description="Time one reconcile took.",
            # The SDK's default buckets are sized for milliseconds.
            explicit_bucket_boundaries_advisory=RECONCILE_BUCKETS,
        )
        self._reconcile_total = meter.create_counter(
            "pfsr_reconciles", description="Reconciles by outcome: success, error, requeue."
        )
        self._queue_depth = meter.create_up_down_counter(
            "pfsr_workqueue_depth", description="Keys waiting in the work queue."
        )
        self._status_writes = meter.create_counter(
            "pfsr_status_writes", description="Writes of a monitor's status, by result."
        )
        self._daemonset_writes = meter.create_counter(
            "pfsr_daemonset_writes", description="Agent DaemonSet creates, updates and deletes."
        )
        self._watch_restarts = meter.create_counter(
            "pfsr_watch_restarts", description="Watch restarts by resource and reason."
        )
        self._depth = 0
        self.tracer_provider = TracerProvider(resource=resource)
        if os.environ.get("OTEL_TRACES_EXPORTER", "").lower() == "console":
            self.tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        self.tracer: Tracer = self.tracer_provider.get_tracer("controller")

    def reconciled(self, seconds: float, outcome: str) -> None:
        self.counts.reconciles += 1
        self._reconcile_duration.record(seconds, {"outcome": outcome})
        self._reconcile_total.add(1, {"outcome": outcome})

    def queue_depth(self, depth: int) -> None:
        self._queue_depth.add(depth - self._depth)
        self._depth = depth

    def status_written(self, result: str) -> None:
        if result == "success":
            self.counts.status_writes += 1
        elif result == "conflict":
            self.counts.status_conflicts += 1
        self._status_writes.add(1, {"result": result})

    def daemonset_written(self, action: str) -> None:
        self.counts.daemonset_writes += 1
        self._daemonset_writes.add(1, {"action": action})

    def watch_restarted(self, resource: str, reason: str) -> None:
        self.counts.watch_restarts += 1
        reasons = self.counts.watch_restart_reasons
        reasons[reason] = reasons.get(reason, 0) + 1
        self._watch_restarts.add(1, {"resource": resource, "reason": reason})

    def shutdown(self) -> None:
        """Flush and stop the providers."""
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()
