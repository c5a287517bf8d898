"""Probe and metrics endpoints on loopback: /readyz follows informer sync, /metrics
serves the OpenTelemetry instruments in the Prometheus format."""

from __future__ import annotations

import aiohttp
import pytest

from controller.health import health_server, metrics_server, parse_bind_address
from controller.metrics import Telemetry


async def get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


async def test_readyz_follows_sync() -> None:
    synced = False
    server = health_server(("127.0.0.1", 0), lambda: synced)
    await server.start()
    try:
        assert await get(server.port, "/healthz") == (200, "ok")
        assert (await get(server.port, "/readyz"))[0] == 503
        synced = True
        assert await get(server.port, "/readyz") == (200, "ok")
    finally:
        await server.stop()


async def test_metrics_expose_instruments() -> None:
    telemetry = Telemetry()
    telemetry.status_written("success")
    telemetry.status_written("conflict")
    telemetry.reconciled(0.02, "success")
    telemetry.watch_restarted("pflacpmonitors", "gone")
    telemetry.queue_depth(3)
    server = metrics_server(("127.0.0.1", 0), telemetry.registry)
    await server.start()
    try:
        status, text = await get(server.port, "/metrics")
    finally:
        await server.stop()
        telemetry.shutdown()
    assert status == 200
    assert 'pfsr_status_writes_total{result="success"} 1.0' in text
    assert 'pfsr_status_writes_total{result="conflict"} 1.0' in text
    assert 'pfsr_watch_restarts_total{reason="gone",resource="pflacpmonitors"} 1.0' in text
    assert 'pfsr_reconcile_duration_seconds_bucket{le="0.025",outcome="success"} 1.0' in text
    assert 'pfsr_reconcile_duration_seconds_bucket{le="0.01",outcome="success"} 0.0' in text
    assert "pfsr_workqueue_depth 3.0" in text


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (":8080", ("0.0.0.0", 8080)),
        ("127.0.0.1:9", ("127.0.0.1", 9)),
        ("0", None),
        ("[::1]:8", ("::1", 8)),
    ],
)
def test_parse_bind_address(address: str, expected: tuple[str, int] | None) -> None:
    assert parse_bind_address(address) == expected


def test_parse_bind_address_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_bind_address("localhost")
