"""Controller half of make bench: N simulated agents report at once against a real API server.

For each node count N, a fresh kube-apiserver and etcd (``hack.testbed.apiserver``)
get the CRD and RBAC from config/, N Node objects and one PFLACPMonitor selecting
them. The real controller runs as a subprocess with the controller's identity. Once
the status counts N nodes, this process posts N agent reports as the agent's identity,
built with ``api.report.build_event`` (the agent's real format), with a bounded number
in flight. It measures the time from the first post until the status shows both
interfaces of every node Up, the status writes (the controller's ``pfsr_status_writes``
counter and the MODIFIED events of a watch on the monitor), the controller's peak RSS
and the monitor's size, and writes ``controller.json`` into the output folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import new_client_from_config

from api.report import NodeReport, ReportReason, build_event
from api.v1alpha1.types import InterfaceStatus, LACPState
from controller.kube import KubeClient
from controller.resources import EVENTS, MONITORS, NODES
from hack.bench.procfs import machine, memory_kib
from hack.testbed.apiserver import APIServer, free_port
from hack.testbed.binaries import find_binaries
from hack.testbed.identities import OPERATOR_NAMESPACE

log = logging.getLogger("controller-bench")

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_NAMESPACE = "pfsr-bench"
MONITOR = "bench"
LABEL = "pfsr-bench"
INTERFACES = ["ens5f0", "ens5f1"]
NODE_COUNT_TIMEOUT = 90.0
"""Seconds to wait for status.nodeCount before the reports are posted anyway."""
ETCD_REQUEST_LIMIT = 1572864
"""etcd's default --max-request-bytes (1.5 MiB), the bound on one object's size."""


async def gather_limited(coroutines: list[Awaitable[Any]], limit: int) -> list[Any]:
    """Await ``coroutines`` with at most ``limit`` in flight."""
    semaphore = asyncio.Semaphore(limit)

    async def one(coroutine: Awaitable[Any]) -> Any:
        async with semaphore:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines), return_exceptions=True)


def status_writes(metrics_port: int) -> dict[str, float]:
    """Return pfsr_status_writes_total by result, scraped from the controller's endpoint."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    writes: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("pfsr_status_writes_total{"):
            labels, value = line.rsplit(" ", 1)
            result = labels.split('result="', 1)[1].split('"', 1)[0]
            writes[result] = writes.get(result, 0.0) + float(value)
    return writes


def controller_errors(log_path: Path) -> dict[str, Any]:
    """Count the controller's WARNING and ERROR log lines and keep the first message of each."""
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") not in ("WARNING", "ERROR"):
            continue
        message = str(entry.get("msg", ""))
        # "reconcile failed (retry 7): ..." and "(retry 8)" are one kind of failure.
        key = re.sub(r"\(retry \d+\)", "(retry N)", message.split(":", 1)[0])
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, message[:300])
    return {"counts": counts, "first": first}


def start_controller(
    server: APIServer, metrics_port: int, log_path: Path
) -> subprocess.Popen[bytes]:
    command = [
        str(Path(sys.executable).parent / "pf-status-relay-controller"),
        f"--kubeconfig={server.kubeconfig('controller')}",
        f"--metrics-bind-address=127.0.0.1:{metrics_port}",
        "--health-probe-bind-address=0",
        f"--namespace={OPERATOR_NAMESPACE}",
        "--agent-image=registry.example/pf-status-relay-agent:bench",
    ]
    with open(log_path, "wb") as log_file:
        return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)


def install(server: APIServer) -> None:
    """Create the namespaces and apply the CRD and RBAC as committed under config/."""
    for namespace in (OPERATOR_NAMESPACE, BENCH_NAMESPACE):
        server.apply(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n")
    for path in sorted((REPO_ROOT / "config" / "crd" / "bases").glob("*.yaml")):
        server.apply(path)
    server.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all", check=True
    )
    server.apply(REPO_ROOT / "config" / "rbac", namespace=OPERATOR_NAMESPACE)


