"""Write generated files, or compare them with the committed ones (``--check``).

Every generator under hack/manifests ends the same way: each file either matches a
fresh generation or is rewritten, and a drift test runs the generator with
``--check`` to fail when someone changed an input without regenerating.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sync(
    files: dict[Path, str], *, check: bool, command: str, obsolete: Iterable[Path] = ()
) -> int:
    """Write FILES (path to content) and delete OBSOLETE paths, or only compare them.

    Returns the exit code: 1 when CHECK is set and something differs, else 0.
    COMMAND is the make target named in the message about stale files.
    """
    stale: list[Path] = []
    for path, content in files.items():
        current = path.read_text() if path.exists() else None
        if current == content:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    removed = [path for path in obsolete if path.exists()]
    if not check:
        for path in removed:
            path.unlink()

    if check and (stale or removed):
        names = ", ".join(str(path.relative_to(ROOT)) for path in [*stale, *removed])
        print(f"generated files are out of date: {names}; run `{command}`", file=sys.stderr)
        return 1
    for path in stale:
        print(f"wrote {path.relative_to(ROOT)}")
    for path in removed:
        print(f"removed {path.relative_to(ROOT)}")
    return 0
