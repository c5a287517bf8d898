"""hack/manifests/csv.py turns kustomize objects into CSV sections or rejects them."""

from __future__ import annotations

from typing import Any

import pytest

from hack.manifests import csv

NAMESPACE = "operator-ns"


def _role(kind: str, name: str, verb: str) -> dict[str, Any]:
    rule = {"apiGroups": [""], "resources": ["pods"], "verbs": [verb]}
    return {"kind": kind, "metadata": {"name": name}, "rules": [rule]}


def _binding(kind: str, role_kind: str, role: str, *subjects: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {"name": f"{role}-binding"},
        "roleRef": {"kind": role_kind, "name": role},
        "subjects": list(subjects),
    }


def _account(name: str, namespace: str = NAMESPACE) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def test_permissions_split_by_binding_kind() -> None:
    objects = [
        _role("ClusterRole", "reader", "get"),
        _role("Role", "writer", "create"),
        _binding("ClusterRoleBinding", "ClusterRole", "reader", _account("b"), _account("a")),
        _binding("RoleBinding", "Role", "writer", _account("a")),
        _binding("RoleBinding", "ClusterRole", "reader", _account("a")),
    ]

    cluster, namespaced = csv.permissions(objects, NAMESPACE)

    assert [grant["serviceAccountName"] for grant in cluster] == ["a", "b"]
    assert cluster[0]["rules"][0]["verbs"] == ["get"]
    assert [grant["serviceAccountName"] for grant in namespaced] == ["a"]
    assert [rule["verbs"] for rule in namespaced[0]["rules"]] == [["create"], ["get"]]


def test_permissions_reject_user_subject() -> None:
    objects = [
        _role("ClusterRole", "reader", "get"),
        _binding("ClusterRoleBinding", "ClusterRole", "reader", {"kind": "User", "name": "x"}),
    ]

    with pytest.raises(csv.CSVError, match="subject User x"):
        csv.permissions(objects, NAMESPACE)


def test_permissions_reject_foreign_namespace() -> None:
    objects = [
        _role("ClusterRole", "reader", "get"),
        _binding("ClusterRoleBinding", "ClusterRole", "reader", _account("a", "elsewhere")),
    ]

    with pytest.raises(csv.CSVError, match="in namespace elsewhere"):
        csv.permissions(objects, NAMESPACE)


def test_permissions_reject_missing_role() -> None:
    objects = [_binding("RoleBinding", "Role", "absent", _account("a"))]

    with pytest.raises(csv.CSVError, match="references Role absent"):
        csv.permissions(objects, NAMESPACE)


def test_extra_manifests_keep_service_without_namespace() -> None:
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "metrics", "namespace": NAMESPACE},
    }

    extras = csv.extra_manifests([service, {"kind": "Namespace", "metadata": {"name": "x"}}])

    assert extras == [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "metrics"}}]
    assert service["metadata"]["namespace"] == NAMESPACE


def test_extra_manifests_reject_unsupported_kind() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"}}

    with pytest.raises(csv.CSVError, match="Job migrate"):
        csv.extra_manifests([job])


def _deployment(account: str, env: list[dict[str, Any]]) -> dict[str, Any]:
    container = {"name": "manager", "image": "old:tag", "env": env}
    return {
        "kind": "Deployment",
        "metadata": {"name": "manager", "labels": {"app": "x"}},
        "spec": {"template": {"spec": {"serviceAccountName": account, "containers": [container]}}},
    }


def test_deployment_sets_images_and_watch_namespace() -> None:
    source = _deployment("a", [{"name": "RELATED_IMAGE_AGENT", "value": "old:tag"}])

    entry = csv.deployment(source, "new:tag")

    container = entry["spec"]["template"]["spec"]["containers"][0]
    assert entry["name"] == "manager"
    assert entry["label"] == {"app": "x"}
    assert container["image"] == "new:tag"
    assert container["env"] == [
        {"name": "RELATED_IMAGE_AGENT", "value": "new:tag"},
        csv.WATCH_NAMESPACE_ENV,
    ]
    assert source["spec"]["template"]["spec"]["containers"][0]["image"] == "old:tag"


def test_deployment_requires_agent_image() -> None:
    with pytest.raises(csv.CSVError, match="sets no RELATED_IMAGE_AGENT"):
        csv.deployment(_deployment("a", []), "new:tag")


def test_build_rejects_unbound_deployment_account() -> None:
    objects = [
        {"kind": "Namespace", "metadata": {"name": NAMESPACE}},
        _deployment("nobody", [{"name": "RELATED_IMAGE_AGENT", "value": "old:tag"}]),
    ]

    with pytest.raises(csv.CSVError, match="service account nobody"):
        csv.build(csv.Release("0.1.0", "new:tag"), objects, [])


def test_build_rejects_unbound_service_account() -> None:
    objects = [
        {"kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"kind": "ServiceAccount", "metadata": {"name": "lonely"}},
        _deployment("nobody", [{"name": "RELATED_IMAGE_AGENT", "value": "old:tag"}]),
    ]

    with pytest.raises(csv.CSVError, match="ServiceAccount lonely has no role binding"):
        csv.build(csv.Release("0.1.0", "new:tag"), objects, [])
