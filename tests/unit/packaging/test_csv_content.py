"""The committed CSV carries the RBAC rules, Deployment and examples of config/, unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from api.v1alpha1 import PFLACPMonitor
from hack.manifests.sync import ROOT

RBAC = ROOT / "config" / "rbac"


def _load_all(*paths: Path) -> list[dict[str, Any]]:
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc]


def _expected_grants(binding_kind: str) -> dict[str, list[dict[str, Any]]]:
    """Return, per service account, the rules that config/rbac grants through BINDING_KIND."""
    manifests = [path for path in sorted(RBAC.glob("*.yaml")) if path.name != "kustomization.yaml"]
    objects = _load_all(*manifests)
    roles = {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}
    grants: dict[str, list[dict[str, Any]]] = {}
    for binding in objects:
        if binding["kind"] != binding_kind:
            continue
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        for subject in binding["subjects"]:
            grants.setdefault(subject["name"], []).extend(role["rules"])
    return grants


def _sorted_rules(rules: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(rule, sort_keys=True) for rule in rules)


def _csv_grants(csv: dict[str, Any], section: str) -> dict[str, list[str]]:
    return {
        grant["serviceAccountName"]: _sorted_rules(grant["rules"])
        for grant in csv["spec"]["install"]["spec"][section]
    }


def test_cluster_permissions_equal_cluster_roles(committed_csv: dict[str, Any]) -> None:
    expected = {
        account: _sorted_rules(rules)
        for account, rules in _expected_grants("ClusterRoleBinding").items()
    }

    assert _csv_grants(committed_csv, "clusterPermissions") == expected


def test_permissions_equal_roles(committed_csv: dict[str, Any]) -> None:
    expected = {
        account: _sorted_rules(rules) for account, rules in _expected_grants("RoleBinding").items()
    }

    assert _csv_grants(committed_csv, "permissions") == expected


def test_agent_account_has_scc_rule(committed_csv: dict[str, Any]) -> None:
    grants = _csv_grants(committed_csv, "clusterPermissions")

    agent_rules = [json.loads(rule) for rule in grants["pf-status-relay-agent"]]

    assert {
        "apiGroups": ["security.openshift.io"],
        "resources": ["securitycontextconstraints"],
        "resourceNames": ["privileged"],
        "verbs": ["use"],
    } in agent_rules


def test_deployment_matches_config_manager(committed_csv: dict[str, Any]) -> None:
    source = _load_all(ROOT / "config" / "manager" / "manager.yaml")[0]
    deployments = committed_csv["spec"]["install"]["spec"]["deployments"]

    assert [d["name"] for d in deployments] == [source["metadata"]["name"]]
    spec = deployments[0]["spec"]
    source_pod = source["spec"]["template"]["spec"]
    pod = spec["template"]["spec"]
    assert spec["selector"] == source["spec"]["selector"]
    assert pod["serviceAccountName"] == source_pod["serviceAccountName"]
    assert pod["securityContext"] == source_pod["securityContext"]
    container, source_container = pod["containers"][0], source_pod["containers"][0]
    for key in ("command", "args", "ports", "livenessProbe", "readinessProbe", "resources"):
        assert container[key] == source_container[key], key


def test_deployment_reads_target_namespaces(committed_csv: dict[str, Any]) -> None:
    container = committed_csv["spec"]["install"]["spec"]["deployments"][0]["spec"]["template"][
        "spec"
    ]["containers"][0]
    env = {variable["name"]: variable for variable in container["env"]}

    field_path = env["WATCH_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"]

    assert field_path == "metadata.annotations['olm.targetNamespaces']"
    assert env["RELATED_IMAGE_AGENT"]["value"] == container["image"]
    assert "POD_NAMESPACE" in env


def test_install_modes(committed_csv: dict[str, Any]) -> None:
    modes = {mode["type"]: mode["supported"] for mode in committed_csv["spec"]["installModes"]}

    assert modes == {
        "AllNamespaces": True,
        "OwnNamespace": True,
        "SingleNamespace": False,
        "MultiNamespace": False,
    }


def test_alm_examples_are_valid_monitors(committed_csv: dict[str, Any]) -> None:
    examples = json.loads(committed_csv["metadata"]["annotations"]["alm-examples"])

    monitors = [PFLACPMonitor.model_validate(example) for example in examples]

    assert len(monitors) == 1
    assert monitors[0].spec.interfaces == ["ens5f0", "ens5f1"]
    assert monitors[0].spec.polling_interval == 1000
    assert monitors[0].spec.node_selector == {"kubernetes.io/hostname": "worker-0"}


def test_alm_examples_equal_samples(committed_csv: dict[str, Any]) -> None:
    examples = json.loads(committed_csv["metadata"]["annotations"]["alm-examples"])
    samples = _load_all(*sorted((ROOT / "config" / "samples").glob("pfstatusrelay_*.yaml")))
    for sample in samples:
        sample["metadata"].pop("namespace", None)

    assert examples == samples


def test_owned_crd_and_descriptors(committed_csv: dict[str, Any]) -> None:
    owned = committed_csv["spec"]["customresourcedefinitions"]["owned"]

    assert [(o["name"], o["version"], o["kind"]) for o in owned] == [
        ("pflacpmonitors.pfstatusrelay.openshift.io", "v1alpha1", "PFLACPMonitor")
    ]
    spec_paths = {d["path"] for d in owned[0]["specDescriptors"]}
    status_paths = {d["path"] for d in owned[0]["statusDescriptors"]}
    assert spec_paths == {"interfaces", "pollingInterval", "nodeSelector"}
    assert {"conditions", "nodes", "interfacesUp", "interfacesDown"} <= status_paths


def test_descriptor_paths_are_model_fields(committed_csv: dict[str, Any]) -> None:
    owned = committed_csv["spec"]["customresourcedefinitions"]["owned"][0]
    schema = PFLACPMonitor.model_json_schema(by_alias=True)
    defs = schema["$defs"]

    spec_fields = set(defs["PFLACPMonitorSpec"]["properties"])
    status_fields = set(defs["PFLACPMonitorStatus"]["properties"])

    assert {d["path"] for d in owned["specDescriptors"]} <= spec_fields
    assert {d["path"] for d in owned["statusDescriptors"]} <= status_fields


def test_icon_is_svg(committed_csv: dict[str, Any]) -> None:
    import base64

    icon = committed_csv["spec"]["icon"][0]

    assert icon["mediatype"] == "image/svg+xml"
    assert base64.b64decode(icon["base64data"]).startswith(b"<svg ")


def test_annotations(committed_csv: dict[str, Any]) -> None:
    annotations = committed_csv["metadata"]["annotations"]

    assert annotations["capabilities"] == "Basic Install"
    assert annotations["categories"] == "Networking"
    assert json.loads(annotations["operators.openshift.io/infrastructure-features"]) == [
        "disconnected"
    ]
    assert committed_csv["spec"]["minKubeVersion"] == "1.30.0"
