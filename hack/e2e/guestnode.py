"""The guest's side of the node: its NIC towards the API server, and the agent process.

Runs as root inside the kernel guest (hack/kernel/run-in-guest.sh). The NIC is the
guest's only virtio network device, configured statically as hack.e2e.guestnet
describes. The agent is the installed ``pf-status-relay-agent`` console script,
started with the environment that hack.e2e.agentenv derived from the controller's
DaemonSet, as a kubelet would start the DaemonSet's pod.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from hack.e2e.guestnet import APISERVER_GUEST_HOST, APISERVER_GUEST_PORT, GUEST_CIDR
from hack.e2e.guestpython import GUEST_ENV as PYTHONPATH_ENV

SYS_CLASS_NET = Path("/sys/class/net")
VIRTIO_NET_DRIVER = "virtio_net"
AGENT_COMMAND = "pf-status-relay-agent"
AGENT_STOP_TIMEOUT_S = 15.0


class GuestNodeError(RuntimeError):
    """Raised when the guest cannot reach the API server or the agent cannot start."""


def virtio_nic() -> str:
    """Return the name of the guest's virtio network interface."""
    for link in sorted(SYS_CLASS_NET.iterdir()):
        driver = link / "device" / "driver"
        if driver.exists() and driver.resolve().name == VIRTIO_NET_DRIVER:
            return link.name
    raise GuestNodeError(
        "no virtio network interface in the guest: run-in-guest.sh got no PFSR_QEMU_OPTS "
        "with a virtio-net-pci device"
    )


def configure_nic(name: str) -> None:
    """Give the NIC its static address and bring it up."""
    subprocess.run(["ip", "addr", "replace", GUEST_CIDR, "dev", name], check=True)
    subprocess.run(["ip", "link", "set", "dev", name, "up"], check=True)


def wait_apiserver_port(timeout: float) -> float:
    """Wait until a TCP connection to the forwarded API server port succeeds; return seconds."""
    started = time.monotonic()
    last_error = "no attempt"
    while time.monotonic() - started < timeout:
        try:
            with socket.create_connection((APISERVER_GUEST_HOST, APISERVER_GUEST_PORT), 5):
                return time.monotonic() - started
        except OSError as error:
            last_error = str(error)
            time.sleep(0.5)
    raise GuestNodeError(
        f"{APISERVER_GUEST_HOST}:{APISERVER_GUEST_PORT} not reachable within {timeout} s: "
        f"{last_error}"
    )


class AgentProcess:
    """The agent as a child process, with its output in a log file."""

    def __init__(self, env: dict[str, str], kubeconfig: Path, log_path: Path) -> None:
        self._env = {**os.environ, **env}
        self._zipped = os.environ.get(PYTHONPATH_ENV, "")
        self._argv = [AGENT_COMMAND, "--kubeconfig", str(kubeconfig)]
        self.log_path = log_path
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def argv(self) -> list[str]:
        return list(self._argv)

    def start(self) -> None:
        if self._zipped:
            # One sequential read over 9p; every module import then opens the
            # copy on the guest's tmpfs instead of a file on 9p.
            local = Path(os.environ.get("TMPDIR", "/tmp")) / Path(self._zipped).name
            shutil.copyfile(self._zipped, local)
            self._env["PYTHONPATH"] = str(local)
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self._argv,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def stop(self) -> int | None:
        """Send SIGTERM, as a kubelet would, and kill the agent if it does not exit in time."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(AGENT_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.exit_code()
