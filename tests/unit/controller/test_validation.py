"""Spec checks the controller repeats: messages name the field, the value and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from controller.validation import InvalidSpecError, validate_spec


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"interfaces": ["ens5f0"], "pollingInterval": 999},
            ["spec.pollingInterval", "999", "1000 to 60000"],
        ),
        ({"interfaces": ["a/b"]}, ["spec.interfaces[0]", "'a/b'", "without '/'"]),
        ({"interfaces": ["ens5f0", "ens5f0"]}, ["spec.interfaces", "ens5f0", "once"]),
        (
            {"interfaces": ["e"], "nodeSelector": {"zone": "a b"}},
            ["spec.nodeSelector[zone]", "'a b'"],
        ),
        ({"interfaces": ["e"], "nodeSelector": {"-bad": "a"}}, ["spec.nodeSelector", "'-bad'"]),
        (None, ["spec is missing"]),
    ],
    ids=["polling-999", "slash", "duplicate", "label-value", "label-key", "missing"],
)
def test_invalid_spec_message(spec: Any, expected: list[str]) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        validate_spec(spec)
    for part in expected:
        assert part in str(caught.value)


def test_valid_spec_parses() -> None:
    spec = validate_spec(
        {
            "interfaces": ["ens5f0"],
            "nodeSelector": {"example.com/zone": "a"},
            "pollingInterval": 2000,
        }
    )
    assert spec.polling_interval == 2000
    assert spec.node_selector == {"example.com/zone": "a"}
