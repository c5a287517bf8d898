"""The demo's story, played inside the kernel guest against the API server on the host.

Run by hack/e2e/demo.py through hack/kernel/run-in-guest.sh; it reads its inputs
from and writes its results to $PFSR_RESULTS:

- inputs: ``agent-env.json`` (the agent's environment from the controller's
  DaemonSet), ``agent.kubeconfig`` and ``admin.kubeconfig`` (pointed at the API
  server through the guest's NIC);
- outputs: ``scenario.json`` (every step and check: observed, seconds, evidence)
  and ``agent.log``.

The guest's root namespace is the node: two netdevsim PFs with VFs, each alone in
an 802.3ad fast bond facing a partner bond in the "switch" namespace
(tests/kernel/topology.py). Exit code 0 only when every check was observed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from api import agentconfig
from hack.e2e.guestkube import KubeReader
from hack.e2e.guestnode import AgentProcess, configure_nic, virtio_nic, wait_apiserver_port
from hack.e2e.guestpython import GUEST_ENV as PYTHONPATH_ENV
from hack.e2e.liveview import CheckFailed, LiveView, Step
from hack.e2e.monitorview import InterfaceView, MonitorView

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "kernel"))

from topology import PFSpec, Topology  # type: ignore[import-not-found]  # noqa: E402

PF0, PF1 = "ens5f0", "ens5f1"
WANTED_VFS = 5
ENABLE_VF = 2
# The agent's first report waits for its Python imports over 9p under TCG: 219 s
# once with other guests running on a 2-core host.
FIRST_REPORT_TIMEOUT_S = 480.0
# LACP fast rate times a partner out after 3 s; the rest is margin for TCG.
KERNEL_TIMEOUT_S = 30.0
# Renegotiation after the filter is removed took 27.7 s once under TCG on a busy
# 2-core host, so recovery gets a wider margin.
RECOVERY_TIMEOUT_S = 90.0
STATUS_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.2

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> tuple[T, float]:
    """Call ``probe`` until it returns a value other than None; return it and the seconds."""
    started = time.monotonic()
    last_error = ""
    while True:
        try:
            value = probe()
        except Exception as error:  # a failed read is retried until the timeout
            value, last_error = None, f"{type(error).__name__}: {error}"
        if value is not None:
            return value, time.monotonic() - started
        if time.monotonic() - started > timeout:
            detail = f" (last error: {last_error})" if last_error else ""
            raise TimeoutError(f"{what} not seen within {timeout:.0f} s{detail}")
        time.sleep(POLL_INTERVAL_S)


class Scenario:
    """The node, the agent and the checks of every step."""

    def __init__(self, results: Path, view: LiveView) -> None:
        self.results = results
        self.view = view
        env: dict[str, str] = json.loads((results / "agent-env.json").read_text())
        self.agent_env = env
        self.monitor = MonitorView(
            KubeReader(results / "admin.kubeconfig"),
            env[agentconfig.ENV_MONITOR_NAMESPACE],
            env[agentconfig.ENV_MONITOR_NAME],
            env[agentconfig.ENV_NODE_NAME],
        )
        self.agent = AgentProcess(env, results / "agent.kubeconfig", results / "agent.log")
        self.topology = Topology([PFSpec(name=PF0, num_vfs=0), PFSpec(name=PF1, num_vfs=0)])
        self.num_vfs = 0
        self._lacpdown_before = 0
        self._lacpup_before = 0

    # --- expected VF states ------------------------------------------------

    def vfs(self, state: str, enable_vf: int | None) -> list[str]:
        states = [state] * self.num_vfs
        if enable_vf is not None:
            states[enable_vf] = "enable"
        return states

    def vf_table(self) -> str:
        lines = []
        for pf in (PF0, PF1):
            states = self.topology.vf_link_states(pf)
            cells = "  ".join(f"vf{i} {s:<7}" for i, s in enumerate(states))
            carrier = "up" if self.topology.carrier(pf) else "DOWN"
            lines.append(f"{pf} (carrier {carrier}): {cells}")
        return "\n".join(lines)

    def wait_vfs(self, pf: str, expected: list[str], timeout: float) -> float:
        def probe() -> list[str] | None:
            states = self.topology.vf_link_states(pf)
            return states if states == expected else None

        try:
            return wait_for(probe, timeout, f"{pf} VFs {expected}")[1]
        except TimeoutError as error:
            raise CheckFailed(f"{error}; kernel has {self.topology.vf_link_states(pf)}") from None

    def wait_interfaces(
        self, want: dict[str, str], ready: str | None, timeout: float
    ) -> dict[str, InterfaceView]:
        """Wait until the status shows every PF of ``want`` in its LACP state."""

        def probe() -> dict[str, InterfaceView] | None:
            monitor = self.monitor.get()
            views = self.monitor.interfaces(monitor)
            if ready is not None and self.monitor.ready(monitor) != ready:
                return None
            if all(name in views and views[name].lacp_state == s for name, s in want.items()):
                return views
            return None

        try:
            return wait_for(probe, timeout, f"status {want} (Ready {ready})")[0]
        except TimeoutError as error:
            monitor = self.monitor.get()
            seen = {n: str(v) for n, v in self.monitor.interfaces(monitor).items()}
            ready_now = self.monitor.ready(monitor)
            raise CheckFailed(f"{error}; status has {seen}, Ready {ready_now!r}") from None

    def wait_event(self, reason: str, before: int, timeout: float) -> int:
        def probe() -> int | None:
            count = self.monitor.event_count(reason)
            return count if count > before else None

        return wait_for(probe, timeout, f"a new {reason} Event")[0]

    def show(self, heading: str, produce: Callable[[], str]) -> None:
        """Print an excerpt; a failure to produce it is printed instead, the story goes on."""
        try:
            text = produce()
        except Exception as error:  # an excerpt is for the reader, not a check
            text = f"(not available: {type(error).__name__}: {error})"
        self.view.show(heading, text)

    # --- setup -------------------------------------------------------------

    def setup(self, step: Step) -> None:
        view = self.view
        with view.check(step, "guest NIC reaches the API server on the host") as check:
            nic = virtio_nic()
            configure_nic(nic)
            seconds = wait_apiserver_port(60.0)
            version = self.monitor.reader.get_json("/version")
            check.evidence.update(nic=nic, connect_seconds=round(seconds, 2), version=version)
            check.evidence["summary"] = f"{nic} -> kube-apiserver {version.get('gitVersion')}"

        with view.check(
            step, "PFs with VFs, each in an 802.3ad fast bond, LACP negotiated"
        ) as check:
            topology = self.topology
            topology.setup()
            limit = topology.max_vfs_default or 0
            raisable = bool(topology.max_vfs_raisable)
            self.num_vfs = WANTED_VFS if raisable or limit >= WANTED_VFS else limit
            if self.num_vfs <= ENABLE_VF:
                raise CheckFailed(f"netdevsim allows {self.num_vfs} VFs, the story needs 3")
            for pf in (PF0, PF1):
                topology.set_num_vfs(pf, self.num_vfs)
            topology.set_vf_link_state(PF0, ENABLE_VF, "enable")
            negotiated = topology.wait_negotiated(timeout=60.0)
            check.evidence.update(
                vfs_per_pf=self.num_vfs,
                negotiation_seconds=round(negotiated, 2),
                lacp={pf: str(topology.lacp_state(pf)) for pf in (PF0, PF1)},
            )
            check.evidence["summary"] = (
                f"{self.num_vfs} VFs per PF, vf{ENABLE_VF} of {PF0} set to enable by the admin"
            )
        if not all(check.observed for check in step.checks):
            return
        self.show("VF link states (ip link)", self.vf_table)

        with view.check(step, "agent started with the DaemonSet's environment") as check:
            self.agent.start()
            time.sleep(1.0)
            if not self.agent.running():
                raise CheckFailed(f"agent exited with {self.agent.exit_code()}; see agent.log")
            check.evidence.update(
                argv=self.agent.argv,
                env=self.agent_env,
                pythonpath=os.environ.get(PYTHONPATH_ENV, ""),
            )
            check.evidence["summary"] = " ".join(
                f"{k}={v}"
                for k, v in sorted(self.agent_env.items())
                if k.startswith(("PFSR_I", "NODE"))
            )

    # --- the story ---------------------------------------------------------

    def step_ready(self) -> None:
        step = self.view.step("monitor Ready, both PFs Up")
        self.setup(step)
        if not all(check.observed for check in step.checks):
            return
        with self.view.check(step, "status: Ready True, both PFs Up") as check:
            views = self.wait_interfaces({PF0: "Up", PF1: "Up"}, "True", FIRST_REPORT_TIMEOUT_S)
            check.evidence["interfaces"] = {n: str(v) for n, v in views.items()}
            check.evidence["summary"] = "; ".join(str(views[n]) for n in (PF0, PF1))
        self.show("kubectl get pflm", self.monitor.kubectl_monitor)

    def step_block(self) -> float:
        step = self.view.step(f"the switch stops answering LACP on the port of {PF0}")
        blocked_at = time.monotonic()
        with self.view.check(step, "LACPDUs dropped at the switch port, carrier stays up") as check:
            self._lacpdown_before = self.monitor.event_count("LACPDown")
            blocked_at = time.monotonic()
            self.topology.block_lacp_at_switch(PF0)
            carrier = self.topology.carrier(PF0)
            mii_up = self.topology.lacp_state(PF0).mii_up
            # netdevsim sets no operstate (it stays "unknown"), so carrier and the
            # bond's MII status are what a switch-side LACP failure must leave up.
            check.evidence.update(
                carrier=carrier, mii_up=mii_up, operstate=self.topology.operstate(PF0)
            )
            if not carrier or not mii_up:
                raise CheckFailed(f"{PF0} carrier {carrier}, bond MII status up {mii_up}")
            check.evidence["summary"] = (
                f"tc flower drops ethertype 0x8809; {PF0} carrier 1, MII status up"
            )
        return blocked_at

    def step_down(self, blocked_at: float) -> None:
        step = self.view.step(f"{PF0} Down, its auto VFs disabled, the enable VF untouched")
        with self.view.check(
            step, f"kernel: {PF0} auto VFs set to disable, vf{ENABLE_VF} still enable"
        ) as check:
            self.wait_vfs(PF0, self.vfs("disable", ENABLE_VF), KERNEL_TIMEOUT_S)
            check.evidence["seconds_since_block"] = round(time.monotonic() - blocked_at, 2)
            check.evidence["lacp"] = str(self.topology.lacp_state(PF0))
            check.evidence["summary"] = (
                f"{check.evidence['seconds_since_block']:.1f} s after the block"
            )
        with self.view.check(
            step, f"kernel: {PF1} VFs all auto, carrier of {PF0} still up"
        ) as check:
            states = self.topology.vf_link_states(PF1)
            check.evidence[f"{PF1}_vfs"] = states
            if states != self.vfs("auto", None):
                raise CheckFailed(f"{PF1} VFs {states}")
            if not self.topology.carrier(PF0):
                raise CheckFailed(f"{PF0} lost carrier")
            check.evidence["summary"] = f"{PF1}: {states.count('auto')} auto"
        self.show("VF link states (ip link)", self.vf_table)
        with self.view.check(
            step, f"status: {PF0} Down with its reason, {PF1} Up, Ready False"
        ) as check:
            views = self.wait_interfaces({PF0: "Down", PF1: "Up"}, "False", STATUS_TIMEOUT_S)
            check.evidence["seconds_since_block"] = round(time.monotonic() - blocked_at, 2)
            check.evidence["interfaces"] = {n: str(v) for n, v in views.items()}
            if not views[PF0].reason:
                raise CheckFailed(f"{PF0} is Down without a reason")
            check.evidence["reason"] = views[PF0].reason
            check.evidence["summary"] = str(views[PF0])
        self.show("kubectl get pflm", self.monitor.kubectl_monitor)
        with self.view.check(step, "a LACPDown Event regarding the monitor") as check:
            count = self.wait_event("LACPDown", self._lacpdown_before, STATUS_TIMEOUT_S)
            check.evidence["lacpdown_events"] = count
            check.evidence["summary"] = f"{count} LACPDown Event(s)"
        self.show(
            "kubectl get events --field-selector reason=LACPDown",
            lambda: self.monitor.kubectl_events("LACPDown"),
        )

    def step_unblock(self) -> float:
        step = self.view.step(f"the switch answers LACP on the port of {PF0} again")
        unblocked_at = time.monotonic()
        with self.view.check(step, "filter removed, LACP negotiated again") as check:
            self._lacpup_before = self.monitor.event_count("LACPUp")
            unblocked_at = time.monotonic()
            self.topology.unblock(PF0)
            seconds = self.topology.wait_negotiated(timeout=RECOVERY_TIMEOUT_S, pfs=[PF0])
            check.evidence["negotiation_seconds"] = round(seconds, 2)
            check.evidence["lacp"] = str(self.topology.lacp_state(PF0))
            check.evidence["summary"] = f"{PF0} actor and partner 0x3f after {seconds:.1f} s"
        return unblocked_at

    def step_recovered(self, unblocked_at: float) -> None:
        step = self.view.step("everything back to Up and auto")
        with self.view.check(
            step, f"kernel: {PF0} VFs back to auto, vf{ENABLE_VF} still enable"
        ) as check:
            self.wait_vfs(PF0, self.vfs("auto", ENABLE_VF), RECOVERY_TIMEOUT_S)
            check.evidence["seconds_since_unblock"] = round(time.monotonic() - unblocked_at, 2)
            check.evidence["summary"] = (
                f"{check.evidence['seconds_since_unblock']:.1f} s after the unblock"
            )
        self.show("VF link states (ip link)", self.vf_table)
        with self.view.check(step, "status: both PFs Up, Ready True") as check:
            views = self.wait_interfaces({PF0: "Up", PF1: "Up"}, "True", STATUS_TIMEOUT_S)
            check.evidence["seconds_since_unblock"] = round(time.monotonic() - unblocked_at, 2)
            check.evidence["interfaces"] = {n: str(v) for n, v in views.items()}
            if views[PF0].vfs_disabled != 0:
                raise CheckFailed(f"status still counts {views[PF0].vfs_disabled} disabled VFs")
            check.evidence["summary"] = "; ".join(str(views[n]) for n in (PF0, PF1))
        self.show("kubectl get pflm", self.monitor.kubectl_monitor)
        with self.view.check(step, "a LACPUp Event regarding the monitor") as check:
            count = self.wait_event("LACPUp", self._lacpup_before, STATUS_TIMEOUT_S)
            check.evidence["lacpup_events"] = count
            check.evidence["summary"] = f"{count} LACPUp Event(s)"

    # --- run ---------------------------------------------------------------

    def run(self) -> bool:
        try:
            self.step_ready()
            if not self.view.steps[0].observed:
                self.view.note("step 1 was not observed, so the rest of the story is not played")
                return False
            blocked_at = self.step_block()
            self.step_down(blocked_at)
            unblocked_at = self.step_unblock()
            self.step_recovered(unblocked_at)
        finally:
            self.cleanup()
        return self.view.all_observed

    def cleanup(self) -> None:
        code = self.agent.stop()
        self.view.info["agent_exit_code"] = code
        self.view.note(f"agent stopped (exit code {code}); VFs stay as they are on SIGTERM")
        self.topology.teardown()
        self.view.note("topology removed (netdevsim devices, bonds, switch namespace)")


def main() -> int:
    results = Path(os.environ.get("PFSR_RESULTS", ""))
    if not os.environ.get("PFSR_IN_GUEST") or not (results / "agent-env.json").is_file():
        print(
            "guest_scenario: run by hack/e2e/demo.py inside the kernel guest "
            "(needs PFSR_IN_GUEST=1 and $PFSR_RESULTS/agent-env.json)",
            file=sys.stderr,
        )
        return 2
    view = LiveView()
    view.info["kernel"] = os.uname().release
    scenario = Scenario(results, view)
    try:
        ok = scenario.run()
    finally:
        view.write(results / "scenario.json")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
