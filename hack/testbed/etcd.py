"""The etcd member behind the testbed's API server, and its compaction.

Tests of watch recovery need etcd to forget old revisions on demand, so that
a watch from an old resourceVersion fails with 410 Gone. etcd's v3 HTTP/JSON
gateway (served on the client URL by hack/apiserver/cmd/etcd) exposes the
KV range and compaction calls, so this module needs no gRPC client. The
gateway encodes int64 fields as JSON strings and keys as base64.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from hack.testbed.process import ManagedProcess

LOG = logging.getLogger(__name__)

# kube-apiserver stores every object under this key prefix (its --etcd-prefix default).
REGISTRY_PREFIX = b"/registry"


class EtcdError(RuntimeError):
    """Raised when etcd does not start or a gateway request fails."""


class Etcd:
    """A single-member etcd on loopback with fsync turned off."""

    def __init__(
        self, binary: Path, data_dir: Path, log_path: Path, client_port: int, peer_port: int
    ) -> None:
        self.url = f"http://127.0.0.1:{client_port}"
        self.process = ManagedProcess(
            "etcd",
            [
                str(binary),
                f"--data-dir={data_dir}",
                f"--listen-client-url={self.url}",
                f"--listen-peer-url=http://127.0.0.1:{peer_port}",
                "--log-level=warn",
            ],
            log_path,
        )

    def start(self, timeout: float = 60.0) -> None:
        """Start etcd and wait until /health returns true."""
        self.process.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.running():
                raise EtcdError(
                    f"etcd exited with code {self.process.exit_code()} during start; "
                    f"log {self.process.log_path}:\n{self.process.log_tail()}"
                )
            if self._healthy():
                return
            time.sleep(0.1)
        self.process.stop()
        raise EtcdError(
            f"etcd at {self.url} not healthy after {timeout} s; "
            f"log {self.process.log_path}:\n{self.process.log_tail()}"
        )

    def stop(self) -> None:
        self.process.stop()

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                body = json.load(response)
        except (OSError, ValueError):
            return False
        return bool(body.get("health") == "true")

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(payload).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                result: dict[str, Any] = json.load(response)
                return result
        except urllib.error.HTTPError as error:
            body = error.read().decode("utf-8", errors="replace")
            raise EtcdError(f"etcd POST {path} failed with HTTP {error.code}: {body}") from error

    def revision(self) -> int:
        """Return etcd's current revision (the newest resourceVersion it has)."""
        key = base64.b64encode(REGISTRY_PREFIX).decode("ascii")
        response = self._post("/v3/kv/range", {"key": key, "count_only": True})
        return int(response["header"]["revision"])

    def compact(self, revision: int | None = None) -> int:
        """Compact the key space up to ``revision`` (default: the current one).

        After this call etcd rejects reads and watches of older revisions. So
        kube-apiserver, when its watch cache is off, fails a watch from an
        older resourceVersion with 410 Gone. Returns the compacted revision.
        A revision that is already compacted is not an error.
        """
        target = self.revision() if revision is None else revision
        try:
            self._post("/v3/kv/compaction", {"revision": str(target), "physical": True})
        except EtcdError as error:
            if "required revision has been compacted" not in str(error):
                raise
            LOG.info("etcd revision %s was already compacted", target)
        else:
            LOG.info("compacted etcd at revision %s", target)
        return target
