"""The agent process end to end on this host: start, first pass, health, SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from nodeagent.health import serve_health


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_agent_runs_and_stops_on_sigterm() -> None:
    health = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nodeagent.main",
            "--interfaces",
            "lo,pfsr-none0",
            "--node",
            "host",
            "--no-report",
            "--metrics-port",
            "0",
            "--health-port",
            str(health),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: list[dict[str, object]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(json.loads(line))
        if sum(1 for entry in lines if entry["msg"] == "lacp state is unknown") == 2:
            break
    with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=10) as reply:
        status = reply.status

    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=30)
    lines += [json.loads(line) for line in rest.splitlines() if line.startswith("{")]

    verdicts = {
        entry["interface"]: entry["reason"]
        for entry in lines
        if entry["msg"] == "lacp state is unknown"
    }
    messages = [entry["msg"] for entry in lines]
    assert verdicts == {"lo": "NotInBond", "pfsr-none0": "PFNotFound"}
    assert status == 200
    assert "stopping on signal, vf link states stay as they are" in messages
    assert "agent stopped" in messages
    assert process.returncode == 0


def test_health_endpoint_follows_callback() -> None:
    state = {"healthy": True}
    server = serve_health(0, lambda: state["healthy"], address="127.0.0.1")
    port = server.server_address[1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as reply:
            ok_status = reply.status
        state["healthy"] = False
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
            stalled_status = 200
        except urllib.error.HTTPError as error:
            stalled_status = error.code
    finally:
        server.shutdown()
        server.server_close()

    assert ok_status == 200
    assert stalled_status == 503
