"""Agent reports survive the trip through an Event body and reject foreign content."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from api.report import (
    LABEL_MONITOR,
    LABEL_NODE,
    REPORT_ANNOTATION,
    NodeReport,
    ReportFormatError,
    ReportReason,
    build_event,
    event_name,
    parse_event,
)
from api.v1alpha1 import InterfaceStatus, LACPState, VFCounts


def _report(node: str = "worker-0", sequence: int = 7) -> NodeReport:
    return NodeReport(
        monitor_namespace="team-a",
        monitor_name="edge",
        monitor_uid="0b6f3c8e-1111-2222-3333-444455556666",
        monitor_generation=3,
        node=node,
        instance="5f2a9c",
        sequence=sequence,
        observed_at=datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC),
        interfaces=[
            InterfaceStatus(
                name="ens5f0",
                lacp_state=LACPState.DOWN,
                reason="PartnerExpired",
                bond="bond0",
                actor_state=0x3F,
                partner_state=0x8F,
                vfs=VFCounts(total=5, managed=2, disabled=2),
            )
        ],
    )


def test_event_round_trip() -> None:
    report = _report()

    event = build_event(report, ReportReason.LACP_DOWN, "ens5f0: lacp is down")
    parsed = parse_event(json.loads(json.dumps(event)))

    assert parsed == report
    assert event["type"] == "Warning"
    assert event["regarding"]["uid"] == report.monitor_uid
    assert event["metadata"]["labels"][LABEL_NODE] == "worker-0"
    assert event["metadata"]["labels"][LABEL_MONITOR] == "edge"


def test_partner_state_keeps_two_bytes() -> None:
    report = _report()
    report.interfaces[0].partner_state = 0x013F

    parsed = parse_event(build_event(report, ReportReason.STATE_REPORT, "report"))

    assert parsed is not None
    assert parsed.interfaces[0].partner_state == 0x013F


def test_foreign_event_ignored() -> None:
    event = {"metadata": {"name": "x"}, "reportingController": "kubelet", "reason": "Pulled"}

    assert parse_event(event) is None


def test_corrupt_report_raises() -> None:
    event = build_event(_report(), ReportReason.STATE_REPORT, "report")
    event["metadata"]["annotations"][REPORT_ANNOTATION] = '{"node": 1}'

    with pytest.raises(ReportFormatError, match="invalid report annotation"):
        parse_event(event)


def test_event_name_valid_for_long_names() -> None:
    report = _report(node="n" * 253)
    report.monitor_name = "m" * 253

    name = event_name(report, ReportReason.STATE_REPORT)

    assert len(name) <= 253
    assert name[0].isalnum()
    assert name[-1].isalnum()


def test_order_key_prefers_newer() -> None:
    older, newer = _report(sequence=1), _report(sequence=2)

    assert max([newer, older], key=NodeReport.order_key) is newer
