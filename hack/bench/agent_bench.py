"""Agent half of make bench: reaction times, VF write scaling, memory and idle CPU.

Runs as root inside the qemu guest (``hack/kernel/run-in-guest.sh``), on the kernel
testbed's topology (``tests/kernel/topology.py``): two netdevsim PFs, each alone in
an 802.3ad fast bond against a partner bond in a switch namespace. It compares the
real ``pf-status-relay-agent`` process with the upstream-style comparison agent
(``hack.bench.upstream_agent``), both at pollingInterval 1000 ms, and writes
``agent.json`` into $PFSR_RESULTS.

Reaction time: an observer in this process reads PF 0 with one RTM_GETLINK per
sample (bond slave states and VF states in the same reply, so one clock). t0 is the
first sample in which the kernel's actor or partner state is down by the upstream
rule, which flips no later than the real agent's rule. t1 is the first sample in
which every VF of the PF reads ``disable``. The gap between consecutive samples is
the resolution of both stamps and is reported. A random delay of up to one polling
interval before each injection samples the polling agent's phase fairly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "kernel"))

from topology import PFSpec, Topology  # type: ignore[import-not-found]  # noqa: E402

from hack.bench.procfs import machine, memory_kib, process_times  # noqa: E402
from hack.bench.rtnl import VF_AUTO, VF_DISABLE, LinkSample, Rtnl, ifindex  # noqa: E402
from hack.bench.stats import summarize  # noqa: E402
from hack.bench.upstream_agent import upstream_lacp_up  # noqa: E402

log = logging.getLogger("agent-bench")

PFS = ("ens5f0", "ens5f1")
POLLING_INTERVAL_MS = 1000
MODES = ("block_lacp_to_host", "block_lacp_at_switch")
AGENTS = ("ours", "upstream")
BAD_TIMEOUT_S = 20.0
VF_TIMEOUT_S = 15.0


def agent_command(agent: str) -> list[str]:
    """Return the argv that starts ``agent`` on both PFs at pollingInterval 1000 ms."""
    venv_bin = Path(sys.executable).parent
    interfaces = ",".join(PFS)
    if agent == "ours":
        return [
            str(venv_bin / "pf-status-relay-agent"),
            f"--interfaces={interfaces}",
            "--node=bench",
            "--no-report",
            f"--polling-interval={POLLING_INTERVAL_MS}",
            "--metrics-port=0",
            "--health-port=0",
        ]
    return [
        sys.executable,
        "-m",
        "hack.bench.upstream_agent",
        f"--interfaces={interfaces}",
        f"--polling-interval={POLLING_INTERVAL_MS}",
    ]


class BenchTopology(Topology):  # type: ignore[misc]
    """The kernel testbed's Topology, waiting for udev to rename new netdevsim ports.

    The guest runs udevd, which renames a new port (eth0 to eni10np1) a moment after
    it appears; Topology reads the name once, so under load it can read the old name.
    """

    @staticmethod
    def _wait_port_name(dev_id: int, timeout: float = 10.0) -> str:
        subprocess.run(["udevadm", "settle", f"--timeout={int(timeout)}"], check=False)
        name: str = Topology._wait_port_name(dev_id, timeout)
        return name


@dataclass
class Observer:
    """Samples PF 0 over netlink in a loop, with a short sleep that leaves CPU to the agent."""

    index: int
    pause_s: float
    rtnl: Rtnl = field(default_factory=Rtnl)
    gaps: list[float] = field(default_factory=list)
    """Seconds between the two samples around each stamp: its resolution."""

    def wait(self, condition: Callable[[LinkSample], bool], timeout: float) -> float | None:
        """Return the monotonic time of the first sample meeting ``condition``, None on timeout."""
        deadline = time.monotonic() + timeout
        previous = time.monotonic()
        while True:
            sample = self.rtnl.get_link(self.index)
            now = time.monotonic()
            if condition(sample):
                self.gaps.append(now - previous)
                return now
            if now > deadline:
                return None
            previous = now
            time.sleep(self.pause_s)


def lacp_down(sample: LinkSample) -> bool:
    if sample.actor is None or sample.partner is None:
        return True
    return not upstream_lacp_up(sample.actor, sample.partner)


def lacp_up(sample: LinkSample) -> bool:
    return not lacp_down(sample)


def all_vfs(state: int) -> Callable[[LinkSample], bool]:
    return lambda sample: bool(sample.vf_states) and all(s == state for s in sample.vf_states)


class AgentProcess:
    """One agent process with its log in $TMPDIR."""

    def __init__(self, agent: str, log_dir: Path, run: int) -> None:
        self.agent = agent
        self.log_path = log_dir / f"{agent}-{run}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            agent_command(agent), cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.started = time.monotonic()

    def wait_started(self, timeout: float = 180.0) -> float:
        """Wait for the agent's start line in its log; return the seconds since the launch."""
        marker = b"agent started"  # both agents log it once their loop runs
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.agent} agent exited; log in {self.log_path}")
            if marker in self.log_path.read_bytes():
                return time.monotonic() - self.started
            time.sleep(0.2)
        raise RuntimeError(f"{self.agent} agent did not start within {timeout} s")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def reset_vfs(rtnl: Rtnl, topo: Topology) -> None:
    """Put every VF of every PF back to auto, so each run starts from the same state."""
    for pf in PFS:
        index = ifindex(pf)
        changes = [(vf, VF_AUTO) for vf in range(topo.pf(pf).num_vfs)]
        if changes:
            rtnl.set_vf_states(index, changes)


