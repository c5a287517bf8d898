"""Which monitor covers which node: nodeSelector matching and conflict resolution.

A node may be covered by one monitor only, because two agents setting the link state
of the same VFs would fight. Matching follows a pod's ``nodeSelector`` exactly as the
scheduler applies it: a node matches when it carries every key of the selector with
exactly that value, and an empty selector matches every node.

When several monitors match a node, the OLDEST one keeps it: the one with the
earliest creationTimestamp, ties broken by namespace and then name. Age is stable,
so adding a monitor never takes nodes away from one that already works. Every other
monitor that matches the node loses it, and its status names the monitor that keeps it. The
decision is made per node, so a monitor can keep some nodes and lose others.
Every monitor takes part, including one whose spec is invalid (its DaemonSet is left
as it was, so it still occupies its nodes) and one being deleted (its agents run
until they have restored the VFs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

# Node names listed in a conflict message before the rest is only counted.
MAX_NAMED_NODES = 5


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Return True when ``labels`` carry every key of ``selector`` with the same value."""
    return all(key in labels and labels[key] == value for key, value in selector.items())


@dataclass(frozen=True, order=True)
class MonitorRef:
    """A monitor as conflict resolution sees it; ordering is age, oldest first."""

    created: str
    namespace: str
    name: str
    uid: str = field(compare=False)
    selector: tuple[tuple[str, str], ...] = field(compare=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_object(cls, monitor: JSON) -> MonitorRef:
        metadata = monitor.get("metadata") or {}
        selector = (monitor.get("spec") or {}).get("nodeSelector") or {}
        pairs = tuple(sorted((str(k), str(v)) for k, v in dict(selector).items()))
        return cls(
            # RFC 3339 timestamps in UTC with a "Z" suffix sort as strings.
            created=str(metadata.get("creationTimestamp") or ""),
            namespace=str(metadata.get("namespace") or ""),
            name=str(metadata.get("name") or ""),
            uid=str(metadata.get("uid") or ""),
            selector=pairs,
        )


@dataclass(frozen=True)
class Conflict:
    """Nodes a monitor matches but lost to ``holder``, an older monitor."""

    holder: str
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class Coverage:
    """Outcome of node selection for one monitor."""

    matched: tuple[str, ...] = ()
    covered: tuple[str, ...] = ()
    conflicts: tuple[Conflict, ...] = ()

    @property
    def lost(self) -> tuple[str, ...]:
        """Matched nodes held by another monitor, sorted."""
        return tuple(sorted(node for conflict in self.conflicts for node in conflict.nodes))

    def conflict_message(self) -> str:
        """Describe the conflicts for the monitor's status and Event."""
        parts = []
        for conflict in self.conflicts:
            parts.append(
                f"{describe_nodes(conflict.nodes)} already covered by the older monitor "
                f"{conflict.holder}"
            )
        return (
            "; ".join(parts)
            + ". A node may be covered by one monitor only: this monitor runs no agent on "
            "these nodes. Change its nodeSelector or the other monitor's so they do not overlap."
        )


def describe_nodes(nodes: Iterable[str]) -> str:
    """Name the first few nodes and count the rest, e.g. 'nodes a, b and 3 more are'."""
    names = sorted(nodes)
    shown = ", ".join(names[:MAX_NAMED_NODES])
    rest = len(names) - MAX_NAMED_NODES
    noun = "node" if len(names) == 1 else "nodes"
    verb = "is" if len(names) == 1 else "are"
    if rest > 0:
        return f"{len(names)} {noun} ({shown} and {rest} more) {verb}"
    return f"{noun} {shown} {verb}"


def node_labels(node: JSON) -> dict[str, str]:
    """Return a Node's labels."""
    return dict((node.get("metadata") or {}).get("labels") or {})


def node_name(node: JSON) -> str:
    return str((node.get("metadata") or {}).get("name") or "")


def resolve(monitors: Iterable[JSON], nodes: Iterable[JSON]) -> dict[str, Coverage]:
    """Decide, for every monitor key, the nodes it matches, covers and lost."""
    refs = sorted(MonitorRef.from_object(monitor) for monitor in monitors)
    labelled = [(node_name(node), node_labels(node)) for node in nodes]
    matched: dict[str, list[str]] = {ref.key: [] for ref in refs}
    holder: dict[str, str] = {}
    for ref in refs:
        selector = dict(ref.selector)
        for name, labels in labelled:
            if matches(selector, labels):
                matched[ref.key].append(name)
                holder.setdefault(name, ref.key)  # refs are oldest first
    result: dict[str, Coverage] = {}
    for ref in refs:
        covered = sorted(n for n in matched[ref.key] if holder[n] == ref.key)
        lost_by_holder: dict[str, list[str]] = {}
        for name in matched[ref.key]:
            if holder[name] != ref.key:
                lost_by_holder.setdefault(holder[name], []).append(name)
        conflicts = tuple(
            Conflict(other, tuple(sorted(names))) for other, names in sorted(lost_by_holder.items())
        )
        result[ref.key] = Coverage(tuple(sorted(matched[ref.key])), tuple(covered), conflicts)
    return result
