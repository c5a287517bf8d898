"""Agent configuration from the environment the controller sets, overridden by flags.

The controller writes the monitor's interfaces, polling interval and identity into the
DaemonSet's environment (names in ``api.agentconfig``) and the node name comes from
the downward API. Flags override each value, which lets the agent run by hand, for
example ``--no-report`` without Kubernetes. Values are checked with the same limits
as the CRD, and an invalid one stops the agent with exit code 2 and a message that
names the value and the fix.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from api import agentconfig
from api.v1alpha1.types import (
    DEFAULT_POLLING_INTERVAL_MS,
    MAX_POLLING_INTERVAL_MS,
    MIN_POLLING_INTERVAL_MS,
    PFLACPMonitorSpec,
)
from nodeagent.reporting import DEFAULT_REPORT_INTERVAL_S, MonitorIdentity

EXIT_CONFIG_ERROR = 2


class ConfigError(Exception):
    """Invalid or missing configuration value; the message names the value and the fix."""


@dataclass(frozen=True)
class AgentConfig:
    """Validated agent configuration."""

    interfaces: list[str]
    polling_interval_ms: int
    node: str
    monitor: MonitorIdentity | None  # None with --no-report
    kubeconfig: str | None
    report: bool
    report_interval_s: float
    metrics_port: int
    health_port: int
    lacpdu: bool
    log_level: str | None


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the agent's flags; every flag overrides its variable."""
    parser = argparse.ArgumentParser(
        prog="pf-status-relay-agent",
        description="Set the link state of SR-IOV VFs from the LACP state of their PF.",
    )
    parser.add_argument(
        "--interfaces", help=f"comma-separated PF names ({agentconfig.ENV_INTERFACES})"
    )
    parser.add_argument(
        "--polling-interval",
        type=str,
        help=f"milliseconds between two reads of every PF, {MIN_POLLING_INTERVAL_MS} to "
        f"{MAX_POLLING_INTERVAL_MS} ({agentconfig.ENV_POLLING_INTERVAL_MS}, "
        f"default {DEFAULT_POLLING_INTERVAL_MS})",
    )
    parser.add_argument("--node", help=f"name of this node ({agentconfig.ENV_NODE_NAME})")
    parser.add_argument(
        "--monitor",
        help="PFLACPMonitor as NAMESPACE/NAME "
        f"({agentconfig.ENV_MONITOR_NAMESPACE}, {agentconfig.ENV_MONITOR_NAME})",
    )
    parser.add_argument("--monitor-uid", help=f"UID of the monitor ({agentconfig.ENV_MONITOR_UID})")
    parser.add_argument("--kubeconfig", help="kubeconfig file; default: in-cluster service account")
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="run without Kubernetes: no Events, no monitor watch",
    )
    parser.add_argument(
        "--report-interval",
        type=str,
        default=str(DEFAULT_REPORT_INTERVAL_S),
        help="seconds between two full-state reports (default %(default)s)",
    )
    parser.add_argument(
        "--metrics-port",
        type=str,
        help=f"Prometheus port, 0 to disable ({agentconfig.ENV_METRICS_PORT}, "
        f"default {agentconfig.DEFAULT_AGENT_METRICS_PORT})",
    )
    parser.add_argument(
        "--health-port",
        type=str,
        help=f"/healthz port, 0 to disable ({agentconfig.ENV_HEALTH_PORT}, "
        f"default {agentconfig.DEFAULT_AGENT_HEALTH_PORT})",
    )
    parser.add_argument(
        "--no-lacpdu",
        action="store_true",
        help="do not open packet sockets for LACPDUs (no CAP_NET_RAW)",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (LOG_LEVEL)")
    return parser


def load_config(argv: Sequence[str], environ: Mapping[str, str]) -> AgentConfig:
    """Merge flags over ``environ`` and validate; raise ConfigError."""
    args = build_parser().parse_args(list(argv))

    raw_interfaces = _pick(args.interfaces, environ, agentconfig.ENV_INTERFACES)
    if not raw_interfaces:
        raise ConfigError(
            f"no interfaces configured: set --interfaces or {agentconfig.ENV_INTERFACES} "
            "to comma-separated PF names, for example ens5f0,ens5f1"
        )
    interfaces = [name.strip() for name in raw_interfaces.split(",") if name.strip()]
    duplicates = sorted({name for name in interfaces if interfaces.count(name) > 1})
    if duplicates:
        raise ConfigError(
            f"invalid interfaces {raw_interfaces!r}: {', '.join(duplicates)} "
            "listed more than once; list each PF once"
        )

    raw_interval = _pick(args.polling_interval, environ, agentconfig.ENV_POLLING_INTERVAL_MS)
    interval = _integer(
        raw_interval or str(DEFAULT_POLLING_INTERVAL_MS),
        "polling interval",
        f"--polling-interval or {agentconfig.ENV_POLLING_INTERVAL_MS}",
    )
    _validate_spec(interfaces, interval)

    node = _pick(args.node, environ, agentconfig.ENV_NODE_NAME)
    if not node:
        raise ConfigError(
            f"node name missing: set --node or {agentconfig.ENV_NODE_NAME} "
            "(the DaemonSet sets it from spec.nodeName)"
        )

    report = not args.no_report
    monitor = _monitor(args, environ) if report else None
    report_interval = _number(args.report_interval, "report interval", "--report-interval")
    if report_interval <= 0:
        raise ConfigError(
            f"invalid report interval {args.report_interval!r}: "
            "set --report-interval to a positive number of seconds"
        )
    return AgentConfig(
        interfaces=interfaces,
        polling_interval_ms=interval,
        node=node,
        monitor=monitor,
        kubeconfig=args.kubeconfig,
        report=report,
        report_interval_s=report_interval,
        metrics_port=_port(
            args.metrics_port,
            environ,
            agentconfig.ENV_METRICS_PORT,
            agentconfig.DEFAULT_AGENT_METRICS_PORT,
            "--metrics-port",
        ),
        health_port=_port(
            args.health_port,
            environ,
            agentconfig.ENV_HEALTH_PORT,
            agentconfig.DEFAULT_AGENT_HEALTH_PORT,
            "--health-port",
        ),
        lacpdu=not args.no_lacpdu,
        log_level=args.log_level,
    )


def _pick(flag: str | None, environ: Mapping[str, str], variable: str) -> str | None:
    return flag if flag is not None else environ.get(variable)


def _validate_spec(interfaces: list[str], interval: int) -> None:
    try:
        PFLACPMonitorSpec(interfaces=interfaces, polling_interval=interval)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            location = ".".join(str(part) for part in item["loc"])
            value = item.get("input")
            problems.append(f"{location} value {value!r}: {item['msg']}")
        raise ConfigError(
            "invalid configuration: " + "; ".join(problems) + f". Interface names have 1 to 15 "
            f"characters without '/', ':' or whitespace; the polling interval is "
            f"{MIN_POLLING_INTERVAL_MS} to {MAX_POLLING_INTERVAL_MS} ms"
        ) from None


def _monitor(args: argparse.Namespace, environ: Mapping[str, str]) -> MonitorIdentity:
    if args.monitor is not None:
        namespace, separator, name = args.monitor.partition("/")
        if not separator or not namespace or not name:
            raise ConfigError(f"invalid --monitor {args.monitor!r}: use NAMESPACE/NAME")
    else:
        namespace = environ.get(agentconfig.ENV_MONITOR_NAMESPACE, "")
        name = environ.get(agentconfig.ENV_MONITOR_NAME, "")
    uid = _pick(args.monitor_uid, environ, agentconfig.ENV_MONITOR_UID) or ""
    if not namespace or not name or not uid:
        raise ConfigError(
            "monitor identity missing: set --monitor NAMESPACE/NAME and --monitor-uid (or "
            f"{agentconfig.ENV_MONITOR_NAMESPACE}, {agentconfig.ENV_MONITOR_NAME}, "
            f"{agentconfig.ENV_MONITOR_UID}), or run with --no-report"
        )
    return MonitorIdentity(namespace=namespace, name=name, uid=uid)


def _integer(raw: str, what: str, where: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"invalid {what} {raw!r}: set {where} to a whole number") from None


def _number(raw: str, what: str, where: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"invalid {what} {raw!r}: set {where} to a number") from None


def _port(
    flag: str | None, environ: Mapping[str, str], variable: str, default: int, option: str
) -> int:
    raw = _pick(flag, environ, variable)
    if raw is None or raw == "":
        return default
    port = _integer(raw, "port", f"{option} or {variable}")
    if not 0 <= port <= 65535:
        raise ConfigError(f"invalid port {raw!r}: set {option} or {variable} to 0 to 65535")
    return port
