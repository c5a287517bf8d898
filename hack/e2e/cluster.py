"""The demo's control plane: manifests, a Node object and the real controller.

Everything is applied as committed under config/, with the admin identity, to
the testbed's kube-apiserver. The controller runs as a child process with the
``controller`` identity, whose user name is that of the controller's
ServiceAccount, so config/rbac decides what it may do. No kubelet and no
controller-manager run: the Node object only carries the label that the sample
monitor selects, and the agent DaemonSet gets no pods (the demo starts the agent
in the guest itself, see hack.e2e.agentenv).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import yaml

from api.report import LABEL_MONITOR_UID
from controller.daemonset import AGENT_SERVICE_ACCOUNT, COMPONENT, LABEL_COMPONENT
from hack.testbed.apiserver import APIServer, free_port
from hack.testbed.identities import CONTROLLER, OPERATOR_NAMESPACE
from hack.testbed.process import ManagedProcess

LOG = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = REPO_ROOT / "config" / "crd"
RBAC_DIR = REPO_ROOT / "config" / "rbac"
MANAGER_MANIFEST = REPO_ROOT / "config" / "manager" / "manager.yaml"
SAMPLE_MONITOR = REPO_ROOT / "config" / "samples" / "pfstatusrelay_v1alpha1_pflacpmonitor.yaml"
CONTROLLER_COMMAND = REPO_ROOT / ".venv" / "bin" / "pf-status-relay-controller"
NODE_NAME = "worker-0"
DAEMONSET_TIMEOUT_S = 90.0


class ClusterError(RuntimeError):
    """Raised when the control plane does not reach the state the demo needs."""


def sample_monitor() -> dict[str, Any]:
    """Return the sample monitor as committed."""
    monitor: dict[str, Any] = yaml.safe_load(SAMPLE_MONITOR.read_text(encoding="utf-8"))
    return monitor


def agent_image() -> str:
    """Return the agent image that config/manager gives the controller (RELATED_IMAGE_AGENT)."""
    for document in yaml.safe_load_all(MANAGER_MANIFEST.read_text(encoding="utf-8")):
        if not document or document.get("kind") != "Deployment":
            continue
        for container in document["spec"]["template"]["spec"]["containers"]:
            for variable in container.get("env") or []:
                if variable.get("name") == "RELATED_IMAGE_AGENT":
                    return str(variable["value"])
    raise ClusterError(f"no RELATED_IMAGE_AGENT in {MANAGER_MANIFEST}")


def apply_manifests(server: APIServer) -> None:
    """Create the operator namespace, the CRD, the RBAC, the node and the sample monitor."""
    server.apply(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {OPERATOR_NAMESPACE}\n")
    server.apply(CRD_DIR)
    server.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/pflacpmonitors.pfstatusrelay.openshift.io", check=True,
    )  # fmt: skip
    # The Roles in config/rbac name no namespace: the overlays in config/ set it.
    server.apply(RBAC_DIR, namespace=OPERATOR_NAMESPACE)
    server.apply(
        "apiVersion: v1\nkind: Node\nmetadata:\n"
        f"  name: {NODE_NAME}\n  labels:\n    kubernetes.io/hostname: {NODE_NAME}\n"
    )
    server.apply(SAMPLE_MONITOR)


def controller_process(server: APIServer, log_path: Path) -> ManagedProcess:
    """Return the controller as the Deployment in config/manager would run it, not started."""
    return ManagedProcess(
        "controller",
        [
            str(CONTROLLER_COMMAND),
            f"--kubeconfig={server.kubeconfig(CONTROLLER.name)}",
            "--leader-elect",
            f"--namespace={OPERATOR_NAMESPACE}",
            f"--agent-image={agent_image()}",
            f"--health-probe-bind-address=127.0.0.1:{free_port()}",
            "--metrics-bind-address=0",
        ],
        log_path,
    )


def wait_daemonset(server: APIServer, controller: ManagedProcess) -> dict[str, Any]:
    """Wait for the agent DaemonSet that the controller writes for the sample monitor."""
    monitor = sample_monitor()["metadata"]
    uid = server.kubectl(
        "get", "pflm", "-n", monitor["namespace"], monitor["name"],
        "-o", "jsonpath={.metadata.uid}", check=True,
    ).stdout.strip()  # fmt: skip
    selector = f"{LABEL_COMPONENT}={COMPONENT},{LABEL_MONITOR_UID}={uid}"
    deadline = time.monotonic() + DAEMONSET_TIMEOUT_S
    while time.monotonic() < deadline:
        if not controller.running():
            raise ClusterError(
                f"the controller exited with code {controller.exit_code()}; "
                f"log {controller.log_path}:\n{controller.log_tail()}"
            )
        listed = server.kubectl(
            "get", "daemonset", "-n", OPERATOR_NAMESPACE, "-l", selector, "-o", "json", check=True
        )
        items: list[dict[str, Any]] = json.loads(listed.stdout).get("items") or []
        if items:
            daemonset = items[0]
            account = daemonset["spec"]["template"]["spec"].get("serviceAccountName")
            if account != AGENT_SERVICE_ACCOUNT:
                raise ClusterError(
                    f"DaemonSet {daemonset['metadata']['name']} runs as ServiceAccount "
                    f"{account!r}, but the demo's agent identity is {AGENT_SERVICE_ACCOUNT!r}"
                )
            return daemonset
        time.sleep(0.5)
    raise ClusterError(
        f"no agent DaemonSet ({selector}) within {DAEMONSET_TIMEOUT_S:.0f} s; "
        f"controller log {controller.log_path}:\n{controller.log_tail()}"
    )
