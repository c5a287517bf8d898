"""Environment contract between the agent DaemonSet the controller writes and the agent.

The controller sets these variables in the agent's pod template; the agent reads
them at start. Keeping the names here lets both sides change together.
"""

from __future__ import annotations

ENV_MONITOR_NAMESPACE = "PFSR_MONITOR_NAMESPACE"
ENV_MONITOR_NAME = "PFSR_MONITOR_NAME"
ENV_MONITOR_UID = "PFSR_MONITOR_UID"
# Comma-separated PF names, in spec order.
ENV_INTERFACES = "PFSR_INTERFACES"
# Milliseconds, as in spec.pollingInterval.
ENV_POLLING_INTERVAL_MS = "PFSR_POLLING_INTERVAL_MS"
# Set from the downward API: spec.nodeName.
ENV_NODE_NAME = "NODE_NAME"
ENV_METRICS_PORT = "PFSR_METRICS_PORT"
ENV_HEALTH_PORT = "PFSR_HEALTH_PORT"

DEFAULT_AGENT_METRICS_PORT = 9101
DEFAULT_AGENT_HEALTH_PORT = 9102

# Finalizer the controller keeps on a monitor until its agents have put back to auto
# every VF they disabled.
FINALIZER_RESTORE_VFS = "pfstatusrelay.openshift.io/restore-vfs"
