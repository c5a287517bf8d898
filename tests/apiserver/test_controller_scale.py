"""Many agents reporting at once: every node reaches the status (field case C12), status
writes retried on conflicts lose no entry, and reports are coalesced into few writes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient

from api.v1alpha1.types import LACPState
from tests.apiserver.test_controller_harness import (
    Cluster,
    controller_settings,
    eventually,
    gather_limited,
    running,
)

pytestmark = pytest.mark.usefixtures("require_crds")
LOG = logging.getLogger(__name__)
UP = LACPState.UP


async def _monitor_with(
    cluster: Cluster, name: str, field: str, value: int
) -> dict[str, Any] | None:
    monitor = await cluster.monitor(name)
    status = (monitor or {}).get("status") or {}
    return monitor if status.get(field) == value else None


async def test_fifty_agents_report_at_once(cluster: Cluster, controller_api: ApiClient) -> None:
    """Field case C12, with the monitor changed concurrently so status writes conflict."""
    key = f"pfsr-test-{cluster.prefix}"
    nodes = [f"{cluster.prefix}-w{i:02d}" for i in range(50)]
    await cluster.create_nodes(nodes, {key: "yes"})
    async with running(controller_settings(coalesce_delay=0.2), controller_api) as (controller, _):
        await cluster.create_monitor("fifty", {key: "yes"})
        monitor = await eventually(lambda: _monitor_with(cluster, "fifty", "nodeCount", 50))

        async def churn() -> None:
            # Label changes bump the resourceVersion under the controller's status writes.
            for i in range(1000):
                await cluster.patch_monitor("fifty", {"metadata": {"labels": {"churn": str(i)}}})
                await asyncio.sleep(0.02)

        churner = asyncio.create_task(churn())
        try:
            await asyncio.gather(*(cluster.report(monitor, node, [UP, UP]) for node in nodes))
            monitor = await eventually(
                lambda: _monitor_with(cluster, "fifty", "interfacesUp", 100), within=20.0
            )
        finally:
            churner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await churner
        entries = {n["name"]: n for n in monitor["status"]["nodes"]}
        assert sorted(entries) == nodes
        for node in nodes:
            assert entries[node]["agentReachable"] is True
            assert [i["lacpState"] for i in entries[node]["interfaces"]] == ["Up", "Up"]
        LOG.info(
            "fifty agents: %d status writes, %d conflicts retried",
            controller.telemetry.counts.status_writes,
            controller.telemetry.counts.status_conflicts,
        )


async def test_two_hundred_nodes_within_five_seconds(
    cluster: Cluster, controller_api: ApiClient
) -> None:
    key = f"pfsr-test-{cluster.prefix}"
    nodes = [f"{cluster.prefix}-h{i:03d}" for i in range(200)]
    await cluster.create_nodes(nodes, {key: "yes"})
    async with running(controller_settings(), controller_api) as (controller, _):
        await cluster.create_monitor("many", {key: "yes"})
        monitor = await eventually(lambda: _monitor_with(cluster, "many", "nodeCount", 200))
        await asyncio.sleep(1.0)  # let the controller settle after the first status writes
        writes_before = controller.telemetry.counts.status_writes
        started = time.monotonic()
        await gather_limited([cluster.report(monitor, node, [UP, UP]) for node in nodes], 50)
        posted = time.monotonic() - started
        monitor = await eventually(
            lambda: _monitor_with(cluster, "many", "interfacesUp", 400), within=10.0, interval=0.05
        )
        latency = time.monotonic() - started
        writes = controller.telemetry.counts.status_writes - writes_before
        LOG.info(
            "200 nodes: reports posted in %.2f s, status complete after %.2f s, %d status writes",
            posted,
            latency,
            writes,
        )
        print(f"200 nodes: posted {posted:.2f} s, complete {latency:.2f} s, {writes} writes")
        assert len(monitor["status"]["nodes"]) == 200
        assert latency < 5.0
        assert writes <= 6
