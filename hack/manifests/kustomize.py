"""Render a kustomize directory with ``kubectl kustomize``.

The bundle is built from config/default, the overlay that a plain install applies
(``make deploy OVERLAY=default``), so that the CSV carries exactly the same Deployment
and RBAC rules.
``kubectl`` ships kustomize, which saves a separate tool. ``KUBECTL`` overrides the
binary, as in the Makefile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml


class KustomizeError(RuntimeError):
    """``kubectl kustomize`` is missing or failed."""


def render(directory: Path) -> list[dict[str, Any]]:
    """Return the objects that ``kubectl kustomize DIRECTORY`` prints, in its order."""
    kubectl = os.environ.get("KUBECTL", "kubectl")
    if shutil.which(kubectl) is None:
        raise KustomizeError(
            f"{kubectl} not found in PATH; install kubectl or set KUBECTL to its path"
        )
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise KustomizeError(
            f"{kubectl} kustomize {directory} failed ({result.returncode}): {result.stderr.strip()}"
        )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
