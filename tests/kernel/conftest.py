"""Fixtures for the kernel tier: tests that need the qemu guest (make test-kernel).

Outside the guest every test collected here is skipped with the reason, so a
plain ``pytest`` on the host stays green and says what it did not run. Inside,
one topology (2 PFs with VFs, bonded against the switch namespace) is built for
the whole session: building it costs seconds under TCG, so tests share it and
each test leaves it negotiated (unblocked) as it found it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from topology import PFSpec, Topology

IN_GUEST = os.environ.get("PFSR_IN_GUEST") == "1"
SKIP_REASON = "needs the qemu guest: run make test-kernel"
WANTED_VFS = 5
TIMINGS = pytest.StashKey[dict[str, object]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_GUEST:
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def timings(request: pytest.FixtureRequest) -> dict[str, object]:
    """Measurements that tests report: printed at the end, and saved as
    kernel-timings.json under $PFSR_RESULTS when the guest runner sets it."""
    return request.config.stash.setdefault(TIMINGS, {})


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    measured = config.stash.get(TIMINGS, None)
    if not measured:
        return
    terminalreporter.section("kernel testbed measurements")
    for name, value in measured.items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        terminalreporter.write_line(f"{name}: {shown}")
    results = os.environ.get("PFSR_RESULTS")
    if results:
        Path(results, "kernel-timings.json").write_text(json.dumps(measured, indent=2) + "\n")


@pytest.fixture(scope="session")
def topology(timings: dict[str, object]) -> Iterator[Topology]:
    """Two bonded PFs with VFs (5 when netdevsim allows that many, else its max)."""
    probe = Topology([PFSpec(name="ens5f0", num_vfs=0), PFSpec(name="ens5f1", num_vfs=0)])
    probe.setup()
    try:
        limit = probe.max_vfs_default or 0
        raisable = bool(probe.max_vfs_raisable)
        num_vfs = WANTED_VFS if raisable or limit >= WANTED_VFS else limit
        for pf in probe.pfs:
            probe.set_num_vfs(pf.index, num_vfs)
        timings["topology setup s"] = probe.setup_seconds
        timings["initial negotiation s"] = probe.wait_negotiated(timeout=30.0)
        timings["max_vfs default"] = probe.max_vfs_default
        timings["max_vfs raisable"] = probe.max_vfs_raisable
        timings["VFs per PF"] = num_vfs
        timings["kernel"] = probe.kernel_release
    except BaseException:
        probe.teardown()
        raise
    yield probe
    probe.teardown()
