"""The demo's story as a test: `make test-e2e` runs `python -m hack.e2e.demo` and reads its record.

The demo boots the kernel guest (root, qemu), runs kube-apiserver and etcd (Go
builds, cached) and the real controller and agent; see docs/demo.md. The test
checks each step in the record that the demo writes, not only its exit code, so
that a failure names the step and shows its evidence.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT_S = 1800
# LACP fast rate: the switch's port expires 3 s after the last LACPDU it heard,
# and the agent reacts to the next LACPDU. The rest is margin for TCG on a busy host.
DOWN_WINDOW_S = 20.0
ENABLE_VF = 2

pytestmark = pytest.mark.e2e


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the kernel guest needs root (netdevsim, bonds and namespaces run as root in qemu)"
    for tool in ("qemu-system-x86_64", "kubectl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed; run make kernel-deps or install it"
    if shutil.which("go") is None and not os.environ.get("PFSR_APISERVER_BIN_DIR"):
        return (
            "go is not installed, so kube-apiserver cannot be built (or set PFSR_APISERVER_BIN_DIR)"
        )
    return None


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    """Run the demo once and return its demo.json."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    # Not under /tmp: the guest overlays it, and writes its results into this folder.
    run_dir = REPO_ROOT / "_out" / f"test-e2e-{time.strftime('%Y%m%d-%H%M%S')}"
    result = subprocess.run(
        [sys.executable, "-m", "hack.e2e.demo", "--run-dir", str(run_dir)],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    print(result.stdout[-20000:])
    print(result.stderr[-5000:], file=sys.stderr)
    path = run_dir / "demo.json"
    assert path.is_file(), f"the demo wrote no {path} (exit code {result.returncode})"
    data: dict[str, Any] = json.loads(path.read_text())
    data["exit_code"] = result.returncode
    for step in data["scenario"].get("steps") or []:
        for check in step["checks"]:
            mark = "ok" if check["observed"] else "NOT OBSERVED"
            print(f"step {step['number']} {check['name']}: {mark}, {check['seconds']} s")
    return data


def _check(data: dict[str, Any], step: int, name_start: str) -> dict[str, Any]:
    steps = data["scenario"]["steps"]
    assert len(steps) >= step, f"the scenario stopped before step {step}"
    for check in steps[step - 1]["checks"]:
        if check["name"].startswith(name_start):
            assert check["observed"], f"step {step} {check['name']}: {check['error']}"
            return dict(check["evidence"])
    names = [check["name"] for check in steps[step - 1]["checks"]]
    raise AssertionError(f"no check {name_start!r} in step {step}: {names}")


def test_demo_exits_zero(record: dict[str, Any]) -> None:
    assert record["exit_code"] == 0
    assert record["guest_exit_code"] == 0
    assert record["scenario"]["all_observed"] is True


def test_monitor_ready_both_up(record: dict[str, Any]) -> None:
    evidence = _check(record, 1, "status: Ready True")
    assert set(evidence["interfaces"]) == {"ens5f0", "ens5f1"}
    agent = _check(record, 1, "agent started")
    assert agent["env"]["NODE_NAME"] == "worker-0"
    assert agent["env"]["PFSR_INTERFACES"] == "ens5f0,ens5f1"


def test_block_keeps_carrier(record: dict[str, Any]) -> None:
    evidence = _check(record, 2, "LACPDUs dropped")
    assert evidence["carrier"] is True
    assert evidence["mii_up"] is True


def test_pf0_down_within_window(record: dict[str, Any]) -> None:
    kernel = _check(record, 3, "kernel: ens5f0 auto VFs set to disable")
    print(f"VFs disabled {kernel['seconds_since_block']} s after the block")
    assert kernel["seconds_since_block"] < DOWN_WINDOW_S
    status = _check(record, 3, "status: ens5f0 Down")
    assert status["reason"] == "PartnerExpired"
    events = _check(record, 3, "a LACPDown Event")
    assert events["lacpdown_events"] >= 1


def test_enable_vf_and_pf1_untouched(record: dict[str, Any]) -> None:
    evidence = _check(record, 3, "kernel: ens5f1 VFs all auto")
    assert set(evidence["ens5f1_vfs"]) == {"auto"}
    # The step's check compares the whole list, vf2 included; this names it.
    step3 = record["scenario"]["steps"][2]["checks"][0]
    assert step3["observed"], step3["error"]
    assert f"vf{ENABLE_VF} still enable" in step3["name"]


def test_recovery_seen(record: dict[str, Any]) -> None:
    _check(record, 4, "filter removed")
    kernel = _check(record, 5, "kernel: ens5f0 VFs back to auto")
    status = _check(record, 5, "status: both PFs Up")
    _check(record, 5, "a LACPUp Event")
    print(
        f"VFs back to auto {kernel['seconds_since_unblock']} s and status Up "
        f"{status['seconds_since_unblock']} s after the unblock"
    )