async def wait_status(
    admin: KubeClient, field: str, value: int, within_s: float
) -> dict[str, Any] | None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        monitor = await admin.request("GET", MONITORS.path(BENCH_NAMESPACE, MONITOR))
        if (monitor.get("status") or {}).get(field) == value:
            return monitor
        await asyncio.sleep(0.5)
    return None


def report_event(monitor: dict[str, Any], node: str) -> dict[str, Any]:
    metadata = monitor["metadata"]
    report = NodeReport(
        monitor_namespace=BENCH_NAMESPACE,
        monitor_name=MONITOR,
        monitor_uid=metadata["uid"],
        monitor_generation=int(metadata.get("generation") or 0),
        node=node,
        instance="bench",
        sequence=1,
        observed_at=datetime.now(UTC),
        restored=False,
        interfaces=[
            InterfaceStatus(
                name=name, lacp_state=LACPState.UP, reason="Negotiated", bond=f"bond{i}"
            )
            for i, name in enumerate(INTERFACES)
        ],
    )
    return build_event(report, ReportReason.STATE_REPORT, f"bench report from {node}")


class MonitorWatch:
    """Counts MODIFIED events of the monitor and stamps when every interface is Up."""

    def __init__(self, admin: KubeClient, resource_version: str, expected_up: int) -> None:
        self.admin = admin
        self.resource_version = resource_version
        self.expected_up = expected_up
        self.modified = 0
        self.complete = asyncio.Event()
        self.completed_at: float | None = None
        self.last_status: dict[str, Any] = {}

    async def run(self) -> None:
        query = {
            "watch": "1",
            "fieldSelector": f"metadata.name={MONITOR}",
            "resourceVersion": self.resource_version,
            "allowWatchBookmarks": "false",
        }
        async for event in self.admin.stream(MONITORS.path(BENCH_NAMESPACE), query, 600.0):
            if event.get("type") != "MODIFIED":
                continue
            self.modified += 1
            status = event["object"].get("status") or {}
            self.last_status = {k: v for k, v in status.items() if k != "nodes"}
            self.last_status["nodes_listed"] = len(status.get("nodes") or [])
            if status.get("interfacesUp") == self.expected_up and not self.complete.is_set():
                self.completed_at = time.monotonic()
                self.complete.set()