def settle(topo: Topology, observer: Observer) -> None:
    """Wait until LACP is negotiated on both sides and PF 0's VFs are all auto."""
    topo.wait_negotiated(timeout=60.0)
    if observer.wait(all_vfs(VF_AUTO), timeout=VF_TIMEOUT_S) is None:
        raise RuntimeError("VFs of ens5f0 did not return to auto after recovery")


def run_cycle(topo: Topology, observer: Observer, mode: str) -> dict[str, Any]:
    """Inject one failure on PF 0, stamp kernel and VF transitions both ways, recover."""
    time.sleep(random.uniform(0, POLLING_INTERVAL_MS / 1000))
    injected = time.monotonic()
    getattr(topo, mode)(0)
    result: dict[str, Any] = {"mode": mode}
    t0 = observer.wait(lacp_down, BAD_TIMEOUT_S)
    t1 = observer.wait(all_vfs(VF_DISABLE), VF_TIMEOUT_S) if t0 is not None else None
    result["kernel_down_after_inject_s"] = None if t0 is None else t0 - injected
    result["reaction_s"] = None if t0 is None or t1 is None else t1 - t0
    topo.unblock(0)
    t2 = observer.wait(lacp_up, BAD_TIMEOUT_S * 2)
    t3 = observer.wait(all_vfs(VF_AUTO), VF_TIMEOUT_S) if t2 is not None else None
    result["recovery_s"] = None if t2 is None or t3 is None else t3 - t2
    settle(topo, observer)
    return result


def measure_idle(process: AgentProcess, seconds: float) -> dict[str, float]:
    """Measure CPU (% of one core) and memory of an agent left alone for ``seconds``."""
    pid = process.proc.pid
    cpu_before, wall_before = process_times(pid), time.monotonic()
    time.sleep(seconds)
    cpu_after, wall_after = process_times(pid), time.monotonic()
    memory = memory_kib(pid)
    return {
        "idle_seconds": wall_after - wall_before,
        "cpu_percent": 100 * (cpu_after - cpu_before) / (wall_after - wall_before),
        "rss_kib": memory["VmRSS"],
        "hwm_kib": memory["VmHWM"],
    }


