"""The status of a monitor, computed from node selection and the agents' newest reports.

The controller owns the whole status and rebuilds it from its caches on every
reconcile, so a write that lost a conflict is simply computed and sent again, and no
node's entry depends on an earlier write having landed.

Per node the status shows each interface of the spec: as the agent last reported it,
or Unknown when the agent has not reported yet (reason AwaitingReport) or has been
quiet longer than the report timeout (agentReachable false, reason AgentUnreachable).
The default timeout is 90 s: three times the agent's periodic report interval of
30 s, so one or two lost reports do not flap the status.

Conditions:
- Ready: True only when every covered node's agent reports every interface Up.
  False with NoMatchingNodes, NodeConflict, InvalidSpec, Deleting, AgentsNotReporting,
  InterfacesDown or InterfacesUnknown.
- Degraded: True when the controller or its agents cannot do their job: InvalidSpec,
  NodeConflict, AgentsUnreachable. LACP being down on a link is not Degraded: the
  product then works as intended, and Ready reports it.
- Progressing: True while agents have yet to report (AwaitingReports), run an older
  generation of the spec (RollingOut) or restore VFs before deletion (RestoringVFs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api.v1alpha1.types import (
    ConditionStatus,
    InterfaceStatus,
    LACPState,
    NodeStatus,
    PFLACPMonitorSpec,
)
from controller.reports import SeenReport
from controller.selection import Coverage, describe_nodes

JSON = dict[str, Any]

DEFAULT_REPORT_TIMEOUT = 90.0
READY = "Ready"
DEGRADED = "Degraded"
PROGRESSING = "Progressing"
MAX_NAMED_ITEMS = 5
# Bytes of JSON the node list may take. etcd rejects objects over 1.5 MiB by default
# (--max-request-bytes), and the API server stores managedFields, metadata and spec
# beside the status, so the node list keeps well under a third of that. At about
# 950 bytes per node with two interfaces, this lists every node up to about 550.
DEFAULT_NODES_BUDGET = 512 * 1024


@dataclass(frozen=True)
class StatusInput:
    """Everything the status depends on; ``now`` is wall-clock seconds."""

    generation: int
    spec: PFLACPMonitorSpec | None
    coverage: Coverage
    reports: Mapping[str, SeenReport]
    now: float
    report_timeout: float = DEFAULT_REPORT_TIMEOUT
    invalid_message: str = ""
    deleting: bool = False
    previous: Mapping[str, Any] | None = None
    nodes_budget: int = DEFAULT_NODES_BUDGET


@dataclass(frozen=True)
class _Condition:
    type: str
    status: ConditionStatus
    reason: str
    message: str


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).isoformat().replace("+00:00", "Z")


def _unknown(name: str, reason: str, message: str) -> InterfaceStatus:
    return InterfaceStatus(name=name, lacp_state=LACPState.UNKNOWN, reason=reason, message=message)


def node_status(
    node: str, interfaces: Sequence[str], seen: SeenReport | None, now: float, timeout: float
) -> NodeStatus:
    """Build one node's entry from its newest report, or Unknown entries without one."""
    if seen is None:
        message = "the agent on this node has not reported yet"
        return NodeStatus(
            name=node,
            agent_reachable=False,
            interfaces=[_unknown(i, "AwaitingReport", message) for i in interfaces],
        )
    report = seen.report
    quiet = now - seen.seen_at
    if quiet > timeout:
        message = (
            f"no report from the agent for {int(quiet)} s (limit {int(timeout)} s); "
            "check the agent pod on this node"
        )
        return NodeStatus(
            name=node,
            last_report_time=report.observed_at,
            agent_reachable=False,
            interfaces=[_unknown(i, "AgentUnreachable", message) for i in interfaces],
        )
    reported = {entry.name: entry for entry in report.interfaces}
    entries = [
        reported.get(i) or _unknown(i, "NotReported", "the agent's report has no entry for it")
        for i in interfaces
    ]
    return NodeStatus(name=node, last_report_time=report.observed_at, interfaces=entries)


def _ready(data: StatusInput, nodes: Sequence[NodeStatus]) -> _Condition:
    false = ConditionStatus.FALSE
    if data.invalid_message:
        return _Condition(READY, false, "InvalidSpec", data.invalid_message)
    if data.deleting:
        return _Condition(READY, false, "Deleting", "the monitor is being deleted")
    if not data.coverage.matched:
        selector = dict(data.spec.node_selector) if data.spec else {}
        return _Condition(
            READY,
            false,
            "NoMatchingNodes",
            f"no node carries every label of nodeSelector {selector}; "
            "label the nodes to monitor or change the nodeSelector",
        )
    if not data.coverage.covered:
        return _Condition(READY, false, "NodeConflict", data.coverage.conflict_message())
    silent = [n.name for n in nodes if not n.agent_reachable]
    if silent:
        return _Condition(
            READY, false, "AgentsNotReporting", f"{describe_nodes(silent)} without a current report"
        )
    down = [f"{n.name}/{i.name}" for n in nodes for i in n.interfaces if i.lacp_state == "Down"]
    if down:
        return _Condition(READY, false, "InterfacesDown", f"LACP is down on {_few(down)}")
    unknown = [
        f"{n.name}/{i.name}" for n in nodes for i in n.interfaces if i.lacp_state == "Unknown"
    ]
    if unknown:
        return _Condition(READY, false, "InterfacesUnknown", f"LACP is unknown on {_few(unknown)}")
    count = sum(len(n.interfaces) for n in nodes)
    return _Condition(
        READY,
        ConditionStatus.TRUE,
        "AllInterfacesUp",
        f"LACP is up on all {count} interfaces of {len(nodes)} nodes",
    )


