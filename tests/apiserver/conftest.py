"""Fixtures that run the tests in this folder against a real kube-apiserver.

One kube-apiserver with etcd (hack.testbed.apiserver.APIServer) serves the
whole session. The binaries come from hack/apiserver/build.sh. When they are
not built, every test here is skipped, unless PFSR_BUILD_APISERVER=1 makes the
session build them first (5-8 min cold on 2 cores).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    # `python -m pytest` from the repository root puts it on sys.path, but a
    # plain `pytest` does not, and hack/ is not an installed package.
    sys.path.insert(0, str(REPO_ROOT))

from kubernetes_asyncio.client import ApiClient  # noqa: E402
from kubernetes_asyncio.config import new_client_from_config  # noqa: E402

from hack.testbed.apiserver import APIServer  # noqa: E402
from hack.testbed.binaries import (  # noqa: E402
    Binaries,
    BinariesNotFoundError,
    build_binaries,
    find_binaries,
)
from hack.testbed.identities import OPERATOR_NAMESPACE  # noqa: E402
from tests.apiserver.test_controller_harness import Cluster  # noqa: E402

LOG = logging.getLogger(__name__)

BUILD_ENV = "PFSR_BUILD_APISERVER"
HERE = Path(__file__).resolve().parent
CRD_DIR = REPO_ROOT / "config" / "crd" / "bases"
RBAC_DIR = REPO_ROOT / "config" / "rbac"


@functools.cache
def _binaries_or_skip_reason() -> Binaries | str:
    if os.environ.get(BUILD_ENV):
        try:
            return build_binaries()
        except BinariesNotFoundError as error:
            return f"building kube-apiserver failed: {error}"
    try:
        return find_binaries()
    except BinariesNotFoundError as error:
        return f"{error}; or set {BUILD_ENV}=1 to build them during the test run"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in this folder `apiserver`, and skip them all without binaries."""
    ours = [item for item in items if item.path.is_relative_to(HERE)]
    if not ours:
        return
    for item in ours:
        item.add_marker(pytest.mark.apiserver)
    # Deselected tests need no binaries, so look only when a test here is selected.
    mark_expression = config.getoption("markexpr")
    if mark_expression and "apiserver" not in mark_expression:
        return
    found = _binaries_or_skip_reason()
    if isinstance(found, str):
        skip = pytest.mark.skip(reason=found)
        for item in ours:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def apiserver() -> Iterator[APIServer]:
    """The session's kube-apiserver and etcd, started once and stopped at the end."""
    found = _binaries_or_skip_reason()
    if isinstance(found, str):
        pytest.skip(found)
    with APIServer(binaries=found) as server:
        yield server


@dataclass(frozen=True)
class OperatorManifests:
    """What the operator_manifests fixture applied, and what it could not find."""

    namespace: str
    crd_files: tuple[Path, ...]
    crd_names: tuple[str, ...]
    rbac_applied: bool
    missing: tuple[str, ...]


@pytest.fixture(scope="session")
def operator_manifests(apiserver: APIServer) -> OperatorManifests:
    """Create the operator namespace and apply the CRDs and RBAC from config/.

    The manifests are applied as they are committed, so a test that needs
    them checks the real files. A missing file is reported with a warning,
    and require_crds skips the tests that need the CRD.
    """
    apiserver.apply(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {OPERATOR_NAMESPACE}\n")

    missing: list[str] = []
    crd_files = tuple(sorted(CRD_DIR.glob("*.yaml")))
    crd_names: list[str] = []
    if crd_files:
        for path in crd_files:
            result = apiserver.apply(path)
            LOG.info("applied %s: %s", path, result.stdout.strip())
        listed = apiserver.kubectl("get", "crd", "-o", "name", check=True).stdout.split()
        crd_names = [name for name in listed if name.endswith(".pfstatusrelay.openshift.io")]
        for name in crd_names:
            apiserver.kubectl(
                "wait", "--for=condition=Established", "--timeout=60s", name, check=True
            )
    else:
        missing.append(f"no CRD manifest in {CRD_DIR}")

    rbac_applied = (RBAC_DIR / "kustomization.yaml").is_file()
    if rbac_applied:
        apiserver.apply(RBAC_DIR, namespace=OPERATOR_NAMESPACE)
    else:
        missing.append(f"no {RBAC_DIR / 'kustomization.yaml'}")

    for reason in missing:
        warnings.warn(f"operator manifests not applied: {reason}", stacklevel=1)
    return OperatorManifests(
        namespace=OPERATOR_NAMESPACE,
        crd_files=crd_files,
        crd_names=tuple(crd_names),
        rbac_applied=rbac_applied,
        missing=tuple(missing),
    )


@pytest.fixture
def require_crds(operator_manifests: OperatorManifests) -> OperatorManifests:
    """Skip the test unless the PFLACPMonitor CRD was applied and is established."""
    if not operator_manifests.crd_names:
        pytest.skip(f"the CRD is not installed: {', '.join(operator_manifests.missing)}")
    return operator_manifests


@pytest.fixture
def namespace(apiserver: APIServer) -> Iterator[str]:
    """A new namespace for one test, deleted afterwards.

    Without a controller-manager a deleted namespace stays Terminating, so
    every test gets a fresh name instead of reusing one.
    """
    name = f"test-{uuid.uuid4().hex[:10]}"
    apiserver.kubectl("create", "namespace", name, check=True)
    yield name
    result = apiserver.kubectl("delete", "namespace", name, "--wait=false")
    if result.returncode != 0:
        LOG.warning("deleting namespace %s failed: %s", name, result.stderr.strip())


async def _client(apiserver: APIServer, identity: str) -> AsyncIterator[ApiClient]:
    client = await new_client_from_config(
        config_file=str(apiserver.kubeconfig(identity)), persist_config=False
    )
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def admin_api(apiserver: APIServer) -> AsyncIterator[ApiClient]:
    """kubernetes_asyncio client of the admin identity (group system:masters)."""
    async for client in _client(apiserver, "admin"):
        yield client


@pytest.fixture
async def controller_api(
    apiserver: APIServer, operator_manifests: OperatorManifests
) -> AsyncIterator[ApiClient]:
    """Client of the controller's ServiceAccount identity, with config/rbac applied."""
    async for client in _client(apiserver, "controller"):
        yield client


@pytest.fixture
async def agent_api(
    apiserver: APIServer, operator_manifests: OperatorManifests
) -> AsyncIterator[ApiClient]:
    """Client of the node agent's ServiceAccount identity, with config/rbac applied."""
    async for client in _client(apiserver, "agent"):
        yield client


@pytest.fixture
async def cluster(
    admin_api: ApiClient, agent_api: ApiClient, namespace: str
) -> AsyncIterator[Cluster]:
    """Admin and simulated-agent access in a fresh namespace; its monitors are removed after."""
    cluster = Cluster(admin_api, agent_api, namespace)
    yield cluster
    await cluster.remove_all_monitors()
