"""List-then-watch loop that keeps a Store equal to the API server, as client-go's Reflector.

``list_and_watch`` lists the resource (paged), replaces the store and then watches
from the list's resourceVersion, with bookmarks. The resourceVersion advances on
every event, bookmarks included, so a restarted watch resumes where the last one
stopped. Failures are handled by kind:

- 410 Gone, as an HTTP status or as an ERROR event inside the stream, means the
  resourceVersion fell out of the server's history (etcd compaction): list again.
- Connection errors, 429 (after its Retry-After) and 5xx: back off with jitter and
  watch again from the same resourceVersion, without listing.
- A stream that ends immediately without events is suspicious: back off before
  the next watch so a misbehaving server is not hammered.
- A stream that sends nothing, not even a bookmark, for longer than the requested
  watch timeout plus a margin is considered dead: the watchdog drops it and watches
  again. The API server ends every watch at its timeoutSeconds, so a healthy stream
  is never silent that long.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from controller.backoff import Backoff
from controller.kube import JSON, APIError, Client, GoneError, Resource
from controller.store import Delta, Store, resource_version

logger = logging.getLogger(__name__)


@dataclass
class ReflectorSettings:
    """Timing of lists and watches; all durations in seconds."""

    # Each watch requests that the server end it after a random time in [timeout, 2 * timeout).
    watch_timeout: float = 300.0
    # Extra silence tolerated beyond the watch timeout before the watchdog fires.
    watchdog_margin: float = 30.0
    page_size: int = 500
    # A watch that ends sooner than this without any event counts as a failure.
    min_watch_duration: float = 1.0
    backoff: Callable[[], Backoff] = field(default=Backoff)


class WatchSilentError(Exception):
    """The watch stream sent nothing for longer than the watchdog allows."""


class Reflector:
    """Keeps ``store`` in sync with one resource, announcing changes to ``on_deltas``."""

    def __init__(
        self,
        client: Client,
        resource: Resource,
        store: Store,
        on_deltas: Callable[[list[Delta]], None],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        settings: ReflectorSettings | None = None,
        on_watch_restart: Callable[[str], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._resource = resource
        self._store = store
        self._on_deltas = on_deltas
        self._namespace = namespace
        self._label_selector = label_selector
        self._settings = settings or ReflectorSettings()
        self._on_watch_restart = on_watch_restart
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._backoff = self._settings.backoff()
        self.resource_version = ""
        self.has_synced = False
        self.synced = asyncio.Event()
        self.name = resource.plural
        self.lists = 0
        self.watches = 0
        self.events_in_watch = 0

    def _base_query(self) -> dict[str, str]:
        query: dict[str, str] = {}
        if self._label_selector:
            query["labelSelector"] = self._label_selector
        return query

    async def list(self) -> None:
        """List every object page by page, replace the store and set the resourceVersion."""
        path = self._resource.path(self._namespace)
        objects: list[JSON] = []
        continue_token = ""
        while True:
            query = self._base_query()
            query["limit"] = str(self._settings.page_size)
            if continue_token:
                query["continue"] = continue_token
            page = await self._client.request("GET", path, query=query)
            objects.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            continue_token = str(metadata.get("continue") or "")
            if not continue_token:
                self.resource_version = str(metadata.get("resourceVersion", ""))
                break
        self.lists += 1
        deltas = self._store.replace(objects)
        logger.debug(
            "listed %s: %d objects at resourceVersion %s",
            self.name,
            len(objects),
            self.resource_version,
        )
        if deltas:
            self._on_deltas(deltas)
        self.has_synced = True
        self.synced.set()

    def _watch_query(self) -> tuple[dict[str, str], float]:
        timeout = self._settings.watch_timeout * (1.0 + self._rand())
        query = self._base_query()
        query.update(
            {
                "watch": "true",
                "allowWatchBookmarks": "true",
                "resourceVersion": self.resource_version,
                "timeoutSeconds": str(max(1, int(timeout))),
            }
        )
        return query, timeout

    async def watch(self) -> int:
        """Follow one watch stream until the server ends it; return the events received.

        Raises GoneError when the resourceVersion is too old, WatchSilentError when
        the stream goes quiet, APIError for other failures.
        """
        query, timeout = self._watch_query()
        silence_limit = timeout + self._settings.watchdog_margin
        path = self._resource.path(self._namespace)
        self.watches += 1
        self.events_in_watch = received = 0
        # The transport's read timeout is only a backstop behind the watchdog below.
        read_timeout = silence_limit + self._settings.watchdog_margin
        stream = self._client.stream(path, query, read_timeout).__aiter__()
        while True:
            try:
                async with asyncio.timeout(silence_limit):
                    event = await stream.__anext__()
            except StopAsyncIteration:
                return received
            except TimeoutError as error:
                raise WatchSilentError(
                    f"watch of {self.name} sent nothing for {silence_limit:.0f} s"
                ) from error
            received += 1
            self.events_in_watch = received
            self._handle_event(event)

    def _handle_event(self, event: Mapping[str, object]) -> None:
        kind = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, dict):
            logger.warning("watch of %s sent an event without object: %s", self.name, kind)
            return
        if kind == "ERROR":
            code = int(obj.get("code") or 0)
            reason = str(obj.get("reason") or "")
            message = str(obj.get("message") or "")
            if code == 410:
                raise GoneError(code, reason or "Expired", message)
            raise APIError(code, reason, message)
        version = resource_version(obj)
        if kind == "BOOKMARK":
            self.resource_version = version or self.resource_version
            return
        if kind in ("ADDED", "MODIFIED"):
            delta = self._store.upsert(obj)
        elif kind == "DELETED":
            delta = self._store.delete(obj)
        else:
            logger.warning("watch of %s sent an event of unknown type %s", self.name, kind)
            return
        self.resource_version = version or self.resource_version
        self._on_deltas([delta])

    def _restarted(self, reason: str) -> None:
        if self._on_watch_restart is not None:
            self._on_watch_restart(reason)

    async def run(self) -> None:
        """Run ``list_and_watch`` until cancelled."""
        logger.info("reflector for %s started", self.name)
        try:
            await self.list_and_watch()
        finally:
            logger.info("reflector for %s stopped", self.name)

    async def list_and_watch(self) -> None:
        """List, then watch, and list again only when the server requires it."""
        while True:
            try:
                await self.list()
            except APIError as error:
                delay = self._backoff.next_delay(error.retry_after or 0.0)
                logger.debug("list of %s failed, retry in %.1f s: %s", self.name, delay, error)
                await self._sleep(delay)
                continue
            await self._watch_until_gone()

    async def _watch_until_gone(self) -> None:
        """Watch again and again from the current resourceVersion; return to relist."""
        while True:
            started = self._clock()
            try:
                received = await self.watch()
            except GoneError as error:
                logger.debug(
                    "watch of %s expired at resourceVersion %s, listing again: %s",
                    self.name,
                    self.resource_version,
                    error,
                )
                self._restarted("gone")
                if self.events_in_watch <= 1:
                    # Gone right after a list: the server may be compacting; do not spin.
                    await self._sleep(self._backoff.next_delay())
                return
            except WatchSilentError as error:
                logger.warning("%s; watching again", error)
                self._restarted("silent")
                continue
            except APIError as error:
                delay = self._backoff.next_delay(error.retry_after or 0.0)
                logger.debug("watch of %s failed, retry in %.1f s: %s", self.name, delay, error)
                self._restarted("error")
                await self._sleep(delay)
                if error.status not in (0, 429) and error.status < 500:
                    return  # 403 and the like: the next list shows whether it persists
                continue
            if received == 0 and self._clock() - started < self._settings.min_watch_duration:
                delay = self._backoff.next_delay()
                logger.debug("watch of %s ended at once, retry in %.1f s", self.name, delay)
                self._restarted("empty")
                await self._sleep(delay)
                continue
            self._backoff.reset()
            logger.debug("watch of %s ended after %d events, watching again", self.name, received)
            self._restarted("timeout")
