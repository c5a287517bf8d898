"""Minimal rtnetlink client for the benchmarks: one PF's LACP and VF states, VF writes.

The benchmark's observer and the upstream-style comparison agent both read one link
with its bond slave data and VF list (one RTM_GETLINK) and set VF link states (one
RTM_SETLINK), and both must do it cheaply under qemu's software emulation. The
messages are packed and parsed with ``struct`` here instead of pyroute2, because
pyroute2 0.9.7 does not decode the 802.3ad slave attributes and its generic decoder
is slow in Python under TCG, which would blur the sampling resolution. Attribute
numbers are from include/uapi/linux/if_link.h.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_SETLINK = 19
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4

IFLA_LINKINFO = 18
IFLA_VFINFO_LIST = 22
IFLA_EXT_MASK = 29
IFLA_INFO_SLAVE_DATA = 5
IFLA_VF_INFO = 1
IFLA_VF_LINK_STATE = 5
IFLA_BOND_SLAVE_AD_ACTOR_OPER_PORT_STATE = 7
IFLA_BOND_SLAVE_AD_PARTNER_OPER_PORT_STATE = 8
RTEXT_FILTER_VF = 1
NLA_TYPE_MASK = 0x3FFF

VF_AUTO = 0
VF_ENABLE = 1
VF_DISABLE = 2

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_RTATTR = struct.Struct("=HH")
_RECEIVE_BUFFER = 4 << 20
REPLY_TIMEOUT_S = 10.0


class NetlinkError(OSError):
    """The kernel rejected a request with a negative errno."""


@dataclass(frozen=True)
class LinkSample:
    """One PF as one RTM_GETLINK reply shows it."""

    actor: int | None
    """Actor oper port state byte of the bond slave; None outside an 802.3ad bond."""
    partner: int | None
    vf_states: tuple[int, ...]
    """Link state of each VF by VF index: VF_AUTO, VF_ENABLE or VF_DISABLE."""


def _attr(attr_type: int, payload: bytes) -> bytes:
    length = _RTATTR.size + len(payload)
    padding = b"\0" * ((4 - length % 4) % 4)
    return _RTATTR.pack(length, attr_type) + payload + padding


def _attrs(data: bytes, start: int = 0, end: int | None = None) -> dict[int, list[bytes]]:
    """Split a run of rtattrs into payloads by type (several for repeated types)."""
    end = len(data) if end is None else end
    found: dict[int, list[bytes]] = {}
    offset = start
    while offset + _RTATTR.size <= end:
        length, attr_type = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size:
            break
        payload = data[offset + _RTATTR.size : offset + length]
        found.setdefault(attr_type & NLA_TYPE_MASK, []).append(payload)
        offset += (length + 3) & ~3
    return found


def parse_link(message: bytes) -> LinkSample:
    """Parse one RTM_NEWLINK message (header included) into a LinkSample.

    NOTE: an rtattr length is 16 bits, so a VF list larger than 64 KiB comes back cut
    short. With 256 netdevsim VFs this parser read back 35 VFs (make bench, kernel 6.12).
    """
    top = _attrs(message, _NLMSGHDR.size + _IFINFOMSG.size)
    actor = partner = None
    for linkinfo in top.get(IFLA_LINKINFO, []):
        for slave_data in _attrs(linkinfo).get(IFLA_INFO_SLAVE_DATA, []):
            slave = _attrs(slave_data)
            if IFLA_BOND_SLAVE_AD_ACTOR_OPER_PORT_STATE in slave:
                actor = slave[IFLA_BOND_SLAVE_AD_ACTOR_OPER_PORT_STATE][0][0]
            if IFLA_BOND_SLAVE_AD_PARTNER_OPER_PORT_STATE in slave:
                (partner,) = struct.unpack_from(
                    "=H", slave[IFLA_BOND_SLAVE_AD_PARTNER_OPER_PORT_STATE][0]
                )
    states: dict[int, int] = {}
    for vf_list in top.get(IFLA_VFINFO_LIST, []):
        for vf_info in _attrs(vf_list).get(IFLA_VF_INFO, []):
            for link_state in _attrs(vf_info).get(IFLA_VF_LINK_STATE, []):
                vf, state = struct.unpack_from("=II", link_state)
                states[vf] = state
    return LinkSample(actor, partner, tuple(states[vf] for vf in sorted(states)))


def encode_setlink_vf_states(ifindex: int, changes: list[tuple[int, int]], seq: int) -> bytes:
    """Encode one RTM_SETLINK that sets the link state of every (vf, state) in ``changes``."""
    infos = b"".join(
        _attr(IFLA_VF_INFO, _attr(IFLA_VF_LINK_STATE, struct.pack("=II", vf, state)))
        for vf, state in changes
    )
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, ifindex, 0, 0) + _attr(IFLA_VFINFO_LIST, infos)
    header = _NLMSGHDR.pack(
        _NLMSGHDR.size + len(body), RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, 0
    )
    return header + body


class Rtnl:
    """A blocking NETLINK_ROUTE socket that sends one request at a time."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
        self._sock.bind((0, 0))
        # A reply never takes seconds; a timeout turns a lost one into an error, not a hang.
        self._sock.settimeout(REPLY_TIMEOUT_S)
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def get_link(self, ifindex: int) -> LinkSample:
        """Read the link with its bond slave data and VF list (one RTM_GETLINK)."""
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, ifindex, 0, 0)
        body += _attr(IFLA_EXT_MASK, struct.pack("=I", RTEXT_FILTER_VF))
        reply = self._exchange(RTM_GETLINK, NLM_F_REQUEST, body)
        if reply is None:
            raise NetlinkError(0, f"no RTM_NEWLINK for ifindex {ifindex}")
        return parse_link(reply)

    def set_vf_states(self, ifindex: int, changes: list[tuple[int, int]]) -> None:
        """Set the given VFs' link states in one RTM_SETLINK and wait for the ack."""
        self._seq += 1
        self._sock.send(encode_setlink_vf_states(ifindex, changes, self._seq))
        self._receive(self._seq)

    def _exchange(self, message_type: int, flags: int, body: bytes) -> bytes | None:
        self._seq += 1
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), message_type, flags, self._seq, 0)
        self._sock.send(header + body)
        return self._receive(self._seq)

    def _receive(self, seq: int) -> bytes | None:
        """Return the first RTM_NEWLINK of ``seq``, or None on a zero ack; raise on an error."""
        while True:
            data = self._sock.recv(_RECEIVE_BUFFER)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, message_type, _, reply_seq, _ = _NLMSGHDR.unpack_from(data, offset)
                if length < _NLMSGHDR.size:
                    break
                message = data[offset : offset + length]
                offset += (length + 3) & ~3
                if reply_seq != seq:
                    continue
                if message_type == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", message, _NLMSGHDR.size)
                    if code:
                        raise NetlinkError(-code, os.strerror(-code))
                    return None
                if message_type == RTM_NEWLINK:
                    return message


def ifindex(name: str) -> int:
    """Return the ifindex of the interface ``name``."""
    return socket.if_nametoindex(name)
