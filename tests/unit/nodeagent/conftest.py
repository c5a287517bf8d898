"""Shared fixtures of the node agent unit tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakes import FakeLinks

from nodeagent.metrics import Metrics, in_memory_metrics


@pytest.fixture
def links() -> FakeLinks:
    return FakeLinks()


@pytest.fixture
def metrics() -> Metrics:
    return in_memory_metrics()
