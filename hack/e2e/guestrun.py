"""Boot the kernel guest with the scenario, and show its console while keeping a copy.

The guest runs hack/e2e/guest_scenario.py through hack/kernel/run-in-guest.sh,
with its only NIC from hack.e2e.guestnet (passed as PFSR_QEMU_OPTS). Its console
goes to the terminal line by line and to ``guest-console.log``. The guest runs in
a session of its own, so that stop() can end vng, QEMU and the relays QEMU
started, and only them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_IN_GUEST = REPO_ROOT / "hack" / "kernel" / "run-in-guest.sh"
PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
GUEST_TIMEOUT_S = 1200.0
STOP_GRACE_S = 5.0


class GuestRun:
    """One boot of the guest running the scenario."""

    def __init__(
        self,
        results: Path,
        qemu_options: str,
        bzimage: Path,
        console_log: Path,
        guest_env: dict[str, str] | None = None,
        out: TextIO = sys.stdout,
    ) -> None:
        self.results = results
        self.console_log = console_log
        self._env = {
            **os.environ,
            "PFSR_RESULTS": str(results),
            "PFSR_QEMU_OPTS": qemu_options,
            "PFSR_BZIMAGE": str(bzimage),
            "PFSR_GUEST_ENV": " ".join(f"{k}={v}" for k, v in (guest_env or {}).items()),
        }
        self._out = out
        self._process: subprocess.Popen[str] | None = None

    def run(self) -> int:
        """Boot, stream the console until the guest powers off, and return the guest's exit code."""
        argv = [str(RUN_IN_GUEST), str(PYTHON), "-m", "hack.e2e.guest_scenario"]
        deadline = time.monotonic() + GUEST_TIMEOUT_S
        with self.console_log.open("w", encoding="utf-8") as log:
            self._process = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
                start_new_session=True,
            )
            assert self._process.stdout is not None
            for line in self._process.stdout:
                log.write(line)
                log.flush()
                self._out.write(f"  guest| {line}")
                self._out.flush()
                if time.monotonic() > deadline:
                    self._out.write(
                        f"guest still running after {GUEST_TIMEOUT_S:.0f} s, stopping it\n"
                    )
                    self.stop()
                    break
            return self._process.wait()

    def stop(self) -> None:
        """End the guest's whole session (vng, QEMU, relays) if any of it still runs."""
        process = self._process
        if process is None:
            return
        if process.poll() is not None:
            # The leader has exited; kill whatever of its group may be left.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(STOP_GRACE_S)
                return
            except subprocess.TimeoutExpired:
                continue
