"""Report format that node agents send to the controller through Kubernetes Events.

An agent writes ``events.k8s.io/v1`` Events regarding its PFLACPMonitor. Every Event
carries the agent's full view of its node (all monitored PFs) as JSON in the
annotation ``REPORT_ANNOTATION``, so the newest Event from a node is enough to
rebuild that node's status: a dropped Event or a restarted controller heals with the
next report. The Event's ``note`` stays a short human sentence for
``kubectl get events``; the labels let the controller watch only these Events.

Ordering: the controller keeps, per monitor UID and node, the report with the
highest ``(observed_at, instance, sequence)``. ``sequence`` grows by one for every
report of one agent process, whose ``instance`` id is random at start.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.v1alpha1.types import API_VERSION, GROUP, KIND, InterfaceStatus

REPORT_FORMAT_VERSION = 1
REPORT_ANNOTATION = f"{GROUP}/report"
LABEL_MONITOR = f"{GROUP}/monitor"
LABEL_MONITOR_UID = f"{GROUP}/monitor-uid"
LABEL_NODE = f"{GROUP}/node"
REPORTING_CONTROLLER = f"{GROUP}/agent"
# events.k8s.io/v1 limits note to 1 kB.
MAX_NOTE_LENGTH = 1024


class ReportReason(StrEnum):
    """Reason of an agent Event; also the kind of report it carries."""

    LACP_UP = "LACPUp"
    LACP_DOWN = "LACPDown"
    LACP_UNKNOWN = "LACPUnknown"
    VF_LINK_STATE_CHANGED = "VFLinkStateChanged"
    VF_LINK_STATE_FAILED = "VFLinkStateFailed"
    STATE_REPORT = "StateReport"
    VFS_RESTORED = "VFsRestored"
    AGENT_STARTED = "AgentStarted"


class ReportFormatError(ValueError):
    """An Event claims to be an agent report but its payload cannot be parsed."""


class NodeReport(BaseModel):
    """One agent's full view of its node for one monitor."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    format_version: int = Field(default=REPORT_FORMAT_VERSION, alias="formatVersion")
    monitor_namespace: str = Field(alias="monitorNamespace")
    monitor_name: str = Field(alias="monitorName")
    monitor_uid: str = Field(alias="monitorUID")
    monitor_generation: int = Field(default=0, alias="monitorGeneration")
    node: str
    instance: str = Field(description="Random id of the agent process, new at every start.")
    sequence: int = Field(ge=0, description="Report number within this agent process.")
    observed_at: datetime = Field(alias="observedAt")
    restored: bool = Field(
        default=False,
        description="True once the agent has put every VF it disabled back to auto.",
    )
    interfaces: list[InterfaceStatus] = Field(default_factory=list)

    def order_key(self) -> tuple[datetime, str, int]:
        """Return the key that orders reports of one node, newest last."""
        return (self.observed_at, self.instance, self.sequence)


def event_name(report: NodeReport, reason: ReportReason) -> str:
    """Return a unique, valid Event name for ``report``.

    Names are DNS subdomains of at most 253 characters, and the monitor and node names
    may each be that long. Both are cut, so the instance and sequence keep names unique.
    """
    stem = f"{report.monitor_name[:60]}.{report.node[:100]}"
    return f"{stem}.{report.instance[:12]}.{report.sequence:x}.{reason.lower()}"[:253].strip(".-")


def build_event(report: NodeReport, reason: ReportReason, note: str) -> dict[str, Any]:
    """Build the events.k8s.io/v1 Event body that carries ``report``."""
    now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    payload = report.model_dump(mode="json", by_alias=True, exclude_none=True)
    event_type = "Warning" if reason in _WARNING_REASONS else "Normal"
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {
            "name": event_name(report, reason),
            "namespace": report.monitor_namespace,
            "labels": {
                LABEL_MONITOR: _label_value(report.monitor_name),
                LABEL_MONITOR_UID: report.monitor_uid,
                LABEL_NODE: _label_value(report.node),
            },
            "annotations": {REPORT_ANNOTATION: json.dumps(payload, separators=(",", ":"))},
        },
        "eventTime": now,
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": f"{REPORTING_CONTROLLER.split('/')[-1]}-{report.node}"[:128],
        "action": "Report" if reason == ReportReason.STATE_REPORT else "Reconcile",
        "reason": reason.value,
        "type": event_type,
        "note": note[:MAX_NOTE_LENGTH],
        "regarding": {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": report.monitor_name,
            "namespace": report.monitor_namespace,
            "uid": report.monitor_uid,
        },
    }


def parse_event(event: dict[str, Any]) -> NodeReport | None:
    """Return the report an Event carries, or None when the Event is not an agent report.

    Raises ReportFormatError when the Event carries the report annotation but its
    content is not a valid report, so the caller can log and count it.
    """
    metadata = event.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    raw = annotations.get(REPORT_ANNOTATION)
    if raw is None or event.get("reportingController") != REPORTING_CONTROLLER:
        return None
    try:
        return NodeReport.model_validate_json(raw)
    except ValidationError as error:
        name = f"{metadata.get('namespace')}/{metadata.get('name')}"
        raise ReportFormatError(f"event {name}: invalid report annotation: {error}") from error


def _label_value(value: str) -> str:
    """Cut a name to the 63 characters of a label value, without a trailing separator."""
    return value[:63].rstrip("-._")


_WARNING_REASONS = frozenset(
    {ReportReason.LACP_DOWN, ReportReason.LACP_UNKNOWN, ReportReason.VF_LINK_STATE_FAILED}
)
