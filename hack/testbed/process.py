"""A child process of the testbed with its output in a log file.

kube-apiserver and etcd run as children of the Python process that starts
them. Each writes stdout and stderr to one log file, so a failed start can
show the end of that log in its error. A child started from the main thread
also receives SIGKILL when its parent dies (Linux PR_SET_PDEATHSIG), so a
killed test run leaves no server behind, although its temporary folder stays.
SIGTERM would not do: kube-apiserver whose etcd stops at the same moment was
seen to hang in graceful shutdown for over 40 s.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

LOG = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _terminate_with_parent() -> None:
    # Runs in the child between fork and exec.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """A child process whose stdout and stderr go to ``log_path``."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start the process, appending its output to the log file."""
        if self.running():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # NOTE: the kernel sends the parent-death signal when the thread that
        # forked the child exits, not the process. A child forked from a worker
        # thread would die with that thread, so only the main thread sets it.
        preexec: Callable[[], None] | None = None
        if threading.current_thread() is threading.main_thread():
            preexec = _terminate_with_parent
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,
            )
        LOG.info("started %s (pid %s), log %s", self.name, self._process.pid, self.log_path)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def exit_code(self) -> int | None:
        """Return the exit code, or None while the process runs or before start."""
        return None if self._process is None else self._process.poll()

    def stop(self, timeout: float = 15.0) -> None:
        """Send SIGTERM, and SIGKILL if the process is still there after ``timeout`` s."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            LOG.warning(
                "%s (pid %s) did not stop %s s after SIGTERM, sending SIGKILL",
                self.name,
                process.pid,
                timeout,
            )
            process.kill()
            process.wait(timeout=timeout)
        LOG.info("stopped %s (pid %s, exit code %s)", self.name, process.pid, process.returncode)

    def log_tail(self, lines: int = 40) -> str:
        """Return the last ``lines`` lines of the log, or '' if there is none."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
