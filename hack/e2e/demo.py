"""``make demo``: the whole product on one machine, with no NIC and no cluster.

    python -m hack.e2e.demo [--run-dir DIR]

1. Gets the guest kernel and kube-apiserver with etcd from their caches, or
   builds them (a cold first run; see docs/demo.md).
2. Starts kube-apiserver and etcd on loopback, applies config/crd, config/rbac,
   a Node ``worker-0`` and the sample monitor, and starts the real controller.
3. Waits for the agent DaemonSet that the controller writes and derives the
   agent's environment from its pod template (no kubelet runs).
4. Boots the kernel guest as the node; hack/e2e/guest_scenario.py builds the PFs
   and the switch, runs the real agent and plays the story step by step.

Everything goes to a run folder (default ``_out/demo-<timestamp>``): logs of the
API server, etcd, controller, agent and the guest console, and ``demo.json``
with every step. Exit code 0 only when every step was observed; 1 when a step
was not; 2 when the demo could not start. Ctrl-C or SIGTERM stops everything it
started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from hack.e2e import cluster
from hack.e2e.agentenv import agent_env
from hack.e2e.guestnet import qemu_options, write_guest_kubeconfig, write_relay_command
from hack.e2e.guestpython import GUEST_ENV as PYTHONPATH_ENV
from hack.e2e.guestpython import package_zip
from hack.e2e.guestrun import GuestRun
from hack.e2e.prerequisites import PrerequisiteError, prepare
from hack.testbed.apiserver import APIServer
from hack.testbed.identities import ADMIN, AGENT
from hack.testbed.process import ManagedProcess

LOG = logging.getLogger("demo")

REPO_ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = REPO_ROOT / "_out"
EXIT_NOT_OBSERVED = 1
EXIT_SETUP_FAILED = 2


class Demo:
    """The processes of one demo run and the folder that keeps their logs."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.logs = run_dir / "logs"
        self.guest_dir = run_dir / "guest"
        self.server: APIServer | None = None
        self.controller: ManagedProcess | None = None
        self.guest: GuestRun | None = None
        self.timings: dict[str, float] = {}
        self.facts: dict[str, Any] = {}
        self._started = time.monotonic()

    def say(self, message: str) -> None:
        elapsed = time.monotonic() - self._started
        print(f"[demo {elapsed:6.1f} s] {message}", flush=True)

    def _timed(self, name: str, started: float) -> float:
        seconds = round(time.monotonic() - started, 2)
        self.timings[name] = seconds
        return seconds

    def run(self) -> int:
        """Play the whole demo; return the exit code."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.guest_dir.mkdir(parents=True, exist_ok=True)

        self.say("kernel and kube-apiserver: from the cache, or built now (cold run)")
        started = time.monotonic()
        prerequisites = prepare()
        self._timed("prerequisites", started)
        self.facts.update(
            kernel=str(prerequisites.bzimage),
            kernel_was_cached=prerequisites.kernel_was_cached,
            apiserver_was_cached=prerequisites.apiserver_was_cached,
        )
        self.say(
            f"kernel {prerequisites.bzimage} ({_cached(prerequisites.kernel_was_cached)}, "
            f"{prerequisites.kernel_seconds:.0f} s); kube-apiserver "
            f"{prerequisites.binaries.kube_apiserver} "
            f"({_cached(prerequisites.apiserver_was_cached)}, "
            f"{prerequisites.apiserver_seconds:.0f} s)"
        )

        started = time.monotonic()
        self.server = APIServer(
            binaries=prerequisites.binaries,
            kubeconfig_dir=self.run_dir / "kubeconfig",
            keep_dir=True,
        )
        self.server.start()
        self.say(
            f"kube-apiserver and etcd on {self.server.url} ({self._timed('apiserver', started)} s)"
        )

        started = time.monotonic()
        cluster.apply_manifests(self.server)
        self.say(
            "applied config/crd, config/rbac, Node worker-0 (label kubernetes.io/hostname; "
            "no kubelet runs) and config/samples/pfstatusrelay_v1alpha1_pflacpmonitor.yaml "
            f"({self._timed('manifests', started)} s)"
        )

        started = time.monotonic()
        self.controller = cluster.controller_process(self.server, self.logs / "controller.log")
        self.controller.start()
        daemonset = cluster.wait_daemonset(self.server, self.controller)
        env = agent_env(daemonset, cluster.NODE_NAME)
        self.facts.update(daemonset=daemonset["metadata"]["name"], agent_env=env)
        self.say(
            f"controller (pid {self.controller.pid}) wrote DaemonSet "
            f"{daemonset['metadata']['name']} ({self._timed('daemonset', started)} s); "
            "no kubelet runs, so the demo starts its agent in the guest with the pod "
            "template's environment:"
        )
        for name, value in sorted(env.items()):
            print(f"    {name}={value}", flush=True)

        self._prepare_guest(env)
        self.say("booting the kernel guest as node worker-0 (qemu TCG; the story follows)")
        started = time.monotonic()
        self.guest = GuestRun(
            self.guest_dir,
            qemu_options(self.run_dir / "apiserver-relay.sh"),
            prerequisites.bzimage,
            self.logs / "guest-console.log",
            guest_env={PYTHONPATH_ENV: str(package_zip())},
        )
        guest_code = self.guest.run()
        self._timed("guest", started)
        return self._conclude(guest_code)

    def _prepare_guest(self, env: dict[str, str]) -> None:
        assert self.server is not None
        (self.guest_dir / "agent-env.json").write_text(json.dumps(env, indent=2) + "\n")
        write_guest_kubeconfig(
            self.server.kubeconfig(AGENT.name), self.guest_dir / "agent.kubeconfig"
        )
        write_guest_kubeconfig(
            self.server.kubeconfig(ADMIN.name), self.guest_dir / "admin.kubeconfig"
        )
        write_relay_command(self.run_dir / "apiserver-relay.sh", self.server.port)
        for stale in ("scenario.json", "agent.log"):
            (self.guest_dir / stale).unlink(missing_ok=True)

    def _conclude(self, guest_code: int) -> int:
        scenario_path = self.guest_dir / "scenario.json"
        scenario: dict[str, Any] = {}
        if scenario_path.is_file():
            scenario = json.loads(scenario_path.read_text())
        self.write_record(guest_code, scenario)

        print("", flush=True)
        self.say(f"summary (guest exit code {guest_code}):")
        for step in scenario.get("steps") or []:
            mark = "\u2713" if step["observed"] else "\u2717"
            seconds = sum(check["seconds"] for check in step["checks"])
            print(
                f"    {mark} step {step['number']}: {step['title']} ({seconds:.1f} s)", flush=True
            )
        observed = bool(scenario.get("all_observed")) and guest_code == 0
        if not scenario:
            self.say(f"the guest wrote no {scenario_path}; see the guest console log")
        if self.server is not None:
            print(self.server.kubectl("get", "pflm", "-A").stdout.rstrip(), flush=True)
        return 0 if observed else EXIT_NOT_OBSERVED

    def write_record(self, guest_code: int | None, scenario: dict[str, Any]) -> None:
        record = {
            "guest_exit_code": guest_code,
            "timings": self.timings,
            "facts": self.facts,
            "scenario": scenario,
        }
        (self.run_dir / "demo.json").write_text(json.dumps(record, indent=2) + "\n")

    def cleanup(self) -> None:
        """Stop the guest, the controller and the API server, keeping their logs."""
        if self.guest is not None:
            self.guest.stop()
        if self.controller is not None:
            self.controller.stop()
        if self.server is not None:
            root = self.server.root_dir
            self.server.stop()
            if root is not None:
                with contextlib.suppress(OSError):
                    shutil.copytree(root / "logs", self.logs / "apiserver", dirs_exist_ok=True)
                shutil.rmtree(root, ignore_errors=True)
        (self.run_dir / "apiserver-relay.sh").unlink(missing_ok=True)
        if not (self.run_dir / "demo.json").is_file():
            self.write_record(None, {})
        self.timings["total"] = round(time.monotonic() - self._started, 2)
        self.say(f"stopped everything it started; total {self.timings['total']:.0f} s")
        self.say(f"logs in {self.logs}: controller.log, apiserver/, guest-console.log")
        self.say(f"agent log {self.guest_dir / 'agent.log'}; record {self.run_dir / 'demo.json'}")


def _cached(was_cached: bool) -> str:
    return "cached" if was_cached else "built now"


class _Stop(Exception):
    """Raised by the SIGTERM handler, so that cleanup runs as for Ctrl-C."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hack.e2e.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        help="folder for logs and demo.json (default: _out/demo-<timestamp>)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[demo] %(levelname)s %(name)s: %(message)s")
    run_dir = args.run_dir or OUT_DIR / f"demo-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_stop)
    demo = Demo(run_dir)
    code = EXIT_SETUP_FAILED
    try:
        code = demo.run()
    except (KeyboardInterrupt, _Stop) as stop:
        demo.say(f"interrupted ({type(stop).__name__} {stop}), stopping")
        code = 130
    except (PrerequisiteError, cluster.ClusterError, RuntimeError) as error:
        demo.say(f"failed: {error}")
        code = EXIT_SETUP_FAILED
    finally:
        with contextlib.suppress(KeyboardInterrupt, _Stop):
            demo.cleanup()
    return code


if __name__ == "__main__":
    sys.exit(main())
