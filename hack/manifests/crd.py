"""Generate the PFLACPMonitor CustomResourceDefinition from the pydantic models in api/.

Kubernetes wants a structural OpenAPI v3 schema: every level typed, no ``$ref``, no
``anyOf`` with null, no ``title``. Pydantic's JSON schema has all three, so this
module inlines the definitions and rewrites the few constructs Kubernetes rejects,
keeping descriptions, bounds, patterns, defaults and the ``x-kubernetes-*``
extensions that the models declare.
"""

from __future__ import annotations

import copy
from typing import Any

from api.v1alpha1 import types

CRD_NAME = f"{types.PLURAL}.{types.GROUP}"
CRD_FILE_NAME = f"{types.GROUP}_{types.PLURAL}.yaml"

_PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Interfaces", "type": "string", "jsonPath": ".spec.interfaces"},
    {"name": "Interval", "type": "integer", "jsonPath": ".spec.pollingInterval"},
    {"name": "Nodes", "type": "integer", "jsonPath": ".status.nodeCount"},
    {"name": "Up", "type": "integer", "jsonPath": ".status.interfacesUp"},
    {"name": "Down", "type": "integer", "jsonPath": ".status.interfacesDown"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

_DROPPED_KEYS = frozenset({"title", "const"})


def _resolve(node: Any, definitions: dict[str, Any]) -> Any:
    """Inline ``$ref``s and rewrite ``anyOf`` with null into the non-null branch."""
    if isinstance(node, list):
        return [_resolve(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node

    if "$ref" in node:
        target = definitions[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**copy.deepcopy(target), **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, definitions)

    if "anyOf" in node:
        branches = [branch for branch in node["anyOf"] if branch.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"cannot express anyOf {node['anyOf']} in a structural schema")
        merged = {**branches[0], **{k: v for k, v in node.items() if k != "anyOf"}}
        if merged.get("default", 0) is None:
            del merged["default"]
        return _resolve(merged, definitions)

    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or key == "$defs":
            continue
        if key == "properties":
            result[key] = {name: _resolve(prop, definitions) for name, prop in value.items()}
        else:
            result[key] = _resolve(value, definitions)

    if result.get("type") == "object" and "properties" not in result:
        result.setdefault("additionalProperties", {})
        if result["additionalProperties"] in ({}, True):
            # Free-form object (metadata): Kubernetes expresses "anything" this way.
            result.pop("additionalProperties")
            result["x-kubernetes-preserve-unknown-fields"] = True
    if "enum" in result and "type" not in result:
        result["type"] = "string"
    return result


def _without_defaults(node: Any) -> Any:
    """Drop defaults: the controller writes every status field, so defaults only add noise."""
    if isinstance(node, list):
        return [_without_defaults(item) for item in node]
    if isinstance(node, dict):
        return {key: _without_defaults(value) for key, value in node.items() if key != "default"}
    return node


def _object_schema(model: type[types.PFLACPMonitor]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema: dict[str, Any] = _resolve(raw, raw.get("$defs", {}))
    properties = schema["properties"]
    properties["apiVersion"] = {
        "type": "string",
        "description": "Versioned schema of this representation of an object.",
    }
    properties["kind"] = {
        "type": "string",
        "description": "REST resource this object represents, in CamelCase.",
    }
    properties["metadata"] = {"type": "object"}
    properties["status"] = _without_defaults(properties["status"])
    schema["required"] = ["spec"]
    return schema


def build_crd() -> dict[str, Any]:
    """Return the CustomResourceDefinition of PFLACPMonitor as a dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": types.GROUP,
            "names": {
                "kind": types.KIND,
                "listKind": f"{types.KIND}List",
                "plural": types.PLURAL,
                "singular": types.SINGULAR,
                "shortNames": list(types.SHORT_NAMES),
                "categories": list(types.CATEGORIES),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": types.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": _object_schema(types.PFLACPMonitor)},
                }
            ],
        },
    }
