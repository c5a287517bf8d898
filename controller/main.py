"""Command line entry point ``pf-status-relay-controller``.

Exit codes: 0 after SIGTERM or SIGINT, 1 when the Lease was lost or the controller
failed, 2 for invalid arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import uuid
from collections.abc import Sequence

from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client import ApiClient, Configuration

from api.logs import configure_logging
from controller.health import parse_bind_address
from controller.leader import LeadershipLostError
from controller.manager import DEFAULT_NAMESPACE, Controller, ControllerSettings

logger = logging.getLogger(__name__)

ENV_AGENT_IMAGE = "RELATED_IMAGE_AGENT"
ENV_NAMESPACE = "POD_NAMESPACE"
# Set by OLM from the OperatorGroup's target namespaces: empty means every namespace.
ENV_WATCH_NAMESPACE = "WATCH_NAMESPACE"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pf-status-relay-controller",
        description="Run the agents of every PFLACPMonitor and report their LACP state.",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file; in-cluster config when unset")
    parser.add_argument(
        "--leader-elect",
        action="store_true",
        help="elect a leader on a Lease so only one replica writes",
    )
    parser.add_argument("--lease-duration", type=float, default=15.0, help="seconds (15)")
    parser.add_argument("--renew-deadline", type=float, default=10.0, help="seconds (10)")
    parser.add_argument("--retry-period", type=float, default=2.0, help="seconds (2)")
    parser.add_argument(
        "--metrics-bind-address",
        default=":8080",
        help="host:port of the Prometheus endpoint, 0 to disable (:8080)",
    )
    parser.add_argument(
        "--health-probe-bind-address",
        default=":8081",
        help="host:port of /healthz and /readyz, 0 to disable (:8081)",
    )
    parser.add_argument(
        "--namespace",
        default=os.environ.get(ENV_NAMESPACE, DEFAULT_NAMESPACE),
        help=f"namespace of the agent DaemonSets and the Lease (env {ENV_NAMESPACE})",
    )
    parser.add_argument(
        "--watch-namespace",
        default=os.environ.get(ENV_WATCH_NAMESPACE, ""),
        help=(
            "serve only the monitors of this namespace; empty serves every namespace "
            f"(env {ENV_WATCH_NAMESPACE})"
        ),
    )
    parser.add_argument(
        "--agent-image",
        default=os.environ.get(ENV_AGENT_IMAGE, ""),
        help=f"image of the node agent (env {ENV_AGENT_IMAGE})",
    )
    parser.add_argument(
        "--report-timeout",
        type=float,
        default=90.0,
        help="seconds without a report after which a node's agent counts as unreachable (90)",
    )
    parser.add_argument(
        "--deletion-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for agents to restore VFs when a monitor is deleted (30)",
    )
    parser.add_argument("--workers", type=int, default=4, help="concurrent reconciles (4)")
    args = parser.parse_args(argv)
    if "," in args.watch_namespace:
        parser.error(
            f"--watch-namespace {args.watch_namespace!r}: one namespace or empty for all; "
            "install with an OperatorGroup in AllNamespaces or OwnNamespace mode"
        )
    if not args.agent_image:
        parser.error(f"--agent-image or the environment variable {ENV_AGENT_IMAGE} is required")
    return args


def settings_from_args(args: argparse.Namespace) -> ControllerSettings:
    identity = f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    return ControllerSettings(
        agent_image=args.agent_image,
        namespace=args.namespace,
        watch_namespace=args.watch_namespace or None,
        identity=identity,
        leader_elect=args.leader_elect,
        lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
        health_address=parse_bind_address(args.health_probe_bind_address),
        metrics_address=parse_bind_address(args.metrics_bind_address),
        workers=args.workers,
        report_timeout=args.report_timeout,
        deletion_timeout=args.deletion_timeout,
    )


async def _api_client(kubeconfig: str | None) -> ApiClient:
    configuration = Configuration()
    if kubeconfig:
        await kube_config.load_kube_config(
            config_file=kubeconfig, client_configuration=configuration
        )
    else:
        kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return ApiClient(configuration)


async def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    api_client = await _api_client(args.kubeconfig)
    controller = Controller(settings, api_client)
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        if task is not None:
            loop.add_signal_handler(sig, task.cancel)
    code = 0
    try:
        await controller.run()
    except* LeadershipLostError as group:
        logger.error("exiting: %s", group.exceptions[0])
        code = 1
    finally:
        await api_client.close()
    return code


def main(argv: Sequence[str] | None = None) -> None:
    configure_logging()
    args = parse_args(argv)
    try:
        code = asyncio.run(run(args))
    except asyncio.CancelledError:
        code = 0
    except KeyboardInterrupt:
        code = 0
    except Exception:
        logger.exception("controller failed")
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
