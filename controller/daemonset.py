"""The agent DaemonSet the controller wants for one monitor.

One DaemonSet per monitor runs in the operator's namespace. Monitors live in any
namespace, and Kubernetes forbids owner references across namespaces (the garbage
collector would delete the DaemonSet at once), so the link to the monitor is made
by labels (monitor namespace, name and UID) and the controller deletes the
DaemonSet itself in the monitor's finalizer. When the monitor lives in the operator
namespace, an owner reference is added as well, as a safety net.

Names and label values are DNS labels of at most 63 characters whatever the monitor
is called: long or clashing names are cut and end in a hash of the full value.

``DESIRED_HASH_ANNOTATION`` stores a hash of everything the controller sets. The
controller compares it with the hash of the new desired object and writes only when
they differ, so server defaults never cause an update loop.

Node selection: the pod's nodeSelector is the monitor's nodeSelector, and nodes lost
to an older monitor are excluded by name (``matchFields metadata.name NotIn``).
The agent tolerates every taint, as node agents do, so a tainted or cordoned node
keeps its VFs following LACP.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api import agentconfig
from api.report import LABEL_MONITOR_UID
from api.v1alpha1.types import API_VERSION, GROUP, KIND, PFLACPMonitorSpec

JSON = dict[str, Any]

LABEL_MONITOR_NAMESPACE = f"{GROUP}/monitor-namespace"
LABEL_MONITOR_NAME = f"{GROUP}/monitor-name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_APP_NAME = "app.kubernetes.io/name"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
APP_NAME = "pf-status-relay"
COMPONENT = "agent"
MANAGED_BY = "pf-status-relay-controller"
DESIRED_HASH_ANNOTATION = f"{GROUP}/desired-hash"
# Full namespace/name of the monitor, which label values may be too short to hold.
MONITOR_ANNOTATION = f"{GROUP}/monitor"
AGENT_SERVICE_ACCOUNT = "pf-status-relay-agent"
NAME_PREFIX = "pfsr-agent-"
MAX_DNS_LABEL = 63
# Label selector of the DaemonSet informer: every agent DaemonSet this controller wrote.
DAEMONSET_SELECTOR = f"{LABEL_MONITOR_UID},{LABEL_MANAGED_BY}={MANAGED_BY}"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _digest(value: str, length: int) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:length]


def shorten(value: str, limit: int = MAX_DNS_LABEL) -> str:
    """Return ``value`` if it fits ``limit``, else a cut of it ending in a hash of the whole."""
    if len(value) <= limit:
        return value
    suffix = _digest(value, 10)
    return f"{value[: limit - 11].rstrip('-._')}-{suffix}"


def daemonset_name(namespace: str, name: str) -> str:
    """Return the DaemonSet name for monitor ``namespace/name``: a DNS label, unique per monitor.

    The hash of ``namespace/name`` keeps monitors of the same name in different
    namespaces (and names that only differ after the cut) apart.
    """
    readable = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-") or "monitor"
    suffix = _digest(f"{namespace}/{name}", 10)
    room = MAX_DNS_LABEL - len(NAME_PREFIX) - len(suffix) - 1
    result = f"{NAME_PREFIX}{readable[:room].rstrip('-')}-{suffix}"
    assert _DNS_LABEL.match(result), result
    return result


def label_value(value: str) -> str:
    """Return a valid label value for a monitor name or namespace (at most 63 characters)."""
    return shorten(value).strip("-._")


def monitor_labels(namespace: str, name: str, uid: str) -> dict[str, str]:
    """Labels that tie an agent DaemonSet and its pods to one monitor."""
    return {
        LABEL_APP_NAME: APP_NAME,
        LABEL_COMPONENT: COMPONENT,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_MONITOR_NAMESPACE: label_value(namespace),
        LABEL_MONITOR_NAME: label_value(name),
        LABEL_MONITOR_UID: uid,
    }


@dataclass(frozen=True)
class AgentSettings:
    """What the operator decides about every agent, independent of the monitor."""

    image: str
    namespace: str
    cpu_request: str = "10m"
    memory_request: str = "32Mi"
    memory_limit: str = "128Mi"
    priority_class: str = "system-node-critical"


def _env(monitor_namespace: str, name: str, uid: str, spec: PFLACPMonitorSpec) -> list[JSON]:
    return [
        {"name": agentconfig.ENV_MONITOR_NAMESPACE, "value": monitor_namespace},
        {"name": agentconfig.ENV_MONITOR_NAME, "value": name},
        {"name": agentconfig.ENV_MONITOR_UID, "value": uid},
        {"name": agentconfig.ENV_INTERFACES, "value": ",".join(spec.interfaces)},
        {"name": agentconfig.ENV_POLLING_INTERVAL_MS, "value": str(spec.polling_interval)},
        {
            "name": agentconfig.ENV_NODE_NAME,
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}},
        },
        {
            "name": agentconfig.ENV_METRICS_PORT,
            "value": str(agentconfig.DEFAULT_AGENT_METRICS_PORT),
        },
        {"name": agentconfig.ENV_HEALTH_PORT, "value": str(agentconfig.DEFAULT_AGENT_HEALTH_PORT)},
    ]


def _container(env: list[JSON], settings: AgentSettings) -> JSON:
    probe = {
        "httpGet": {"path": "/healthz", "port": agentconfig.DEFAULT_AGENT_HEALTH_PORT},
        "periodSeconds": 10,
        "timeoutSeconds": 2,
    }
    return {
        "name": "agent",
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "ports": [
            {"name": "metrics", "containerPort": agentconfig.DEFAULT_AGENT_METRICS_PORT},
            {"name": "health", "containerPort": agentconfig.DEFAULT_AGENT_HEALTH_PORT},
        ],
        # Netlink writes of VF link state need NET_ADMIN; LACPDU capture needs NET_RAW.
        "securityContext": {
            "runAsUser": 0,
            "runAsNonRoot": False,
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN", "NET_RAW"]},
        },
        "livenessProbe": {**probe, "failureThreshold": 3, "initialDelaySeconds": 10},
        "readinessProbe": {**probe, "failureThreshold": 1},
        "resources": {
            "requests": {"cpu": settings.cpu_request, "memory": settings.memory_request},
            "limits": {"memory": settings.memory_limit},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def desired_daemonset(
    monitor: JSON,
    spec: PFLACPMonitorSpec,
    excluded_nodes: Sequence[str],
    settings: AgentSettings,
) -> JSON:
    """Build the DaemonSet for ``monitor`` with its hash annotation set."""
    metadata = monitor.get("metadata") or {}
    namespace = str(metadata["namespace"])
    name = str(metadata["name"])
    uid = str(metadata["uid"])
    labels = monitor_labels(namespace, name, uid)
    selector = {LABEL_COMPONENT: COMPONENT, LABEL_MONITOR_UID: uid}
    pod_spec: JSON = {
        "serviceAccountName": AGENT_SERVICE_ACCOUNT,
        "hostNetwork": True,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "priorityClassName": settings.priority_class,
        "tolerations": [{"operator": "Exists"}],
        "nodeSelector": dict(spec.node_selector),
        "terminationGracePeriodSeconds": 30,
        "containers": [_container(_env(namespace, name, uid, spec), settings)],
    }
    if excluded_nodes:
        pod_spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {
                                    "key": "metadata.name",
                                    "operator": "NotIn",
                                    "values": sorted(excluded_nodes),
                                }
                            ]
                        }
                    ]
                }
            }
        }
    body: JSON = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": daemonset_name(namespace, name),
            "namespace": settings.namespace,
            "labels": labels,
            "annotations": {MONITOR_ANNOTATION: f"{namespace}/{name}"},
        },
        "spec": {
            "selector": {"matchLabels": selector},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
    if namespace == settings.namespace:
        body["metadata"]["ownerReferences"] = [
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": name,
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": False,
            }
        ]
    body["metadata"]["annotations"][DESIRED_HASH_ANNOTATION] = desired_hash(body)
    return body


def desired_hash(body: JSON) -> str:
    """Hash everything the controller sets in ``body``, except the hash annotation itself."""
    copy = json.loads(json.dumps(body))
    copy["metadata"].get("annotations", {}).pop(DESIRED_HASH_ANNOTATION, None)
    canonical = json.dumps(copy, sort_keys=True, separators=(",", ":"))
    return _digest(canonical, 20)


def stored_hash(daemonset: JSON) -> str:
    """Return the hash annotation of a DaemonSet read from the API server."""
    annotations = (daemonset.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(DESIRED_HASH_ANNOTATION, ""))


def monitor_key_of(daemonset: JSON) -> str:
    """Return ``namespace/name`` of the monitor an agent DaemonSet belongs to."""
    annotations = (daemonset.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(MONITOR_ANNOTATION, ""))


def monitor_uid_of(daemonset: JSON) -> str:
    """Return the UID of the monitor an agent DaemonSet belongs to."""
    return str(((daemonset.get("metadata") or {}).get("labels") or {}).get(LABEL_MONITOR_UID, ""))
