"""nodeSelector matching as the scheduler applies it, and per-node conflict resolution by age."""

from __future__ import annotations

from typing import Any

import pytest

from controller.selection import describe_nodes, matches, resolve


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        ({}, {"zone": "a"}, True),
        ({"zone": "a"}, {"zone": "a", "rack": "r1"}, True),
        ({"zone": "a"}, {"zone": "b"}, False),
        ({"zone": "a"}, {}, False),
        ({"zone": "a", "rack": "r1"}, {"zone": "a"}, False),
        ({"zone": ""}, {"zone": ""}, True),
        ({"zone": ""}, {}, False),
        ({"zone": "A"}, {"zone": "a"}, False),
    ],
    ids=[
        "empty-selects-unlabelled",
        "empty-selects-all",
        "subset",
        "other-value",
        "missing-key",
        "all-keys-needed",
        "empty-value-present",
        "empty-value-missing",
        "case-sensitive",
    ],
)
def test_matches(selector: dict[str, str], labels: dict[str, str], expected: bool) -> None:
    assert matches(selector, labels) is expected


def monitor(name: str, created: str, selector: dict[str, str], ns: str = "ns") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{name}",
            "creationTimestamp": created,
        },
        "spec": {"interfaces": ["eth0"], "nodeSelector": selector},
    }


def node(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def test_older_monitor_keeps_shared_node() -> None:
    monitors = [
        monitor("rack", "2024-01-02T00:00:00Z", {"rack": "r1"}),
        monitor("zone", "2024-01-01T00:00:00Z", {"zone": "a"}),
    ]
    nodes = [
        node("both", zone="a", rack="r1"),
        node("zone-only", zone="a"),
        node("rack-only", rack="r1"),
    ]
    result = resolve(monitors, nodes)
    assert result["ns/zone"].covered == ("both", "zone-only")
    assert result["ns/zone"].conflicts == ()
    assert result["ns/rack"].matched == ("both", "rack-only")
    assert result["ns/rack"].covered == ("rack-only",)
    assert result["ns/rack"].lost == ("both",)
    assert result["ns/rack"].conflicts[0].holder == "ns/zone"


def test_tie_on_time_broken_by_namespace_then_name() -> None:
    same = "2024-01-01T00:00:00Z"
    monitors = [
        monitor("b", same, {}, ns="x"),
        monitor("a", same, {}, ns="y"),
        monitor("c", same, {}, ns="x"),
    ]
    result = resolve(monitors, [node("n1")])
    assert result["x/b"].covered == ("n1",)
    assert result["x/c"].lost == ("n1",)
    assert result["y/a"].lost == ("n1",)


def test_conflict_clears_when_node_relabelled() -> None:
    monitors = [
        monitor("zone", "2024-01-01T00:00:00Z", {"zone": "a"}),
        monitor("rack", "2024-01-02T00:00:00Z", {"rack": "r1"}),
    ]
    before = resolve(monitors, [node("n1", zone="a", rack="r1")])
    after = resolve(monitors, [node("n1", rack="r1")])
    assert before["ns/rack"].covered == ()
    assert after["ns/rack"].covered == ("n1",)
    assert after["ns/rack"].conflicts == ()
    assert after["ns/zone"].matched == ()


def test_middle_monitor_keeps_unclaimed_nodes() -> None:
    monitors = [
        monitor("old", "2024-01-01T00:00:00Z", {"zone": "a"}),
        monitor("mid", "2024-01-02T00:00:00Z", {"rack": "r1"}),
        monitor("new", "2024-01-03T00:00:00Z", {}),
    ]
    nodes = [node("n1", zone="a", rack="r1"), node("n2", rack="r1"), node("n3")]
    result = resolve(monitors, nodes)
    assert result["ns/old"].covered == ("n1",)
    assert result["ns/mid"].covered == ("n2",)
    assert result["ns/new"].covered == ("n3",)
    holders = {c.holder: c.nodes for c in result["ns/new"].conflicts}
    assert holders == {"ns/mid": ("n2",), "ns/old": ("n1",)}


def test_conflict_message_names_few_nodes_and_count() -> None:
    monitors = [
        monitor("old", "2024-01-01T00:00:00Z", {}),
        monitor("new", "2024-01-02T00:00:00Z", {}),
    ]
    nodes = [node(f"worker-{i:02d}") for i in range(8)]
    message = resolve(monitors, nodes)["ns/new"].conflict_message()
    assert "8 nodes (worker-00, worker-01, worker-02, worker-03, worker-04 and 3 more)" in message
    assert "ns/old" in message
    assert "worker-05" not in message


def test_describe_single_node() -> None:
    assert describe_nodes(["n1"]) == "node n1 is"
