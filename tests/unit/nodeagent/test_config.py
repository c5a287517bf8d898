"""Agent configuration: environment, flag overrides and start-up errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nodeagent.config import ConfigError, load_config

ENV = {
    "PFSR_INTERFACES": "ens5f0,ens5f1",
    "PFSR_POLLING_INTERVAL_MS": "2000",
    "NODE_NAME": "worker-1",
    "PFSR_MONITOR_NAMESPACE": "pfsr",
    "PFSR_MONITOR_NAME": "monitor-a",
    "PFSR_MONITOR_UID": "uid-1",
}


def test_environment_values() -> None:
    config = load_config([], ENV)

    assert config.interfaces == ["ens5f0", "ens5f1"]
    assert config.polling_interval_ms == 2000
    assert config.node == "worker-1"
    assert config.monitor is not None
    assert (config.monitor.namespace, config.monitor.name, config.monitor.uid) == (
        "pfsr",
        "monitor-a",
        "uid-1",
    )
    assert config.report is True
    assert config.metrics_port == 9101
    assert config.health_port == 9102


def test_flags_override_environment() -> None:
    config = load_config(
        [
            "--interfaces",
            "ens6f0",
            "--polling-interval",
            "1000",
            "--node",
            "n2",
            "--monitor",
            "other/m2",
            "--monitor-uid",
            "u2",
            "--metrics-port",
            "0",
        ],
        ENV,
    )

    assert config.interfaces == ["ens6f0"]
    assert config.polling_interval_ms == 1000
    assert config.node == "n2"
    assert config.monitor is not None
    assert (config.monitor.namespace, config.monitor.name, config.monitor.uid) == (
        "other",
        "m2",
        "u2",
    )
    assert config.metrics_port == 0


def test_no_report_needs_no_identity() -> None:
    config = load_config(["--interfaces", "eth0", "--node", "n", "--no-report"], {})

    assert config.report is False
    assert config.monitor is None


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--node", "n", "--no-report"], "no interfaces configured"),
        (["--interfaces", "a/b", "--node", "n", "--no-report"], "'a/b'"),
        (
            ["--interfaces", "averyveryverylongname", "--node", "n", "--no-report"],
            "'averyveryverylongname'",
        ),
        (["--interfaces", "eth0,eth0", "--node", "n", "--no-report"], "more than once"),
        (
            ["--interfaces", "eth0", "--polling-interval", "999", "--node", "n", "--no-report"],
            "999",
        ),
        (
            ["--interfaces", "eth0", "--polling-interval", "fast", "--node", "n", "--no-report"],
            "'fast'",
        ),
        (["--interfaces", "eth0", "--no-report"], "NODE_NAME"),
        (["--interfaces", "eth0", "--node", "n"], "--no-report"),
        (
            ["--interfaces", "eth0", "--node", "n", "--monitor", "noslash", "--monitor-uid", "u"],
            "NAMESPACE/NAME",
        ),
        (
            ["--interfaces", "eth0", "--node", "n", "--no-report", "--metrics-port", "70000"],
            "70000",
        ),
    ],
)
def test_invalid_values(argv: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(argv, {})

    assert fragment in str(error.value)


def test_invalid_config_exits_2() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nodeagent.main",
            "--interfaces",
            "eth0",
            "--polling-interval",
            "70000",
            "--node",
            "n",
            "--no-report",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "70000" in result.stderr
    assert "polling" in result.stderr
