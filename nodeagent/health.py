"""HTTP liveness endpoint: ``/healthz`` fails when the poll loop has stalled.

Served by the standard library in a daemon thread, so it keeps answering while the
event loop is busy, and it reports the loop's own progress: 200 while the poll loop
completed a pass within 3 polling intervals, 503 after that, so the kubelet restarts
a stuck agent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)


def serve_health(
    port: int, healthy: Callable[[], bool], address: str = "0.0.0.0"
) -> ThreadingHTTPServer:
    """Start the /healthz server on ``port`` in a daemon thread and return it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/healthz":
                self._answer(404, b"not found\n")
            elif healthy():
                self._answer(200, b"ok\n")
            else:
                self._answer(503, b"poll loop has not completed a pass for 3 intervals\n")

        def _answer(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # probes every few seconds would flood the log

    server = ThreadingHTTPServer((address, port), Handler)
    thread = threading.Thread(target=server.serve_forever, name="healthz", daemon=True)
    thread.start()
    log.info("health endpoint started", extra={"port": server.server_address[1]})
    return server
