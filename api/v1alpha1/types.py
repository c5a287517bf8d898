"""Pydantic models of the PFLACPMonitor custom resource.

These models are the single source of the CRD: ``make manifests`` turns their JSON
schema into the OpenAPI schema under ``config/crd/bases`` and ``bundle/manifests``,
so every description and validation rule written here reaches ``kubectl explain``
and the API server's admission checks. The controller and the agent parse objects
with the same models, so a value the API server accepts is a value they accept.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

GROUP = "pfstatusrelay.openshift.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "PFLACPMonitor"
PLURAL = "pflacpmonitors"
SINGULAR = "pflacpmonitor"
SHORT_NAMES = ("pflm",)
CATEGORIES = ("pfstatusrelay",)

MIN_POLLING_INTERVAL_MS = 1000
DEFAULT_POLLING_INTERVAL_MS = 1000
# One minute: the poll is the safety net for state changes that the kernel does not
# announce (a partner-only change, recovery from defaulted). A longer interval would
# leave such a failure unnoticed for more than a minute.
MAX_POLLING_INTERVAL_MS = 60000
# Linux limits interface names to IFNAMSIZ - 1 = 15 bytes.
MAX_INTERFACE_NAME_LENGTH = 15
MAX_INTERFACES = 64
# A Linux interface name may not contain '/', ':' or whitespace, and may not be '.' or '..'.
INTERFACE_NAME_PATTERN = r"^[^/:\s]+$"


class _Model(BaseModel):
    """Base of all API models: camelCase names on the wire, unknown fields ignored."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")


InterfaceName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_INTERFACE_NAME_LENGTH,
        pattern=INTERFACE_NAME_PATTERN,
        description=(
            "Name of a physical function (PF) network interface on the node, for example ens5f0. "
            "1 to 15 characters, without '/', ':' or whitespace."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self != '.' && self != '..'",
                    "message": "'.' and '..' are not valid interface names",
                }
            ]
        },
    ),
]


