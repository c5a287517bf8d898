"""Shared values of the packaging tests: the release that the Makefile builds and the bundle."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.manifests import bundle
from hack.manifests.sync import ROOT


def makefile_default(name: str) -> str:
    """Return the default that the Makefile assigns to NAME with ``?=``."""
    text = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{name} \?= (.+)$", text, flags=re.MULTILINE)
    assert match is not None, f"Makefile assigns no default to {name}"
    return match.group(1).strip()


@pytest.fixture(scope="session")
def release_args() -> dict[str, str]:
    """Return VERSION, IMG and BUNDLE_IMG as ``make bundle`` and ``make catalog`` pass them."""
    version = makefile_default("VERSION")
    base = makefile_default("IMAGE_TAG_BASE")
    return {
        "version": version,
        "image": f"{base}:v{version}",
        "bundle_image": f"{base}-bundle:v{version}",
    }


@pytest.fixture
def needs_kubectl() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed; the bundle is generated with `kubectl kustomize`")


@pytest.fixture(scope="session")
def committed_csv() -> dict[str, Any]:
    """Return the committed CSV of bundle/."""
    csv: dict[str, Any] = yaml.safe_load(bundle.CSV_FILE.read_text())
    return csv


@pytest.fixture
def bundle_copy(tmp_path: Path) -> Path:
    """Return a writable copy of bundle/."""
    target = tmp_path / "bundle"
    shutil.copytree(ROOT / "bundle", target)
    return target