def run_reactions(
    topo: Topology, observer: Observer, cycles: int, idle_s: float, log_dir: Path
) -> dict[str, Any]:
    """Run both agents in the order A B B A, half the cycles of each mode per run."""
    results: dict[str, Any] = {a: {"cycles": [], "idle": None, "exit_codes": []} for a in AGENTS}
    halves = [cycles - cycles // 2, cycles // 2]
    order = [
        ("ours", halves[0]),
        ("upstream", halves[0]),
        ("upstream", halves[1]),
        ("ours", halves[1]),
    ]
    for run, (agent, count) in enumerate(order):
        if count == 0:
            continue
        reset_vfs(observer.rtnl, topo)
        process = AgentProcess(agent, log_dir, run)
        log.info("run %s: %s agent, %s cycles per mode", run, agent, count)
        results[agent].setdefault("start_s", []).append(process.wait_started())
        time.sleep(5.0)  # a few polls, so start-up work is over before anything is measured
        if results[agent]["idle"] is None and idle_s > 0:
            results[agent]["idle"] = measure_idle(process, idle_s)
            log.info("%s idle: %s", agent, results[agent]["idle"])
        for mode in MODES:
            for i in range(count):
                if not process.alive():
                    raise RuntimeError(f"{agent} agent exited; log in {process.log_path}")
                cycle = run_cycle(topo, observer, mode)
                cycle["run"] = run
                results[agent]["cycles"].append(cycle)
                log.info("%s %s %s/%s: %s", agent, mode, i + 1, count, cycle)
        results[agent]["exit_codes"].append(process.stop())
    return results


def summarize_reactions(results: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for agent in AGENTS:
        for mode in MODES:
            cycles = [c for c in results[agent]["cycles"] if c["mode"] == mode]
            reactions = [c["reaction_s"] for c in cycles if c["reaction_s"] is not None]
            recoveries = [c["recovery_s"] for c in cycles if c["recovery_s"] is not None]
            summary[f"{agent}/{mode}"] = {
                "reaction_s": summarize(reactions),
                "recovery_s": summarize(recoveries),
                "missed": len(cycles) - len(reactions),
            }
    return summary


async def time_vf_writes(pf_index: int, num_vfs: int, repeats: int) -> dict[str, Any]:
    """Time a change of every VF: one batched RTM_SETLINK against one RTM_SETLINK per VF.

    Both use the agent's own netlink client and encoder (nodeagent.netlink), so the
    difference is the batching alone. Each repeat sets all VFs to disable, then back.
    """
    from nodeagent.links import VFLinkState
    from nodeagent.netlink import NetlinkClient

    client = NetlinkClient()
    batched: list[float] = []
    per_vf: list[float] = []
    try:
        for _ in range(repeats):
            for state in (VFLinkState.DISABLE, VFLinkState.AUTO):
                changes = [(vf, state) for vf in range(num_vfs)]
                start = time.perf_counter()
                await client.set_vf_link_states(pf_index, changes)
                batched.append(time.perf_counter() - start)
            for state in (VFLinkState.DISABLE, VFLinkState.AUTO):
                start = time.perf_counter()
                for vf in range(num_vfs):
                    await client.set_vf_link_states(pf_index, [(vf, state)])
                per_vf.append(time.perf_counter() - start)
    finally:
        client.close()
    return {"batched_s": summarize(batched), "per_vf_s": summarize(per_vf)}


async def agent_read_vfs(pf_name: str) -> int:
    """Return how many VFs the agent's own netlink client reads for ``pf_name``."""
    from nodeagent.netlink import NetlinkClient

    client = NetlinkClient()
    try:
        link = await client.get_link(pf_name)
    finally:
        client.close()
    return len(link.vfs) if link is not None else 0


def scaling_counts(default_max: int, raisable: bool, limit: int) -> list[int]:
    """Return 1, 2, 4, ... up to netdevsim's limit (or ``limit`` when it can be raised)."""
    top = max(default_max, limit) if raisable else default_max
    counts = []
    n = 1
    while n <= top:
        counts.append(n)
        n *= 2
    for extra in (default_max, top):
        if extra not in counts and extra > 0:
            counts.append(extra)
    return sorted(counts)


def run_scaling(topo: Topology, limit: int, repeats: int) -> dict[str, Any]:
    """Time batched against per-VF writes on PF 0 for growing VF counts."""
    default_max = topo.max_vfs_default or 0
    raisable = bool(topo.max_vfs_raisable)
    rows: list[dict[str, Any]] = []
    rtnl = Rtnl()
    index = ifindex(PFS[0])
    try:
        for n in scaling_counts(default_max, raisable, limit):
            row: dict[str, Any] = {"vfs": n}
            try:
                topo.set_num_vfs(0, n)
                row.update(asyncio.run(time_vf_writes(index, n, repeats)))
                rtnl.set_vf_states(index, [(vf, VF_DISABLE) for vf in range(n)])
                states = rtnl.get_link(index).vf_states
                row["read_back_vfs"] = len(states)
                row["read_back_ok"] = len(states) == n and all(s == VF_DISABLE for s in states)
                # The agent requests no VF statistics from the kernel, so its VF list is smaller
                # than the observer's and may fit where the observer's is cut short.
                row["agent_read_vfs"] = asyncio.run(agent_read_vfs(PFS[0]))
            except Exception as error:  # a VF count the kernel rejects is a finding
                row["error"] = f"{type(error).__name__}: {error}"
            log.info("scaling: %s", row)
            rows.append(row)
    finally:
        rtnl.close()
    return {"max_vfs_default": default_max, "max_vfs_raisable": raisable, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description="Agent benchmarks; run in the qemu guest.")
    parser.add_argument("--cycles", type=int, default=20, help="failure cycles per agent and mode")
    parser.add_argument("--vfs", type=int, default=8, help="VFs per PF for the reaction runs")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="idle CPU window")
    parser.add_argument("--max-vfs", type=int, default=256, help="largest VF count to scale to")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per VF count")
    parser.add_argument("--sample-pause-ms", type=float, default=1.0, help="observer sleep")
    parser.add_argument(
        "--out", type=Path, default=None, help="output JSON (default $PFSR_RESULTS/agent.json)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if os.environ.get("PFSR_IN_GUEST") != "1":
        sys.exit(
            "agent_bench: run it in the qemu guest: hack/kernel/run-in-guest.sh (make bench-agent)"
        )
    out = args.out or Path(os.environ["PFSR_RESULTS"]) / "agent.json"
    log_dir = Path(os.environ.get("TMPDIR", "/tmp"))

    started = time.monotonic()
    result: dict[str, Any] = {"machine": machine(), "config": vars(args) | {"out": str(out)}}
    # VFs are added after setup, in the order that tests/kernel/conftest.py uses.
    topo = BenchTopology([PFSpec(name=pf, num_vfs=0) for pf in PFS])
    topo.setup()
    try:
        for pf in PFS:
            topo.set_num_vfs(pf, args.vfs)
        result["negotiation_s"] = topo.wait_negotiated(timeout=60.0)
        observer = Observer(ifindex(PFS[0]), args.sample_pause_ms / 1000)
        try:
            raw = run_reactions(topo, observer, args.cycles, args.idle_seconds, log_dir)
            result["agents"] = raw
            result["summary"] = summarize_reactions(raw)
            result["resolution_s"] = summarize(observer.gaps)
        finally:
            observer.rtnl.close()
        result["scaling"] = run_scaling(topo, args.max_vfs, args.repeats)
    finally:
        topo.teardown()
        for path in sorted(log_dir.glob("*.log")):
            # Keep the agents' last lines with the results, for a look after a bad run.
            lines = path.read_text(errors="replace").splitlines()
            (out.parent / f"agent-log-{path.name}").write_text("\n".join(lines[-200:]) + "\n")
    result["elapsed_s"] = time.monotonic() - started
    out.write_text(json.dumps(result, indent=2) + "\n")
    log.info("wrote %s after %.0f s", out, result["elapsed_s"])


if __name__ == "__main__":
    main()
