"""The PFLACPMonitor models accept what the product documents and reject the rest."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api.v1alpha1 import PFLACPMonitor, PFLACPMonitorSpec


def _monitor(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pfstatusrelay.openshift.io/v1alpha1",
        "kind": "PFLACPMonitor",
        "metadata": {"name": "m", "namespace": "ns"},
        "spec": spec,
    }


def test_spec_defaults() -> None:
    spec = PFLACPMonitorSpec.model_validate({"interfaces": ["ens5f0"]})

    assert spec.polling_interval == 1000
    assert spec.node_selector == {}


def test_sample_round_trip() -> None:
    body = _monitor(
        interfaces=["ens5f0", "ens5f1"],
        pollingInterval=1000,
        nodeSelector={"kubernetes.io/hostname": "worker-0"},
    )

    monitor = PFLACPMonitor.model_validate(body)
    dumped = monitor.model_dump(by_alias=True, exclude_none=True)

    assert dumped["spec"] == body["spec"]
    assert dumped["apiVersion"] == "pfstatusrelay.openshift.io/v1alpha1"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"interfaces": []}, "interfaces"),
        ({"interfaces": ["ens5f0"], "pollingInterval": 999}, "pollingInterval"),
        ({"interfaces": ["ens5f0"], "pollingInterval": 60001}, "pollingInterval"),
        ({"interfaces": ["a" * 16]}, "interfaces.0"),
        ({"interfaces": ["eth/0"]}, "interfaces.0"),
        ({"interfaces": ["eth 0"]}, "interfaces.0"),
        ({"interfaces": ["eth0:1"]}, "interfaces.0"),
    ],
    ids=["empty", "interval-999", "interval-too-long", "name-16", "slash", "space", "colon"],
)
def test_spec_rejects_bad_values(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PFLACPMonitorSpec.model_validate(spec)

    locations = {".".join(str(part) for part in error["loc"]) for error in caught.value.errors()}
    assert field in locations


def test_fifteen_character_name_accepted() -> None:
    spec = PFLACPMonitorSpec.model_validate({"interfaces": ["a" * 15]})

    assert spec.interfaces == ["a" * 15]
