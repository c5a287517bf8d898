"""The two heavy builds the demo needs: the guest kernel and kube-apiserver with etcd.

Both come from the testbeds' own build scripts, which cache their output under
``${PFSR_CACHE_DIR:-$HOME/.cache/pf-status-relay}`` keyed by a hash of their
inputs, so a warm run only looks them up. A cold run compiles Linux
(hack/kernel/build.sh) and kube-apiserver and etcd from Go modules
(hack/apiserver/build.sh), and the demo prints which one it builds before it starts.
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from hack.testbed.binaries import Binaries, BinariesNotFoundError, build_binaries, find_binaries

LOG = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
KERNEL_BUILD = REPO_ROOT / "hack" / "kernel" / "build.sh"
KERNEL_IMAGE_PATH = f". {REPO_ROOT / 'hack' / 'kernel' / 'common.sh'} && kernel_image_path"
KERNEL_BUILD_TIMEOUT_S = 3 * 3600.0


class PrerequisiteError(RuntimeError):
    """Raised when the kernel or the API server binaries cannot be built."""


@dataclass(frozen=True)
class Prerequisites:
    """The kernel image and the API server binaries, and how long getting them took."""

    bzimage: Path
    binaries: Binaries
    kernel_seconds: float
    kernel_was_cached: bool
    apiserver_seconds: float
    apiserver_was_cached: bool


def _cached_kernel() -> Path | None:
    result = subprocess.run(
        ["bash", "-c", KERNEL_IMAGE_PATH], capture_output=True, text=True, check=False
    )
    path = Path(result.stdout.strip())
    return path if result.returncode == 0 and path.is_file() and path.stat().st_size else None


def kernel() -> tuple[Path, bool]:
    """Return the guest kernel's bzImage and whether it was cached, building it if needed."""
    cached = _cached_kernel()
    if cached is not None:
        return cached, True
    LOG.info(
        "no cached guest kernel: building Linux with bonding and the patched netdevsim "
        "(%s; 18 min on 2 cores in one measured run, once, then cached)",
        KERNEL_BUILD,
    )
    result = subprocess.run(
        [str(KERNEL_BUILD)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
        timeout=KERNEL_BUILD_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise PrerequisiteError(f"{KERNEL_BUILD} failed with exit code {result.returncode}")
    return Path(result.stdout.strip().splitlines()[-1]), False


def apiserver_binaries() -> tuple[Binaries, bool]:
    """Return kube-apiserver and etcd and whether they were cached, building them if needed."""
    try:
        return find_binaries(), True
    except BinariesNotFoundError as error:
        LOG.info("no cached kube-apiserver: %s; building it now", error)
    try:
        return build_binaries(), False
    except BinariesNotFoundError as error:
        raise PrerequisiteError(str(error)) from error


def prepare() -> Prerequisites:
    """Get both builds, from the cache or by building them."""
    started = time.monotonic()
    bzimage, kernel_cached = kernel()
    kernel_seconds = time.monotonic() - started
    started = time.monotonic()
    binaries, apiserver_cached = apiserver_binaries()
    return Prerequisites(
        bzimage=bzimage,
        binaries=binaries,
        kernel_seconds=kernel_seconds,
        kernel_was_cached=kernel_cached,
        apiserver_seconds=time.monotonic() - started,
        apiserver_was_cached=apiserver_cached,
    )
