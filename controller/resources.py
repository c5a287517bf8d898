"""The API resources the controller reads and writes, in one place for RBAC review.

Every resource here must have a matching rule in config/rbac/controller_role.yaml.
"""

from __future__ import annotations

from api.v1alpha1.types import GROUP, PLURAL, VERSION
from controller.kube import Resource

MONITORS = Resource(GROUP, VERSION, PLURAL)
DAEMONSETS = Resource("apps", "v1", "daemonsets")
NODES = Resource("", "v1", "nodes", namespaced=False)
EVENTS = Resource("events.k8s.io", "v1", "events")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
