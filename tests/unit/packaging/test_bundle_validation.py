"""The committed bundle passes the project's checks and the operator-framework validators.

Each rule of the checks is also shown to reject a bundle that breaks it, so a check
that silently stopped working would fail here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.manifests import bundle, csv
from hack.manifests.sync import ROOT
from hack.manifests.validate_bundle import validate

VALIDATE_SH = ROOT / "hack" / "bundle" / "validate.sh"
CSV_NAME = bundle.CSV_FILE.name

Mutation = Callable[[dict[str, Any]], None]


def _edit_csv(bundle_dir: Path, mutate: Mutation) -> None:
    path = bundle_dir / "manifests" / CSV_NAME
    document = yaml.safe_load(path.read_text())
    mutate(document)
    path.write_text(yaml.safe_dump(document))


def _deployment(document: dict[str, Any]) -> dict[str, Any]:
    deployment: dict[str, Any] = document["spec"]["install"]["spec"]["deployments"][0]
    return deployment


def _set_examples(document: dict[str, Any], examples: str) -> None:
    document["metadata"]["annotations"]["alm-examples"] = examples


def _drop_watch_namespace(document: dict[str, Any]) -> None:
    container = _deployment(document)["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "WATCH_NAMESPACE"]


def _duplicate_deployment(document: dict[str, Any]) -> None:
    deployments = document["spec"]["install"]["spec"]["deployments"]
    deployments.append(json.loads(json.dumps(deployments[0])))


def _unknown_account(document: dict[str, Any]) -> None:
    _deployment(document)["spec"]["template"]["spec"]["serviceAccountName"] = "nobody"


CSV_CASES: dict[str, tuple[Mutation, str]] = {
    "owned version": (
        lambda d: d["spec"]["customresourcedefinitions"]["owned"][0].update(version="v9"),
        "names version v9, which the CRD does not serve",
    ),
    "owned kind": (
        lambda d: d["spec"]["customresourcedefinitions"]["owned"][0].update(kind="Other"),
        "has kind Other",
    ),
    "descriptor path": (
        lambda d: d["spec"]["customresourcedefinitions"]["owned"][0]["specDescriptors"].append(
            {"path": "pollInterval", "displayName": "Typo"}
        ),
        "specDescriptors path 'pollInterval' is not a field of .spec",
    ),
    "install modes": (
        lambda d: d["spec"].update(installModes=d["spec"]["installModes"][:2]),
        "install mode AllNamespaces is declared 0 times",
    ),
    "examples json": (lambda d: _set_examples(d, "[{"), "alm-examples is invalid JSON"),
    "examples kind": (
        lambda d: _set_examples(
            d, '[{"apiVersion": "example.com/v1", "kind": "Other", "metadata": {"name": "x"}}]'
        ),
        "alm-examples contains Other example.com/v1, which the CSV does not own",
    ),
    "deployment names": (_duplicate_deployment, "is used 2 times"),
    "service account": (_unknown_account, "runs as service account nobody"),
    "watch namespace": (_drop_watch_namespace, "no env variable reads"),
    "related images": (
        lambda d: d["spec"].update(relatedImages=[]),
        "is missing from spec.relatedImages",
    ),
    "category": (
        lambda d: d["metadata"]["annotations"].update(categories="Networking,Bogus"),
        "unknown category 'Bogus'",
    ),
    "version": (lambda d: d["spec"].update(version="v0.1"), "is not a semantic version"),
}


def _messages(bundle_dir: Path) -> list[str]:
    return [str(finding) for finding in validate(bundle_dir)]


def test_committed_bundle_has_no_findings() -> None:
    assert _messages(ROOT / "bundle") == []


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_checks_reject_broken_csv(case: str, bundle_copy: Path) -> None:
    mutate, expected = CSV_CASES[case]
    _edit_csv(bundle_copy, mutate)

    messages = _messages(bundle_copy)

    assert any(expected in message and message.startswith("ERROR") for message in messages), (
        messages
    )


def test_checks_reject_wrong_mediatype(bundle_copy: Path) -> None:
    path = bundle_copy / "metadata" / "annotations.yaml"
    path.write_text(path.read_text().replace("registry+v1", "helm"))

    messages = _messages(bundle_copy)

    assert any("mediatype.v1 is 'helm', expected 'registry+v1'" in m for m in messages), messages


def test_checks_reject_unowned_crd(bundle_copy: Path) -> None:
    crd_path = next((bundle_copy / "manifests").glob("*pflacpmonitors.yaml"))
    crd = yaml.safe_load(crd_path.read_text())
    crd["metadata"]["name"] = "others.pfstatusrelay.openshift.io"
    crd["spec"]["names"]["plural"] = "others"
    (bundle_copy / "manifests" / "others.yaml").write_text(yaml.safe_dump(crd))

    messages = _messages(bundle_copy)

    assert (
        "ERROR CRD others.pfstatusrelay.openshift.io is in manifests/ but the CSV does not own it"
        in messages
    )


def test_checks_reject_missing_annotations(bundle_copy: Path) -> None:
    (bundle_copy / "metadata" / "annotations.yaml").unlink()

    messages = _messages(bundle_copy)

    assert any(m.startswith("ERROR") and "annotations.yaml not found" in m for m in messages)


def test_dockerfile_labels_match_annotations() -> None:
    annotations = yaml.safe_load(bundle.ANNOTATIONS_FILE.read_text())["annotations"]
    labels = {}
    for line in bundle.DOCKERFILE.read_text().splitlines():
        if line.startswith("LABEL "):
            key, _, value = line.removeprefix("LABEL ").partition("=")
            labels[key] = value

    assert labels == annotations


def _run_go_validator(bundle_dir: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("go") is None:
        pytest.skip("go is not installed; the operator-framework validator is a Go program")
    return subprocess.run(
        [str(VALIDATE_SH), str(bundle_dir)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.timeout(900)
def test_go_validator_accepts_bundle(release_args: dict[str, str]) -> None:
    csv_name = csv.csv_name(release_args["version"])

    result = _run_go_validator(ROOT / "bundle")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"({csv_name}, 1 v1 CRDs, 2 objects): 0 errors" in result.stdout


@pytest.mark.timeout(900)
def test_go_validator_rejects_broken_bundle(bundle_copy: Path) -> None:
    _edit_csv(
        bundle_copy,
        lambda d: d["metadata"]["annotations"].update(categories="Bogus"),
    )

    result = _run_go_validator(bundle_copy)

    assert result.returncode == 1
    assert "value Bogus is not in the set of default categories" in result.stdout