class PFLACPMonitorSpec(_Model):
    """Desired state of a PFLACPMonitor."""

    interfaces: list[InterfaceName] = Field(
        min_length=1,
        max_length=MAX_INTERFACES,
        description=(
            "Physical function (PF) interfaces whose LACP state decides the link state of their "
            "virtual functions (VFs). Each PF must be the only member of its own 802.3ad bond. "
            "At least one, each name at most once."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    polling_interval: int = Field(
        default=DEFAULT_POLLING_INTERVAL_MS,
        alias="pollingInterval",
        ge=MIN_POLLING_INTERVAL_MS,
        le=MAX_POLLING_INTERVAL_MS,
        description=(
            "Milliseconds between two reads of the LACP state of every interface, the safety net "
            "behind the agent's reaction to netlink events and LACPDUs. "
            f"Minimum {MIN_POLLING_INTERVAL_MS}, maximum {MAX_POLLING_INTERVAL_MS}, "
            f"default {DEFAULT_POLLING_INTERVAL_MS}."
        ),
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        alias="nodeSelector",
        description=(
            "Node labels that select the nodes this monitor covers, with the semantics of a pod's "
            "nodeSelector: a node is selected when it carries every label with the given value. "
            "Empty or missing selects every node. A node may be covered by one monitor only."
        ),
    )


class ConditionStatus(StrEnum):
    """Status of a condition, as in metav1.Condition."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(_Model):
    """One aspect of the monitor's state, in the shape of metav1.Condition."""

    type: str = Field(
        description="Condition type: Ready, Degraded or Progressing.",
        max_length=316,
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        description="CamelCase reason for the last transition, for machines.",
        max_length=1024,
        min_length=1,
    )
    message: str = Field(
        default="", description="Explanation of the last transition, for humans.", max_length=32768
    )
    last_transition_time: datetime = Field(
        alias="lastTransitionTime", description="Time the status last changed."
    )
    observed_generation: int = Field(
        default=0,
        alias="observedGeneration",
        ge=0,
        description="metadata.generation of the monitor that the condition was set for.",
    )


class LACPState(StrEnum):
    """Verdict of the node agent on one PF's LACP health."""

    UP = "Up"
    DOWN = "Down"
    UNKNOWN = "Unknown"


class VFCounts(_Model):
    """Virtual functions of one PF, counted by their link state."""

    total: int = Field(default=0, ge=0, description="VFs the PF has.")
    managed: int = Field(
        default=0,
        ge=0,
        description="VFs whose link state the agent sets: those in auto or disable.",
    )
    disabled: int = Field(default=0, ge=0, description="VFs whose link state is disable.")


class InterfaceStatus(_Model):
    """LACP state of one PF on one node, as the node agent last reported it."""

    name: str = Field(description="PF interface name.")
    lacp_state: LACPState = Field(alias="lacpState", description="Up, Down or Unknown.")
    reason: str = Field(
        description="CamelCase reason for the verdict, for example PartnerExpired or NotInBond."
    )
    message: str = Field(default="", description="Explanation of the verdict and what to check.")
    bond: str = Field(default="", description="Name of the 802.3ad bond the PF is a member of.")
    lacp_rate: str = Field(
        default="", alias="lacpRate", description="LACP rate of the bond: fast or slow."
    )
    actor_state: int | None = Field(
        default=None,
        alias="actorState",
        ge=0,
        le=255,
        description="LACP port state the host sends (IEEE 802.1AX state byte, 63 when healthy).",
    )
    partner_state: int | None = Field(
        default=None,
        alias="partnerState",
        ge=0,
        le=65535,
        description="LACP port state of the switch port as the host last received it.",
    )
    partner_mac: str = Field(
        default="", alias="partnerMAC", description="System MAC address of the LACP partner."
    )
    aggregator_id: int | None = Field(
        default=None, alias="aggregatorID", description="Aggregator the PF is attached to."
    )
    active_aggregator_id: int | None = Field(
        default=None, alias="activeAggregatorID", description="Active aggregator of the bond."
    )
    vfs: VFCounts = Field(default_factory=VFCounts, description="VF counts by link state.")
    last_transition_time: datetime | None = Field(
        default=None,
        alias="lastTransitionTime",
        description="Time lacpState last changed on this node.",
    )


class NodeStatus(_Model):
    """State of every monitored PF on one node."""

    name: str = Field(description="Node name.")
    last_report_time: datetime | None = Field(
        default=None,
        alias="lastReportTime",
        description="Time of the newest report from this node's agent.",
    )
    agent_reachable: bool = Field(
        default=True,
        alias="agentReachable",
        description=(
            "False when the agent has not reported within the report timeout; "
            "its interfaces are then Unknown."
        ),
    )
    interfaces: list[InterfaceStatus] = Field(
        default_factory=list,
        description="One entry per monitored PF.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


class PFLACPMonitorStatus(_Model):
    """Observed state of a PFLACPMonitor."""

    observed_generation: int = Field(
        default=0,
        alias="observedGeneration",
        ge=0,
        description="metadata.generation the controller last acted on.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Degraded and Progressing conditions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    node_count: int = Field(
        default=0, alias="nodeCount", ge=0, description="Nodes this monitor covers."
    )
    interfaces_up: int = Field(
        default=0, alias="interfacesUp", ge=0, description="Node interfaces whose LACP is Up."
    )
    interfaces_down: int = Field(
        default=0, alias="interfacesDown", ge=0, description="Node interfaces whose LACP is Down."
    )
    interfaces_unknown: int = Field(
        default=0,
        alias="interfacesUnknown",
        ge=0,
        description="Node interfaces whose LACP state is Unknown.",
    )
    nodes_omitted: int = Field(
        default=0,
        alias="nodesOmitted",
        ge=0,
        description=(
            "Covered nodes left out of nodes to keep the object under the API server's size "
            "limit. Nodes with an interface that is not Up are listed first, so the omitted "
            "ones are healthy unless every listed node has a problem. The counters include them."
        ),
    )
    nodes: list[NodeStatus] = Field(
        default_factory=list,
        description="Per node, the LACP state of every monitored interface.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


class PFLACPMonitor(_Model):
    """Monitor of the LACP state of SR-IOV PFs, whose VFs follow that state."""

    api_version: Literal["pfstatusrelay.openshift.io/v1alpha1"] = Field(
        default="pfstatusrelay.openshift.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["PFLACPMonitor"] = "PFLACPMonitor"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: PFLACPMonitorSpec
    status: PFLACPMonitorStatus | None = None
