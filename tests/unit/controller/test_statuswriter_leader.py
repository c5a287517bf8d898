"""Status conflict retry with the same computed status, and leader election on a fake Lease API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from controller.kube import ConflictError, NotFoundError, WriteFence
from controller.leader import LeaderElector, LeaderSettings, LeadershipLostError
from controller.metrics import Telemetry
from controller.statuswriter import StatusWriter

LOG = logging.LoggerAdapter(logging.getLogger("test"), {})


class ScriptedClient:
    """Return the scripted (method, result) pairs in order; a result may be an exception."""

    def __init__(self, script: list[tuple[str, Any]]) -> None:
        self.script = script
        self.sent: list[tuple[str, str, Any]] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        self.sent.append((method, path, body))
        expected, result = self.script.pop(0)
        assert method == expected, (method, path)
        if isinstance(result, BaseException):
            raise result
        return dict(result)

    def stream(
        self, path: str, query: Mapping[str, str], read_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        raise AssertionError("no watch expected")


def monitor(rv: str, uid: str = "u1") -> dict[str, Any]:
    return {"metadata": {"name": "m", "namespace": "ns", "uid": uid, "resourceVersion": rv}}


def conflict() -> ConflictError:
    return ConflictError(409, "Conflict", "the object has been modified")


async def test_status_conflict_resent_with_fresh_version() -> None:
    status = {"nodeCount": 50, "nodes": [{"name": f"n{i}"} for i in range(50)]}
    client = ScriptedClient([("PUT", conflict()), ("GET", monitor("7")), ("PUT", monitor("8"))])
    writer = StatusWriter(client, Telemetry())
    assert await writer.write(monitor("5"), status, LOG) is True
    first, second = client.sent[0][2], client.sent[2][2]
    assert first["metadata"]["resourceVersion"] == "5"
    assert second["metadata"]["resourceVersion"] == "7"
    assert second["status"] == status
    assert len(second["status"]["nodes"]) == 50


async def test_status_written_once_until_cache_moves() -> None:
    status = {"nodeCount": 1}
    client = ScriptedClient([("PUT", monitor("6"))])
    writer = StatusWriter(client, Telemetry())
    await writer.write(monitor("5"), status, LOG)
    # The informer cache is still at version 5: the same status is not written again.
    assert writer.is_current(monitor("5"), status)
    assert not writer.is_current(monitor("9"), status)


async def test_status_write_gives_up_after_attempts() -> None:
    script: list[tuple[str, Any]] = []
    for version in range(3):
        script += [("PUT", conflict()), ("GET", monitor(str(version)))]
    writer = StatusWriter(ScriptedClient(script), Telemetry(), attempts=3)
    with pytest.raises(ConflictError):
        await writer.write(monitor("1"), {}, LOG)


async def test_status_write_stops_when_monitor_replaced() -> None:
    client = ScriptedClient([("PUT", conflict()), ("GET", monitor("9", uid="other"))])
    assert await StatusWriter(client, Telemetry()).write(monitor("1"), {}, LOG) is False


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def lease(holder: str, rv: str, renew: str = "t0") -> dict[str, Any]:
    return {
        "metadata": {
            "name": "pf-status-relay-controller",
            "namespace": "ns",
            "resourceVersion": rv,
        },
        "spec": {"holderIdentity": holder, "renewTime": renew, "leaseDurationSeconds": 15},
    }


def elector(client: ScriptedClient, clock: FakeClock, fence: WriteFence) -> LeaderElector:
    settings = LeaderSettings(namespace="ns", identity="me")
    return LeaderElector(client, settings, fence, clock=clock, sleep=clock.sleep)


async def test_creates_missing_lease_and_opens_fence() -> None:
    clock, fence = FakeClock(), WriteFence(open_=False)
    client = ScriptedClient(
        [("GET", NotFoundError(404, "NotFound", "")), ("POST", lease("me", "1"))]
    )
    candidate = elector(client, clock, fence)
    await candidate.acquire()
    assert candidate.is_leader
    assert fence.is_open
    assert client.sent[1][2]["spec"]["holderIdentity"] == "me"


async def test_takes_lease_only_after_it_expires_locally() -> None:
    clock, fence = FakeClock(), WriteFence(open_=False)
    held = lease("other", "5")
    script: list[tuple[str, Any]] = [("GET", held) for _ in range(8)]
    script += [("GET", held), ("PUT", lease("me", "6"))]
    client = ScriptedClient(script)
    candidate = elector(client, clock, fence)
    await candidate.acquire()
    # Retries every 2 s; the unchanged record counts as expired after more than 15 s.
    assert clock.now == 16.0
    taken = client.sent[-1][2]["spec"]
    assert taken["holderIdentity"] == "me"
    assert taken["leaseTransitions"] == 1


async def test_renewal_failure_closes_fence_and_raises() -> None:
    clock, fence = FakeClock(), WriteFence(open_=True)
    script: list[tuple[str, Any]] = [("GET", lease("me", "1")), ("PUT", lease("me", "2"))]
    script += [("GET", ConflictError(500, "", "etcd down")) for _ in range(10)]
    candidate = elector(ScriptedClient(script), clock, fence)
    candidate.is_leader = True
    with pytest.raises(LeadershipLostError):
        await candidate.hold()
    assert not fence.is_open
    assert not candidate.is_leader
    # Renewed at 2 s; lost once 10 s passed without renewal, before the 15 s lease ran out.
    assert clock.now == 14.0


def test_settings_reject_deadline_longer_than_lease() -> None:
    with pytest.raises(ValueError, match="lease duration > renew deadline"):
        LeaderSettings(namespace="ns", identity="me", lease_duration=10, renew_deadline=10)
