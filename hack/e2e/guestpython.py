"""A zip of kubernetes_asyncio's compiled modules, so the agent starts faster in the guest.

The guest reads the host's file system over 9p without a page cache, and under
TCG each file open costs several slow round trips. ``import kubernetes_asyncio.client``
opens about 800 module files: it took 138 s in the guest on a busy 2-core host
(1 s on the host), and the agent's event loop waits for it before it reads any
PF. Importing from the zip on 9p did not help (zipimport opens the archive for
every module), so the guest copies the zip to its tmpfs in one sequential read
(hack.e2e.guestnode) and puts the copy first on the agent's PYTHONPATH. The zip
contains the same bytecode as the venv, made by ``zipfile.PyZipFile`` from
the installed package, so the agent runs the same code. It is cached under
``$PFSR_CACHE_DIR/e2e``, keyed by the package version and the Python version.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
import zipfile
from pathlib import Path

LOG = logging.getLogger(__name__)

PACKAGES = ("kubernetes_asyncio",)
GUEST_ENV = "PFSR_AGENT_PYTHONPATH"


def cache_dir() -> Path:
    base = os.environ.get("PFSR_CACHE_DIR") or str(Path.home() / ".cache" / "pf-status-relay")
    return Path(base) / "e2e"


def _key() -> str:
    versions = [f"{name}=={importlib.metadata.version(name)}" for name in PACKAGES]
    text = "\n".join([sys.version, *versions])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _not_a_test(path: str) -> bool:
    name = Path(path).name
    return not (name.endswith("_test.py") or name in ("test", "tests", "e2e_test"))


def package_zip() -> Path:
    """Return the zip of PACKAGES, building it on the first call for these versions."""
    path = cache_dir() / f"agent-packages-{_key()}.zip"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with zipfile.PyZipFile(str(tmp), "w", optimize=-1) as archive:
        for name in PACKAGES:
            spec = importlib.util.find_spec(name)
            if spec is None or spec.origin is None:
                raise ModuleNotFoundError(f"package {name} is not installed in {sys.prefix}")
            archive.writepy(str(Path(spec.origin).parent), filterfunc=_not_a_test)
    tmp.replace(path)
    LOG.info("zipped %s into %s", ", ".join(PACKAGES), path)
    return path
