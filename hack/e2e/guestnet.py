"""How the kernel guest reaches the API server on the host, and nothing else.

The guest gets one virtio NIC on QEMU's user-mode network with ``restrict=on``,
which drops every packet the guest sends to the host or beyond, except the
explicit forward rules. One ``guestfwd`` rule maps 10.0.2.100:6443, an address
that exists only inside QEMU's user-mode network, to a relay that connects to the
API server on the host's 127.0.0.1. The guest configures its NIC statically
(no DHCP). The API server's serving certificate names 127.0.0.1 and localhost,
so the guest's kubeconfigs keep verifying it, with ``tls-server-name: localhost``.
"""

from __future__ import annotations

import re
import stat
import sys
from pathlib import Path
from typing import Any

import yaml

GUEST_CIDR = "10.0.2.15/24"
APISERVER_GUEST_HOST = "10.0.2.100"
APISERVER_GUEST_PORT = 6443
APISERVER_GUEST_URL = f"https://{APISERVER_GUEST_HOST}:{APISERVER_GUEST_PORT}"
TLS_SERVER_NAME = "localhost"
NETDEV_ID = "pfsrapi"

RELAY = Path(__file__).resolve().with_name("stdio_relay.py")
# QEMU splits its option values at commas, and vng passes them through a shell.
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+@:-]+$")


class GuestNetworkError(RuntimeError):
    """Raised when the forward to the API server cannot be set up."""


def write_relay_command(path: Path, apiserver_port: int) -> Path:
    """Write the script that QEMU runs for each guest connection to the API server."""
    for checked in (path, RELAY, Path(sys.executable)):
        if not _SAFE_PATH.match(str(checked)):
            raise GuestNetworkError(
                f"path {checked} contains a comma, a space or another character that "
                "QEMU's option parser or the shell would split; move the repository or "
                "the run folder to a plain path"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/sh\n"
        "# Run by QEMU for each guest connection to "
        f"{APISERVER_GUEST_HOST}:{APISERVER_GUEST_PORT}.\n"
        f"exec {sys.executable} {RELAY} {apiserver_port}\n",
        encoding="utf-8",
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def qemu_options(relay_command: Path) -> str:
    """Return the QEMU options of the guest's only NIC, for run-in-guest.sh's PFSR_QEMU_OPTS."""
    netdev = ",".join(
        [
            "user",
            f"id={NETDEV_ID}",
            "restrict=on",
            f"guestfwd=tcp:{APISERVER_GUEST_HOST}:{APISERVER_GUEST_PORT}-cmd:{relay_command}",
        ]
    )
    return f"-netdev {netdev} -device virtio-net-pci,netdev={NETDEV_ID}"


def write_guest_kubeconfig(source: Path, destination: Path) -> Path:
    """Copy a testbed kubeconfig, pointed at the API server's address inside the guest."""
    config: dict[str, Any] = yaml.safe_load(source.read_text(encoding="utf-8"))
    for entry in config.get("clusters") or []:
        cluster = entry["cluster"]
        cluster["server"] = APISERVER_GUEST_URL
        cluster["tls-server-name"] = TLS_SERVER_NAME
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    destination.chmod(0o600)
    return destination
