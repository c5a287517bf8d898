"""The restore-VFs finalizer: added on first reconcile, removed once agents restored VFs.

While a monitor with the finalizer is being deleted, its DaemonSet keeps running so
every agent sees the deletionTimestamp, puts the VFs it disabled back to auto and
reports ``restored=True``. The controller waits for that report from every node whose
agent has reported for this monitor, at most ``deletion_timeout`` seconds counted
from the moment the controller first saw the deletion; then it deletes the
DaemonSet and removes the finalizer, naming the nodes that did not confirm.

Finalizers are changed with JSON patches that test the list first, so a concurrent
change to the list fails the patch (422) instead of being overwritten.
"""

from __future__ import annotations

from typing import Any

from api.agentconfig import FINALIZER_RESTORE_VFS
from controller.kube import JSON_PATCH, APIError, Client, ConflictError
from controller.reports import SeenReport
from controller.resources import MONITORS

JSON = dict[str, Any]


def finalizers(monitor: JSON) -> list[str]:
    return list((monitor.get("metadata") or {}).get("finalizers") or [])


def has_finalizer(monitor: JSON) -> bool:
    return FINALIZER_RESTORE_VFS in finalizers(monitor)


def _monitor_path(monitor: JSON) -> str:
    metadata = monitor.get("metadata") or {}
    return MONITORS.path(str(metadata["namespace"]), str(metadata["name"]))


async def _patch(client: Client, monitor: JSON, operations: list[JSON]) -> None:
    try:
        await client.request(
            "PATCH", _monitor_path(monitor), body=operations, content_type=JSON_PATCH
        )
    except APIError as error:
        if error.status == 422 and "test" in error.message:
            # The finalizer list changed since it was read.
            raise ConflictError(409, "Conflict", error.message) from error
        raise


async def add_finalizer(client: Client, monitor: JSON) -> None:
    """Append the restore-VFs finalizer to the monitor's finalizer list."""
    current = finalizers(monitor)
    operations: list[JSON]
    if current:
        operations = [
            {"op": "test", "path": "/metadata/finalizers", "value": current},
            {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER_RESTORE_VFS},
        ]
    else:
        operations = [
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER_RESTORE_VFS]}
        ]
    await _patch(client, monitor, operations)


async def remove_finalizer(client: Client, monitor: JSON) -> None:
    """Remove the restore-VFs finalizer from the monitor's finalizer list."""
    current = finalizers(monitor)
    if FINALIZER_RESTORE_VFS not in current:
        return
    index = current.index(FINALIZER_RESTORE_VFS)
    operations: list[JSON] = [
        {"op": "test", "path": "/metadata/finalizers", "value": current},
        {"op": "remove", "path": f"/metadata/finalizers/{index}"},
    ]
    await _patch(client, monitor, operations)


def unconfirmed_nodes(reports: dict[str, SeenReport]) -> list[str]:
    """Return the nodes whose agent reported for the monitor but has not confirmed restore."""
    return sorted(node for node, seen in reports.items() if not seen.report.restored)
