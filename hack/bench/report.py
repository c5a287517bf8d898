"""Render docs/benchmarks.md from the JSON that make bench writes (agent.json, controller.json).

The page is generated so that its figures always come from one real run: the
command, the date, the machine, every table, and a reading computed from the same
numbers. Edit this file, not the page.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hack.bench.stats import percentile, ratio

MODES = {
    "block_lacp_to_host": "host port expires (switch LACPDUs stop reaching the host)",
    "block_lacp_at_switch": "partner-only change (the switch stops receiving the host's LACPDUs)",
}
AGENT_NAMES = {"ours": "pf-status-relay-agent", "upstream": "upstream-style agent"}


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.0f}"


def times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}x"


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def machine_section(agent: dict[str, Any] | None, controller: dict[str, Any] | None) -> list[str]:
    lines = ["## Machine", ""]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    host = (controller or {}).get("machine")
    if host:
        lines.append(
            f"- Host: {host['cpus']} CPUs ({host['cpu_model']}), {host['memory_mib']} MiB, "
            f"Linux {host['kernel']}. Host load average (1, 5, 15 min) when the page was "
            f"written: {load}. The host is shared with other jobs, such as kernel builds, API "
            "servers and qemu guests."
        )
    guest = (agent or {}).get("machine")
    if guest:
        lines.append(
            f"- Guest: Linux {guest['kernel']} with bonding and netdevsim, {guest['cpus']} vCPUs, "
            f"{guest['memory_mib']} MiB, Python {guest['python']}, in qemu with TCG "
            "(software emulation, no KVM). Every instruction is emulated, so absolute times in "
            "the guest are many times what they would be on hardware: compare the two agents "
            "through ratios and distributions, not through single numbers."
        )
    return [*lines, ""]


def reaction_section(agent: dict[str, Any]) -> list[str]:
    config = agent["config"]
    resolution = agent.get("resolution_s") or {}
    intro = [
        "## Node agent: reaction to an LACP failure",
        "",
        f"Two netdevsim PFs with {config['vfs']} VFs each, every PF alone in an 802.3ad bond "
        "with `lacp_rate fast` against a partner bond in a switch namespace. Each cycle waits "
        "a random delay of up to one polling interval, injects a failure on `ens5f0`, waits "
        "for the VFs, removes the failure and waits for LACP and the VFs to recover. Both "
        "agents run at pollingInterval 1000 ms as separate processes, in the order ours, "
        f"upstream, upstream, ours, with {config['cycles']} cycles per agent and failure mode "
        "in total.",
        "",
        "- **Reaction**: from the first sample in which the kernel's actor or partner state "
        "of the PF is down to the first sample in which every VF of the PF reads `disable`. "
        "Down is judged by the upstream rule, which never flips later than ours.",
        "- **Recovery**: from the first sample with LACP up again to the first sample with "
        "every VF back to `auto`.",
        "- The observer samples the PF with one `RTM_GETLINK` (bond slave states and VFs in "
        "one reply) and sleeps 1 ms between samples. The gap between the two samples around "
        f"a stamp, which bounds its error, was p50 {ms(resolution.get('p50'))} ms, "
        f"p99 {ms(resolution.get('p99'))} ms, max {ms(resolution.get('max'))} ms. The "
        f"observer runs in the guest and shares its {agent['machine']['cpus']} vCPUs with the "
        "agent under test.",
        "- The upstream-style agent (`hack/bench/upstream_agent.py`) models the upstream Go "
        "daemon: every pollingInterval, each PF in turn, one `RTM_GETLINK`, the rule "
        '"actor and partner both have `state & 0x3c == 0x3c` and neither 0x40 nor 0x80", '
        "then one `RTM_SETLINK` per VF. No netlink events, no packet socket.",
        "",
    ]
    return [*intro, *reaction_tables(agent["summary"])]


def reaction_tables(summary: dict[str, Any]) -> list[str]:
    cycles = max(stats["reaction_s"].get("n", 0) for stats in summary.values())
    lines = ["Reaction in milliseconds:", ""]
    rows = []
    for mode in MODES:
        for name in ("ours", "upstream"):
            stats = summary[f"{name}/{mode}"]
            r = stats["reaction_s"]
            rows.append(
                [mode, AGENT_NAMES[name], str(r.get("n", 0))]
                + [ms(r.get(k)) for k in ("p50", "p90", "p99", "max")]
                + [str(stats["missed"])]
            )
    lines += table(["failure", "agent", "cycles", "p50", "p90", "p99", "max", "missed"], rows)
    lines += [
        f"With {cycles} cycles, p99 is interpolated between the two slowest cycles, so read "
        'it as "close to the worst seen". A missed cycle is one whose VFs were not all disabled '
        "within 15 s.",
        "",
        "Ratios, upstream-style over ours:",
        "",
    ]
    rows = []
    for mode in MODES:
        ours = summary[f"ours/{mode}"]
        upstream = summary[f"upstream/{mode}"]
        rows.append(
            [
                mode,
                times(ratio(upstream["reaction_s"].get("p50"), ours["reaction_s"].get("p50"))),
                times(ratio(upstream["reaction_s"].get("p99"), ours["reaction_s"].get("p99"))),
                times(ratio(upstream["recovery_s"].get("p50"), ours["recovery_s"].get("p50"))),
            ]
        )
    lines += table(["failure", "reaction p50", "reaction p99", "recovery p50"], rows)
    lines += ["Recovery in milliseconds:", ""]
    rows = []
    for mode in MODES:
        for name in ("ours", "upstream"):
            r = summary[f"{name}/{mode}"]["recovery_s"]
            rows.append(
                [mode, AGENT_NAMES[name], str(r.get("n", 0))]
                + [ms(r.get(k)) for k in ("p50", "p90", "p99", "max")]
            )
    lines += table(["failure", "agent", "cycles", "p50", "p90", "p99", "max"], rows)
    return lines


def scaling_section(agent: dict[str, Any]) -> list[str]:
    scaling = agent["scaling"]
    lines = [
        "## Node agent: cost of one VF-state change by VF count",
        "",
        "Every VF of `ens5f0` set from `auto` to `disable` and back, through the agent's own "
        "netlink client (`nodeagent.netlink`). The batched column is one `RTM_SETLINK` carrying "
        "all VFs, as the agent sends it. The per-VF column is one `RTM_SETLINK` per VF, as the "
        "upstream daemon sends them and as the agent falls back to when the kernel rejects a "
        "batch. Median of "
        f"{agent['config']['repeats'] * 2} changes per row, in milliseconds. netdevsim's "
        f"default VF limit was {scaling['max_vfs_default']}; raising it through debugfs "
        f"{'worked' if scaling['max_vfs_raisable'] else 'did not work'}.",
        "",
    ]
    rows = []
    for row in scaling["rows"]:
        if "error" in row:
            rows.append([str(row["vfs"]), "error", "", "", row["error"]])
            continue
        batched = row["batched_s"]["p50"]
        per_vf = row["per_vf_s"]["p50"]
        read_back = (
            "yes" if row.get("read_back_ok") else f"no ({row.get('read_back_vfs')} VFs read)"
        )
        rows.append(
            [
                str(row["vfs"]),
                f"{batched * 1000:.1f}",
                f"{per_vf * 1000:.1f}",
                times(ratio(per_vf, batched)),
                read_back,
            ]
        )
    lines += table(
        ["VFs", "one batched write", "one write per VF", "per-VF / batched", "all VFs read back"],
        rows,
    )
    return lines


def resources_section(agent: dict[str, Any]) -> list[str]:
    seconds = agent["config"]["idle_seconds"]
    lines = [
        "## Node agent: memory and idle CPU",
        "",
        f"Each agent left alone for {seconds:.0f} s at pollingInterval 1000 ms with LACP "
        "negotiated on both PFs, measured from `/proc/PID/stat` (utime + stime, as a "
        "percentage of one core) and `/proc/PID/status` (VmRSS, VmHWM). CPU under TCG is "
        "inflated like every other time here. Start-up is the time from the process start "
        'to its "agent started" log line, for each of its two runs.',
        "",
    ]
    rows = []
    for name in ("ours", "upstream"):
        idle = agent["agents"][name].get("idle")
        if not idle:
            rows.append([AGENT_NAMES[name], "n/a", "n/a", "n/a", "n/a"])
            continue
        rows.append(
            [
                AGENT_NAMES[name],
                mib(idle["rss_kib"]),
                mib(idle["hwm_kib"]),
                f"{idle['cpu_percent']:.2f}",
                ", ".join(f"{t:.0f}" for t in agent["agents"][name].get("start_s", [])),
            ]
        )
    lines += table(["agent", "RSS MiB", "peak RSS MiB", "idle CPU %", "start-up s"], rows)
    return lines


def controller_section(controller: dict[str, Any]) -> list[str]:
    lines = [
        "## Controller: nodes reporting at once",
        "",
        "For each node count, a fresh kube-apiserver and etcd on loopback, the CRD and RBAC "
        "from `config/`, N Node objects and one PFLACPMonitor selecting them, and the real "
        "controller (`pf-status-relay-controller`) as a subprocess with the controller's "
        "identity. When the status counts N nodes, a separate process posts one agent report "
        "per node (`api.report.build_event`, two interfaces Up) as the agent's identity, at "
        "most 50 requests in flight. **Complete** is the time from the first post until a watch "
        "on the monitor shows `interfacesUp` = 2N. Status writes are the controller's "
        "`pfsr_status_writes_total` counter over the round. The monitor size is the JSON of the "
        "object at the end; etcd rejects a write larger than 1.5 MiB (its default "
        "`--max-request-bytes`).",
        "",
    ]
    rows = []
    for r in controller["rounds"]:
        writes = r.get("status_writes") or {}
        write_text = ", ".join(f"{int(v)} {k}" for k, v in sorted(writes.items()) if v) or "0"
        complete = f"{r['complete_s']:.1f}" if r.get("complete") else "not complete"
        size = r.get("monitor_bytes")
        before = (r.get("controller_before_kib") or {}).get("VmRSS")
        peak = (r.get("controller_after_kib") or {}).get("VmHWM")
        rows.append(
            [
                str(r["nodes"]),
                f"{r['post_s']:.1f}" if "post_s" in r else "n/a",
                complete,
                write_text,
                str(r.get("watch_modified", "n/a")),
                mib(before),
                mib(peak),
                "n/a" if size is None else f"{size / 1024:.0f} KiB",
                r.get("error", ""),
            ]
        )
    lines += table(
        [
            "nodes",
            "posts s",
            "complete s",
            "status writes",
            "watch MODIFIED",
            "controller RSS MiB before",
            "controller peak RSS MiB",
            "monitor size",
            "error",
        ],
        rows,
    )
    return lines


def busy_agent_reading(agent: dict[str, Any], agent_timings: dict[str, float]) -> list[str]:
    """Explain a busy idle agent with the read and write times that the agent itself logged."""
    ours = agent["agents"]["ours"].get("idle") or {}
    upstream = agent["agents"]["upstream"].get("idle") or {}
    if not ours or not upstream or ours["cpu_percent"] < 4 * upstream["cpu_percent"]:
        return []
    text = (
        f"- pf-status-relay-agent used {ours['cpu_percent']:.0f}% of one emulated core while "
        f"idle, the upstream-style agent {upstream['cpu_percent']:.0f}%. Each incoming LACPDU "
        "(one per second per PF at the fast rate) makes the agent read the PF at once and "
        "again 50 ms later, on top of the poll. pyroute2 decodes each reply in Python, which "
        "is slow under emulation."
    )
    if agent_timings:
        text += (
            f" The agent's own log lines put the median PF read at "
            f"{agent_timings['read_ms']:.0f} ms and the VF write at "
            f"{agent_timings['write_ms']:.0f} ms ({agent_timings['n']:.0f} logged reactions). "
            "Reactions that arrive while such work runs wait for it."
        )
    return [text]


def logged_timings(results: Path) -> dict[str, float]:
    """Return median read_ms and write_ms from the agent's "vf link state was set" lines.

    Only the tail of each agent log is kept with the results, so this covers the last
    reactions of each run. One reaction logs a line per VF with the same timings, so
    lines are counted once per reaction.
    """
    reactions: dict[tuple[str, float], tuple[float, float]] = {}
    for path in sorted(results.glob("agent-log-ours-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") != "vf link state was set" or "read_ms" not in entry:
                continue
            key = (path.name, float(entry["reaction_ms"]))
            reactions[key] = (float(entry["read_ms"]), float(entry["write_ms"]))
    if not reactions:
        return {}
    return {
        "n": len(reactions),
        "read_ms": percentile([r for r, _ in reactions.values()], 50),
        "write_ms": percentile([w for _, w in reactions.values()], 50),
    }


def controller_error_text(round_result: dict[str, Any]) -> str:
    """Return the controller's first logged warning of a round and how often it recurred."""
    errors = round_result.get("controller_errors") or {}
    counts: dict[str, int] = errors.get("counts") or {}
    first: dict[str, str] = errors.get("first") or {}
    if not first:
        return ""
    key = next(iter(first))
    total = sum(counts.values())
    message = re.sub(r"\(retry \d+\)", "(retry N)", first[key])
    text = f" The controller logged {total} warnings, starting with `{message}`."
    if "ResourceExhausted" in message:
        text += (
            " The API server's etcd client rejected the status write as larger than its 2 MiB "
            "gRPC message limit."
        )
    return text


