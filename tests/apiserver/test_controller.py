"""The controller against a real kube-apiserver: monitor lifecycle, DaemonSet contents,
node conflicts (field case C13), invalid specs and the restore-VFs finalizer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient

from api import agentconfig
from api.v1alpha1.types import LACPState
from tests.apiserver.test_controller_harness import (
    AGENT_IMAGE,
    Cluster,
    condition,
    controller_settings,
    eventually,
    running,
)

pytestmark = pytest.mark.usefixtures("require_crds")
UP, DOWN = LACPState.UP, LACPState.DOWN


def env_of(daemonset: dict[str, Any]) -> dict[str, Any]:
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


async def test_monitor_lifecycle(cluster: Cluster, controller_api: ApiClient) -> None:
    key = f"pfsr-test-{cluster.prefix}"
    nodes = [f"{cluster.prefix}-n1", f"{cluster.prefix}-n2"]
    await cluster.create_nodes(nodes, {key: "yes"})
    settings = controller_settings(deletion_timeout=20.0)
    async with running(settings, controller_api) as (controller, _):
        await cluster.create_monitor("lifecycle", {key: "yes"})

        async def awaiting() -> dict[str, Any] | None:
            monitor = await cluster.monitor("lifecycle")
            status = (monitor or {}).get("status") or {}
            return monitor if status.get("nodeCount") == 2 else None

        monitor = await eventually(awaiting)
        assert agentconfig.FINALIZER_RESTORE_VFS in monitor["metadata"]["finalizers"]
        assert condition(monitor["status"], "Progressing")["reason"] == "AwaitingReports"
        assert condition(monitor["status"], "Ready")["status"] == "False"

        daemonset = await eventually(lambda: cluster.daemonset("lifecycle"))
        pod = daemonset["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {key: "yes"}
        assert pod["containers"][0]["image"] == AGENT_IMAGE
        assert env_of(daemonset)[agentconfig.ENV_INTERFACES] == "ens5f0,ens5f1"
        assert env_of(daemonset)[agentconfig.ENV_MONITOR_UID] == monitor["metadata"]["uid"]

        for node in nodes:
            await cluster.report(monitor, node, [UP, UP])

        async def ready() -> dict[str, Any] | None:
            current = await cluster.monitor("lifecycle")
            return (
                current
                if condition((current or {}).get("status"), "Ready").get("status") == "True"
                else None
            )

        monitor = await eventually(ready)
        assert monitor["status"]["interfacesUp"] == 4
        assert monitor["status"]["observedGeneration"] == monitor["metadata"]["generation"]

        # A change outside the spec leaves the DaemonSet untouched.
        version = daemonset["metadata"]["resourceVersion"]
        writes = controller.telemetry.counts.daemonset_writes
        await cluster.patch_monitor("lifecycle", {"metadata": {"labels": {"touched": "yes"}}})
        await cluster.report(monitor, nodes[0], [UP, DOWN], sequence=2)
        await eventually(lambda: _status_field(cluster, "lifecycle", "interfacesDown", 1))
        unchanged = await cluster.daemonset("lifecycle")
        assert unchanged is not None
        assert unchanged["metadata"]["resourceVersion"] == version
        assert controller.telemetry.counts.daemonset_writes == writes

        # A spec change reaches the agents' environment.
        await cluster.patch_monitor("lifecycle", {"spec": {"pollingInterval": 2500}})

        async def updated() -> dict[str, Any] | None:
            current = await cluster.daemonset("lifecycle")
            env = env_of(current or {"spec": {"template": {"spec": {"containers": [{"env": []}]}}}})
            return current if env.get(agentconfig.ENV_POLLING_INTERVAL_MS) == "2500" else None

        await eventually(updated)

        # Deletion: the DaemonSet stays until every agent confirms restored VFs.
        await cluster.delete_monitor("lifecycle")

        async def restoring() -> dict[str, Any] | None:
            current = await cluster.monitor("lifecycle")
            reason = condition((current or {}).get("status"), "Progressing").get("reason")
            return current if reason == "RestoringVFs" else None

        monitor = await eventually(restoring)
        assert await cluster.daemonset("lifecycle") is not None
        await cluster.report(monitor, nodes[0], [UP, UP], sequence=10, restored=True)
        assert await cluster.daemonset("lifecycle") is not None
        await cluster.report(monitor, nodes[1], [UP, UP], sequence=10, restored=True)

        async def gone() -> bool:
            return (
                await cluster.monitor("lifecycle") is None
                and await cluster.daemonset("lifecycle") is None
            )

        await eventually(gone, within=10.0)


async def _status_field(cluster: Cluster, name: str, field: str, value: Any) -> bool:
    monitor = await cluster.monitor(name)
    return bool(monitor) and ((monitor or {}).get("status") or {}).get(field) == value


async def test_deletion_gives_up_after_timeout(cluster: Cluster, controller_api: ApiClient) -> None:
    key = f"pfsr-test-{cluster.prefix}"
    node = f"{cluster.prefix}-quiet"
    await cluster.create_nodes([node], {key: "yes"})
    async with running(controller_settings(deletion_timeout=2.0), controller_api):
        await cluster.create_monitor("quiet", {key: "yes"})
        monitor = await eventually(lambda: _with_finalizer(cluster, "quiet"))
        await cluster.report(monitor, node, [UP, UP])
        await eventually(lambda: cluster.daemonset("quiet"))
        await cluster.delete_monitor("quiet")

        async def gone() -> bool:
            return await cluster.monitor("quiet") is None

        await eventually(gone, within=10.0)
        assert await cluster.daemonset("quiet") is None
        unconfirmed = await cluster.events("RestoreUnconfirmed")
        assert node in unconfirmed[0]["note"]


async def _with_finalizer(cluster: Cluster, name: str) -> dict[str, Any] | None:
    monitor = await cluster.monitor(name)
    finalizers = ((monitor or {}).get("metadata") or {}).get("finalizers") or []
    return monitor if agentconfig.FINALIZER_RESTORE_VFS in finalizers else None


async def test_node_conflict_and_recovery(cluster: Cluster, controller_api: ApiClient) -> None:
    """Field case C13: {zone: a} and {rack: r1} both match a node with both labels."""
    zone, rack = f"zone-{cluster.prefix}", f"rack-{cluster.prefix}"
    both, rack_only = f"{cluster.prefix}-both", f"{cluster.prefix}-rack"
    await cluster.create_nodes([both], {zone: "a", rack: "r1"})
    await cluster.create_nodes([rack_only], {rack: "r1"})
    async with running(controller_settings(), controller_api):
        await cluster.create_monitor("older", {zone: "a"})
        await eventually(lambda: _status_field(cluster, "older", "nodeCount", 1))
        # creationTimestamp has one-second resolution and ties go by name ("newer" sorts
        # first), so the second monitor must be created in a later second.
        await asyncio.sleep(1.1)
        await cluster.create_monitor("newer", {rack: "r1"})

        async def degraded() -> dict[str, Any] | None:
            current = await cluster.monitor("newer")
            found = condition((current or {}).get("status"), "Degraded")
            return current if found.get("reason") == "NodeConflict" else None

        newer = await eventually(degraded)
        message = condition(newer["status"], "Degraded")["message"]
        assert both in message
        assert f"{cluster.namespace}/older" in message
        assert newer["status"]["nodeCount"] == 1
        assert [n["name"] for n in newer["status"]["nodes"]] == [rack_only]
        older = await cluster.monitor("older")
        assert older is not None
        assert condition(older["status"], "Degraded")["status"] == "False"
        assert [n["name"] for n in older["status"]["nodes"]] == [both]

        daemonset = await eventually(lambda: cluster.daemonset("newer"))
        terms = daemonset["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert terms[0]["matchFields"][0]["values"] == [both]
        conflict_events = await eventually(lambda: cluster.events("NodeConflict"))
        assert both in conflict_events[0]["note"]
        assert conflict_events[0]["reportingController"] == "pfstatusrelay.openshift.io/controller"

        # Relabel: the shared node leaves zone a, the newer monitor recovers on its own.
        await cluster.label_node(both, {zone: None})

        async def recovered() -> dict[str, Any] | None:
            current = await cluster.monitor("newer")
            found = condition((current or {}).get("status"), "Degraded")
            return current if found.get("status") == "False" else None

        newer = await eventually(recovered)
        assert newer["status"]["nodeCount"] == 2

        async def no_exclusion() -> bool:
            current = await cluster.daemonset("newer")
            return current is not None and "affinity" not in current["spec"]["template"]["spec"]

        await eventually(no_exclusion)
        await eventually(lambda: _condition_reason(cluster, "older", "Ready", "NoMatchingNodes"))


async def _condition_reason(cluster: Cluster, name: str, kind: str, reason: str) -> bool:
    monitor = await cluster.monitor(name)
    return condition((monitor or {}).get("status"), kind).get("reason") == reason


async def test_schema_rejects_polling_interval_999(cluster: Cluster) -> None:
    """Field case C13, second half: the CRD schema rejects the value at apply time."""
    from controller.kube import APIError

    with pytest.raises(APIError) as caught:
        await cluster.create_monitor("fast", {}, pollingInterval=999)
    assert caught.value.status == 422
    assert "spec.pollingInterval" in caught.value.message


async def test_invalid_selector_degrades_only_that_monitor(
    cluster: Cluster, controller_api: ApiClient
) -> None:
    key = f"pfsr-test-{cluster.prefix}"
    await cluster.create_nodes([f"{cluster.prefix}-ok"], {key: "yes"})
    async with running(controller_settings(), controller_api):
        await cluster.create_monitor("good", {key: "yes"})
        await eventually(lambda: cluster.daemonset("good"))
        await cluster.create_monitor("bad", {key: "not a label value!"})
        await eventually(lambda: _condition_reason(cluster, "bad", "Degraded", "InvalidSpec"))
        bad = await cluster.monitor("bad")
        assert bad is not None
        message = condition(bad["status"], "Degraded")["message"]
        assert "not a label value!" in message
        assert "spec.nodeSelector" in message
        assert await cluster.daemonset("bad") is None
        good = await cluster.monitor("good")
        assert good is not None
        assert condition(good["status"], "Degraded")["status"] == "False"
        assert (await cluster.events("InvalidSpec"))[0]["regarding"]["name"] == "bad"
