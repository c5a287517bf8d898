"""Check a ClusterServiceVersion against OLM's rules, without a cluster.

The operator-framework validators (``hack/bundle``) need Go, and the library version
they are built from (v0.9.1) is old. These checks run with Python alone and cover the
CSV rules that OLM applies at install time: required fields, install modes, a service
account with rules for every Deployment, listed images and ``alm-examples`` of owned
kinds. Each check returns findings instead of raising, so one run reports every problem.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

# The four install modes of the operators.coreos.com/v1alpha1 CSV API.
INSTALL_MODES = ("OwnNamespace", "SingleNamespace", "MultiNamespace", "AllNamespaces")
# Values that OperatorHub and the OpenShift console accept, from the lists in
# github.com/operator-framework/api v0.9.1, pkg/validation/internal/operatorhub.go.
CAPABILITIES = frozenset(
    {"Basic Install", "Seamless Upgrades", "Full Lifecycle", "Deep Insights", "Auto Pilot"}
)
CATEGORIES = frozenset(
    {
        "AI/Machine Learning",
        "Application Runtime",
        "Big Data",
        "Cloud Provider",
        "Developer Tools",
        "Database",
        "Integration & Delivery",
        "Logging & Tracing",
        "Monitoring",
        "Networking",
        "OpenShift Optional",
        "Security",
        "Storage",
        "Streaming & Messaging",
    }
)
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
# Annotation that OLM sets on the operator's pods to the OperatorGroup's target namespaces.
TARGET_NAMESPACES_PATH = "metadata.annotations['olm.targetNamespaces']"


@dataclass(frozen=True)
class Finding:
    """One problem in a bundle: an error fails validation, a warning does not."""

    level: Literal["ERROR", "WARNING"]
    message: str

    def __str__(self) -> str:
        return f"{self.level} {self.message}"


def error(message: str) -> Finding:
    return Finding("ERROR", message)


def warning(message: str) -> Finding:
    return Finding("WARNING", message)


def _get(obj: Any, *path: str) -> Any:
    """Return OBJ[path[0]][path[1]]..., or None when a level is missing."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def check_required_fields(csv: dict[str, Any]) -> list[Finding]:
    """Check the fields that OLM and the console read from every CSV."""
    findings = []
    for path in (
        ("metadata", "name"),
        ("spec", "version"),
        ("spec", "displayName"),
        ("spec", "description"),
        ("spec", "provider", "name"),
        ("spec", "maintainers"),
        ("spec", "minKubeVersion"),
    ):
        if not _get(csv, *path):
            findings.append(error(f"CSV field {'.'.join(path)} is missing or empty"))

    version = _get(csv, "spec", "version")
    if version and not SEMVER.match(str(version)):
        findings.append(error(f"CSV spec.version {version!r} is not a semantic version"))
    min_kube = _get(csv, "spec", "minKubeVersion")
    if min_kube and not SEMVER.match(str(min_kube)):
        findings.append(error(f"CSV spec.minKubeVersion {min_kube!r} is not a semantic version"))
    if _get(csv, "spec", "replaces") == _get(csv, "metadata", "name"):
        findings.append(error("CSV spec.replaces names the CSV itself"))
    return findings


def check_annotations(csv: dict[str, Any]) -> list[Finding]:
    """Check the metadata annotations that OperatorHub and the console display."""
    annotations = _get(csv, "metadata", "annotations") or {}
    findings = []

    capability = annotations.get("capabilities")
    if capability not in CAPABILITIES:
        findings.append(
            error(
                f"CSV annotation capabilities {capability!r} is not one of {sorted(CAPABILITIES)}"
            )
        )
    for category in str(annotations.get("categories", "")).split(","):
        if category.strip() not in CATEGORIES:
            findings.append(error(f"CSV annotation categories has unknown category {category!r}"))
    for key in ("containerImage", "createdAt", "description", "repository", "support"):
        if not annotations.get(key):
            findings.append(warning(f"CSV annotation {key} is missing"))

    created_at = annotations.get("createdAt")
    if created_at:
        try:
            datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
        except ValueError:
            findings.append(error(f"CSV annotation createdAt {created_at!r} is not RFC 3339"))

    features = annotations.get("operators.openshift.io/infrastructure-features")
    if features is not None:
        try:
            parsed = json.loads(features)
        except json.JSONDecodeError as exc:
            parsed = None
            findings.append(error(f"infrastructure-features annotation is invalid JSON: {exc}"))
        if parsed is not None and not isinstance(parsed, list):
            findings.append(error("infrastructure-features annotation is not a JSON array"))
    return findings


def check_install_modes(csv: dict[str, Any]) -> list[Finding]:
    """Check that each install mode is declared once and one of them is supported."""
    modes = _get(csv, "spec", "installModes") or []
    findings = []
    types = [mode.get("type") for mode in modes]
    for mode_type in INSTALL_MODES:
        if types.count(mode_type) != 1:
            findings.append(
                error(
                    f"install mode {mode_type} is declared {types.count(mode_type)} times, "
                    "expected once"
                )
            )
    for mode_type in set(types) - set(INSTALL_MODES):
        findings.append(error(f"unknown install mode {mode_type!r}"))
    if not any(mode.get("supported") is True for mode in modes):
        findings.append(error("no install mode is supported"))
    return findings


def _deployments(csv: dict[str, Any]) -> list[dict[str, Any]]:
    return list(_get(csv, "spec", "install", "spec", "deployments") or [])


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    pod_spec = _get(deployment, "spec", "template", "spec") or {}
    return [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]


