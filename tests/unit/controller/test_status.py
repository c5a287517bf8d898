"""Status aggregation from agent reports: per-node entries, counters, conditions, staleness."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from api.report import NodeReport
from api.v1alpha1.types import InterfaceStatus, LACPState, PFLACPMonitorSpec
from controller.reports import ReportCache, SeenReport
from controller.selection import Conflict, Coverage
from controller.status import StatusInput, compute_status, next_stale_in

NOW = 1_700_000_000.0
SPEC = PFLACPMonitorSpec.model_validate({"interfaces": ["ens5f0", "ens5f1"]})


def report(node: str, *states: LACPState, sequence: int = 1, restored: bool = False) -> NodeReport:
    return NodeReport(
        monitor_namespace="ns",
        monitor_name="m",
        monitor_uid="uid",
        monitor_generation=1,
        node=node,
        instance="i1",
        sequence=sequence,
        observed_at=datetime.fromtimestamp(NOW - 5, UTC),
        restored=restored,
        interfaces=[
            InterfaceStatus(name=f"ens5f{i}", lacp_state=state, reason="Test")
            for i, state in enumerate(states)
        ],
    )


def seen(*reports: NodeReport, age: float = 1.0) -> dict[str, SeenReport]:
    return {r.node: SeenReport(r, NOW - age) for r in reports}


def status_of(coverage: Coverage, reports: dict[str, SeenReport], **kwargs: Any) -> dict[str, Any]:
    data = StatusInput(
        generation=1, spec=SPEC, coverage=coverage, reports=reports, now=NOW, **kwargs
    )
    return compute_status(data)


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_all_up_is_ready() -> None:
    up = LACPState.UP
    cover = Coverage(("n1", "n2"), ("n1", "n2"))
    status = status_of(cover, seen(report("n1", up, up), report("n2", up, up)))
    assert status["nodeCount"] == 2
    assert status["interfacesUp"] == 4
    assert status["interfacesDown"] == 0
    assert conditions(status) == {
        "Ready": ("True", "AllInterfacesUp"),
        "Degraded": ("False", "AsExpected"),
        "Progressing": ("False", "Complete"),
    }
    assert [n["name"] for n in status["nodes"]] == ["n1", "n2"]


def test_down_interface_is_not_ready_and_named() -> None:
    cover = Coverage(("n1",), ("n1",))
    status = status_of(cover, seen(report("n1", LACPState.UP, LACPState.DOWN)))
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InterfacesDown"
    assert "n1/ens5f1" in ready["message"]
    assert status["interfacesDown"] == 1


def test_quiet_agent_becomes_unknown() -> None:
    cover = Coverage(("n1", "n2"), ("n1", "n2"))
    reports = {
        **seen(report("n1", LACPState.UP, LACPState.UP), age=91.0),
        **seen(report("n2", LACPState.UP, LACPState.UP)),
    }
    status = status_of(cover, reports, report_timeout=90.0)
    n1 = status["nodes"][0]
    assert n1["agentReachable"] is False
    assert {i["lacpState"] for i in n1["interfaces"]} == {"Unknown"}
    assert n1["interfaces"][0]["reason"] == "AgentUnreachable"
    assert status["interfacesUnknown"] == 2
    assert status["interfacesUp"] == 2
    assert conditions(status)["Degraded"] == ("True", "AgentsUnreachable")


def test_node_without_report_awaits_it() -> None:
    status = status_of(Coverage(("n1",), ("n1",)), {})
    assert status["nodes"][0]["interfaces"][0]["reason"] == "AwaitingReport"
    assert conditions(status)["Progressing"] == ("True", "AwaitingReports")
    assert conditions(status)["Ready"] == ("False", "AgentsNotReporting")


def test_no_matching_nodes_is_not_ready() -> None:
    status = status_of(Coverage(), {})
    assert conditions(status)["Ready"] == ("False", "NoMatchingNodes")
    assert status["nodeCount"] == 0


def test_all_nodes_lost_to_conflict() -> None:
    cover = Coverage(("n1",), (), (Conflict("ns/old", ("n1",)),))
    status = status_of(cover, {})
    assert conditions(status)["Ready"] == ("False", "NodeConflict")
    assert conditions(status)["Degraded"] == ("True", "NodeConflict")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert "ns/old" in degraded["message"]
    assert "n1" in degraded["message"]


def test_report_for_uncovered_node_is_ignored() -> None:
    status = status_of(
        Coverage(("n1",), ("n1",)),
        seen(report("n1", LACPState.UP, LACPState.UP), report("n9", LACPState.DOWN)),
    )
    assert [n["name"] for n in status["nodes"]] == ["n1"]
    assert status["interfacesDown"] == 0


def test_invalid_spec_keeps_nodes_and_sets_degraded() -> None:
    previous = status_of(Coverage(("n1",), ("n1",)), seen(report("n1", LACPState.UP, LACPState.UP)))
    data = StatusInput(
        generation=2,
        spec=None,
        coverage=Coverage(),
        reports={},
        now=NOW + 10,
        invalid_message="spec.pollingInterval: 999 is invalid",
        previous=previous,
    )
    status = compute_status(data)
    assert status["nodes"] == previous["nodes"]
    assert status["observedGeneration"] == 2
    assert conditions(status)["Degraded"] == ("True", "InvalidSpec")


def test_transition_time_kept_while_status_unchanged() -> None:
    cover = Coverage(("n1",), ("n1",))
    reports = seen(report("n1", LACPState.UP, LACPState.UP))
    first = status_of(cover, reports)
    later = compute_status(
        StatusInput(
            generation=1, spec=SPEC, coverage=cover, reports=reports, now=NOW + 30, previous=first
        )
    )
    assert later == first


def test_next_stale_in() -> None:
    data = StatusInput(
        generation=1,
        spec=SPEC,
        coverage=Coverage(("n1",), ("n1",)),
        reports=seen(report("n1", LACPState.UP), age=30.0),
        now=NOW,
        report_timeout=90.0,
    )
    assert next_stale_in(data) == 60.0


def test_report_cache_keeps_newest_per_node() -> None:
    from api.report import ReportReason, build_event

    cache = ReportCache(clock=lambda: NOW)
    newer = report("n1", LACPState.DOWN, sequence=5)
    older = report("n1", LACPState.UP, sequence=4)
    assert cache.add_event(build_event(newer, ReportReason.STATE_REPORT, "state")) is not None
    assert cache.add_event(build_event(older, ReportReason.STATE_REPORT, "state")) is None
    kept = cache.for_monitor("uid")["n1"].report
    assert kept.sequence == 5
    assert kept.interfaces[0].lacp_state == LACPState.DOWN
    broken = build_event(newer, ReportReason.STATE_REPORT, "x")
    broken["metadata"]["annotations"]["pfstatusrelay.openshift.io/report"] = "{not json"
    assert cache.add_event(broken) is None
    assert cache.invalid_events == 1


def test_large_status_lists_problem_nodes_first() -> None:
    up, down = LACPState.UP, LACPState.DOWN
    names = [f"n{i:03d}" for i in range(100)]
    reports = [report(name, up, up) for name in names]
    reports[70] = report("n070", up, down)
    cover = Coverage(tuple(names), tuple(names))

    status = status_of(cover, seen(*reports), nodes_budget=10 * 1024)

    listed = [node["name"] for node in status["nodes"]]
    assert "n070" in listed
    assert 0 < len(listed) < 100
    assert listed == sorted(listed)
    assert status["nodesOmitted"] == 100 - len(listed)
    assert status["nodeCount"] == 100
    assert status["interfacesUp"] == 199
    assert status["interfacesDown"] == 1


def test_small_status_lists_every_node() -> None:
    up = LACPState.UP
    cover = Coverage(("n1", "n2"), ("n1", "n2"))

    status = status_of(cover, seen(report("n1", up, up), report("n2", up, up)))

    assert [node["name"] for node in status["nodes"]] == ["n1", "n2"]
    assert status["nodesOmitted"] == 0


def test_status_of_5000_nodes_fits_etcd() -> None:
    up = LACPState.UP
    names = [f"worker-{i:05d}.example.com" for i in range(5000)]
    cover = Coverage(tuple(names), tuple(names))

    status = status_of(cover, seen(*(report(name, up, up) for name in names)))

    size = len(json.dumps(status, separators=(",", ":")))
    assert size < 1024 * 1024
    assert status["nodeCount"] == 5000
    assert status["nodesOmitted"] == 5000 - len(status["nodes"])
