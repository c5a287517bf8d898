"""Local cache of one resource's objects, keyed ``namespace/name``.

The reflector keeps the store equal to the API server's view: it applies watch
events one by one and, after every list, replaces the whole content. ``replace``
returns what changed, so objects deleted while the watch was down are announced as
deletions (client-go's tombstones) and unchanged objects cause no work.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]


def object_key(obj: JSON) -> str:
    """Return ``namespace/name`` of a namespaced object, or ``name`` of a cluster one."""
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    name = str(metadata.get("name", ""))
    return f"{namespace}/{name}" if namespace else name


def resource_version(obj: JSON) -> str:
    """Return metadata.resourceVersion of ``obj``, empty when missing."""
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


@dataclass(frozen=True)
class Delta:
    """One change the store saw: ``old`` is None for an addition, ``new`` for a deletion."""

    key: str
    old: JSON | None
    new: JSON | None


class Store:
    """Objects by key; not thread-safe, it lives on the controller's event loop."""

    def __init__(self) -> None:
        self._items: dict[str, JSON] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[JSON]:
        return iter(list(self._items.values()))

    def get(self, key: str) -> JSON | None:
        return self._items.get(key)

    def list_keys(self) -> list[str]:
        return list(self._items)

    def upsert(self, obj: JSON) -> Delta:
        """Store ``obj`` and return the change."""
        key = object_key(obj)
        old = self._items.get(key)
        self._items[key] = obj
        return Delta(key, old, obj)

    def delete(self, obj: JSON) -> Delta:
        """Remove the object with ``obj``'s key and return the change.

        The deleted state is the one the server sent in the DELETED event, which is
        newer than the cached one.
        """
        key = object_key(obj)
        self._items.pop(key, None)
        return Delta(key, obj, None)

    def replace(self, objects: list[JSON]) -> list[Delta]:
        """Replace the whole content after a list and return what changed.

        Objects whose resourceVersion did not change produce no delta; objects missing
        from the list produce a deletion with their last known state.
        """
        fresh = {object_key(obj): obj for obj in objects}
        deltas: list[Delta] = []
        for key, old in self._items.items():
            if key not in fresh:
                deltas.append(Delta(key, old, None))
        for key, obj in fresh.items():
            previous = self._items.get(key)
            if previous is None or resource_version(previous) != resource_version(obj):
                deltas.append(Delta(key, previous, obj))
        self._items = fresh
        return deltas
