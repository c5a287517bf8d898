"""Desired agent DaemonSet: names, security context, env, exclusions and the change hash."""

from __future__ import annotations

from typing import Any

from api import agentconfig
from api.v1alpha1.types import PFLACPMonitorSpec
from controller.daemonset import (
    AgentSettings,
    daemonset_name,
    desired_daemonset,
    desired_hash,
    label_value,
    stored_hash,
)

SETTINGS = AgentSettings(image="registry.example/agent:1", namespace="operator-ns")


def monitor(name: str = "m", namespace: str = "tenant") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "uid": "u-1", "generation": 1}}


def spec(**overrides: Any) -> PFLACPMonitorSpec:
    return PFLACPMonitorSpec.model_validate({"interfaces": ["ens5f0", "ens5f1"], **overrides})


def env_of(body: dict[str, Any]) -> dict[str, Any]:
    container = body["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_names_are_dns_labels_for_any_monitor_name() -> None:
    for name in ["m", "a" * 253, "x.y.z", "UPPER"]:
        result = daemonset_name("ns", name)
        assert len(result) <= 63
        assert result.startswith("pfsr-agent-")
    assert daemonset_name("a-b", "c") != daemonset_name("a", "b-c")
    assert len(label_value("n" * 200)) <= 63


def test_pod_template_is_a_node_agent() -> None:
    body = desired_daemonset(monitor(), spec(nodeSelector={"zone": "a"}), [], SETTINGS)
    pod = body["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert body["metadata"]["namespace"] == "operator-ns"
    assert pod["hostNetwork"] is True
    assert pod["nodeSelector"] == {"zone": "a"}
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["serviceAccountName"] == "pf-status-relay-agent"
    assert "affinity" not in pod
    security = container["securityContext"]
    assert security["privileged"] is False
    assert security["runAsUser"] == 0
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW"]
    assert container["image"] == "registry.example/agent:1"
    assert container["livenessProbe"]["httpGet"]["port"] == agentconfig.DEFAULT_AGENT_HEALTH_PORT


def test_env_carries_monitor_and_spec() -> None:
    env = env_of(desired_daemonset(monitor(), spec(pollingInterval=2500), [], SETTINGS))
    assert env[agentconfig.ENV_INTERFACES] == "ens5f0,ens5f1"
    assert env[agentconfig.ENV_POLLING_INTERVAL_MS] == "2500"
    assert env[agentconfig.ENV_MONITOR_NAMESPACE] == "tenant"
    assert env[agentconfig.ENV_MONITOR_NAME] == "m"
    assert env[agentconfig.ENV_MONITOR_UID] == "u-1"
    assert env[agentconfig.ENV_NODE_NAME] == {
        "fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}
    }


def test_lost_nodes_excluded_by_name() -> None:
    body = desired_daemonset(monitor(), spec(), ["n2", "n1"], SETTINGS)
    terms = body["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert terms == [
        {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1", "n2"]}]}
    ]


def test_owner_reference_only_in_same_namespace() -> None:
    other = desired_daemonset(monitor(namespace="tenant"), spec(), [], SETTINGS)
    same = desired_daemonset(monitor(namespace="operator-ns"), spec(), [], SETTINGS)
    assert "ownerReferences" not in other["metadata"]
    assert same["metadata"]["ownerReferences"][0]["uid"] == "u-1"


def test_hash_stable_and_follows_spec() -> None:
    first = desired_daemonset(monitor(), spec(), [], SETTINGS)
    again = desired_daemonset(monitor(), spec(), [], SETTINGS)
    changed = desired_daemonset(monitor(), spec(pollingInterval=5000), [], SETTINGS)
    excluded = desired_daemonset(monitor(), spec(), ["n1"], SETTINGS)
    assert stored_hash(first) == stored_hash(again)
    assert stored_hash(first) != stored_hash(changed)
    assert stored_hash(first) != stored_hash(excluded)
    assert desired_hash(first) == stored_hash(first)


def test_hash_ignores_server_defaults() -> None:
    body = desired_daemonset(monitor(), spec(), [], SETTINGS)
    from_server = {
        **body,
        "metadata": {**body["metadata"], "resourceVersion": "9", "generation": 3},
    }
    from_server["status"] = {"desiredNumberScheduled": 4}
    # The controller compares the stored annotation, never the server's copy of the spec.
    assert stored_hash(from_server) == stored_hash(body)
