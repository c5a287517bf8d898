"""Record raw rtnetlink messages from the testbed kernel as fixtures for host unit tests.

Run inside the guest (``make kernel-fixtures``, or
``hack/kernel/run-in-guest.sh .venv/bin/python hack/kernel/record_fixtures.py OUTDIR``
with OUTDIR among the guest's writable folders). The node agent's netlink
decoding is unit-tested on the host against these bytes, so they must be what
Linux 6.12 really sends: a plain AF_NETLINK socket is used (no pyroute2) and
each message is saved exactly as received, netlink header included.

Every fixture is cross-checked before it is written: the LACP state bytes and
VF link states decoded from the message must equal what /proc/net/bonding and
the topology report at the same moment, otherwise the capture is retried.

Output: ``<name>.bin`` (one RTM_NEWLINK message, or several back to back for
``dump_all`` and ``notifications_*``) and ``index.json`` describing each.
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "kernel"))

from topology import PFSpec, Topology

NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK = 16
RTM_GETLINK = 18
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLA_TYPE_MASK = 0x3FFF

IFLA_IFNAME = 3
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_NUM_VF = 21
IFLA_VFINFO_LIST = 22
IFLA_EXT_MASK = 29
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_INFO_SLAVE_KIND = 4
IFLA_INFO_SLAVE_DATA = 5
IFLA_BOND_SLAVE_STATE = 1
IFLA_BOND_SLAVE_AD_ACTOR_OPER_PORT_STATE = 7
IFLA_BOND_SLAVE_AD_PARTNER_OPER_PORT_STATE = 8
IFLA_BOND_MODE = 1
IFLA_VF_INFO = 1
IFLA_VF_LINK_STATE = 5
RTEXT_FILTER_VF = 1

NLMSGHDR = struct.Struct("=IHHII")
IFINFOMSG = struct.Struct("=BxHiII")
VF_LINK_STATE_NAMES = {0: "auto", 1: "enable", 2: "disable"}
BOND_MODE_NAMES = {0: "balance-rr", 1: "active-backup", 4: "802.3ad"}


# --- minimal rtnetlink codec (just enough to cross-check the captures) ---


def attrs(buf: bytes) -> dict[int, bytes]:
    """Netlink attributes of a buffer, by type (nested flag stripped)."""
    out: dict[int, bytes] = {}
    off = 0
    while off + 4 <= len(buf):
        length, kind = struct.unpack_from("=HH", buf, off)
        if length < 4:
            break
        out[kind & NLA_TYPE_MASK] = buf[off + 4 : off + length]
        off += (length + 3) & ~3
    return out


def attr_list(buf: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    off = 0
    while off + 4 <= len(buf):
        length, kind = struct.unpack_from("=HH", buf, off)
        if length < 4:
            break
        out.append((kind & NLA_TYPE_MASK, buf[off + 4 : off + length]))
        off += (length + 3) & ~3
    return out


def split_messages(data: bytes) -> list[bytes]:
    msgs: list[bytes] = []
    off = 0
    while off + NLMSGHDR.size <= len(data):
        length = NLMSGHDR.unpack_from(data, off)[0]
        if length < NLMSGHDR.size:
            break
        msgs.append(data[off : off + length])
        off += (length + 3) & ~3
    return msgs


@dataclass(frozen=True)
class Decoded:
    msg_type: int
    ifindex: int
    ifname: str
    master: int | None
    kind: str | None
    slave_kind: str | None
    slave_state: int | None
    actor: int | None
    partner: int | None
    bond_mode: str | None
    num_vf: int | None
    vf_states: list[str] | None


def decode(msg: bytes) -> Decoded:
    _, msg_type, _, _, _ = NLMSGHDR.unpack_from(msg)
    _, _, ifindex, _, _ = IFINFOMSG.unpack_from(msg, NLMSGHDR.size)
    top = attrs(msg[NLMSGHDR.size + IFINFOMSG.size :])
    ifname = top[IFLA_IFNAME].rstrip(b"\0").decode()
    master = struct.unpack("=I", top[IFLA_MASTER])[0] if IFLA_MASTER in top else None
    kind = slave_kind = bond_mode = None
    slave_state = actor = partner = None
    if IFLA_LINKINFO in top:
        info = attrs(top[IFLA_LINKINFO])
        if IFLA_INFO_KIND in info:
            kind = info[IFLA_INFO_KIND].rstrip(b"\0").decode()
        if IFLA_INFO_SLAVE_KIND in info:
            slave_kind = info[IFLA_INFO_SLAVE_KIND].rstrip(b"\0").decode()
        if kind == "bond" and IFLA_INFO_DATA in info:
            data = attrs(info[IFLA_INFO_DATA])
            if IFLA_BOND_MODE in data:
                bond_mode = BOND_MODE_NAMES.get(
                    data[IFLA_BOND_MODE][0], str(data[IFLA_BOND_MODE][0])
                )
        if slave_kind == "bond" and IFLA_INFO_SLAVE_DATA in info:
            sd = attrs(info[IFLA_INFO_SLAVE_DATA])
            if IFLA_BOND_SLAVE_STATE in sd:
                slave_state = sd[IFLA_BOND_SLAVE_STATE][0]
            if IFLA_BOND_SLAVE_AD_ACTOR_OPER_PORT_STATE in sd:
                actor = sd[IFLA_BOND_SLAVE_AD_ACTOR_OPER_PORT_STATE][0]
            if IFLA_BOND_SLAVE_AD_PARTNER_OPER_PORT_STATE in sd:
                # u16 on the wire, though only the low byte carries bits.
                partner = struct.unpack("=H", sd[IFLA_BOND_SLAVE_AD_PARTNER_OPER_PORT_STATE])[0]
    num_vf = struct.unpack("=I", top[IFLA_NUM_VF])[0] if IFLA_NUM_VF in top else None
    vf_states: list[str] | None = None
    if IFLA_VFINFO_LIST in top:
        found: dict[int, str] = {}
        for kind_vf, vf_info in attr_list(top[IFLA_VFINFO_LIST]):
            if kind_vf != IFLA_VF_INFO:
                continue
            vf_attrs = attrs(vf_info)
            if IFLA_VF_LINK_STATE in vf_attrs:
                vf, state = struct.unpack("=II", vf_attrs[IFLA_VF_LINK_STATE][:8])
                found[vf] = VF_LINK_STATE_NAMES.get(state, str(state))
        vf_states = [found[i] for i in sorted(found)]
    return Decoded(
        msg_type,
        ifindex,
        ifname,
        master,
        kind,
        slave_kind,
        slave_state,
        actor,
        partner,
        bond_mode,
        num_vf,
        vf_states,
    )


class Rtnl:
    """A plain rtnetlink socket: dumps, and optionally RTMGRP_LINK notifications."""

    def __init__(self, groups: int = 0) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, groups))
        self.seq = int(time.time()) & 0xFFFF

    def close(self) -> None:
        self.sock.close()

    def dump_links(self, ext_mask: int | None = RTEXT_FILTER_VF) -> list[bytes]:
        """RTM_GETLINK dump: every RTM_NEWLINK message, as received, plus NLMSG_DONE last."""
        self.seq += 1
        body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        if ext_mask is not None:
            body += struct.pack("=HHI", 8, IFLA_EXT_MASK, ext_mask)
        req = (
            NLMSGHDR.pack(
                NLMSGHDR.size + len(body), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, self.seq, 0
            )
            + body
        )
        self.sock.send(req)
        out: list[bytes] = []
        while True:
            data = self.sock.recv(1 << 20)
            for msg in split_messages(data):
                _, mtype, _, seq, _ = NLMSGHDR.unpack_from(msg)
                if seq != self.seq:
                    continue
                if mtype == NLMSG_ERROR:
                    err = struct.unpack_from("=i", msg, NLMSGHDR.size)[0]
                    raise OSError(-err, os.strerror(-err))
                out.append(msg)
                if mtype == NLMSG_DONE:
                    return out

    def notifications(self, seconds: float) -> list[tuple[float, bytes]]:
        """Multicast RTM_NEWLINK messages received within a time window, with their
        time.monotonic() arrival times."""
        start = time.monotonic()
        got: list[tuple[float, bytes]] = []
        while (left := seconds - (time.monotonic() - start)) > 0:
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                continue
            data = self.sock.recv(1 << 20)
            now = time.monotonic()
            for msg in split_messages(data):
                if NLMSGHDR.unpack_from(msg)[1] == RTM_NEWLINK:
                    got.append((now, msg))
        return got


# --- recording ---------------------------------------------------------


class Recorder:
    def __init__(self, topo: Topology, outdir: Path) -> None:
        self.topo = topo
        self.outdir = outdir
        self.rtnl = Rtnl()
        self.index: dict[str, Any] = {
            "kernel": os.uname().release,
            "generated_by": "hack/kernel/record_fixtures.py",
            "lacp_rate": "fast",
            "vf_link_state_values": {"auto": 0, "enable": 1, "disable": 2},
            "fixtures": [],
        }

    def link_message(self, ifname: str, ext_mask: int | None = RTEXT_FILTER_VF) -> bytes:
        for msg in self.rtnl.dump_links(ext_mask):
            if NLMSGHDR.unpack_from(msg)[1] == RTM_NEWLINK and decode(msg).ifname == ifname:
                return msg
        raise LookupError(ifname)

    def capture(
        self,
        name: str,
        description: str,
        ifname: str,
        pf: int | None = None,
        ext_mask: int | None = RTEXT_FILTER_VF,
        attempts: int = 20,
    ) -> Decoded:
        """Dump, keep the interface's message, and check it against /proc and ip."""
        for _ in range(attempts):
            before = self.topo.lacp_state(pf) if pf is not None and self.topo.pf(pf).bond else None
            msg = self.link_message(ifname, ext_mask)
            after = self.topo.lacp_state(pf) if pf is not None and self.topo.pf(pf).bond else None
            d = decode(msg)
            if before != after:
                continue  # state moved during the dump: try again
            if after is not None and (d.actor, d.partner) != (after.actor, after.partner):
                raise AssertionError(f"{name}: netlink {d.actor}/{d.partner} but /proc {after}")
            expected_vfs = None
            if pf is not None and ext_mask is not None and self.topo.pf(pf).num_vfs:
                expected_vfs = self.topo.vf_link_states(pf)
                if d.vf_states != expected_vfs:
                    raise AssertionError(f"{name}: netlink VFs {d.vf_states}, ip {expected_vfs}")
            self.save(name, description, [msg], d)
            return d
        raise AssertionError(f"{name}: LACP state kept moving during {attempts} dumps")

    def save(
        self,
        name: str,
        description: str,
        msgs: list[bytes],
        d: Decoded | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        path = self.outdir / f"{name}.bin"
        path.write_bytes(b"".join(msgs))
        entry: dict[str, Any] = {
            "name": name,
            "file": path.name,
            "description": description,
            "messages": len(msgs),
            "bytes": path.stat().st_size,
        }
        if d is not None:
            entry.update(describe(d, self.topo))
        if extra:
            entry.update(extra)
        self.index["fixtures"].append(entry)
        print(f"recorded {name}: {entry.get('interface', '')} {len(msgs)} message(s)", flush=True)

    def write_index(self) -> None:
        (self.outdir / "index.json").write_text(json.dumps(self.index, indent=2) + "\n")


def hexs(v: int | None) -> str | None:
    return None if v is None else f"0x{v:02x}"


def describe(d: Decoded, topo: Topology) -> dict[str, Any]:
    names = {
        int((Path("/sys/class/net") / n / "ifindex").read_text()): n
        for n in os.listdir("/sys/class/net")
        if (Path("/sys/class/net") / n / "ifindex").exists()
    }
    return {
        "interface": d.ifname,
        "ifindex": d.ifindex,
        "master": names.get(d.master) if d.master is not None else None,
        "link_kind": d.kind,
        "slave_kind": d.slave_kind,
        "bond_mode": d.bond_mode,
        "bond_slave_state": {0: "active", 1: "backup"}.get(d.slave_state)
        if d.slave_state is not None
        else None,
        "actor_state": hexs(d.actor),
        "partner_state": hexs(d.partner),
        "num_vf": d.num_vf,
        "vf_link_states": d.vf_states,
    }


def wait_state(topo: Topology, pf: int, cond: Any, what: str, timeout: float) -> float:
    try:
        return topo.wait_for(lambda: bool(cond(topo.lacp_state(pf))), timeout)
    except TimeoutError:
        raise AssertionError(
            f"{what}: not reached in {timeout} s ({topo.lacp_state(pf)})"
        ) from None


def main(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    for old in outdir.glob("*.bin"):
        old.unlink()
    probe = Topology([PFSpec("probe0")], dev_id_base=90, switch_netns="pfsr-probe")
    probe.setup()
    raisable, limit = probe.max_vfs_raisable, probe.max_vfs_default or 0
    probe.teardown()
    nvf = 5 if raisable or limit >= 5 else limit

    specs = [
        PFSpec("ens5f0", num_vfs=nvf, bond="bond0"),
        PFSpec("ens5f1", num_vfs=nvf, bond="bond1"),
        PFSpec("ens5f2", num_vfs=min(3, nvf), bond_mode=None),
        PFSpec("ens5f3", num_vfs=min(2, nvf), bond="bond3", bond_mode="active-backup"),
    ]
    with Topology(specs) as topo:
        rec = Recorder(topo, outdir)
        rec.index["max_vfs_default"] = topo.max_vfs_default
        rec.index["max_vfs_raisable"] = topo.max_vfs_raisable
        negotiated = topo.wait_negotiated(timeout=30.0)
        rec.index["negotiation_seconds"] = round(negotiated, 2)

        rec.capture(
            "slave_healthy",
            "802.3ad slave, LACP negotiated (0x3f/0x3f), VFs all auto",
            "ens5f0",
            pf=0,
        )
        mixed: dict[int, Any] = {0: "auto", 1: "enable", 2: "disable"}
        for vf in range(3, nvf):
            mixed[vf] = "disable" if vf % 2 else "auto"
        topo.set_vf_link_states(0, mixed)
        rec.capture(
            "pf_vfs_mixed", "802.3ad slave PF, healthy, VFs in auto/enable/disable", "ens5f0", pf=0
        )
        rec.capture(
            "pf_vfs_mixed_no_ext_mask",
            "same PF dumped without IFLA_EXT_MASK: no IFLA_VFINFO_LIST",
            "ens5f0",
            pf=0,
            ext_mask=None,
        )
        rec.capture("bond_master_8023ad", "802.3ad bond master (IFLA_INFO_DATA, AD info)", "bond0")
        rec.capture("pf_no_bond", "PF with VFs in no bond: no slave data", "ens5f2", pf=2)
        rec.capture(
            "slave_active_backup",
            "active-backup slave: bond slave data without LACP attributes",
            "ens5f3",
            pf=3,
        )
        rec.capture("bond_master_active_backup", "active-backup bond master", "bond3")

        dump = rec.rtnl.dump_links()
        rec.save(
            "dump_all",
            "a whole RTM_GETLINK dump with RTEXT_FILTER_VF, NLMSG_DONE last",
            dump,
            None,
            {
                "interfaces": [
                    decode(m).ifname for m in dump if NLMSGHDR.unpack_from(m)[1] == RTM_NEWLINK
                ]
            },
        )

        # The switch stops hearing us: only our view of the partner changes.
        topo.block_lacp_at_switch(0)
        t = wait_state(
            topo, 0, lambda s: s.partner is not None and s.partner & 0x80, "partner expired", 10.0
        )
        rec.capture(
            "slave_partner_expired",
            "switch stopped receiving our LACPDUs: actor 0x3f, partner expired",
            "ens5f0",
            pf=0,
        )
        rec.index["fixtures"][-1]["seconds_after_block"] = round(t, 2)
        topo.unblock(0)

        # We stop hearing the switch: our actor expires, then defaults. A thread
        # listens to RTMGRP_LINK meanwhile, timestamping each notification.
        listener = Rtnl(RTMGRP_LINK)
        notes: list[tuple[float, bytes]] = []
        thread = threading.Thread(target=lambda: notes.extend(listener.notifications(9.0)))
        thread.start()
        topo.block_lacp_to_host(1)
        blocked_at = time.monotonic()
        t = wait_state(
            topo, 1, lambda s: s.actor is not None and s.actor & 0x80, "actor expired", 10.0
        )
        rec.capture(
            "slave_actor_expired", "host stopped receiving LACPDUs: actor expired", "ens5f1", pf=1
        )
        rec.index["fixtures"][-1]["seconds_after_block"] = round(t, 2)
        t += wait_state(
            topo, 1, lambda s: s.actor is not None and s.actor & 0x40, "actor defaulted", 10.0
        )
        rec.capture(
            "slave_actor_defaulted",
            "host stopped receiving LACPDUs: actor defaulted, partner zeroed",
            "ens5f1",
            pf=1,
        )
        rec.index["fixtures"][-1]["seconds_after_block"] = round(t, 2)
        thread.join()
        listener.close()
        topo.unblock(1)
        events = []
        for when, msg in notes:
            d = decode(msg)
            events.append(
                {
                    "interface": d.ifname,
                    "actor_state": hexs(d.actor),
                    "partner_state": hexs(d.partner),
                    "bond_slave_state": {0: "active", 1: "backup"}.get(d.slave_state)
                    if d.slave_state is not None
                    else None,
                    "seconds_after_block": round(when - blocked_at, 2),
                    "num_vf": d.num_vf,
                    "vf_link_states": d.vf_states,
                    "bytes": len(msg),
                }
            )
        rec.save(
            "notifications_expiry",
            "RTMGRP_LINK RTM_NEWLINK notifications while LACPDUs to the host were blocked "
            "(its actor expired, then defaulted), back to back; all links. Times count from "
            "the moment the tc filter was in place, like seconds_after_block elsewhere",
            [m for _, m in notes],
            None,
            {"events": events},
        )
        topo.wait_negotiated(timeout=40.0)
        rec.write_index()


if __name__ == "__main__":
    if os.environ.get("PFSR_IN_GUEST") != "1":
        sys.exit("record_fixtures.py runs inside the qemu guest: make kernel-fixtures")
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/netlink"))
