"""A controller limited to one namespace (OLM's OwnNamespace install mode) leaves others alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient

from api import agentconfig
from hack.testbed.apiserver import APIServer
from tests.apiserver.test_controller_harness import (
    Cluster,
    controller_settings,
    eventually,
    running,
)

pytestmark = pytest.mark.usefixtures("require_crds")


@pytest.fixture
async def clusters(
    apiserver: APIServer, admin_api: ApiClient, agent_api: ApiClient, namespace: str
) -> AsyncIterator[tuple[Cluster, Cluster]]:
    other = f"test-{uuid.uuid4().hex[:10]}"
    apiserver.kubectl("create", "namespace", other, check=True)
    watched, ignored = (
        Cluster(admin_api, agent_api, namespace),
        Cluster(admin_api, agent_api, other),
    )
    yield watched, ignored
    await watched.remove_all_monitors()
    await ignored.remove_all_monitors()
    apiserver.kubectl("delete", "namespace", other, "--wait=false")


async def test_watch_namespace_limits_monitors(
    clusters: tuple[Cluster, Cluster], controller_api: ApiClient
) -> None:
    watched, ignored = clusters
    key = f"pfsr-watch-{watched.prefix}"
    await watched.create_nodes([f"{watched.prefix}-a"], {key: "a"})
    await ignored.create_nodes([f"{ignored.prefix}-b"], {key: "b"})
    settings = controller_settings(watch_namespace=watched.namespace)

    async with running(settings, controller_api):
        await ignored.create_monitor("elsewhere", {key: "b"})
        await watched.create_monitor("here", {key: "a"})

        async def served() -> dict[str, Any] | None:
            monitor = await watched.monitor("here")
            return monitor if ((monitor or {}).get("status") or {}).get("nodeCount") else None

        await eventually(served)
        await eventually(lambda: watched.daemonset("here"))
        # The watched monitor was reconciled; give the other the same time again.
        await asyncio.sleep(2.0)
        elsewhere = await ignored.monitor("elsewhere")

    assert elsewhere is not None
    assert "status" not in elsewhere
    assert agentconfig.FINALIZER_RESTORE_VFS not in (elsewhere["metadata"].get("finalizers") or [])
    assert await ignored.daemonset("elsewhere") is None
