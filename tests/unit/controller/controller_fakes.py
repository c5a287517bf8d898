"""Scripted fake of the Kubernetes API for unit tests of the reflector and reconciler.

Each list or watch call takes the next scripted response: a list page, an exception,
or a list of watch events (optionally ending with an exception). Calls are recorded
so tests can assert on the query parameters the code sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeClient:
    """Client whose list and watch responses are scripted in order."""

    lists: list[Any] = field(default_factory=list)
    watches: list[Any] = field(default_factory=list)
    calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        self.calls.append((method, path, dict(query or {})))
        if not self.lists:
            raise AssertionError(f"unexpected {method} {path}")
        response = self.lists.pop(0)
        if isinstance(response, BaseException):
            raise response
        return dict(response)

    async def stream(
        self, path: str, query: Mapping[str, str], read_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        self.calls.append(("WATCH", path, dict(query)))
        if not self.watches:
            raise AssertionError("no more scripted watches")
        script = self.watches.pop(0)
        if isinstance(script, BaseException):
            raise script
        for item in script:
            if isinstance(item, BaseException):
                raise item
            yield item


class Stop(Exception):
    """Raised by a script to end the reflector's loop inside a test."""


def obj(name: str, rv: str, namespace: str = "ns", **extra: Any) -> dict[str, Any]:
    """Build a minimal namespaced object."""
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": rv}, **extra}


def page(items: list[dict[str, Any]], rv: str, continue_token: str = "") -> dict[str, Any]:
    """Build a list response."""
    metadata = {"resourceVersion": rv}
    if continue_token:
        metadata["continue"] = continue_token
    return {"items": items, "metadata": metadata}
