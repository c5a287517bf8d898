"""Entry point of ``pf-status-relay-agent``: wires configuration, netlink, reporting.

SIGTERM and SIGINT stop the agent and leave every VF as it is, so a restart or an
upgrade does not touch running pods; the next agent resumes from the kernel's state.
Only the deletion of the monitor restores VFs (see ``nodeagent.monitorwatch``).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from api.logs import configure_logging
from api.report import ReportReason
from nodeagent.agent import Agent
from nodeagent.config import EXIT_CONFIG_ERROR, AgentConfig, ConfigError, load_config
from nodeagent.health import serve_health
from nodeagent.lacpdu import LACPDUListener
from nodeagent.linkevents import LinkEventSocket
from nodeagent.metrics import Metrics, in_memory_metrics, serve_prometheus
from nodeagent.netlink import NetlinkClient

log = logging.getLogger("nodeagent")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the agent until SIGTERM; exit 2 on invalid configuration."""
    try:
        config = load_config(sys.argv[1:] if argv is None else argv, os.environ)
    except ConfigError as error:
        print(f"pf-status-relay-agent: {error}", file=sys.stderr)
        sys.exit(EXIT_CONFIG_ERROR)
    configure_logging(config.log_level)
    try:
        asyncio.run(run(config))
    except ConfigError as error:
        log.error("start-up failed", extra={"error": str(error)})
        sys.exit(EXIT_CONFIG_ERROR)


async def run(config: AgentConfig) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with asyncio.TaskGroup() as group:
        serving = group.create_task(serve(config), name="serve")
        stopping = group.create_task(stop.wait(), name="stop")
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            log.info("stopping on signal, vf link states stay as they are")
        serving.cancel()
        stopping.cancel()


async def serve(config: AgentConfig) -> None:
    """Build the agent and run it with its reporter and monitor watch."""
    metrics: Metrics = (
        serve_prometheus(config.metrics_port) if config.metrics_port else in_memory_metrics()
    )
    netlink = NetlinkClient()
    agent = Agent(
        config.interfaces,
        config.polling_interval_ms / 1000,
        netlink,
        metrics,
        event_source_factory=LinkEventSocket,
    )
    if config.lacpdu:
        agent.attach_socket_binder(LACPDUListener(agent.on_lacpdu, metrics))
    if config.health_port:
        serve_health(config.health_port, agent.healthy)
    log.info(
        "agent configured",
        extra={"node": config.node, "report": config.report, "interfaces": config.interfaces},
    )
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(agent.run(), name="agent")
            if config.report:
                await _start_reporting(config, agent, metrics, group)
    finally:
        netlink.close()


async def _start_reporting(
    config: AgentConfig, agent: Agent, metrics: Metrics, group: asyncio.TaskGroup
) -> None:
    # Imported here so --no-report runs without loading the Kubernetes client, and in a
    # thread because loading it takes seconds on a slow node (minutes under emulation):
    # the event loop meanwhile protects VFs and handles SIGTERM.
    await asyncio.to_thread(importlib.import_module, "nodeagent.kube")
    from kubernetes_asyncio.config import ConfigException

    from nodeagent.kube import KubeEventSink, KubeMonitorSource, create_api_client
    from nodeagent.monitorwatch import MonitorWatcher
    from nodeagent.reporting import Reporter

    assert config.monitor is not None
    try:
        api_client = await create_api_client(config.kubeconfig)
    except (ConfigException, OSError) as error:
        raise ConfigError(
            f"kubernetes client configuration failed ({error}): run in a pod "
            "with a service account, pass --kubeconfig, or use --no-report"
        ) from error
    reporter = Reporter(
        config.monitor,
        config.node,
        KubeEventSink(api_client),
        agent.snapshot,
        metrics,
        interval_s=config.report_interval_s,
    )
    agent.set_report_callback(reporter.notify)

    async def on_deleted(cause: str) -> bool:
        if not await agent.restore():
            return False
        reporter.restored = True
        reporter.notify(ReportReason.VFS_RESTORED, f"vfs restored on {config.node}: {cause}")
        return True

    def on_generation(generation: int) -> None:
        reporter.monitor_generation = generation

    watcher = MonitorWatcher(
        KubeMonitorSource(api_client, config.monitor), config.monitor, on_deleted, on_generation
    )
    group.create_task(reporter.run(), name="reporter")
    group.create_task(watcher.run(), name="monitor-watch")
    await agent.first_poll.wait()
    reporter.notify(ReportReason.AGENT_STARTED, f"agent started on {config.node}")


if __name__ == "__main__":
    main()