def reading(
    agent: dict[str, Any] | None,
    controller: dict[str, Any] | None,
    agent_timings: dict[str, float],
) -> list[str]:
    """Sentences computed from the figures, so they stay true when the figures change."""
    lines = ["## Reading", ""]
    if agent:
        summary = agent["summary"]
        for mode in MODES:
            ours = summary[f"ours/{mode}"]["reaction_s"]
            upstream = summary[f"upstream/{mode}"]["reaction_s"]
            factor = ratio(upstream.get("p50"), ours.get("p50"))
            if factor is None:
                lines.append(f"- {mode}: not enough cycles to compare.")
                continue
            title = MODES[mode][0].upper() + MODES[mode][1:]
            lines.append(
                f"- {title}: the median reaction was {ms(ours['p50'])} ms for "
                f"pf-status-relay-agent and {ms(upstream['p50'])} ms for the upstream-style "
                f"agent ({times(factor)}). The worst cycles were {ms(ours['max'])} ms and "
                f"{ms(upstream['max'])} ms."
            )
        lines.append(
            "- A polling agent waits on average half a polling interval (500 ms) before it "
            "sees a failure, and up to a whole one. The event-driven agent reacts to the "
            "kernel's notification or to the next LACPDU, so its time is mostly the cost of "
            "reading the PF and writing the VFs under emulation."
        )
        lines += busy_agent_reading(agent, agent_timings)
        rows = [r for r in agent["scaling"]["rows"] if "error" not in r]
        if rows:
            last = rows[-1]
            lines.append(
                f"- At {last['vfs']} VFs one batched write took "
                f"{last['batched_s']['p50'] * 1000:.1f} ms and per-VF writes "
                f"{last['per_vf_s']['p50'] * 1000:.1f} ms "
                f"({times(ratio(last['per_vf_s']['p50'], last['batched_s']['p50']))})."
            )
        short = [r for r in rows if not r.get("read_back_ok")]
        if short:
            lines.append(
                "- Reading the VFs back failed at "
                + ", ".join(f"{r['vfs']} VFs ({r.get('read_back_vfs')} read)" for r in short)
                + ": the VF list of one RTM_GETLINK reply is an attribute with a 16-bit length, "
                "so beyond 64 KiB it comes back cut short. The observer and the upstream-style "
                "agent read VFs with their statistics. pf-status-relay-agent asks the kernel to "
                "skip statistics (RTEXT_FILTER_SKIP_STATS), which makes each VF entry smaller: "
                "its own netlink client read "
                + ", ".join(f"{r.get('agent_read_vfs', '?')} of {r['vfs']}" for r in short)
                + " VFs."
            )
        failed = [r for r in agent["scaling"]["rows"] if "error" in r]
        if failed:
            lines.append(
                "- VF counts that failed: "
                + "; ".join(f"{r['vfs']}: {r['error']}" for r in failed)
                + "."
            )
    if controller:
        for r in controller["rounds"]:
            if r.get("complete"):
                writes = sum((r.get("status_writes") or {}).values())
                lines.append(
                    f"- {r['nodes']} nodes: every report was in the status {r['complete_s']:.1f} s "
                    f"after the first post, with {writes:.0f} status write request(s); the "
                    f"monitor was {r['monitor_bytes'] / 1024:.0f} KiB."
                )
            else:
                lines.append(
                    f"- {r['nodes']} nodes: the status was not complete "
                    f"({r.get('error', 'no result')}).{controller_error_text(r)}"
                )
        for r in controller["rounds"]:
            status = r.get("last_status") or {}
            omitted = int(status.get("nodesOmitted") or 0)
            if r.get("complete") and omitted:
                lines.append(
                    f"- At {r['nodes']} nodes the status listed {status.get('nodes_listed')} "
                    f"nodes and counted {omitted} in nodesOmitted: the controller caps the node "
                    "list at 512 KiB of JSON, so the object stays under etcd's 1.5 MiB limit "
                    "with its managedFields. The counters and conditions cover every node."
                )
    return [*lines, ""]


