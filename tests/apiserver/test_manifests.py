"""The committed manifests apply to a real kube-apiserver, and the CRD rejects bad monitors.

Each rejection must name the offending field, because that message is all a user
sees from `oc apply`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.testbed.apiserver import APIServer, KubectlError

from .conftest import OperatorManifests

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "config" / "samples" / "pfstatusrelay_v1alpha1_pflacpmonitor.yaml"


def _sample(namespace: str, **spec: Any) -> str:
    body = yaml.safe_load(SAMPLE.read_text())
    body["metadata"]["namespace"] = namespace
    body["spec"].update(spec)
    return yaml.safe_dump(body)


def test_default_overlay_applies(apiserver: APIServer, require_crds: OperatorManifests) -> None:
    result = apiserver.apply(REPO_ROOT / "config" / "default", dry_run=True)

    assert "deployment.apps/pf-status-relay-controller-manager serverside-applied" in result.stdout
    assert "namespace/openshift-pf-status-relay-operator serverside-applied" in result.stdout


def test_kind_overlay_applies(apiserver: APIServer, require_crds: OperatorManifests) -> None:
    result = apiserver.apply(REPO_ROOT / "config" / "kind", dry_run=True)

    assert "clusterrole.rbac.authorization.k8s.io/pf-status-relay-agent-role" in result.stdout


def test_bundle_manifests_apply(apiserver: APIServer, require_crds: OperatorManifests) -> None:
    manifests = REPO_ROOT / "bundle" / "manifests"
    # The CSV is a resource of OLM, which this server does not have; its content is
    # checked by the bundle validator instead.
    files = [path for path in manifests.glob("*.yaml") if "clusterserviceversion" not in path.name]

    assert files, f"no manifests in {manifests}"
    for path in files:
        result = apiserver.apply(path, dry_run=True, namespace=require_crds.namespace)
        assert "serverside-applied" in result.stdout, path


def test_sample_accepted(
    apiserver: APIServer, require_crds: OperatorManifests, namespace: str
) -> None:
    apiserver.apply(_sample(namespace))

    stored = apiserver.kubectl(
        "get", "pflm", "pflacpmonitor-sample", "-n", namespace, "-o", "yaml", check=True
    )
    spec = yaml.safe_load(stored.stdout)["spec"]
    assert spec["interfaces"] == ["ens5f0", "ens5f1"]
    assert spec["pollingInterval"] == 1000


def test_polling_interval_defaults(
    apiserver: APIServer, require_crds: OperatorManifests, namespace: str
) -> None:
    body = yaml.safe_load(_sample(namespace))
    del body["spec"]["pollingInterval"]
    apiserver.apply(yaml.safe_dump(body))

    stored = apiserver.kubectl(
        "get", "pflm", "pflacpmonitor-sample", "-n", namespace, "-o", "yaml", check=True
    )
    assert yaml.safe_load(stored.stdout)["spec"]["pollingInterval"] == 1000


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"pollingInterval": 999},
            "spec.pollingInterval: Invalid value: 999: spec.pollingInterval in body should be "
            "greater than or equal to 1000",
        ),
        ({"pollingInterval": 60001}, "less than or equal to 60000"),
        ({"interfaces": []}, "spec.interfaces in body should have at least 1 items"),
        (
            {"interfaces": ["ens5f0", "ens5f0"]},
            'spec.interfaces: duplicate entries for key [="ens5f0"]',
        ),
        ({"interfaces": ["a" * 16]}, "spec.interfaces[0]: Too long: may not be more than 15"),
        ({"interfaces": ["eth0:1"]}, 'spec.interfaces[0]: Invalid value: "eth0:1"'),
        ({"interfaces": [".."]}, "'.' and '..' are not valid interface names"),
        ({"nodeSelector": {"zone": 3}}, "spec.nodeSelector.zone"),
    ],
    ids=[
        "interval-999",
        "interval-over-max",
        "no-interfaces",
        "duplicate",
        "name-16-chars",
        "colon",
        "dot-dot",
        "selector-not-string",
    ],
)
def test_bad_monitor_rejected(
    apiserver: APIServer,
    require_crds: OperatorManifests,
    namespace: str,
    spec: dict[str, Any],
    expected: str,
) -> None:
    with pytest.raises(KubectlError) as caught:
        apiserver.apply(_sample(namespace, **spec))

    assert expected in str(caught.value)
    listed = apiserver.kubectl("get", "pflm", "-n", namespace, "-o", "name", check=True)
    assert listed.stdout.strip() == ""


def test_duplicate_rejected_on_create(
    apiserver: APIServer, require_crds: OperatorManifests, namespace: str
) -> None:
    result = apiserver.kubectl(
        "create", "-f", "-", input=_sample(namespace, interfaces=["ens5f0", "ens5f0"])
    )

    assert result.returncode != 0
    assert 'spec.interfaces[1]: Duplicate value: "ens5f0"' in result.stderr


def test_printer_columns(
    apiserver: APIServer, require_crds: OperatorManifests, namespace: str
) -> None:
    apiserver.apply(_sample(namespace))

    table = apiserver.kubectl("get", "pflm", "-n", namespace, check=True).stdout.splitlines()

    columns = ["NAME", "INTERFACES", "INTERVAL", "NODES", "UP", "DOWN", "READY", "AGE"]
    assert table[0].split() == columns
    assert '["ens5f0","ens5f1"]' in table[1]


def test_explain_polling_interval(apiserver: APIServer, require_crds: OperatorManifests) -> None:
    result = apiserver.kubectl("explain", "pflacpmonitor.spec.pollingInterval", check=True)

    assert "Minimum 1000" in result.stdout
