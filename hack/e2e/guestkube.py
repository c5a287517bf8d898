"""Reads from the API server inside the guest: JSON for the checks, kubectl for the view.

The guest reaches the API server at an address that its serving certificate does
not name (see hack.e2e.guestnet), so every client here verifies the certificate
against the name in the kubeconfig's ``tls-server-name``. ``http.client`` sends
that name in the TLS handshake because each process start of kubectl costs about
a second under TCG, while the scenario polls the status several times a second.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

REQUEST_TIMEOUT_S = 10.0


class KubeReadError(RuntimeError):
    """Raised when a GET fails or returns a status other than 200."""


class _NamedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection that verifies the server under ``server_name``, not ``host``."""

    def __init__(
        self, host: str, port: int, context: ssl.SSLContext, server_name: str, timeout: float
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._tls_context = context
        self._server_name = server_name

    def connect(self) -> None:
        plain = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls_context.wrap_socket(plain, server_hostname=self._server_name)


class KubeReader:
    """GETs as the identity of one kubeconfig, and kubectl with that kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        config: dict[str, Any] = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
        cluster = config["clusters"][0]["cluster"]
        url = urllib.parse.urlsplit(cluster["server"])
        if url.hostname is None or url.port is None:
            raise KubeReadError(f"server {cluster['server']!r} in {kubeconfig} has no host:port")
        self._host, self._port = url.hostname, url.port
        self._server_name = cluster.get("tls-server-name") or self._host
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode("ascii")
        self._context = ssl.create_default_context(cadata=ca)
        self._token = config["users"][0]["user"]["token"]

    def get_json(self, path: str, query: dict[str, str] | None = None) -> Any:
        """GET ``path`` and decode the JSON body; raise KubeReadError unless HTTP 200."""
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        connection = _NamedHTTPSConnection(
            self._host, self._port, self._context, self._server_name, REQUEST_TIMEOUT_S
        )
        try:
            connection.request("GET", path, headers={"Authorization": f"Bearer {self._token}"})
            response = connection.getresponse()
            body = response.read().decode("utf-8", errors="replace")
        except OSError as error:
            raise KubeReadError(f"GET {path} failed: {error}") from error
        finally:
            connection.close()
        if response.status != 200:
            raise KubeReadError(f"GET {path} returned HTTP {response.status}: {body[:500]}")
        return json.loads(body)

    def kubectl(self, *args: str) -> str:
        """Run kubectl and return its output, or its error text when it fails."""
        result = subprocess.run(
            ["kubectl", f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            return f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
        return result.stdout.rstrip()
