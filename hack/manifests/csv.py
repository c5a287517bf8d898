"""Assemble the ClusterServiceVersion the way ``operator-sdk generate bundle`` does.

OLM installs an operator from its CSV alone: it creates the service accounts, the
RBAC rules and the Deployment that the CSV lists, and it ignores the ServiceAccount,
Role and binding objects of a plain install. This module turns the objects of
``kubectl kustomize config/default`` into those CSV sections and merges them into the
hand-written base CSV under ``config/manifests/bases``, which contains the display
text and descriptors.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "pf-status-relay-operator"
CONFIG_MANIFESTS = Path(__file__).resolve().parents[2] / "config" / "manifests"
BASE_CSV = CONFIG_MANIFESTS / "bases" / f"{PACKAGE}.clusterserviceversion.yaml"
ICON = CONFIG_MANIFESTS / "icon.svg"

# Environment variable of the Deployment that names the node agent's image. The CSV's
# relatedImages lists the same image so that mirroring tools copy it for disconnected
# clusters.
AGENT_IMAGE_ENV = "RELATED_IMAGE_AGENT"
# The controller watches this namespace only, or every namespace when it is empty.
# OLM writes the OperatorGroup's target namespaces into this annotation of the pod:
# the operator's own namespace in OwnNamespace mode, "" in AllNamespaces mode.
WATCH_NAMESPACE_ENV: dict[str, Any] = {
    "name": "WATCH_NAMESPACE",
    "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['olm.targetNamespaces']"}},
}

# Kinds that OLM turns into CSV sections instead of bundle manifests.
_CSV_KINDS = frozenset(
    {"ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "Deployment"}
)
# Kinds of a plain install that a bundle leaves out. The namespace belongs to the
# OperatorGroup, and the bundle carries the CRD file that ``make manifests`` writes.
_SKIPPED_KINDS = frozenset({"Namespace", "CustomResourceDefinition"})
# Other kinds that the registry+v1 format accepts as extra bundle manifests, from the
# list of supported types in operator-registry's bundle validation.
EXTRA_KINDS = frozenset(
    {
        "ConfigMap",
        "Secret",
        "Service",
        "PrometheusRule",
        "ServiceMonitor",
        "PodDisruptionBudget",
        "PriorityClass",
        "VerticalPodAutoscaler",
        "NetworkPolicy",
        "ConsoleYAMLSample",
        "ConsoleQuickStart",
        "ConsoleCLIDownload",
        "ConsoleLink",
    }
)


class CSVError(ValueError):
    """The kustomize objects cannot be expressed in a CSV."""


@dataclass(frozen=True)
class Release:
    """Values that change from one bundle to the next."""

    version: str
    image: str
    replaces: str | None = None

    @property
    def csv_name(self) -> str:
        return csv_name(self.version)


def csv_name(version: str) -> str:
    """Return the CSV name of VERSION, ``<package>.v<version>`` as OLM expects."""
    return f"{PACKAGE}.v{version}"


def load_base() -> dict[str, Any]:
    """Return the hand-written base CSV."""
    base: dict[str, Any] = yaml.safe_load(BASE_CSV.read_text())
    return base


def icon() -> list[dict[str, str]]:
    """Return the CSV ``icon`` section with the SVG under config/manifests."""
    data = base64.b64encode(ICON.read_bytes()).decode("ascii")
    return [{"base64data": data, "mediatype": "image/svg+xml"}]


def _of_kind(objects: Iterable[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj.get("kind") in kinds]


def _service_accounts(binding: dict[str, Any], namespace: str) -> list[str]:
    """Return the service accounts of BINDING, rejecting subjects OLM cannot create."""
    name = binding["metadata"]["name"]
    accounts = []
    for subject in binding.get("subjects", []):
        if subject.get("kind") != "ServiceAccount":
            raise CSVError(
                f"binding {name} has subject {subject.get('kind')} {subject.get('name')}; "
                "a CSV can grant rules to service accounts only"
            )
        if subject.get("namespace", namespace) != namespace:
            raise CSVError(
                f"binding {name} names service account {subject['name']} in namespace "
                f"{subject['namespace']}; OLM creates service accounts in the operator's "
                f"namespace {namespace} only"
            )
        accounts.append(subject["name"])
    return accounts


def _role_rules(objects: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    for role in _of_kind(objects, kind):
        if role["metadata"]["name"] == name:
            return list(role.get("rules", []))
    raise CSVError(f"binding references {kind} {name}, which config/default does not define")


def permissions(
    objects: list[dict[str, Any]], namespace: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return ``(clusterPermissions, permissions)``: the rules of each service account.

    A ClusterRoleBinding grants cluster-wide rules. A RoleBinding grants rules in the
    operator's namespace, also when it references a ClusterRole. Rules of several
    roles bound to one account are concatenated in binding order, and the accounts
    are sorted by name.
    """
    cluster: dict[str, list[dict[str, Any]]] = {}
    namespaced: dict[str, list[dict[str, Any]]] = {}
    for binding in _of_kind(objects, "ClusterRoleBinding", "RoleBinding"):
        role_ref = binding["roleRef"]
        rules = _role_rules(objects, role_ref["kind"], role_ref["name"])
        target = cluster if binding["kind"] == "ClusterRoleBinding" else namespaced
        for account in _service_accounts(binding, namespace):
            target.setdefault(account, []).extend(copy.deepcopy(rules))

    def section(grants: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        return [
            {"serviceAccountName": account, "rules": grants[account]} for account in sorted(grants)
        ]

    return section(cluster), section(namespaced)


def _set_env(container: dict[str, Any], variable: dict[str, Any]) -> None:
    """Set VARIABLE in CONTAINER's env, replacing a variable of the same name."""
    env = container.setdefault("env", [])
    for index, existing in enumerate(env):
        if existing["name"] == variable["name"]:
            env[index] = variable
            return
    env.append(variable)


def deployment(source: dict[str, Any], image: str) -> dict[str, Any]:
    """Return the CSV entry of the Deployment SOURCE, with every image set to IMAGE.

    The controller image also contains the node agent, so ``RELATED_IMAGE_AGENT``
    gets the same IMAGE. ``WATCH_NAMESPACE`` is added for OLM's install modes.
    """
    spec = copy.deepcopy(source["spec"])
    containers = spec["template"]["spec"]["containers"]
    for container in containers:
        container["image"] = image
        for variable in container.get("env", []):
            if variable["name"] == AGENT_IMAGE_ENV:
                variable["value"] = image
        _set_env(container, copy.deepcopy(WATCH_NAMESPACE_ENV))
    if not any(v["name"] == AGENT_IMAGE_ENV for c in containers for v in c.get("env", [])):
        raise CSVError(
            f"Deployment {source['metadata']['name']} sets no {AGENT_IMAGE_ENV}; "
            "the controller needs it to start the node agents"
        )
    return {
        "name": source["metadata"]["name"],
        "label": dict(source["metadata"].get("labels", {})),
        "spec": spec,
    }


def alm_examples(samples: list[dict[str, Any]]) -> str:
    """Return the ``alm-examples`` annotation: the samples as a JSON array.

    The namespace is dropped because the console creates an example in the namespace
    that the user picks.
    """
    examples = []
    for sample in samples:
        example = copy.deepcopy(sample)
        example.get("metadata", {}).pop("namespace", None)
        examples.append(example)
    return json.dumps(examples, indent=2, sort_keys=True)


def related_images(image: str) -> list[dict[str, str]]:
    """Return the CSV ``relatedImages``: the operator and the node agent."""
    return [
        {"name": PACKAGE, "image": image},
        {"name": AGENT_IMAGE_ENV.removeprefix("RELATED_IMAGE_").lower(), "image": image},
    ]


def extra_manifests(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the objects that go into bundle/manifests besides the CSV and the CRD.

    Namespaced objects lose their namespace, because OLM creates them in the
    namespace of the OperatorGroup.
    """
    extras = []
    for obj in objects:
        kind = obj.get("kind", "")
        if kind in _CSV_KINDS or kind in _SKIPPED_KINDS:
            continue
        if kind not in EXTRA_KINDS:
            raise CSVError(
                f"config/default contains {kind} {obj['metadata']['name']}, which a "
                "registry+v1 bundle cannot carry; remove it or add it to EXTRA_KINDS "
                "if OLM supports it"
            )
        extra = copy.deepcopy(obj)
        extra["metadata"].pop("namespace", None)
        extras.append(extra)
    return extras


def _namespace(objects: list[dict[str, Any]]) -> str:
    namespaces = _of_kind(objects, "Namespace")
    if len(namespaces) != 1:
        raise CSVError(f"config/default must define one Namespace, found {len(namespaces)}")
    name: str = namespaces[0]["metadata"]["name"]
    return name


def _check_accounts(
    objects: list[dict[str, Any]],
    deployments: list[dict[str, Any]],
    grants: list[dict[str, Any]],
) -> None:
    """Reject service accounts that OLM would not create.

    OLM creates exactly the service accounts that the permission sections name.
    """
    granted = {grant["serviceAccountName"] for grant in grants}
    for account in _of_kind(objects, "ServiceAccount"):
        if account["metadata"]["name"] not in granted:
            raise CSVError(
                f"ServiceAccount {account['metadata']['name']} has no role binding, so OLM "
                "would not create it; bind a role to it or remove it"
            )
    for source in deployments:
        account = source["spec"]["template"]["spec"].get("serviceAccountName", "default")
        if account not in granted:
            raise CSVError(
                f"Deployment {source['metadata']['name']} runs as service account {account}, "
                "which no role binding names, so OLM would not create it"
            )


def build(
    release: Release, objects: list[dict[str, Any]], samples: list[dict[str, Any]]
) -> dict[str, Any]:
    """Return the CSV of RELEASE from the config/default OBJECTS and the SAMPLES."""
    namespace = _namespace(objects)
    deployments = _of_kind(objects, "Deployment")
    if not deployments:
        raise CSVError("config/default defines no Deployment")
    cluster_permissions, namespaced_permissions = permissions(objects, namespace)
    _check_accounts(objects, deployments, cluster_permissions + namespaced_permissions)

    csv = load_base()
    metadata = csv["metadata"]
    metadata["name"] = release.csv_name
    # operator-sdk writes this placeholder; OLM sets the real namespace on install.
    metadata["namespace"] = "placeholder"
    annotations = metadata.setdefault("annotations", {})
    annotations["alm-examples"] = alm_examples(samples)
    annotations["containerImage"] = release.image

    spec = csv["spec"]
    spec["version"] = release.version
    if release.replaces:
        spec["replaces"] = release.replaces
    else:
        spec.pop("replaces", None)
    spec["icon"] = icon()
    spec["relatedImages"] = related_images(release.image)
    spec["install"] = {
        "strategy": "deployment",
        "spec": {
            "deployments": [deployment(d, release.image) for d in deployments],
            "clusterPermissions": cluster_permissions,
            "permissions": namespaced_permissions,
        },
    }
    return csv
