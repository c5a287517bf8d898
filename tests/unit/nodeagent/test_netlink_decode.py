"""Decoding of RTM_NEWLINK messages: the 802.3ad slave attributes pyroute2 leaves raw.

Messages are built byte by byte with ``struct`` (independent of pyroute2's encoder),
and, when recorded, checked against real Linux 6.12 messages under
tests/fixtures/netlink.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from nodeagent.linkevents import parse_link_events
from nodeagent.links import VFLinkState
from nodeagent.netlink import (
    RTM_DELLINK,
    RTM_NEWLINK,
    decode_link_message,
    encode_set_vf_link_states,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "netlink"
NESTED = 0x8000


def nla(attr_type: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, attr_type) + payload + b"\0" * ((-length) % 4)


def nested(attr_type: int, *children: bytes) -> bytes:
    return nla(attr_type | NESTED, b"".join(children))


def link_message(index: int, attrs: bytes, message_type: int = RTM_NEWLINK) -> bytes:
    body = struct.pack("=BxHiII", 0, 1, index, 0, 0) + attrs
    return struct.pack("=IHHII", 16 + len(body), message_type, 0, 0, 0) + body


def slave_message(slave_attrs: bytes, vfs: list[tuple[int, int]] | None = None) -> bytes:
    attrs = nla(3, b"ens5f0\0") + nla(10, struct.pack("=I", 7))
    attrs += nested(18, nla(4, b"bond\0"), nested(5, slave_attrs))
    if vfs is not None:
        attrs += nla(21, struct.pack("=I", len(vfs)))
        attrs += nested(
            22, *(nested(1, nla(5, struct.pack("=II", vf, state))) for vf, state in vfs)
        )
    return link_message(5, attrs)


def lacp_slave_attrs(actor: int, partner: int, extra: bytes = b"") -> bytes:
    return (
        nla(1, b"\0")  # IFLA_BOND_SLAVE_STATE active
        + nla(2, b"\0")  # MII up
        + nla(6, struct.pack("=H", 3))  # aggregator id
        + nla(7, struct.pack("=B", actor))
        + nla(8, struct.pack("=H", partner))  # u16 in the kernel
        + extra
    )


def test_decode_lacp_slave_attributes() -> None:
    link = decode_link_message(slave_message(lacp_slave_attrs(0x3F, 0x3B)))

    assert link.index == 5
    assert link.name == "ens5f0"
    assert link.master == 7
    assert link.slave_kind == "bond"
    assert link.slave is not None
    assert link.slave.actor_state == 0x3F
    assert link.slave.partner_state == 0x3B
    assert link.slave.aggregator_id == 3
    assert link.slave.state == 0
    assert link.slave.mii_status == 0


def test_decode_partner_state_two_bytes() -> None:
    link = decode_link_message(slave_message(lacp_slave_attrs(0x3F, 0x8F)))

    assert link.slave is not None
    assert link.slave.partner_state == 0x8F


def test_decode_unknown_slave_types_ignored() -> None:
    extra = nla(9, struct.pack("=I", 5)) + nla(13, struct.pack("=I", 1)) + nla(99, b"abcd")
    link = decode_link_message(slave_message(lacp_slave_attrs(0x3F, 0x3F, extra)))

    assert link.slave is not None
    assert link.slave.actor_state == 0x3F
    assert link.slave.partner_state == 0x3F


def test_decode_absent_lacp_attributes_are_none() -> None:
    link = decode_link_message(slave_message(nla(1, b"\1") + nla(2, b"\0")))

    assert link.slave is not None
    assert link.slave.state == 1
    assert link.slave.actor_state is None
    assert link.slave.partner_state is None
    assert link.slave.aggregator_id is None


def test_decode_vf_link_states() -> None:
    link = decode_link_message(
        slave_message(lacp_slave_attrs(0x3F, 0x3F), vfs=[(1, 1), (0, 0), (2, 2)])
    )

    assert link.num_vfs == 3
    assert [(vf.index, vf.link_state) for vf in link.vfs] == [
        (0, VFLinkState.AUTO),
        (1, VFLinkState.ENABLE),
        (2, VFLinkState.DISABLE),
    ]


def test_decode_bond_master() -> None:
    ad_info = nested(
        23,
        nla(1, struct.pack("=H", 3)),
        nla(2, struct.pack("=H", 1)),
        nla(3, struct.pack("=H", 9)),
        nla(4, struct.pack("=H", 17)),
        nla(5, bytes.fromhex("020000000001")),
    )
    info_data = nested(2, nla(1, b"\4"), nla(21, b"\1"), ad_info)
    message = link_message(7, nla(3, b"bond0\0") + nested(18, nla(1, b"bond\0"), info_data))

    link = decode_link_message(message)

    assert link.kind == "bond"
    assert link.bond is not None
    assert link.bond.mode == 4
    assert link.bond.lacp_rate == 1
    assert link.bond.active_aggregator_id == 3
    assert link.bond.num_ports == 1
    assert link.bond.actor_key == 9
    assert link.bond.partner_key == 17
    assert link.bond.partner_mac == "02:00:00:00:00:01"


def test_encode_one_setlink_for_all_vfs() -> None:
    changes = [(0, VFLinkState.DISABLE), (4, VFLinkState.DISABLE), (7, VFLinkState.AUTO)]
    data = encode_set_vf_link_states(42, changes, sequence=9)

    length, message_type, flags, sequence, _ = struct.unpack_from("=IHHII", data)
    _, _, index, _, _ = struct.unpack_from("=BxHiII", data, 16)
    assert (length, message_type, sequence, index) == (len(data), 19, 9, 42)
    assert flags & 0x5 == 0x5  # NLM_F_REQUEST | NLM_F_ACK
    assert parse_vf_link_states(data[32:]) == [(0, 2), (4, 2), (7, 0)]


def parse_vf_link_states(attrs: bytes) -> list[tuple[int, int]]:
    """Walk IFLA_VFINFO_LIST > IFLA_VF_INFO > IFLA_VF_LINK_STATE by hand."""
    found = []
    for list_type, vf_list in walk(attrs):
        assert list_type == 22
        for info_type, info in walk(vf_list):
            assert info_type == 1
            for state_type, payload in walk(info):
                assert state_type == 5
                found.append(struct.unpack("=II", payload))
    return found


def walk(buffer: bytes) -> list[tuple[int, bytes]]:
    out, offset = [], 0
    while offset + 4 <= len(buffer):
        length, attr_type = struct.unpack_from("=HH", buffer, offset)
        out.append((attr_type & 0x3FFF, buffer[offset + 4 : offset + length]))
        offset += (length + 3) & ~3
    return out


def test_parse_events_newlink_dellink() -> None:
    created = link_message(5, nla(3, b"ens5f0\0") + nla(10, struct.pack("=I", 7)))
    deleted = link_message(7, nla(3, b"bond0\0"), RTM_DELLINK)
    address = struct.pack("=IHHII", 24, 20, 0, 0, 0) + b"\0" * 8  # RTM_NEWADDR: skipped

    events = parse_link_events(created + address + deleted, received_at=12.5)

    assert [(e.deleted, e.index, e.name, e.master) for e in events] == [
        (False, 5, "ens5f0", 7),
        (True, 7, "bond0", None),
    ]
    assert all(e.received_at == 12.5 for e in events)


def fixture_index() -> list[dict[str, Any]]:
    index = FIXTURES / "index.json"
    if not index.exists():
        return []
    entries: list[dict[str, Any]] = json.loads(index.read_text())["fixtures"]
    return [e for e in entries if e.get("messages") == 1]


def state_value(text: str | None) -> int | None:
    return None if text is None else int(text, 16)


@pytest.mark.skipif(
    not fixture_index(),
    reason="no recorded fixtures in tests/fixtures/netlink (record them with make kernel-fixtures)",
)
@pytest.mark.parametrize("entry", fixture_index(), ids=lambda e: str(e["name"]))
def test_recorded_fixture(entry: dict[str, Any]) -> None:
    link = decode_link_message((FIXTURES / entry["file"]).read_bytes())

    assert link.name == entry["interface"]
    assert link.index == entry["ifindex"]
    assert link.kind == entry.get("link_kind")
    assert link.slave_kind == entry.get("slave_kind")
    actor = link.slave.actor_state if link.slave else None
    partner = link.slave.partner_state if link.slave else None
    assert actor == state_value(entry.get("actor_state"))
    assert partner == state_value(entry.get("partner_state"))
    if entry.get("vf_link_states") is not None:
        assert [vf.link_state.label for vf in link.vfs] == entry["vf_link_states"]
    else:
        assert link.vfs == ()
    if entry.get("link_kind") == "bond":
        assert link.bond is not None
        assert link.bond.mode == BOND_MODES[entry["bond_mode"]]


BOND_MODES = {"802.3ad": 4, "active-backup": 1}


def recorded(name: str) -> dict[str, Any]:
    index = FIXTURES / "index.json"
    if not index.exists():
        pytest.skip("no recorded fixtures in tests/fixtures/netlink (make kernel-fixtures)")
    entries = json.loads(index.read_text())["fixtures"]
    return next(e for e in entries if e["name"] == name)


def test_recorded_notifications() -> None:
    entry = recorded("notifications_expiry")
    data = (FIXTURES / entry["file"]).read_bytes()

    events = parse_link_events(data, received_at=1.0)
    links = []
    offset = 0
    while offset < len(data):
        length = struct.unpack_from("=I", data, offset)[0]
        links.append(decode_link_message(data, offset))
        offset += (length + 3) & ~3

    assert [e.name for e in events] == [e["interface"] for e in entry["events"]]
    assert [e.index for e in events] == [link.index for link in links]
    assert [e.master for e in events] == [link.master for link in links]
    assert [link.slave.actor_state for link in links if link.slave] == [
        int(e["actor_state"], 16) for e in entry["events"]
    ]
    assert [link.slave.partner_state for link in links if link.slave] == [
        int(e["partner_state"], 16) for e in entry["events"]
    ]


def test_recorded_dump_names() -> None:
    entry = recorded("dump_all")
    data = (FIXTURES / entry["file"]).read_bytes()

    events = parse_link_events(data, received_at=1.0)

    assert [e.name for e in events] == entry["interfaces"]