def check_install(csv: dict[str, Any]) -> list[Finding]:
    """Check the deployment install strategy: deployments, selectors and service accounts."""
    install = _get(csv, "spec", "install") or {}
    findings = []
    if install.get("strategy") != "deployment":
        findings.append(error(f"install strategy {install.get('strategy')!r} is not deployment"))
    deployments = _deployments(csv)
    if not deployments:
        return [*findings, error("CSV spec.install.spec.deployments is empty")]

    names = [deployment.get("name") for deployment in deployments]
    for name in sorted({name for name in names if names.count(name) > 1}, key=str):
        findings.append(error(f"deployment name {name!r} is used {names.count(name)} times"))

    granted = set()
    for section in ("permissions", "clusterPermissions"):
        for grant in _get(install, "spec", section) or []:
            if not grant.get("serviceAccountName"):
                findings.append(error(f"an entry of {section} has no serviceAccountName"))
            granted.add(grant.get("serviceAccountName"))
            for rule in grant.get("rules", []):
                if not rule.get("verbs"):
                    findings.append(error(f"a rule of {section} has no verbs: {rule}"))
                if not rule.get("resources") and not rule.get("nonResourceURLs"):
                    findings.append(error(f"a rule of {section} names no resources: {rule}"))

    for deployment in deployments:
        findings.extend(_check_deployment(deployment, granted))
    return findings


def _check_deployment(deployment: dict[str, Any], granted: set[Any]) -> list[Finding]:
    name = deployment.get("name")
    spec = deployment.get("spec") or {}
    findings = []
    match_labels = _get(spec, "selector", "matchLabels") or {}
    pod_labels = _get(spec, "template", "metadata", "labels") or {}
    if not match_labels:
        findings.append(error(f"deployment {name} has no spec.selector.matchLabels"))
    for key, value in match_labels.items():
        if pod_labels.get(key) != value:
            findings.append(
                error(f"deployment {name}: selector label {key}={value} is not on the pod template")
            )
    account = _get(spec, "template", "spec", "serviceAccountName") or "default"
    if account not in granted:
        findings.append(
            error(
                f"deployment {name} runs as service account {account}, which no permissions "
                "entry names, so OLM does not create it"
            )
        )
    for container in _containers(deployment):
        if not container.get("image"):
            findings.append(
                error(f"deployment {name}: container {container.get('name')} has no image")
            )
    return findings


def check_watch_namespace(csv: dict[str, Any]) -> list[Finding]:
    """Check that a CSV with a namespaced install mode passes the target namespaces on.

    Without an environment variable from ``olm.targetNamespaces`` an operator installed
    in OwnNamespace mode would still watch every namespace.
    """
    modes = _get(csv, "spec", "installModes") or []
    namespaced = [m for m in modes if m.get("type") != "AllNamespaces" and m.get("supported")]
    if not namespaced:
        return []
    findings = []
    for deployment in _deployments(csv):
        reads_targets = any(
            _get(variable, "valueFrom", "fieldRef", "fieldPath") == TARGET_NAMESPACES_PATH
            for container in _containers(deployment)
            for variable in container.get("env", [])
        )
        if not reads_targets:
            findings.append(
                error(
                    f"deployment {deployment.get('name')} supports a namespaced install mode "
                    f"but no env variable reads {TARGET_NAMESPACES_PATH}"
                )
            )
    return findings


def check_related_images(csv: dict[str, Any]) -> list[Finding]:
    """Check that every image the operator runs or starts is listed in relatedImages.

    Mirroring tools for disconnected clusters copy only the listed images.
    """
    listed = {entry.get("image") for entry in _get(csv, "spec", "relatedImages") or []}
    findings = []
    for deployment in _deployments(csv):
        for container in _containers(deployment):
            used = [container.get("image")]
            used += [
                variable.get("value")
                for variable in container.get("env", [])
                if variable.get("name", "").startswith("RELATED_IMAGE_")
            ]
            for image in used:
                if image and image not in listed:
                    findings.append(
                        error(
                            f"image {image} of deployment {deployment.get('name')} "
                            "is missing from spec.relatedImages"
                        )
                    )
    return findings


def parse_alm_examples(csv: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Finding]]:
    """Return the objects of the ``alm-examples`` annotation and the problems found."""
    text = _get(csv, "metadata", "annotations", "alm-examples")
    if text is None:
        return [], [warning("CSV annotation alm-examples is missing")]
    try:
        examples = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [error(f"alm-examples is invalid JSON: {exc}")]
    if not isinstance(examples, list) or not all(isinstance(e, dict) for e in examples):
        return [], [error("alm-examples is not a JSON array of objects")]
    return examples, []


def check_alm_examples(csv: dict[str, Any]) -> list[Finding]:
    """Check that every example is an object of a CRD that the CSV owns."""
    examples, findings = parse_alm_examples(csv)
    owned = {
        (f"{entry['name'].split('.', 1)[1]}/{entry['version']}", entry["kind"])
        for entry in _get(csv, "spec", "customresourcedefinitions", "owned") or []
        if "." in entry.get("name", "")
    }
    for example in examples:
        key = (example.get("apiVersion"), example.get("kind"))
        if key not in owned:
            findings.append(
                error(f"alm-examples contains {key[1]} {key[0]}, which the CSV does not own")
            )
        if not _get(example, "metadata", "name"):
            findings.append(error(f"alm-examples contains a {key[1]} without metadata.name"))
    return findings


def check_csv(csv: dict[str, Any]) -> list[Finding]:
    """Run every check of this module on CSV."""
    return [
        *check_required_fields(csv),
        *check_annotations(csv),
        *check_install_modes(csv),
        *check_install(csv),
        *check_watch_namespace(csv),
        *check_related_images(csv),
        *check_alm_examples(csv),
    ]