def render(
    agent: dict[str, Any] | None,
    controller: dict[str, Any] | None,
    agent_timings: dict[str, float],
    results: Path,
) -> str:
    finished = max(
        (path.stat().st_mtime for path in results.glob("*.json")),
        default=datetime.now().timestamp(),
    )
    now = datetime.fromtimestamp(finished, UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "make bench"
    if agent:
        command += f" BENCH_CYCLES={agent['config']['cycles']}"
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `make bench` (hack/bench/report.py): edit the generator, "
        "not this page. -->",
        "",
        f"Command: `{command}` (cycles, VF counts and node counts are make variables, see "
        f"`hack/bench/bench.mk`). Run finished {now}. Raw results: `_out/bench/*.json`.",
        "",
    ]
    lines += machine_section(agent, controller)
    if agent:
        lines += reaction_section(agent)
        lines += scaling_section(agent)
        lines += resources_section(agent)
    else:
        lines += ["The agent half did not produce results in this run.", ""]
    if controller:
        lines += controller_section(controller)
    else:
        lines += ["The controller half did not produce results in this run.", ""]
    lines += reading(agent, controller, agent_timings)
    return "\n".join(lines)


def load(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description="Write docs/benchmarks.md from bench results.")
    parser.add_argument("--results", type=Path, required=True, help="folder with the JSON results")
    parser.add_argument("--output", type=Path, required=True, help="Markdown file to write")
    args = parser.parse_args()
    agent = load(args.results / "agent.json")
    controller = load(args.results / "controller.json")
    if agent is None and controller is None:
        raise SystemExit(f"no agent.json or controller.json in {args.results}: run make bench")
    args.output.write_text(render(agent, controller, logged_timings(args.results), args.results))


if __name__ == "__main__":
    main()
