"""LACPDU parsing, and the packet socket's BPF filter on the loopback interface."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from nodeagent.lacpdu import LACPDUListener, open_lacpdu_socket, parse_lacpdu
from nodeagent.metrics import Metrics


def lacpdu_frame(actor: int, partner: int) -> bytes:
    """Ethernet header, then a LACPDU laid out as IEEE 802.1AX defines it."""
    header = bytes.fromhex("0180c2000002") + bytes.fromhex("020000000001") + b"\x88\x09"
    body = bytearray(110)
    body[0:2] = b"\x01\x01"  # subtype LACP, version 1
    body[2:4] = b"\x01\x14"  # actor TLV, length 20
    body[18] = actor  # 14 + 18 = offset 32
    body[22:24] = b"\x02\x14"  # partner TLV
    body[38] = partner  # 14 + 38 = offset 52
    return header + bytes(body)


def test_parse_lacpdu_states() -> None:
    pdu = parse_lacpdu(lacpdu_frame(0x8F, 0x3F), 1.5)

    assert pdu is not None
    assert (pdu.actor_state, pdu.partner_state, pdu.received_at) == (0x8F, 0x3F, 1.5)


def test_marker_pdu_ignored() -> None:
    frame = bytearray(lacpdu_frame(0x3F, 0x3F))
    frame[14] = 0x02  # marker protocol

    assert parse_lacpdu(bytes(frame), 0.0) is None


def can_open_packet_socket() -> bool:
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except OSError:
        return False
    return True


needs_raw = pytest.mark.skipif(
    not can_open_packet_socket(), reason="needs CAP_NET_RAW for AF_PACKET sockets"
)


@needs_raw
def test_filter_keeps_only_slow_protocol_frames() -> None:
    index = socket.if_nametoindex("lo")
    receiver = open_lacpdu_socket(index)
    sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sender.bind(("lo", 0))
    try:
        ipv4 = bytes(12) + b"\x08\x00" + bytes(46)
        sender.send(ipv4)
        sender.send(lacpdu_frame(0x3F, 0x8F))
        frames = []
        receiver.settimeout(0.5)
        try:
            while True:
                frames.append(receiver.recvfrom(2048))
        except TimeoutError:
            pass
    finally:
        receiver.close()
        sender.close()

    ethertypes = {struct.unpack_from("!H", frame, 12)[0] for frame, _ in frames}
    assert ethertypes == {0x8809}
    assert frames  # loopback delivers the frame as outgoing and as incoming


@needs_raw
async def test_listener_reports_incoming_only(metrics: Metrics) -> None:
    seen = []
    listener = LACPDUListener(lambda pf, pdu: seen.append((pf, pdu.partner_state)), metrics)
    listener.bind("lo", socket.if_nametoindex("lo"))
    sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sender.bind(("lo", 0))
    try:
        sender.send(lacpdu_frame(0x3F, 0x8F))
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.01)
    finally:
        sender.close()
        listener.close()

    # On lo the kernel loops the frame back: one PACKET_OUTGOING copy (ignored) and
    # one incoming copy (reported).
    assert seen == [("lo", 0x8F)]
