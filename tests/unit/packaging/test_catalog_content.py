"""The file-based catalog describes the committed bundle the way opm serves it."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from hack.manifests import bundle, catalog


@pytest.fixture(scope="module")
def documents() -> dict[str, list[dict[str, Any]]]:
    """Return the committed catalog's documents grouped by schema."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for document in yaml.safe_load_all(catalog.CATALOG_FILE.read_text()):
        grouped.setdefault(document["schema"], []).append(document)
    return grouped


def test_package_and_default_channel(documents: dict[str, list[dict[str, Any]]]) -> None:
    (package,) = documents["olm.package"]
    channel_names = [channel["name"] for channel in documents["olm.channel"]]

    assert package["name"] == "pf-status-relay-operator"
    assert package["defaultChannel"] == "stable"
    assert channel_names == ["stable"]
    assert package["icon"]["mediatype"] == "image/svg+xml"


def test_channel_entries_are_bundles(documents: dict[str, list[dict[str, Any]]]) -> None:
    bundle_names = {document["name"] for document in documents["olm.bundle"]}

    for channel in documents["olm.channel"]:
        assert channel["package"] == "pf-status-relay-operator"
        assert {entry["name"] for entry in channel["entries"]} <= bundle_names


def test_bundle_properties_match_bundle(
    documents: dict[str, list[dict[str, Any]]], committed_csv: dict[str, Any]
) -> None:
    (entry,) = documents["olm.bundle"]
    properties: dict[str, list[Any]] = {}
    for prop in entry["properties"]:
        properties.setdefault(prop["type"], []).append(prop["value"])

    assert entry["name"] == committed_csv["metadata"]["name"]
    assert properties["olm.package"] == [
        {"packageName": "pf-status-relay-operator", "version": committed_csv["spec"]["version"]}
    ]
    assert properties["olm.gvk"] == [
        {"group": "pfstatusrelay.openshift.io", "kind": "PFLACPMonitor", "version": "v1alpha1"}
    ]


def test_bundle_objects_equal_manifests(documents: dict[str, list[dict[str, Any]]]) -> None:
    (entry,) = documents["olm.bundle"]
    embedded = [
        json.loads(base64.b64decode(prop["value"]["data"]))
        for prop in entry["properties"]
        if prop["type"] == "olm.bundle.object"
    ]

    manifests = catalog.load_manifests(bundle.MANIFESTS)

    assert sorted(obj["kind"] for obj in embedded) == [
        "ClusterServiceVersion",
        "CustomResourceDefinition",
    ]
    assert embedded == manifests


def test_related_images_include_bundle(
    documents: dict[str, list[dict[str, Any]]], release_args: dict[str, str]
) -> None:
    (entry,) = documents["olm.bundle"]
    images = {image["image"] for image in entry["relatedImages"]}

    assert entry["image"] == release_args["bundle_image"]
    assert images == {release_args["bundle_image"], release_args["image"]}


def test_dockerfile_serves_catalog() -> None:
    text = catalog.DOCKERFILE.read_text()

    assert text.splitlines()[1] == "FROM quay.io/operator-framework/opm:latest"
    assert "ADD catalog /configs\n" in text
    assert "LABEL operators.operatorframework.io.index.configs.v1=/configs\n" in text
