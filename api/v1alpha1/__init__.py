"""Version v1alpha1 of the pfstatusrelay.openshift.io API."""

from api.v1alpha1.types import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    Condition,
    ConditionStatus,
    InterfaceStatus,
    LACPState,
    NodeStatus,
    PFLACPMonitor,
    PFLACPMonitorSpec,
    PFLACPMonitorStatus,
    VFCounts,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "Condition",
    "ConditionStatus",
    "InterfaceStatus",
    "LACPState",
    "NodeStatus",
    "PFLACPMonitor",
    "PFLACPMonitorSpec",
    "PFLACPMonitorStatus",
    "VFCounts",
]
