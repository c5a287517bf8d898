"""HTTP endpoints for the kubelet's probes and for Prometheus.

/healthz answers 200 while the event loop runs. /readyz answers 200 once every
informer has filled its cache, on every replica: a replica that waits for the Lease
is ready too, as a standby with warm caches, which is how operator-sdk managers
behave. /metrics, on its own port, serves the OpenTelemetry metrics in the
Prometheus text format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

logger = logging.getLogger(__name__)


def parse_bind_address(address: str) -> tuple[str, int] | None:
    """Parse ``host:port`` or ``:port``; return None for "0", which disables the server."""
    if address in ("", "0"):
        return None
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit():
        raise ValueError(f"invalid bind address {address!r}: expected host:port or :port")
    return (host.strip("[]") or "0.0.0.0", int(port))


class HTTPServer:
    """One aiohttp site with a few GET routes."""

    def __init__(self, name: str, address: tuple[str, int]) -> None:
        self.name = name
        self._address = address
        self._app = web.Application()
        self._runner: web.AppRunner | None = None
        self.port = address[1]

    def route(self, path: str, handler: Callable[[web.Request], object]) -> None:
        self._app.router.add_get(path, handler)  # type: ignore[arg-type]

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._address[0], self._address[1])
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        logger.info("%s server listening on %s:%d", self.name, self._address[0], self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            logger.info("%s server stopped", self.name)


def health_server(address: tuple[str, int], is_ready: Callable[[], bool]) -> HTTPServer:
    """Build the /healthz and /readyz server."""
    server = HTTPServer("health probe", address)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        if is_ready():
            return web.Response(text="ok")
        return web.Response(status=503, text="informers have not synced")

    server.route("/healthz", healthz)
    server.route("/readyz", readyz)
    return server


def metrics_server(address: tuple[str, int], registry: CollectorRegistry) -> HTTPServer:
    """Build the /metrics server."""
    server = HTTPServer("metrics", address)

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    server.route("/metrics", metrics)
    return server
