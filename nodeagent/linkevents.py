"""Link notifications: which links changed, read without decoding whole messages.

The agent subscribes to RTNLGRP_LINK and re-reads a PF when a notification names
the PF, its bond or a link with the PF's name. Only the ifindex, name and master of
each notification are needed to route it, so they are read with struct: decoding
the whole message with pyroute2 costs as much as the read it triggers.
"""

from __future__ import annotations

import asyncio
import struct
import time

from nodeagent.links import EventSocketLost, LinkEvent
from nodeagent.netlink import (
    EVENT_SOCKET_BUFFER,
    RECEIVE_BUFFER,
    RTM_DELLINK,
    RTM_NEWLINK,
    RTMGRP_LINK,
    open_route_socket,
)

_HEADER = struct.Struct("=IHHII")


class LinkEventSocket:
    """Subscription to RTNLGRP_LINK: RTM_NEWLINK and RTM_DELLINK of every link."""

    def __init__(self, receive_buffer: int = EVENT_SOCKET_BUFFER) -> None:
        # The kernel caps SO_RCVBUF at net.core.rmem_max; a small buffer lets a test
        # provoke ENOBUFS.
        self._sock = open_route_socket(RTMGRP_LINK, receive_buffer)

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    async def receive(self) -> list[LinkEvent]:
        """Wait for the next datagram and return its link events.

        Raises EventSocketLost on ENOBUFS (the kernel dropped notifications because
        the buffer was full) or any other socket error.
        """
        loop = asyncio.get_running_loop()
        try:
            buffer = await loop.sock_recv(self._sock, RECEIVE_BUFFER)
        except OSError as error:
            raise EventSocketLost(str(error)) from error
        received_at = time.monotonic()
        if not buffer:
            raise EventSocketLost("netlink event socket closed")
        return parse_link_events(buffer, received_at)


def parse_link_events(buffer: bytes, received_at: float) -> list[LinkEvent]:
    """Return the RTM_NEWLINK and RTM_DELLINK events in one datagram; skip other types.

    Only the ifindex, name and master are read, with struct: a notification that
    pyroute2 decodes whole costs as much as a pass's read, and the pass re-reads
    the link anyway.
    """
    events: list[LinkEvent] = []
    offset = 0
    while offset + _HEADER.size <= len(buffer):
        length, message_type, _, _, _ = _HEADER.unpack_from(buffer, offset)
        if length < _HEADER.size or offset + length > len(buffer):
            break
        if message_type in (RTM_NEWLINK, RTM_DELLINK) and length >= _LINK_HEADER_END:
            (index,) = struct.unpack_from("=i", buffer, offset + _HEADER.size + 4)
            name, master = _name_and_master(buffer, offset + _LINK_HEADER_END, offset + length)
            events.append(
                LinkEvent(
                    deleted=message_type == RTM_DELLINK,
                    index=index,
                    name=name,
                    master=master,
                    received_at=received_at,
                )
            )
        offset += (length + 3) & ~3
    return events


# struct nlmsghdr (16 bytes) then struct ifinfomsg (16 bytes), then the attributes.
_LINK_HEADER_END = _HEADER.size + 16
_IFLA_IFNAME = 3
_IFLA_MASTER = 10


def _name_and_master(buffer: bytes, offset: int, end: int) -> tuple[str, int | None]:
    name, master = "", None
    while offset + 4 <= end:
        length, attr_type = struct.unpack_from("=HH", buffer, offset)
        if length < 4:
            break
        payload = buffer[offset + 4 : offset + length]
        if attr_type == _IFLA_IFNAME:
            name = payload.split(b"\0", 1)[0].decode(errors="replace")
        elif attr_type == _IFLA_MASTER and len(payload) >= 4:
            master = struct.unpack_from("=I", payload)[0] or None
        offset += (length + 3) & ~3
    return name, master
