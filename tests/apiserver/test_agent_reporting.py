"""The agent's own reporting code against the real API server, read by the real controller.

Here the simulated agents are the agent's `Reporter` with its `KubeEventSink`, run as
the agent's ServiceAccount, so the agent's client code, its RBAC and the controller's
parsing meet for real. The agents' netlink side is replaced by fixed snapshots.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient

from api.report import ReportReason
from api.v1alpha1.types import InterfaceStatus, LACPState, VFCounts
from nodeagent.kube import KubeEventSink, KubeMonitorSource
from nodeagent.metrics import in_memory_metrics
from nodeagent.reporting import MonitorIdentity, Reporter
from tests.apiserver.test_controller_harness import (
    Cluster,
    condition,
    controller_settings,
    eventually,
    running,
)

pytestmark = pytest.mark.usefixtures("require_crds")
NODES = 20


def interfaces(ens5f0: LACPState) -> list[InterfaceStatus]:
    return [
        InterfaceStatus(
            name="ens5f0",
            lacp_state=ens5f0,
            reason="Negotiated" if ens5f0 == LACPState.UP else "PartnerExpired",
            bond="bond0",
            actor_state=0x3F,
            partner_state=0x3F if ens5f0 == LACPState.UP else 0x8F,
            vfs=VFCounts(total=5, managed=4, disabled=0 if ens5f0 == LACPState.UP else 4),
        ),
        InterfaceStatus(name="ens5f1", lacp_state=LACPState.UP, reason="Negotiated", bond="bond1"),
    ]


async def test_agent_reporters_build_status(
    cluster: Cluster, controller_api: ApiClient, agent_api: ApiClient
) -> None:
    key = f"pfsr-report-{cluster.prefix}"
    nodes = [f"{cluster.prefix}-w{i:02d}" for i in range(NODES)]
    await cluster.create_nodes(nodes, {key: "yes"})
    settings = controller_settings(deletion_timeout=60.0)

    async with running(settings, controller_api):
        created = await cluster.create_monitor("reported", {key: "yes"})
        metadata = created["metadata"]
        identity = MonitorIdentity(metadata["namespace"], metadata["name"], metadata["uid"])

        # The agent identity may read its monitor: the deletion watch depends on it.
        seen = await eventually(lambda: KubeMonitorSource(agent_api, identity).get())
        assert seen["metadata"]["uid"] == identity.uid

        states = dict.fromkeys(nodes, LACPState.UP)
        reporters = [
            Reporter(
                identity,
                node,
                KubeEventSink(agent_api),
                lambda node=node: interfaces(states[node]),
                in_memory_metrics(),
            )
            for node in nodes
        ]
        for reporter in reporters:
            reporter.notify(ReportReason.AGENT_STARTED, "agent started")
        sent = await asyncio.gather(*(reporter.send_pending() for reporter in reporters))
        assert sent == [True] * NODES

        async def ready() -> dict[str, Any] | None:
            monitor = await cluster.monitor("reported")
            status = (monitor or {}).get("status") or {}
            return status if condition(status, "Ready").get("status") == "True" else None

        status = await eventually(ready, within=30.0)
        assert status["interfacesUp"] == 2 * NODES
        assert [node["name"] for node in status["nodes"]] == sorted(nodes)

        broken = nodes[3]
        states[broken] = LACPState.DOWN
        reporters[3].notify(ReportReason.LACP_DOWN, "ens5f0: lacp is down (PartnerExpired)")
        assert await reporters[3].send_pending() is True

        async def down() -> dict[str, Any] | None:
            monitor = await cluster.monitor("reported")
            status = (monitor or {}).get("status") or {}
            return status if status.get("interfacesDown") == 1 else None

        status = await eventually(down)
        entry = next(node for node in status["nodes"] if node["name"] == broken)
        ens5f0 = entry["interfaces"][0]
        assert ens5f0["lacpState"] == "Down"
        assert ens5f0["reason"] == "PartnerExpired"
        assert ens5f0["partnerState"] == 0x8F
        assert ens5f0["vfs"] == {"total": 5, "managed": 4, "disabled": 4}
        assert condition(status, "Ready")["reason"] == "InterfacesDown"

        await cluster.delete_monitor("reported")
        deleting = await eventually(lambda: KubeMonitorSource(agent_api, identity).get())
        assert deleting["metadata"].get("deletionTimestamp")
        for reporter in reporters:
            reporter.restored = True
            reporter.notify(ReportReason.VFS_RESTORED, "vfs restored")
        sent = await asyncio.gather(*(reporter.send_pending() for reporter in reporters))
        assert sent == [True] * NODES

        # Well before the 60 s deletion timeout: the restored reports let it go.
        async def gone() -> bool:
            return await cluster.monitor("reported") is None

        await eventually(gone, within=20.0)
