"""Packet sockets that see each LACPDU the switch sends to a PF.

When the switch stops receiving the host's LACPDUs but keeps sending its own, only
the partner state that the host holds changes (to Expired, about 3 s later), and the
kernel sends no netlink notification for it. The switch's next LACPDU carries that
state, and the bonding driver records it as soon as the frame arrives, so re-reading
the kernel's state on every incoming LACPDU finds the failure within a frame time
instead of a polling interval.

A packet socket bound to the bond member with ETH_P_ALL receives incoming LACPDUs
before the bonding driver consumes them; bound with ETH_P_SLOW, or on the bond
master, it receives none (Linux 6.12). A classic BPF filter keeps only frames with
ethertype 0x8809 so the agent does not copy the PF's data traffic. Outgoing frames
(the host's own LACPDUs, packet type PACKET_OUTGOING) are ignored. Opening these
sockets needs CAP_NET_RAW.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from nodeagent.metrics import Metrics

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
ETH_P_SLOW = 0x8809  # slow protocols: LACP and marker
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
# Offsets from the start of the Ethernet frame of a LACPDU (IEEE 802.1AX): the
# sender's actor state, and the sender's view of its partner (this host).
ACTOR_STATE_OFFSET = 32
PARTNER_STATE_OFFSET = 52
LACP_SUBTYPE = 0x01
MAX_FRAME = 2048

# Classic BPF: load the ethertype halfword at offset 12, accept the whole frame when
# it is 0x8809, drop it otherwise. (code, jt, jf, k) as in struct sock_filter.
_BPF_LDH_ABS = 0x28
_BPF_JEQ_K = 0x15
_BPF_RET_K = 0x06
SLOW_PROTOCOL_FILTER = (
    (_BPF_LDH_ABS, 0, 0, 12),
    (_BPF_JEQ_K, 0, 1, ETH_P_SLOW),
    (_BPF_RET_K, 0, 0, 0xFFFF),
    (_BPF_RET_K, 0, 0, 0),
)


@dataclass(frozen=True)
class LACPDU:
    """States a received LACPDU carries; ``received_at`` is time.monotonic()."""

    actor_state: int
    partner_state: int
    received_at: float


def parse_lacpdu(frame: bytes, received_at: float) -> LACPDU | None:
    """Return the states in ``frame``, or None when it is not a LACPDU (a marker PDU)."""
    if len(frame) <= PARTNER_STATE_OFFSET or frame[14] != LACP_SUBTYPE:
        return None
    return LACPDU(frame[ACTOR_STATE_OFFSET], frame[PARTNER_STATE_OFFSET], received_at)


def _attach_filter(sock: socket.socket) -> None:
    code = b"".join(struct.pack("=HBBI", *instruction) for instruction in SLOW_PROTOCOL_FILTER)
    buffer = ctypes.create_string_buffer(code)
    program = struct.pack("=HxxxxxxQ", len(SLOW_PROTOCOL_FILTER), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)


def open_lacpdu_socket(ifindex: int) -> socket.socket:
    """Open a non-blocking packet socket that receives the slow-protocol frames of ``ifindex``."""
    # Protocol 0 receives nothing until bind, so no unfiltered frame is queued
    # before the filter is attached.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 0)
    try:
        _attach_filter(sock)
        sock.bind((socket.if_indextoname(ifindex), ETH_P_ALL))
    except OSError:
        sock.close()
        raise
    return sock


LACPDUHandler = Callable[[str, LACPDU], None]


class LACPDUListener:
    """One packet socket per PF, re-bound when the PF's ifindex changes."""

    def __init__(self, on_lacpdu: LACPDUHandler, metrics: Metrics) -> None:
        self._on_lacpdu = on_lacpdu
        self._metrics = metrics
        self._sockets: dict[str, tuple[int, socket.socket]] = {}
        self._failed_open: dict[str, int] = {}

    def bind(self, pf: str, ifindex: int | None) -> None:
        """Make sure a socket of ``pf`` is bound to ``ifindex``; close it when None."""
        current = self._sockets.get(pf)
        if current is not None and current[0] == ifindex:
            return
        if current is not None:
            self._close(pf)
            log.info("lacpdu socket closed", extra={"interface": pf, "ifindex": current[0]})
        if ifindex is None:
            return
        try:
            sock = open_lacpdu_socket(ifindex)
        except OSError as error:
            # Logged once per ifindex: the pass calls bind every interval.
            if self._failed_open.get(pf) != ifindex:
                log.error(
                    "opening lacpdu socket failed, relying on netlink events and polling",
                    extra={"interface": pf, "ifindex": ifindex, "error": str(error)},
                )
                self._failed_open[pf] = ifindex
            return
        self._failed_open.pop(pf, None)
        self._sockets[pf] = (ifindex, sock)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable, pf)
        log.info("lacpdu socket opened", extra={"interface": pf, "ifindex": ifindex})

    def close(self) -> None:
        """Close every socket."""
        for pf in list(self._sockets):
            self._close(pf)

    def _close(self, pf: str) -> None:
        _, sock = self._sockets.pop(pf)
        asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()

    def _readable(self, pf: str) -> None:
        ifindex, sock = self._sockets[pf]
        newest: LACPDU | None = None
        while True:
            try:
                frame, address = sock.recvfrom(MAX_FRAME)
            except BlockingIOError:
                break
            except OSError as error:
                # ENETDOWN when the PF goes down or away; the next pass re-binds.
                level = logging.INFO if error.errno == errno.ENETDOWN else logging.WARNING
                log.log(
                    level,
                    "lacpdu socket failed, reopening at the next pass",
                    extra={"interface": pf, "ifindex": ifindex, "error": str(error)},
                )
                self._metrics.record_socket_reopen("lacpdu")
                self._close(pf)
                break
            if address[2] == PACKET_OUTGOING:
                continue
            parsed = parse_lacpdu(frame, time.monotonic())
            if parsed is not None:
                newest = parsed
        if newest is not None:
            self._on_lacpdu(pf, newest)
