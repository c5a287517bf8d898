"""The agent's environment, taken from the DaemonSet that the controller wrote.

No kubelet runs in the demo, so nothing turns the DaemonSet into a pod. The demo
starts the agent in the guest itself, with the environment that a kubelet would
give the DaemonSet's pod on the demo's node: every literal ``value`` as it is,
and the downward API's ``spec.nodeName`` resolved to the node's name. Any other
``valueFrom`` has no meaning without a kubelet, so it is rejected instead of
guessed.
"""

from __future__ import annotations

from typing import Any

AGENT_CONTAINER = "agent"


class AgentEnvError(ValueError):
    """Raised when the DaemonSet's pod template cannot be turned into an environment."""


def agent_container(daemonset: dict[str, Any]) -> dict[str, Any]:
    """Return the agent container of the DaemonSet's pod template."""
    containers = daemonset["spec"]["template"]["spec"].get("containers") or []
    for container in containers:
        if container.get("name") == AGENT_CONTAINER:
            return dict(container)
    names = [c.get("name") for c in containers]
    raise AgentEnvError(f"DaemonSet has no container named {AGENT_CONTAINER!r}; found {names}")


def agent_env(daemonset: dict[str, Any], node_name: str) -> dict[str, str]:
    """Return the agent container's environment as the kubelet of ``node_name`` would set it."""
    env: dict[str, str] = {}
    for variable in agent_container(daemonset).get("env") or []:
        name = variable["name"]
        if "value" in variable:
            env[name] = str(variable["value"])
            continue
        field_path = ((variable.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if field_path == "spec.nodeName":
            env[name] = node_name
            continue
        raise AgentEnvError(
            f"variable {name} comes from {variable.get('valueFrom')}, which only a kubelet "
            "can resolve; the demo resolves literal values and spec.nodeName"
        )
    return env
