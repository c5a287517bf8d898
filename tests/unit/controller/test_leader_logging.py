"""Lease acquisition errors reach the log as warnings, not only at DEBUG."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from controller.kube import APIError, NotFoundError, WriteFence
from controller.leader import LeaderElector, LeaderSettings


class _ForbiddenThenFree:
    """A client whose Lease reads fail with 403 a number of times, then find no Lease."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.created: list[dict[str, Any]] = []

    async def request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise APIError(403, "Forbidden", 'leases.coordination.k8s.io is forbidden in "x"')
        if method == "GET":
            raise NotFoundError(404, "NotFound", "no lease")
        self.created.append(body)
        return {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}


async def test_forbidden_lease_logged_as_warning(caplog: pytest.LogCaptureFixture) -> None:
    client = _ForbiddenThenFree(failures=12)
    sleeps: list[float] = []

    async def no_wait(seconds: float) -> None:
        sleeps.append(seconds)

    fence = WriteFence(open_=False)
    elector = LeaderElector(
        client,
        LeaderSettings(namespace="x", identity="me", retry_period=2.0),
        fence,
        sleep=no_wait,
    )

    with caplog.at_level(logging.DEBUG, logger="controller.leader"):
        await elector.acquire()

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "forbidden" in warnings[0].getMessage()
    assert len(sleeps) == 12
    assert elector.is_leader
    assert len(client.created) == 1
