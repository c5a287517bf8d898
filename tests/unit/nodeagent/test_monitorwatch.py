"""Monitor deletion: when the agent restores VFs, and only then."""

from __future__ import annotations

from typing import Any

import pytest

from api.agentconfig import FINALIZER_RESTORE_VFS
from nodeagent.monitorwatch import MonitorReadError, MonitorWatcher, deletion_cause
from nodeagent.reporting import MonitorIdentity

IDENTITY = MonitorIdentity("pfsr", "monitor-a", "uid-1")


def monitor(**metadata: Any) -> dict[str, Any]:
    return {"metadata": {"name": "monitor-a", "uid": "uid-1", **metadata}}


@pytest.mark.parametrize(
    ("obj", "restore"),
    [
        (monitor(), False),
        (monitor(deletionTimestamp="2025-01-01T00:00:00Z"), False),  # our finalizer gone
        (
            monitor(deletionTimestamp="2025-01-01T00:00:00Z", finalizers=[FINALIZER_RESTORE_VFS]),
            True,
        ),
        (monitor(finalizers=[FINALIZER_RESTORE_VFS]), False),
        (None, True),
        ({"metadata": {"name": "monitor-a", "uid": "uid-2"}}, True),
    ],
)
def test_deletion_cause(obj: dict[str, Any] | None, restore: bool) -> None:
    assert (deletion_cause(obj, IDENTITY) is not None) is restore


class Source:
    def __init__(self, results: list[dict[str, Any] | Exception | None]) -> None:
        self.results = results

    async def get(self) -> dict[str, Any] | None:
        item = self.results.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


async def test_watch_restores_once_and_retries() -> None:
    deleting = monitor(deletionTimestamp="x", finalizers=[FINALIZER_RESTORE_VFS], generation=3)
    source = Source([MonitorReadError("timeout"), monitor(generation=2), deleting, deleting])
    calls: list[str] = []
    outcomes = [False, True]
    generations: list[int] = []

    async def on_deleted(cause: str) -> bool:
        calls.append(cause)
        return outcomes.pop(0)

    watcher = MonitorWatcher(source, IDENTITY, on_deleted, generations.append, interval_s=0)
    await watcher.run()

    assert calls == ["monitor is being deleted", "monitor is being deleted"]
    assert watcher.done is True
    assert generations == [2, 3, 3]
