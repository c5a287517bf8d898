"""Reflector against a scripted API: relist on 410 (status and in-stream ERROR), bookmarks,
backoff without relist on connection errors and 429, watchdog on silent streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from controller_fakes import FakeClient, Stop, obj, page

from controller.backoff import Backoff
from controller.kube import APIError, GoneError, Resource, TooManyRequestsError
from controller.reflector import Reflector, ReflectorSettings
from controller.store import Delta, Store

RESOURCE = Resource("pfstatusrelay.openshift.io", "v1alpha1", "pflacpmonitors")


class Recorder:
    def __init__(self) -> None:
        self.deltas: list[Delta] = []
        self.sleeps: list[float] = []
        self.restarts: list[str] = []

    def on_deltas(self, deltas: list[Delta]) -> None:
        self.deltas.extend(deltas)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def make_reflector(client: Any, recorder: Recorder, store: Store | None = None) -> Reflector:
    settings = ReflectorSettings(
        watch_timeout=10.0,
        watchdog_margin=5.0,
        min_watch_duration=0.0,
        backoff=lambda: Backoff(initial=1.0, maximum=8.0, jitter=0.0),
    )
    return Reflector(
        client,
        RESOURCE,
        store if store is not None else Store(),
        recorder.on_deltas,
        settings=settings,
        on_watch_restart=recorder.restarts.append,
        sleep=recorder.sleep,
        rand=lambda: 0.0,
    )


def watch_rvs(client: FakeClient) -> list[str]:
    return [query["resourceVersion"] for method, _, query in client.calls if method == "WATCH"]


def list_count(client: FakeClient) -> int:
    return sum(1 for method, _, _ in client.calls if method == "GET")


async def test_in_stream_gone_error_relists_and_rewatches_from_new_version() -> None:
    client = FakeClient(
        lists=[page([obj("a", "5")], "10"), page([obj("a", "5"), obj("b", "30")], "40")],
        watches=[
            [
                {"type": "MODIFIED", "object": obj("a", "12")},
                {"type": "ERROR", "object": {"kind": "Status", "code": 410}},
            ],
            [Stop()],
        ],
    )
    recorder = Recorder()
    store = Store()
    reflector = make_reflector(client, recorder, store)
    with pytest.raises(Stop):
        await reflector.list_and_watch()
    assert list_count(client) == 2
    assert watch_rvs(client) == ["10", "40"]
    assert reflector.resource_version == "40"
    assert sorted(store.list_keys()) == ["ns/a", "ns/b"]
    # The relist brings a back to version 5 and adds b: both are announced.
    assert [(d.key, d.new["metadata"]["resourceVersion"]) for d in recorder.deltas if d.new] == [
        ("ns/a", "5"),
        ("ns/a", "12"),
        ("ns/a", "5"),
        ("ns/b", "30"),
    ]
    assert recorder.restarts == ["gone"]


async def test_gone_status_on_watch_relists() -> None:
    client = FakeClient(
        lists=[page([], "10"), page([], "50")],
        watches=[GoneError(410, "Expired", "too old"), [Stop()]],
    )
    recorder = Recorder()
    with pytest.raises(Stop):
        await make_reflector(client, recorder).list_and_watch()
    assert list_count(client) == 2
    assert watch_rvs(client) == ["10", "50"]


async def test_relist_announces_objects_deleted_while_disconnected() -> None:
    client = FakeClient(
        lists=[page([obj("a", "1"), obj("b", "2")], "10"), page([obj("b", "2")], "20")],
        watches=[[{"type": "ERROR", "object": {"kind": "Status", "code": 410}}], [Stop()]],
    )
    recorder = Recorder()
    with pytest.raises(Stop):
        await make_reflector(client, recorder).list_and_watch()
    deletions = [d.key for d in recorder.deltas if d.new is None]
    assert deletions == ["ns/a"]
    # b did not change between the lists: no second announcement.
    assert [d.key for d in recorder.deltas].count("ns/b") == 1


async def test_bookmark_advances_resource_version() -> None:
    client = FakeClient(
        lists=[page([], "10")],
        watches=[
            [{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "77"}}}],
            [Stop()],
        ],
    )
    recorder = Recorder()
    reflector = make_reflector(client, recorder)
    with pytest.raises(Stop):
        await reflector.list_and_watch()
    assert watch_rvs(client) == ["10", "77"]
    assert recorder.deltas == []
    _, _, query = next(call for call in client.calls if call[0] == "WATCH")
    assert query["allowWatchBookmarks"] == "true"
    assert query["timeoutSeconds"] == "10"


async def test_connection_error_backs_off_without_relist() -> None:
    client = FakeClient(
        lists=[page([], "10")],
        watches=[
            [{"type": "ADDED", "object": obj("a", "11")}, APIError(0, "ConnectionFailed", "x")],
            APIError(0, "ConnectionFailed", "refused"),
            APIError(503, "ServiceUnavailable", "busy"),
            [Stop()],
        ],
    )
    recorder = Recorder()
    with pytest.raises(Stop):
        await make_reflector(client, recorder).list_and_watch()
    assert list_count(client) == 1
    assert watch_rvs(client) == ["10", "11", "11", "11"]
    assert recorder.sleeps == [1.0, 2.0, 4.0]


async def test_too_many_requests_honours_retry_after() -> None:
    client = FakeClient(
        lists=[page([], "10")],
        watches=[TooManyRequestsError(429, "TooManyRequests", "slow down", 7.0), [Stop()]],
    )
    recorder = Recorder()
    with pytest.raises(Stop):
        await make_reflector(client, recorder).list_and_watch()
    assert recorder.sleeps == [7.0]
    assert list_count(client) == 1


async def test_failed_list_retries_with_backoff() -> None:
    client = FakeClient(
        lists=[APIError(0, "ConnectionFailed", "down"), APIError(500, "", ""), page([], "3")],
        watches=[[Stop()]],
    )
    recorder = Recorder()
    reflector = make_reflector(client, recorder)
    with pytest.raises(Stop):
        await reflector.list_and_watch()
    assert recorder.sleeps == [1.0, 2.0]
    assert reflector.has_synced


async def test_paged_list_follows_continue_token() -> None:
    client = FakeClient(
        lists=[page([obj("a", "1")], "", "tok"), page([obj("b", "2")], "9")],
        watches=[[Stop()]],
    )
    recorder = Recorder()
    store = Store()
    reflector = make_reflector(client, recorder, store)
    with pytest.raises(Stop):
        await reflector.list_and_watch()
    assert sorted(store.list_keys()) == ["ns/a", "ns/b"]
    assert client.calls[1][2]["continue"] == "tok"
    assert watch_rvs(client) == ["9"]


class SilentClient(FakeClient):
    """Watch streams that never send anything, as a hung connection."""

    async def stream(
        self, path: str, query: Mapping[str, str], read_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        self.calls.append(("WATCH", path, dict(query)))
        if len([c for c in self.calls if c[0] == "WATCH"]) > 1:
            raise Stop()
        await asyncio.Event().wait()
        yield {}


async def test_watchdog_restarts_silent_watch() -> None:
    client = SilentClient(lists=[page([], "10")])
    recorder = Recorder()
    reflector = Reflector(
        client,
        RESOURCE,
        Store(),
        recorder.on_deltas,
        settings=ReflectorSettings(watch_timeout=0.001, watchdog_margin=0.001),
        on_watch_restart=recorder.restarts.append,
        sleep=recorder.sleep,
        rand=lambda: 0.0,
    )
    with pytest.raises(Stop):
        await reflector.list_and_watch()
    assert recorder.restarts == ["silent"]
    assert watch_rvs(client) == ["10", "10"]
    assert list_count(client) == 1