def _few(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_NAMED_ITEMS])
    rest = len(items) - MAX_NAMED_ITEMS
    return f"{shown} and {rest} more" if rest > 0 else shown


def _degraded(data: StatusInput, nodes: Sequence[NodeStatus]) -> _Condition:
    true = ConditionStatus.TRUE
    if data.invalid_message:
        return _Condition(DEGRADED, true, "InvalidSpec", data.invalid_message)
    if data.coverage.conflicts:
        return _Condition(DEGRADED, true, "NodeConflict", data.coverage.conflict_message())
    unreachable = [n.name for n in nodes if not n.agent_reachable and n.last_report_time]
    if unreachable:
        return _Condition(
            DEGRADED,
            true,
            "AgentsUnreachable",
            f"the agents on {describe_nodes(unreachable)} quiet for more than "
            f"{int(data.report_timeout)} s",
        )
    return _Condition(DEGRADED, ConditionStatus.FALSE, "AsExpected", "")


def _progressing(data: StatusInput, nodes: Sequence[NodeStatus]) -> _Condition:
    true = ConditionStatus.TRUE
    if data.deleting:
        return _Condition(
            PROGRESSING,
            true,
            "RestoringVFs",
            "waiting for the agents to put the VFs they disabled back to auto",
        )
    waiting = [n.name for n in nodes if n.last_report_time is None]
    if waiting:
        return _Condition(
            PROGRESSING, true, "AwaitingReports", f"{describe_nodes(waiting)} awaiting a report"
        )
    older = [
        name
        for name, seen in data.reports.items()
        if name in data.coverage.covered and 0 < seen.report.monitor_generation < data.generation
    ]
    if older:
        return _Condition(
            PROGRESSING,
            true,
            "RollingOut",
            f"the agents on {describe_nodes(older)} still on an older generation of the spec",
        )
    return _Condition(PROGRESSING, ConditionStatus.FALSE, "Complete", "")


def _conditions(data: StatusInput, found: list[_Condition]) -> list[JSON]:
    previous = {c.get("type"): c for c in (data.previous or {}).get("conditions") or []}
    result = []
    for condition in found:
        before = previous.get(condition.type)
        if before is None or before.get("status") != condition.status.value:
            since = _timestamp(data.now)
        else:
            since = str(before.get("lastTransitionTime"))
        result.append(
            {
                "type": condition.type,
                "status": condition.status.value,
                "reason": condition.reason,
                "message": condition.message,
                "lastTransitionTime": since,
                "observedGeneration": data.generation,
            }
        )
    return result


def compute_status(data: StatusInput) -> JSON:
    """Return the monitor's status as JSON, ready for the status subresource."""
    if data.spec is None:
        # Invalid spec: keep the last known node entries, change only the conditions.
        status = dict(data.previous or {})
        nodes = [NodeStatus.model_validate(n) for n in status.get("nodes") or []]
    else:
        nodes = [
            node_status(
                name,
                data.spec.interfaces,
                data.reports.get(name),
                data.now,
                data.report_timeout,
            )
            for name in data.coverage.covered
        ]
        listed = fit_nodes(nodes, data.nodes_budget)
        status = {
            "nodeCount": len(nodes),
            "interfacesUp": _count(nodes, LACPState.UP),
            "interfacesDown": _count(nodes, LACPState.DOWN),
            "interfacesUnknown": _count(nodes, LACPState.UNKNOWN),
            "nodesOmitted": len(nodes) - len(listed),
            "nodes": listed,
        }
    found = [_ready(data, nodes), _degraded(data, nodes), _progressing(data, nodes)]
    status["observedGeneration"] = data.generation
    status["conditions"] = _conditions(data, found)
    return status


def fit_nodes(nodes: Sequence[NodeStatus], budget: int) -> list[JSON]:
    """Return the JSON entries of ``nodes`` that fit in ``budget`` bytes, in name order.

    Nodes that need attention (an interface not Up, or an agent not reporting) are
    taken first, so a large healthy cluster drops healthy nodes from the list, never
    the broken ones.
    """

    def healthy(node: NodeStatus) -> bool:
        return node.agent_reachable and all(i.lacp_state == LACPState.UP for i in node.interfaces)

    ordered = sorted(nodes, key=lambda node: (healthy(node), node.name))
    listed: list[JSON] = []
    used = 0
    for node in ordered:
        entry = node.model_dump(mode="json", by_alias=True, exclude_none=True)
        size = len(json.dumps(entry, separators=(",", ":")))
        if used + size > budget:
            break
        listed.append(entry)
        used += size
    return sorted(listed, key=lambda entry: str(entry["name"]))


def _count(nodes: Sequence[NodeStatus], state: LACPState) -> int:
    return sum(1 for n in nodes for i in n.interfaces if i.lacp_state == state)


def next_stale_in(data: StatusInput) -> float | None:
    """Return seconds until the next covered node's report goes stale, if any will."""
    due = [
        seen.seen_at + data.report_timeout - data.now
        for name, seen in data.reports.items()
        if name in data.coverage.covered and seen.seen_at + data.report_timeout > data.now
    ]
    return min(due) if due else None
