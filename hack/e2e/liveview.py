"""The scenario's live view and its JSON record: steps, their checks, timings, evidence.

Each check prints one line as it finishes, with a check mark or a cross, its
duration and a short piece of evidence. Excerpts of kubectl and kernel output are
printed indented under it. A check that fails (``CheckFailed``, a timeout or any
other error) is recorded as not observed and the scenario goes on, so that the
later steps still clean up and the record shows every step.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

OK_MARK = "\u2713"
FAIL_MARK = "\u2717"


class CheckFailed(AssertionError):
    """Raised inside a check when what it looks for did not happen."""


@dataclass
class Check:
    """One observation of a step."""

    name: str
    observed: bool = False
    seconds: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass
class Step:
    """One step of the story, with its checks."""

    number: int
    title: str
    checks: list[Check] = field(default_factory=list)

    @property
    def observed(self) -> bool:
        return bool(self.checks) and all(check.observed for check in self.checks)


class LiveView:
    """Prints the steps as they run and collects them for the JSON record."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self._out = out
        self._started = time.monotonic()
        self.steps: list[Step] = []
        self.info: dict[str, Any] = {}

    def step(self, title: str) -> Step:
        """Start the next step and print its heading."""
        step = Step(number=len(self.steps) + 1, title=title)
        self.steps.append(step)
        self._print(f"\n== step {step.number}: {title}")
        return step

    @contextmanager
    def check(self, step: Step, name: str) -> Iterator[Check]:
        """Time one check; it is observed when the block ends without an exception."""
        check = Check(name=name)
        step.checks.append(check)
        started = time.monotonic()
        try:
            yield check
            check.observed = True
        except Exception as error:  # every failure is recorded, then the story goes on
            check.error = f"{type(error).__name__}: {error}"
            if not isinstance(error, CheckFailed | TimeoutError):
                check.evidence["traceback"] = traceback.format_exc()
        finally:
            check.seconds = round(time.monotonic() - started, 2)
        mark = OK_MARK if check.observed else FAIL_MARK
        detail = check.evidence.get("summary", "") if check.observed else check.error
        self._print(f"  {mark} {name} [{check.seconds:.1f} s] {detail}".rstrip())

    def show(self, heading: str, text: str) -> None:
        """Print an excerpt, indented under the current check."""
        self._print(f"    {heading}:")
        for line in text.splitlines() or ["(empty)"]:
            self._print(f"      {line}")

    def note(self, text: str) -> None:
        """Print a line that is not a check."""
        self._print(f"  - {text}")

    @property
    def all_observed(self) -> bool:
        return bool(self.steps) and all(step.observed for step in self.steps)

    def record(self) -> dict[str, Any]:
        """Return the JSON-ready record of every step."""
        return {
            "all_observed": self.all_observed,
            "total_seconds": round(time.monotonic() - self._started, 2),
            "info": self.info,
            "steps": [{**asdict(step), "observed": step.observed} for step in self.steps],
        }

    def write(self, path: Path) -> None:
        """Write the record to ``path`` (through a temporary file, so readers see it whole)."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.record(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)

    def _print(self, line: str) -> None:
        print(line, file=self._out, flush=True)
