"""Informer: a reflector, its store and the handlers that turn changes into queued keys.

Handlers must return fast and only queue work; reconciling happens in the workers.
Every ``resync_period`` the informer announces every cached object again as an
update with ``old is new``, so a reconcile that was lost (a bug, a dropped key) is
repeated without any request to the API server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from controller.kube import JSON, Client, Resource
from controller.reflector import Reflector, ReflectorSettings
from controller.store import Delta, Store, object_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handler:
    """Callbacks for one consumer; ``old`` and ``new`` are raw objects."""

    on_add: Callable[[JSON], None] | None = None
    on_update: Callable[[JSON, JSON], None] | None = None
    on_delete: Callable[[JSON], None] | None = None


class Informer:
    """Shared cache of one resource with change notifications."""

    def __init__(
        self,
        client: Client,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        resync_period: float = 600.0,
        settings: ReflectorSettings | None = None,
        on_watch_restart: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = Store()
        self._handlers: list[Handler] = []
        self._resync_period = resync_period
        self.resource = resource
        restart = None
        if on_watch_restart is not None:
            callback = on_watch_restart

            def restart(reason: str) -> None:
                callback(resource.plural, reason)

        self.reflector = Reflector(
            client,
            resource,
            self.store,
            self._dispatch,
            namespace=namespace,
            label_selector=label_selector,
            settings=settings,
            on_watch_restart=restart,
        )

    @property
    def has_synced(self) -> bool:
        return self.reflector.has_synced

    def add_handler(self, handler: Handler) -> None:
        """Register ``handler``; register all handlers before ``run``."""
        self._handlers.append(handler)

    def _dispatch(self, deltas: list[Delta]) -> None:
        for delta in deltas:
            for handler in self._handlers:
                try:
                    self._call(handler, delta)
                except Exception:
                    # A failing handler must not stop the reflector or other handlers.
                    logger.exception("handler for %s %s failed", self.resource.plural, delta.key)

    @staticmethod
    def _call(handler: Handler, delta: Delta) -> None:
        if delta.old is None and delta.new is not None:
            if handler.on_add:
                handler.on_add(delta.new)
        elif delta.old is not None and delta.new is not None:
            if handler.on_update:
                handler.on_update(delta.old, delta.new)
        elif delta.old is not None and handler.on_delete:
            handler.on_delete(delta.old)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self._resync_period)
            if not self.has_synced:
                continue
            logger.debug("resync of %s: %d objects", self.resource.plural, len(self.store))
            self._dispatch([Delta(obj_key, obj, obj) for obj_key, obj in self._items()])

    def _items(self) -> list[tuple[str, JSON]]:
        return [(object_key(obj), obj) for obj in self.store]

    async def run(self) -> None:
        """Run the reflector and the periodic resync until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.reflector.run(), name=f"reflector-{self.resource.plural}")
            if self._resync_period > 0:
                group.create_task(self._resync(), name=f"resync-{self.resource.plural}")

    async def wait_for_sync(self) -> None:
        """Wait until the first list has filled the store."""
        await self.reflector.synced.wait()
