"""The committed bundle and catalog equal a fresh generation (`make bundle`, `make catalog`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.manifests import bundle, catalog, csv, sync


@pytest.mark.usefixtures("needs_kubectl")
def test_bundle_is_up_to_date(
    release_args: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = bundle.main(
        ["--version", release_args["version"], "--image", release_args["image"], "--check"]
    )

    assert code == 0, capsys.readouterr().err


def test_catalog_is_up_to_date(
    release_args: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = catalog.main(
        [
            "--version",
            release_args["version"],
            "--bundle-image",
            release_args["bundle_image"],
            "--check",
        ]
    )

    assert code == 0, capsys.readouterr().err


def test_check_names_stale_and_obsolete_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sync, "ROOT", tmp_path)
    current = tmp_path / "current.yaml"
    current.write_text("a: 1\n")
    stale = tmp_path / "stale.yaml"
    stale.write_text("a: 1\n")
    obsolete = tmp_path / "obsolete.yaml"
    obsolete.write_text("a: 1\n")

    code = sync.sync(
        {current: "a: 1\n", stale: "a: 2\n"},
        check=True,
        command="make bundle",
        obsolete=[obsolete],
    )

    message = capsys.readouterr().err
    assert code == 1
    assert "stale.yaml" in message
    assert "obsolete.yaml" in message
    assert "current.yaml" not in message
    assert "make bundle" in message
    assert stale.read_text() == "a: 1\n"
    assert obsolete.exists()


def test_sync_writes_and_removes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync, "ROOT", tmp_path)
    new = tmp_path / "sub" / "new.yaml"
    obsolete = tmp_path / "obsolete.yaml"
    obsolete.write_text("a: 1\n")

    code = sync.sync({new: "b: 2\n"}, check=False, command="make bundle", obsolete=[obsolete])

    assert code == 0
    assert new.read_text() == "b: 2\n"
    assert not obsolete.exists()


def test_catalog_rejects_other_version(capsys: pytest.CaptureFixture[str]) -> None:
    code = catalog.main(["--version", "9.9.9", "--bundle-image", "example.com/b:v9", "--check"])

    assert code == 2
    assert "not version 9.9.9" in capsys.readouterr().err


def test_bundle_rejects_version_with_v() -> None:
    with pytest.raises(SystemExit) as exit_info:
        bundle.parse_args(["--version", "v0.1.0", "--image", "example.com/op:v0.1.0"])

    assert exit_info.value.code == 2


@pytest.mark.usefixtures("needs_kubectl")
def test_bundle_uses_requested_release() -> None:
    release = csv.Release(
        version="0.2.0",
        image="example.com/pf-status-relay-operator@sha256:" + "a" * 64,
        replaces="pf-status-relay-operator.v0.1.0",
    )

    files = bundle.generated_files(release)
    generated: dict[str, Any] = yaml.safe_load(files[bundle.CSV_FILE])

    spec = generated["spec"]
    container = spec["install"]["spec"]["deployments"][0]["spec"]["template"]["spec"]["containers"][
        0
    ]
    agent_image = next(e["value"] for e in container["env"] if e["name"] == "RELATED_IMAGE_AGENT")
    assert generated["metadata"]["name"] == "pf-status-relay-operator.v0.2.0"
    assert spec["version"] == "0.2.0"
    assert spec["replaces"] == "pf-status-relay-operator.v0.1.0"
    assert generated["metadata"]["annotations"]["containerImage"] == release.image
    assert container["image"] == release.image
    assert agent_image == release.image
    assert {entry["image"] for entry in spec["relatedImages"]} == {release.image}


def test_first_version_has_no_replaces(committed_csv: dict[str, Any]) -> None:
    assert "replaces" not in committed_csv["spec"]


def test_created_at_comes_from_base_csv(committed_csv: dict[str, Any]) -> None:
    base = csv.load_base()

    created_at = committed_csv["metadata"]["annotations"]["createdAt"]

    assert created_at == base["metadata"]["annotations"]["createdAt"]
