"""Checks that the kube-apiserver testbed is real: version, RBAC, 410 Gone, apply.

The controller's tests rely on these properties, so a failure here points at
the testbed rather than at the controller.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from kubernetes_asyncio.client import (
    ApiClient,
    CoreV1Api,
    V1ConfigMap,
    V1ObjectMeta,
    VersionApi,
)
from kubernetes_asyncio.client.exceptions import ApiException

from hack.testbed.apiserver import APIServer, KubectlError
from hack.testbed.identities import AGENT, CONTROLLER, OPERATOR_NAMESPACE, Identity

pytestmark = pytest.mark.apiserver

GO_MOD = Path(__file__).resolve().parents[2] / "hack" / "apiserver" / "go.mod"


def required_kubernetes_version() -> str:
    """Return the k8s.io/kubernetes version that hack/apiserver/go.mod requires."""
    match = re.search(r"k8s\.io/kubernetes (v1\.\d+\.\d+)", GO_MOD.read_text(encoding="utf-8"))
    assert match is not None, f"{GO_MOD} has no k8s.io/kubernetes requirement"
    return match.group(1)


def configmap_yaml(name: str, namespace: str, data: str) -> str:
    return (
        "apiVersion: v1\nkind: ConfigMap\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
        f"data:\n{data}"
    )


async def test_version_matches_go_mod(apiserver: APIServer, admin_api: ApiClient) -> None:
    expected = required_kubernetes_version()

    info = await VersionApi(admin_api).get_code()

    assert info.git_version == expected
    assert info.major == "1"
    assert info.minor == expected.split(".")[1]
    assert info.git_tree_state == "clean"
    assert apiserver.get_json("/version")["gitVersion"] == expected


async def test_admin_creates_configmap(admin_api: ApiClient, namespace: str) -> None:
    core = CoreV1Api(admin_api)
    body = V1ConfigMap(metadata=V1ObjectMeta(name="probe"), data={"key": "value"})

    created = await core.create_namespaced_config_map(namespace, body)
    read = await core.read_namespaced_config_map("probe", namespace)

    assert read.data == {"key": "value"}
    assert read.metadata.uid == created.metadata.uid
    assert int(read.metadata.resource_version) > 0


@pytest.mark.parametrize("identity", [CONTROLLER, AGENT], ids=lambda identity: identity.name)
def test_whoami_reports_service_account(apiserver: APIServer, identity: Identity) -> None:
    result = apiserver.kubectl("auth", "whoami", "-o", "json", identity=identity.name)
    assert result.returncode == 0, result.stderr

    user_info = json.loads(result.stdout)["status"]["userInfo"]

    assert user_info["username"] == identity.user
    assert "system:serviceaccounts" in user_info["groups"]
    assert f"system:serviceaccounts:{OPERATOR_NAMESPACE}" in user_info["groups"]
    assert "system:authenticated" in user_info["groups"]


async def test_agent_forbidden_to_list_secrets(agent_api: ApiClient, namespace: str) -> None:
    with pytest.raises(ApiException) as raised:
        await CoreV1Api(agent_api).list_namespaced_secret(namespace)

    assert raised.value.status == 403
    message = json.loads(raised.value.body)["message"]
    assert AGENT.user in message
    assert 'cannot list resource "secrets"' in message


async def test_role_binding_to_service_account_applies(
    apiserver: APIServer, agent_api: ApiClient, namespace: str
) -> None:
    # A RoleBinding whose subject is the agent's ServiceAccount must grant
    # its rule to the agent identity, as it would to the agent's pod.
    apiserver.apply(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
        f"metadata:\n  name: read-configmaps\n  namespace: {namespace}\n"
        'rules:\n- apiGroups: [""]\n  resources: ["configmaps"]\n  verbs: ["get", "list"]\n'
        "---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
        f"metadata:\n  name: agent-reads-configmaps\n  namespace: {namespace}\n"
        "roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n"
        "  name: read-configmaps\n"
        "subjects:\n- kind: ServiceAccount\n"
        f"  name: pf-status-relay-agent\n  namespace: {OPERATOR_NAMESPACE}\n"
    )
    core = CoreV1Api(agent_api)

    listed = await core.list_namespaced_config_map(namespace)
    with pytest.raises(ApiException) as raised:
        await core.list_namespaced_config_map("default")

    assert isinstance(listed.items, list)
    assert raised.value.status == 403


async def test_watch_after_compaction_gone(
    apiserver: APIServer, admin_api: ApiClient, namespace: str
) -> None:
    core = CoreV1Api(admin_api)
    created = await core.create_namespaced_config_map(
        namespace, V1ConfigMap(metadata=V1ObjectMeta(name="watched"), data={"n": "0"})
    )
    old_version = created.metadata.resource_version
    for n in range(1, 4):
        await core.patch_namespaced_config_map("watched", namespace, {"data": {"n": str(n)}})

    # Before compaction a watch from the old version replays the updates.
    response = await core.list_namespaced_config_map(
        namespace, watch=True, resource_version=old_version, timeout_seconds=5,
        _preload_content=False,
    )  # fmt: skip
    first = json.loads(await response.content.readline())
    response.close()
    assert first["type"] == "MODIFIED"
    assert first["object"]["data"] == {"n": "1"}

    compacted = apiserver.compact_etcd()
    assert compacted > int(old_version)

    response = await core.list_namespaced_config_map(
        namespace, watch=True, resource_version=old_version, timeout_seconds=5,
        _preload_content=False,
    )  # fmt: skip
    event = json.loads(await response.content.readline())
    response.close()
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"


def test_kubectl_server_dry_run_apply(apiserver: APIServer, namespace: str) -> None:
    manifest = configmap_yaml("dry-run-probe", namespace, "  key: value\n")

    result = apiserver.apply(manifest, dry_run=True)
    lookup = apiserver.kubectl("get", "configmap", "dry-run-probe", "-n", namespace)

    assert "configmap/dry-run-probe serverside-applied (server dry run)" in result.stdout
    assert lookup.returncode != 0
    assert "NotFound" in lookup.stderr


def test_server_dry_run_rejects_invalid(apiserver: APIServer, namespace: str) -> None:
    # ConfigMap keys must be valid config keys, which only the server checks.
    manifest = configmap_yaml("invalid-probe", namespace, '  "bad key/with slash": value\n')

    with pytest.raises(KubectlError) as raised:
        apiserver.apply(manifest, dry_run=True)

    assert "Invalid value" in str(raised.value)


def test_operator_namespace_created(apiserver: APIServer, operator_manifests: object) -> None:
    result = apiserver.kubectl("get", "namespace", OPERATOR_NAMESPACE, "-o", "json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metadata"]["name"] == OPERATOR_NAMESPACE


def test_restart_keeps_objects(apiserver: APIServer, namespace: str) -> None:
    apiserver.apply(configmap_yaml("survivor", namespace, "  key: kept\n"))
    port = apiserver.port

    apiserver.restart_apiserver()
    result = apiserver.kubectl(
        "get", "configmap", "survivor", "-n", namespace, "-o", "jsonpath={.data.key}"
    )

    assert apiserver.port == port
    assert result.returncode == 0, result.stderr
    assert result.stdout == "kept"
