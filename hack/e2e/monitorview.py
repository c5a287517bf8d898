"""What the scenario reads from the API server: the monitor's status and the agents' Events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.v1alpha1.types import GROUP, PLURAL, VERSION
from hack.e2e.guestkube import KubeReader


@dataclass(frozen=True)
class InterfaceView:
    """One PF as the monitor's status shows it for one node."""

    name: str
    lacp_state: str
    reason: str
    vfs_total: int
    vfs_disabled: int

    def __str__(self) -> str:
        return (
            f"{self.name} {self.lacp_state} ({self.reason or 'no reason'}), "
            f"VFs {self.vfs_total} total, {self.vfs_disabled} disabled"
        )


class MonitorView:
    """Reads one PFLACPMonitor and the Events of its namespace."""

    def __init__(self, reader: KubeReader, namespace: str, name: str, node: str) -> None:
        self.reader = reader
        self.namespace = namespace
        self.name = name
        self.node = node

    def get(self) -> dict[str, Any]:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{PLURAL}/{self.name}"
        monitor: dict[str, Any] = self.reader.get_json(path)
        return monitor

    @staticmethod
    def ready(monitor: dict[str, Any]) -> str:
        """Return the status of the Ready condition, or '' when there is none yet."""
        for condition in (monitor.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Ready":
                return str(condition.get("status", ""))
        return ""

    def interfaces(self, monitor: dict[str, Any]) -> dict[str, InterfaceView]:
        """Return this node's PFs from the status, by name."""
        for node in (monitor.get("status") or {}).get("nodes") or []:
            if node.get("name") != self.node:
                continue
            views = {}
            for entry in node.get("interfaces") or []:
                vfs = entry.get("vfs") or {}
                views[entry["name"]] = InterfaceView(
                    name=entry["name"],
                    lacp_state=str(entry.get("lacpState", "")),
                    reason=str(entry.get("reason", "")),
                    vfs_total=int(vfs.get("total", 0)),
                    vfs_disabled=int(vfs.get("disabled", 0)),
                )
            return views
        return {}

    def event_count(self, reason: str) -> int:
        """Return how many Events with ``reason`` regard this monitor."""
        events = self.reader.get_json(
            f"/api/v1/namespaces/{self.namespace}/events",
            {
                "fieldSelector": f"reason={reason},involvedObject.name={self.name}",
            },
        )
        return len(events.get("items") or [])

    def kubectl_monitor(self) -> str:
        return self.reader.kubectl("get", "pflm", "-n", self.namespace)

    def kubectl_events(self, reason: str) -> str:
        return self.reader.kubectl(
            "get", "events", "-n", self.namespace, f"--field-selector=reason={reason}"
        )
