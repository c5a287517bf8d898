"""Location of the kube-apiserver and etcd binaries that the testbed runs.

``hack/apiserver/build.sh`` builds both binaries from Go modules and caches
them under a folder keyed by the hash of its inputs. This module gets the
folder from that script, so Python never duplicates the cache key. The
environment variable ``PFSR_APISERVER_BIN_DIR`` points at another folder that
contains both binaries and skips the script.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "hack" / "apiserver" / "build.sh"
BIN_DIR_ENV = "PFSR_APISERVER_BIN_DIR"

# Exit code of `build.sh --print-dir` when the binaries of the current inputs
# are not built yet.
_NOT_BUILT = 3
# A cold build took 5-8 minutes on two cores; the limit allows for a slow machine.
BUILD_TIMEOUT_SECONDS = 3600.0


class BinariesNotFoundError(RuntimeError):
    """Raised when kube-apiserver or etcd is neither built nor buildable."""


@dataclass(frozen=True)
class Binaries:
    """Paths of the two executables of the testbed."""

    kube_apiserver: Path
    etcd: Path

    @classmethod
    def in_dir(cls, bin_dir: Path) -> Binaries:
        """Return the binaries in ``bin_dir``, raising if either is missing."""
        binaries = cls(kube_apiserver=bin_dir / "kube-apiserver", etcd=bin_dir / "etcd")
        for path in (binaries.kube_apiserver, binaries.etcd):
            if not os.access(path, os.X_OK):
                raise BinariesNotFoundError(f"{path} is missing or not executable")
        return binaries


def find_binaries() -> Binaries:
    """Return the cached binaries without building them.

    Raises BinariesNotFoundError with the reason and the command that builds
    them when they are not there.
    """
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        return Binaries.in_dir(Path(override))

    if shutil.which("go") is None:
        raise BinariesNotFoundError(
            f"go is not installed, so {BUILD_SCRIPT} cannot build kube-apiserver; "
            f"install Go 1.26 or set {BIN_DIR_ENV}"
        )
    result = subprocess.run(
        [str(BUILD_SCRIPT), "--print-dir"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode == _NOT_BUILT:
        raise BinariesNotFoundError(
            f"kube-apiserver and etcd are not built yet in {result.stdout.strip()}; "
            f"run `make apiserver` ({BUILD_SCRIPT}, 5-8 min cold on 2 cores)"
        )
    if result.returncode != 0:
        raise BinariesNotFoundError(
            f"{BUILD_SCRIPT} --print-dir failed with exit code {result.returncode}: "
            f"{result.stderr.strip()}"
        )
    return Binaries.in_dir(Path(result.stdout.strip()))


def build_binaries() -> Binaries:
    """Build the binaries with build.sh (a no-op on a cache hit) and return them."""
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        return Binaries.in_dir(Path(override))

    LOG.info("building kube-apiserver and etcd with %s", BUILD_SCRIPT)
    # The script's progress goes to stderr, which stays on the terminal.
    result = subprocess.run(
        [str(BUILD_SCRIPT)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    if result.returncode != 0:
        raise BinariesNotFoundError(
            f"{BUILD_SCRIPT} failed with exit code {result.returncode}; see its output above"
        )
    return Binaries.in_dir(Path(result.stdout.strip()))