async def bench_round(
    server: APIServer, nodes: int, in_flight: int, within_s: float, log_dir: Path
) -> dict[str, Any]:
    """Measure one node count on a fresh API server; see the module docstring."""
    install(server)
    admin_api: ApiClient = await new_client_from_config(config_file=str(server.kubeconfig("admin")))
    agent_api: ApiClient = await new_client_from_config(config_file=str(server.kubeconfig("agent")))
    admin, agent = KubeClient(admin_api), KubeClient(agent_api)
    result: dict[str, Any] = {"nodes": nodes, "in_flight": in_flight}
    controller: subprocess.Popen[bytes] | None = None
    try:
        names = [f"bench-{i:05d}" for i in range(nodes)]
        started = time.monotonic()
        created = await gather_limited(
            [
                admin.request(
                    "POST",
                    NODES.path(),
                    body={
                        "apiVersion": "v1",
                        "kind": "Node",
                        "metadata": {"name": n, "labels": {LABEL: "yes"}},
                    },
                )
                for n in names
            ],
            in_flight,
        )
        result["node_create_errors"] = sum(isinstance(c, BaseException) for c in created)
        result["node_create_s"] = time.monotonic() - started

        metrics_port = free_port()
        controller = start_controller(server, metrics_port, log_dir / f"controller-{nodes}.log")
        await admin.request(
            "POST",
            MONITORS.path(BENCH_NAMESPACE),
            body={
                "apiVersion": "pfstatusrelay.openshift.io/v1alpha1",
                "kind": "PFLACPMonitor",
                "metadata": {"name": MONITOR, "namespace": BENCH_NAMESPACE},
                "spec": {"interfaces": INTERFACES, "nodeSelector": {LABEL: "yes"}},
            },
        )
        started = time.monotonic()
        counted = await wait_status(admin, "nodeCount", nodes, min(within_s, NODE_COUNT_TIMEOUT))
        if counted is None:
            # The reports are still posted: their cost and the controller's memory are
            # measured, and the completion wait below records the failure.
            result["error"] = f"status.nodeCount never reached {nodes}"
            within_s = min(within_s, NODE_COUNT_TIMEOUT)
        else:
            result["node_count_s"] = time.monotonic() - started
        await asyncio.sleep(3.0)  # let the first status writes settle
        monitor = await admin.request("GET", MONITORS.path(BENCH_NAMESPACE, MONITOR))
        writes_before = status_writes(metrics_port)
        result["controller_before_kib"] = memory_kib(controller.pid)

        watch = MonitorWatch(admin, monitor["metadata"]["resourceVersion"], 2 * nodes)
        watcher = asyncio.create_task(watch.run())
        await asyncio.sleep(0.5)
        events = [report_event(monitor, n) for n in names]
        started = time.monotonic()
        posted = await gather_limited(
            [agent.request("POST", EVENTS.path(BENCH_NAMESPACE), body=e) for e in events], in_flight
        )
        result["post_s"] = time.monotonic() - started
        result["post_errors"] = sum(isinstance(p, BaseException) for p in posted)
        errors = [str(p) for p in posted if isinstance(p, BaseException)]
        result["post_error_samples"] = errors[:3]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.complete.wait(), within_s)
        result["complete"] = watch.completed_at is not None
        if watch.completed_at is not None:
            result["complete_s"] = watch.completed_at - started
        else:
            result.setdefault("error", f"status not complete within {within_s} s after the posts")
        await asyncio.sleep(2.0)  # writes still in flight after completion count too
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        writes_after = status_writes(metrics_port)
        result["status_writes"] = {
            k: writes_after.get(k, 0.0) - writes_before.get(k, 0.0) for k in writes_after
        }
        result["watch_modified"] = watch.modified
        result["last_status"] = watch.last_status
        result["controller_after_kib"] = memory_kib(controller.pid)
        final = await admin.request("GET", MONITORS.path(BENCH_NAMESPACE, MONITOR))
        result["monitor_bytes"] = len(json.dumps(final, separators=(",", ":")).encode())
        result["etcd_request_limit_bytes"] = ETCD_REQUEST_LIMIT
        return result
    finally:
        if controller is not None:
            result["controller_exit"] = controller.poll()
            result["controller_errors"] = controller_errors(log_dir / f"controller-{nodes}.log")
            controller.send_signal(signal.SIGTERM)
            try:
                controller.wait(timeout=30)
            except subprocess.TimeoutExpired:
                controller.kill()
                controller.wait()
        await admin_api.close()
        await agent_api.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Controller benchmark against a real API server.")
    parser.add_argument("--nodes", default="100,1000,5000", help="comma-separated node counts")
    parser.add_argument("--in-flight", type=int, default=50, help="requests in flight at once")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per wait, per round")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    binaries = find_binaries()
    rounds: list[dict[str, Any]] = []
    result: dict[str, Any] = {"machine": machine(), "rounds": rounds}
    for nodes in (int(n) for n in args.nodes.split(",") if n):
        log.info("round: %s nodes", nodes)
        with APIServer(binaries=binaries) as server:
            try:
                row = asyncio.run(
                    bench_round(server, nodes, args.in_flight, args.timeout, args.out)
                )
            except Exception as error:  # report a failed round and go on to the next
                log.exception("round with %s nodes failed", nodes)
                row = {"nodes": nodes, "error": f"{type(error).__name__}: {error}"}
        log.info("round result: %s", row)
        rounds.append(row)
        (args.out / "controller.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
