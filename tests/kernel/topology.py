"""Network topology of the kernel testbed: SR-IOV PFs in 802.3ad bonds facing a switch.

Everything here runs as root inside the qemu guest (``hack/kernel/run-in-guest.sh``).
The guest's root network namespace plays the node: each PF is a one-port netdevsim
device with ``sriov_numvfs`` VFs, enslaved as the single member of its own bond
(802.3ad, lacp_rate fast, miimon 100). A second namespace plays the switch: for each
PF it holds the partner netdevsim port, wired to the PF through
``/sys/bus/netdevsim/link_device`` and enslaved in a bond of its own, so that the
two bonds run real LACP against each other (the testbed kernel's netdevsim reports
10000 Mb/s full duplex; stock netdevsim does not, and bonding refuses it).

Failures are injected at the switch port with a clsact qdisc and a flower filter on
ethertype 0x8809 (slow protocols), which drops LACPDUs and nothing else: carrier,
MII status and operstate stay up, as with a switch whose LACP daemon misbehaves.

* ``block_lacp_at_switch``: the switch stops receiving our LACPDUs but keeps
  sending its own. Its port expires; the host sees only its partner state change.
* ``block_lacp_to_host``: the switch's LACPDUs never reach the host (dropped on
  the switch port's egress, so not even a packet socket on the PF sees them). The
  host's own port expires (actor 0x8f, then defaulted 0x4f).

Why iproute2 and not pyroute2: this is test infrastructure, and ``ip``/``tc`` are
what a person would type to reproduce a failure. Every process start costs
0.15-0.5 s under TCG, so commands are grouped into ``ip -batch``/``tc -batch``
runs and state is read from ``/proc/net/bonding`` and sysfs, which cost nothing.
The switch namespace's ``/proc/net`` is read through a holder process living in
it (``/proc/PID/net``), which avoids entering the namespace at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

NETDEVSIM_BUS = Path("/sys/bus/netdevsim")
NETDEVSIM_DEBUGFS = Path("/sys/kernel/debug/netdevsim")
SYS_CLASS_NET = Path("/sys/class/net")

DEFAULT_DEV_ID_BASE = 10
"""netdevsim ids: PF i is device base+i, its switch partner base+50+i."""

ETH_P_SLOW = 0x8809
"""Ethertype of IEEE 802.3 slow protocols; LACPDUs are its subtype 1."""

LACP_HEALTHY = 0x3F
"""Activity, short timeout, aggregation, sync, collecting, distributing."""

VfLinkState = Literal["auto", "enable", "disable"]
BondMode = Literal["802.3ad", "active-backup"]


class TopologyError(RuntimeError):
    """A command that builds or changes the topology failed."""


@dataclass(frozen=True)
class LacpPortState:
    """One bond slave's 802.3ad view, as /proc/net/bonding shows it.

    ``actor`` and ``partner`` are the oper port state bytes; ``None`` when the
    bond is not in 802.3ad mode or the slave has no aggregator yet.
    """

    slave: str
    mii_up: bool
    aggregator_id: int | None
    actor: int | None
    partner: int | None
    partner_mac: str | None

    @property
    def healthy(self) -> bool:
        return self.actor == LACP_HEALTHY and self.partner == LACP_HEALTHY

    def __str__(self) -> str:
        def fmt(v: int | None) -> str:
            return "none" if v is None else f"0x{v:02x}"

        return f"{self.slave}: actor {fmt(self.actor)} partner {fmt(self.partner)}"


@dataclass(frozen=True)
class PFSpec:
    """What to build for one PF.

    ``bond_mode`` None leaves the PF out of any bond (its switch port is still
    linked and bonded at the switch, so the switch side keeps trying LACP).
    ``bond`` None names the bond ``bond{netdevsim id - 10}``: bond0, bond1...
    for the default ``dev_id_base``.
    """

    name: str
    num_vfs: int = 0
    bond: str | None = None
    bond_mode: BondMode | None = "802.3ad"


@dataclass
class PF:
    """A PF as built: the node side and its partner port at the switch."""

    index: int
    name: str
    dev_id: int
    num_vfs: int
    bond: str | None
    bond_mode: BondMode | None
    switch_dev_id: int
    switch_port: str
    switch_bond: str
    blocked: set[str] = field(default_factory=set)
    """Directions currently dropped at the switch port: "ingress", "egress"."""

    @property
    def lacp(self) -> bool:
        return self.bond is not None and self.bond_mode == "802.3ad"


def _write(path: Path, value: str) -> None:
    # One write() call: sysfs/debugfs attributes parse a whole buffer at once.
    with open(path, "w") as f:
        f.write(value)


def parse_proc_bonding(text: str) -> dict[str, LacpPortState]:
    """Per-slave LACP state from the text of /proc/net/bonding/BOND."""
    states: dict[str, LacpPortState] = {}
    current: dict[str, Any] | None = None
    section = ""

    def flush() -> None:
        if current is not None:
            states[current["slave"]] = LacpPortState(**current)

    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Slave Interface:"):
            flush()
            current = {
                "slave": line.split(":", 1)[1].strip(),
                "mii_up": False,
                "aggregator_id": None,
                "actor": None,
                "partner": None,
                "partner_mac": None,
            }
            section = ""
            continue
        if current is None:
            continue
        if line.startswith("MII Status:"):
            current["mii_up"] = line.split(":", 1)[1].strip() == "up"
        elif line.startswith("Aggregator ID:"):
            value = line.split(":", 1)[1].strip()
            current["aggregator_id"] = int(value) if value.isdigit() else None
        elif line == "details actor lacp pdu:":
            section = "actor"
        elif line == "details partner lacp pdu:":
            section = "partner"
        elif line.startswith("port state:") and section:
            current[section] = int(line.split(":", 1)[1].strip())
        elif line.startswith("system mac address:") and section == "partner":
            current["partner_mac"] = line.split(":", 1)[1].strip()
    flush()
    return states


class Topology:
    """Node PFs with VFs, bonded against a switch namespace; see the module docstring.

    Use as a context manager, or call :meth:`setup` and :meth:`teardown`.
    PFs are addressed by index or by name in every method.
    """

    def __init__(
        self,
        pfs: Sequence[PFSpec] | None = None,
        *,
        num_pfs: int = 2,
        num_vfs: int = 5,
        switch_netns: str = "pfsr-switch",
        dev_id_base: int = 10,
    ) -> None:
        if dev_id_base < DEFAULT_DEV_ID_BASE:
            raise ValueError(f"dev_id_base must be >= {DEFAULT_DEV_ID_BASE}")
        if pfs is None:
            pfs = [PFSpec(name=f"ens5f{i}", num_vfs=num_vfs) for i in range(num_pfs)]
        self.specs = list(pfs)
        self.switch_netns = switch_netns
        self.dev_id_base = dev_id_base
        self.pfs: list[PF] = []
        self.max_vfs_default: int | None = None
        """netdevsim's VF limit per device before any change (debugfs max_vfs)."""
        self.max_vfs_raisable: bool | None = None
        """Whether writing a larger value to debugfs max_vfs took effect."""
        self.kernel_release = os.uname().release
        self.setup_seconds: float | None = None
        self._holder: subprocess.Popen[bytes] | None = None

    # --- lifecycle -------------------------------------------------------

    def __enter__(self) -> Topology:
        self.setup()
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def setup(self) -> None:
        start = time.monotonic()
        self._cleanup_leftovers()
        ns = self.switch_netns
        for i, spec in enumerate(self.specs):
            dev_id = self.dev_id_base + i
            sw_id = self.dev_id_base + 50 + i
            bond = spec.bond or self._default_bond_name(dev_id)
            self.pfs.append(
                PF(
                    index=i,
                    name=spec.name,
                    dev_id=dev_id,
                    num_vfs=spec.num_vfs,
                    bond=bond if spec.bond_mode is not None else None,
                    bond_mode=spec.bond_mode,
                    switch_dev_id=sw_id,
                    switch_port=f"sw{i}p1",
                    switch_bond=f"swbond{i}",
                )
            )

        # netdevsim devices: one port each, in the root namespace for now.
        kernel_names: dict[int, str] = {}
        for pf in self.pfs:
            for dev_id in (pf.dev_id, pf.switch_dev_id):
                _write(NETDEVSIM_BUS / "new_device", f"{dev_id} 1")
        self._settle_udev()
        for pf in self.pfs:
            for dev_id in (pf.dev_id, pf.switch_dev_id):
                kernel_names[dev_id] = self._wait_port_name(dev_id)

        self._probe_max_vfs(self.pfs[0].dev_id)
        for pf in self.pfs:
            if pf.num_vfs:
                self._configure_vfs(pf, pf.num_vfs)

        switch_ifindex = {
            pf.index: int((SYS_CLASS_NET / kernel_names[pf.switch_dev_id] / "ifindex").read_text())
            for pf in self.pfs
        }

        # Node side in one ip batch: names, the switch namespace, bonds.
        cmds = [f"netns add {ns}"]
        for pf in self.pfs:
            cmds.append(f"link set dev {kernel_names[pf.dev_id]} name {pf.name}")
            sw_kernel = kernel_names[pf.switch_dev_id]
            cmds.append(f"link set dev {sw_kernel} name {pf.switch_port}")
            cmds.append(f"link set dev {pf.switch_port} netns {ns}")
        for pf in self.pfs:
            if pf.bond is None:
                cmds.append(f"link set dev {pf.name} up")
                continue
            cmds.append(f"link add {pf.bond} type bond {self._bond_options(pf.bond_mode)}")
            cmds.append(f"link set dev {pf.name} master {pf.bond}")
            cmds.append(f"link set dev {pf.bond} up")
        self._ip_batch(cmds)

        # Switch side: a bond per partner port, always 802.3ad fast.
        cmds = ["link set dev lo up"]
        for pf in self.pfs:
            cmds.append(f"link add {pf.switch_bond} type bond {self._bond_options('802.3ad')}")
            cmds.append(f"link set dev {pf.switch_port} master {pf.switch_bond}")
            cmds.append(f"link set dev {pf.switch_bond} up")
        self._ip_batch(cmds, netns=ns)

        # Wire each PF to its partner port; carrier comes up on both.
        with open(f"/run/netns/{ns}", "rb") as sw_ns, open("/proc/self/ns/net", "rb") as node_ns:
            for pf in self.pfs:
                node_end = f"{node_ns.fileno()}:{self.ifindex(pf.index)}"
                switch_end = f"{sw_ns.fileno()}:{switch_ifindex[pf.index]}"
                _write(NETDEVSIM_BUS / "link_device", f"{node_end} {switch_end}")
        self._start_holder()
        self.setup_seconds = time.monotonic() - start

    def teardown(self) -> None:
        """Remove everything setup created; safe to call twice or after a failed setup."""
        if self._holder is not None:
            self._holder.kill()
            self._holder.wait()
            self._holder = None
        for pf in self.pfs:
            for dev_id in (pf.dev_id, pf.switch_dev_id):
                if (NETDEVSIM_BUS / "devices" / f"netdevsim{dev_id}").exists():
                    _write(NETDEVSIM_BUS / "del_device", str(dev_id))
        cmds = [f"link del {pf.bond}" for pf in self.pfs if pf.bond and self._exists(pf.bond)]
        if Path(f"/run/netns/{self.switch_netns}").exists():
            cmds.append(f"netns del {self.switch_netns}")
        if cmds:
            self._ip_batch(cmds, force=True)
        self.pfs = []

    # --- lookups ---------------------------------------------------------

    def pf(self, pf: int | str) -> PF:
        for p in self.pfs:
            if pf in (p.index, p.name):
                return p
        raise KeyError(pf)

    def carrier(self, pf: int | str) -> bool:
        return (SYS_CLASS_NET / self.pf(pf).name / "carrier").read_text().strip() == "1"

    def operstate(self, pf: int | str) -> str:
        return (SYS_CLASS_NET / self.pf(pf).name / "operstate").read_text().strip()

    def ifindex(self, pf: int | str) -> int:
        return int((SYS_CLASS_NET / self.pf(pf).name / "ifindex").read_text())

    # --- LACP state ------------------------------------------------------

    def lacp_state(self, pf: int | str) -> LacpPortState:
        """The node side: the PF as a slave of its bond."""
        p = self.pf(pf)
        if p.bond is None:
            raise TopologyError(f"{p.name} is in no bond")
        text = Path(f"/proc/net/bonding/{p.bond}").read_text()
        return parse_proc_bonding(text)[p.name]

    def switch_lacp_state(self, pf: int | str) -> LacpPortState:
        """The switch side: the partner port as a slave of the switch's bond."""
        p = self.pf(pf)
        text = Path(f"/proc/{self._holder_pid()}/net/bonding/{p.switch_bond}").read_text()
        return parse_proc_bonding(text)[p.switch_port]

    def wait_for(
        self, condition: Callable[[], bool], timeout: float, interval: float = 0.02
    ) -> float:
        """Poll until condition() holds; return the seconds it took."""
        start = time.monotonic()
        while True:
            if condition():
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(interval)

    def wait_negotiated(
        self, timeout: float = 30.0, pfs: Iterable[int | str] | None = None
    ) -> float:
        """Wait until actor and partner read 0x3f on both sides of every LACP PF.

        Returns the seconds waited; raises TimeoutError listing the states seen.
        """
        targets = [self.pf(p) for p in pfs] if pfs is not None else self.pfs
        targets = [p for p in targets if p.lacp]

        def negotiated() -> bool:
            return all(
                self.lacp_state(p.index).healthy and self.switch_lacp_state(p.index).healthy
                for p in targets
            )

        try:
            return self.wait_for(negotiated, timeout)
        except TimeoutError:
            seen = "; ".join(
                f"{self.lacp_state(p.index)} / switch {self.switch_lacp_state(p.index)}"
                for p in targets
            )
            raise TimeoutError(f"LACP not negotiated within {timeout} s: {seen}") from None

    # --- failure injection -----------------------------------------------

    def block_lacp_at_switch(self, pf: int | str) -> None:
        """The switch stops receiving our LACPDUs; it keeps sending its own."""
        self._block(self.pf(pf), "ingress")

    def block_lacp_to_host(self, pf: int | str) -> None:
        """The switch's LACPDUs stop reaching the host; the host's port expires."""
        self._block(self.pf(pf), "egress")

    def unblock(self, pf: int | str) -> None:
        """Remove every LACPDU filter on the PF's switch port."""
        p = self.pf(pf)
        if not p.blocked:
            return
        self._tc_batch([f"qdisc del dev {p.switch_port} clsact"], netns=self.switch_netns)
        p.blocked.clear()

    def _block(self, p: PF, direction: str) -> None:
        if direction in p.blocked:
            return
        cmds = [] if p.blocked else [f"qdisc add dev {p.switch_port} clsact"]
        cmds.append(
            f"filter add dev {p.switch_port} {direction} protocol 0x{ETH_P_SLOW:04x} "
            "pref 1 flower action drop"
        )
        self._tc_batch(cmds, netns=self.switch_netns)
        p.blocked.add(direction)

    # --- VFs -------------------------------------------------------------

    def set_vf_link_state(self, pf: int | str, vf: int, state: VfLinkState) -> None:
        self._ip_batch([f"link set dev {self.pf(pf).name} vf {vf} state {state}"])

    def set_vf_link_states(self, pf: int | str, states: Mapping[int, VfLinkState]) -> None:
        """Several VFs in one ip run."""
        name = self.pf(pf).name
        self._ip_batch([f"link set dev {name} vf {vf} state {s}" for vf, s in states.items()])

    def vf_link_states(self, pf: int | str) -> list[VfLinkState]:
        """Link state of every VF of the PF, by VF index, as the kernel reports it."""
        out = _run(["ip", "-j", "link", "show", "dev", self.pf(pf).name])
        info = json.loads(out)[0]
        vfs = sorted(info.get("vfinfo_list", []), key=lambda v: int(v["vf"]))
        return [v["link_state"] for v in vfs]

    def set_num_vfs(self, pf: int | str, n: int) -> None:
        """Change the PF's VF count (through 0, as SR-IOV requires)."""
        p = self.pf(pf)
        self._configure_vfs(p, n)
        p.num_vfs = n

    def max_vfs(self, pf: int | str) -> int:
        return int((NETDEVSIM_DEBUGFS / f"netdevsim{self.pf(pf).dev_id}" / "max_vfs").read_text())

    # --- internals -------------------------------------------------------

    @staticmethod
    def _default_bond_name(dev_id: int) -> str:
        # bond0, bond1... for the default id base; unique per netdevsim id, so
        # topologies with different dev_id_base never share a bond name.
        return f"bond{dev_id - DEFAULT_DEV_ID_BASE}"

    @staticmethod
    def _bond_options(mode: BondMode | None) -> str:
        if mode == "802.3ad":
            return "mode 802.3ad lacp_rate fast miimon 100"
        if mode == "active-backup":
            return "mode active-backup miimon 100"
        raise ValueError(mode)

    def _configure_vfs(self, p: PF, n: int) -> None:
        numvfs = NETDEVSIM_BUS / "devices" / f"netdevsim{p.dev_id}" / "sriov_numvfs"
        if int(numvfs.read_text()) == n:
            return
        if int(numvfs.read_text()):
            _write(numvfs, "0")
        max_path = NETDEVSIM_DEBUGFS / f"netdevsim{p.dev_id}" / "max_vfs"
        if n > int(max_path.read_text()):
            _write(max_path, str(n))
        if n:
            _write(numvfs, str(n))

    def _probe_max_vfs(self, dev_id: int) -> None:
        """Record netdevsim's default VF limit and whether debugfs can raise it."""
        max_path = NETDEVSIM_DEBUGFS / f"netdevsim{dev_id}" / "max_vfs"
        default = int(max_path.read_text())
        self.max_vfs_default = default
        try:
            _write(max_path, str(default * 16))
            self.max_vfs_raisable = int(max_path.read_text()) == default * 16
        except OSError:
            self.max_vfs_raisable = False
        with contextlib.suppress(OSError):
            _write(max_path, str(default))

    @staticmethod
    def _settle_udev() -> None:
        """Let udev finish renaming new ports (ethN -> eniXnpY) before we rename them."""
        if Path("/run/udev/control").exists():
            _run(["udevadm", "settle", "--timeout=30"])

    @staticmethod
    def _wait_port_name(dev_id: int, timeout: float = 10.0) -> str:
        net = NETDEVSIM_BUS / "devices" / f"netdevsim{dev_id}" / "net"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError):
                names = sorted(os.listdir(net))
                if names:
                    return names[0]
            time.sleep(0.02)
        raise TopologyError(f"netdevsim{dev_id} made no port within {timeout} s")

    def _cleanup_leftovers(self) -> None:
        """Remove what a crashed earlier run in this boot may have left."""
        for i in range(len(self.specs)):
            for dev_id in (self.dev_id_base + i, self.dev_id_base + 50 + i):
                if (NETDEVSIM_BUS / "devices" / f"netdevsim{dev_id}").exists():
                    _write(NETDEVSIM_BUS / "del_device", str(dev_id))
        cmds = []
        for i, spec in enumerate(self.specs):
            if spec.bond_mode is None:
                continue
            bond = spec.bond or self._default_bond_name(self.dev_id_base + i)
            if self._exists(bond):
                cmds.append(f"link del {bond}")
        if Path(f"/run/netns/{self.switch_netns}").exists():
            cmds.append(f"netns del {self.switch_netns}")
        if cmds:
            self._ip_batch(cmds, force=True)

    @staticmethod
    def _exists(ifname: str) -> bool:
        return (SYS_CLASS_NET / ifname).exists()

    def _start_holder(self) -> None:
        """A process parked in the switch namespace, for reading its /proc/net."""
        self._holder = subprocess.Popen(
            ["ip", "netns", "exec", self.switch_netns, "sleep", "infinity"],
            stdin=subprocess.DEVNULL,
        )
        own = os.readlink("/proc/self/ns/net")
        target = os.stat(f"/run/netns/{self.switch_netns}").st_ino
        pid = self._holder.pid

        def entered() -> bool:
            try:
                return os.readlink(f"/proc/{pid}/ns/net") not in (own, "") and (
                    os.stat(f"/proc/{pid}/ns/net").st_ino == target
                )
            except FileNotFoundError:
                return False

        self.wait_for(entered, timeout=10.0)

    def _holder_pid(self) -> int:
        if self._holder is None or self._holder.poll() is not None:
            raise TopologyError("switch namespace holder is not running")
        return self._holder.pid

    @staticmethod
    def _ip_batch(cmds: Sequence[str], netns: str | None = None, force: bool = False) -> None:
        argv = ["ip"] + (["-n", netns] if netns else []) + (["-force"] if force else [])
        _run([*argv, "-batch", "-"], "\n".join(cmds) + "\n", check=not force)

    @staticmethod
    def _tc_batch(cmds: Sequence[str], netns: str | None = None) -> None:
        argv = ["tc"] + (["-n", netns] if netns else [])
        _run([*argv, "-batch", "-"], "\n".join(cmds) + "\n")


def _run(argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        detail = proc.stderr.strip() or proc.stdout.strip()
        batch = f"\n{stdin}" if stdin else ""
        raise TopologyError(f"{' '.join(argv)} failed ({proc.returncode}): {detail}{batch}")
    return proc.stdout
