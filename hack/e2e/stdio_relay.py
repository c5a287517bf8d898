"""Relay one TCP connection between stdin/stdout and a port on the host's loopback.

QEMU's user-mode network runs this for every connection that the guest opens to
the ``guestfwd`` address (``guestfwd=tcp:ADDR:PORT-cmd:...``), with the guest's
connection on stdin and stdout. A ``cmd:`` forward starts one relay per
connection, while a chardev forward would carry only the first connection, and
the agent and kubectl open several. The target is always 127.0.0.1: the
relay is how the guest reaches the API server on the host's loopback, and
nothing else.

    python3 hack/e2e/stdio_relay.py PORT
"""

from __future__ import annotations

import os
import selectors
import socket
import sys

CHUNK = 65536


def relay(port: int) -> None:
    """Copy bytes both ways until either side closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as upstream:
        upstream.settimeout(None)
        stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
        selector = selectors.DefaultSelector()
        selector.register(stdin, selectors.EVENT_READ, "guest")
        selector.register(upstream, selectors.EVENT_READ, "host")
        while True:
            for key, _ in selector.select():
                if key.data == "guest":
                    data = os.read(stdin, CHUNK)
                    if not data:
                        return
                    upstream.sendall(data)
                else:
                    data = upstream.recv(CHUNK)
                    if not data:
                        return
                    _write_all(stdout, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: stdio_relay.py PORT", file=sys.stderr)
        return 2
    try:
        relay(int(argv[0]))
    except OSError as error:
        print(f"stdio_relay: connection to 127.0.0.1:{argv[0]} failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
