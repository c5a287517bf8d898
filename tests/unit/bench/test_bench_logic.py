"""Unit tests of the benchmark logic: statistics, the comparison agent's rule and writes,
and the rtnetlink encoding that the comparison agent and the observer share."""

from __future__ import annotations

import struct

import pytest

from hack.bench.rtnl import (
    IFLA_VF_INFO,
    IFLA_VF_LINK_STATE,
    IFLA_VFINFO_LIST,
    RTM_SETLINK,
    VF_AUTO,
    VF_DISABLE,
    VF_ENABLE,
    encode_setlink_vf_states,
    parse_link,
)
from hack.bench.stats import percentile, ratio, summarize
from hack.bench.upstream_agent import upstream_lacp_up, vf_writes


def test_percentile_interpolates_between_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 50) == 25.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 90) == pytest.approx(37.0)


def test_percentile_ignores_input_order() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_summarize_reports_distribution() -> None:
    summary = summarize([float(v) for v in range(1, 101)])
    assert summary["n"] == 100
    assert summary["min"] == 1.0
    assert summary["p50"] == pytest.approx(50.5)
    assert summary["p99"] == pytest.approx(99.01)
    assert summary["max"] == 100.0
    assert summarize([]) == {"n": 0}


def test_ratio_handles_missing_values() -> None:
    assert ratio(3.0, 1.5) == 2.0
    assert ratio(None, 1.0) is None
    assert ratio(1.0, None) is None
    assert ratio(1.0, 0.0) is None


@pytest.mark.parametrize(
    ("actor", "partner", "up"),
    [
        (0x3F, 0x3F, True),
        (0x3D, 0x3D, True),  # passive LACP, long timeout: still up
        (0x3B, 0x3F, False),  # actor not aggregatable: upstream calls it down
        (0x8F, 0x3F, False),  # actor expired, collecting/distributing cleared
        (0x4F, 0x3F, False),  # actor defaulted
        (0x3F, 0x7F, False),  # partner defaulted although all other bits are set
        (0x3F, 0xBF, False),  # partner expired
        (0x3F, 0x37, False),  # partner not synchronized
    ],
)
def test_upstream_rule(actor: int, partner: int, up: bool) -> None:
    assert upstream_lacp_up(actor, partner) is up


def test_upstream_rule_over_all_states_matches_definition() -> None:
    for actor in range(256):
        for partner in range(256):
            expected = all(
                s & 0x3C == 0x3C and s & 0x40 == 0 and s & 0x80 == 0 for s in (actor, partner)
            )
            assert upstream_lacp_up(actor, partner) is expected, (hex(actor), hex(partner))


def test_vf_writes_down_disables_only_auto() -> None:
    states = [VF_AUTO, VF_ENABLE, VF_DISABLE, VF_AUTO]
    assert vf_writes(False, states) == [(0, VF_DISABLE), (3, VF_DISABLE)]


def test_vf_writes_up_restores_only_disabled() -> None:
    states = [VF_AUTO, VF_ENABLE, VF_DISABLE, VF_DISABLE]
    assert vf_writes(True, states) == [(2, VF_AUTO), (3, VF_AUTO)]


def test_setlink_encoding_round_trips_through_parser() -> None:
    changes = [(0, VF_DISABLE), (1, VF_AUTO), (7, VF_ENABLE)]
    message = encode_setlink_vf_states(42, changes, seq=5)
    length, message_type, flags, seq, _ = struct.unpack_from("=IHHII", message)
    assert length == len(message)
    assert message_type == RTM_SETLINK
    assert flags == 0x5  # NLM_F_REQUEST | NLM_F_ACK
    assert seq == 5
    (index,) = struct.unpack_from("=i", message, 16 + 4)
    assert index == 42
    sample = parse_link(message)
    assert sample.vf_states == (VF_DISABLE, VF_AUTO, VF_ENABLE)
    assert sample.actor is None
    assert sample.partner is None


def test_parse_link_reads_bond_slave_states() -> None:
    def attr(kind: int, payload: bytes) -> bytes:
        length = 4 + len(payload)
        return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)

    slave_data = attr(7, bytes([0x8F])) + attr(8, struct.pack("=H", 0x3F))
    linkinfo = attr(4, b"bond\0") + attr(5 | 0x8000, slave_data)  # nested flag set
    vfs = attr(
        IFLA_VFINFO_LIST,
        attr(IFLA_VF_INFO, attr(IFLA_VF_LINK_STATE, struct.pack("=II", 0, VF_AUTO))),
    )
    body = struct.pack("=BxHiII", 0, 1, 3, 0, 0) + attr(18, linkinfo) + vfs
    message = struct.pack("=IHHII", 16 + len(body), 16, 0, 1, 0) + body
    sample = parse_link(message)
    assert sample.actor == 0x8F
    assert sample.partner == 0x3F
    assert sample.vf_states == (VF_AUTO,)


def test_scaling_counts_doubles_up_to_limit() -> None:
    from hack.bench.agent_bench import scaling_counts

    assert scaling_counts(4, raisable=True, limit=16) == [1, 2, 4, 8, 16]
    assert scaling_counts(4, raisable=False, limit=16) == [1, 2, 4]
    assert scaling_counts(6, raisable=True, limit=20) == [1, 2, 4, 6, 8, 16, 20]


def test_controller_error_text_names_size_limit() -> None:
    from hack.bench.report import controller_error_text

    message = (
        "reconcile failed (retry 1): 500 : rpc error: code = ResourceExhausted desc = "
        "trying to send message larger than max (2356423 vs. 2097152)"
    )
    result = {
        "controller_errors": {
            "counts": {"reconcile failed (retry 1)": 1, "reconcile failed (retry 2)": 2},
            "first": {"reconcile failed (retry 1)": message},
        }
    }
    text = controller_error_text(result)
    assert "logged 3 warnings" in text
    assert "(retry N)" in text
    assert "2356423 vs. 2097152" in text
    assert "2 MiB gRPC message limit" in text
    assert controller_error_text({}) == ""
