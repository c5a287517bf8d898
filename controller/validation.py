"""Checks of a monitor's spec that the controller repeats or adds to the CRD schema.

The API server validates new objects against the CRD schema, but objects stored
before a schema change, written with validation off, or carrying nodeSelector labels
that no node could ever carry still reach the controller. Such a monitor is marked
Degraded with a message that names the field, the value and the fix; the controller
then leaves its DaemonSet and every other monitor as they are.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from api.v1alpha1.types import (
    MAX_INTERFACE_NAME_LENGTH,
    MAX_POLLING_INTERVAL_MS,
    MIN_POLLING_INTERVAL_MS,
    PFLACPMonitorSpec,
)

# Label syntax as Kubernetes validates it (k8s.io/apimachinery validation.IsQualifiedName
# and IsValidLabelValue).
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*"
_LABEL_KEY = re.compile(rf"^({_PREFIX}/)?{_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_NAME})?$")

_FIXES = {
    "pollingInterval": (
        f"set it to a whole number of milliseconds from {MIN_POLLING_INTERVAL_MS} "
        f"to {MAX_POLLING_INTERVAL_MS}"
    ),
    "interfaces": (
        f"list 1 to 64 distinct PF names of at most {MAX_INTERFACE_NAME_LENGTH} characters, "
        "without '/', ':' or whitespace"
    ),
    "nodeSelector": "use label keys and values as Kubernetes allows them on nodes",
}


class InvalidSpecError(ValueError):
    """The monitor's spec cannot be acted on; the message names the field and the fix."""


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validate_spec(spec: Any) -> PFLACPMonitorSpec:
    """Parse ``spec`` and return it, or raise InvalidSpecError naming the first problem."""
    if not isinstance(spec, dict):
        raise InvalidSpecError("spec is missing or not an object: add spec.interfaces")
    try:
        parsed = PFLACPMonitorSpec.model_validate(spec)
    except ValidationError as error:
        first = error.errors()[0]
        loc = tuple(first["loc"])
        top = str(loc[0]) if loc else ""
        fix = _FIXES.get(top, "correct the value")
        raise InvalidSpecError(
            f"{_field_path(loc)}: {first['input']!r} is invalid ({first['msg']}); {fix}"
        ) from error
    if len(set(parsed.interfaces)) != len(parsed.interfaces):
        duplicates = sorted({n for n in parsed.interfaces if parsed.interfaces.count(n) > 1})
        raise InvalidSpecError(
            f"spec.interfaces: {', '.join(duplicates)} listed more than once; list each PF once"
        )
    for key, value in parsed.node_selector.items():
        if len(key) > 317 or not _LABEL_KEY.match(key):
            raise InvalidSpecError(
                f"spec.nodeSelector: key {key!r} is not a valid label key, so no node can match "
                f"it; {_FIXES['nodeSelector']}"
            )
        if not _LABEL_VALUE.match(value):
            raise InvalidSpecError(
                f"spec.nodeSelector[{key}]: value {value!r} is not a valid label value, so no "
                f"node can match it; {_FIXES['nodeSelector']}"
            )
    return parsed
