"""Raw JSON access to the Kubernetes API, with a small error hierarchy.

The controller works on plain dicts, as the API server sends them: the generated
kubernetes_asyncio models drop unknown fields and hide the raw watch stream, where
ERROR events (410 Gone inside a stream) and BOOKMARK events must be seen as they
are. Every call goes through ``APIClient.call_api`` with ``_preload_content=False``,
so this module checks HTTP status codes itself and turns them into ``APIError``
subclasses that callers can match on: ``GoneError`` means relist, ``ConflictError``
means re-read and retry, ``TooManyRequestsError`` carries the server's Retry-After.

A ``WriteFence`` sits in front of every write: the leader elector closes it the
moment the lease is lost, so no write leaves this process afterwards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

logger = logging.getLogger(__name__)

JSON = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
# Seconds for one non-watch request, connection included.
REQUEST_TIMEOUT = 30.0


class APIError(Exception):
    """The API server rejected a request or could not be reached."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None = None):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


class NotFoundError(APIError):
    """404: the object does not exist."""


class ConflictError(APIError):
    """409: the object changed since it was read, or already exists."""


class GoneError(APIError):
    """410: the requested resourceVersion is too old; the caller must list again."""


class TooManyRequestsError(APIError):
    """429: the server asks the client to slow down for ``retry_after`` seconds."""


class FencedError(Exception):
    """A write was attempted after this replica stopped being the leader."""


_ERRORS: dict[int, type[APIError]] = {
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    429: TooManyRequestsError,
}


def error_from_status(status: int, body: Mapping[str, Any], retry_after: float | None) -> APIError:
    """Build the APIError for an HTTP status and a metav1.Status body."""
    cls = _ERRORS.get(status, APIError)
    reason = str(body.get("reason") or "")
    message = str(body.get("message") or "")
    return cls(status, reason, message, retry_after)


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class Resource:
    """One API resource: where it lives and whether it is namespaced."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        """Return the URL path of the collection, or of one object with ``name``."""
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        if sub:
            base += f"/{sub}"
        return base


class WriteFence:
    """Gate that every write passes; closed for good once leadership is lost."""

    def __init__(self, open_: bool = True) -> None:
        self._open = open_

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    def check(self) -> None:
        """Raise FencedError when writes are not allowed."""
        if not self._open:
            raise FencedError("this replica is not the leader; write dropped")


class Client(Protocol):
    """Interface to the API server that the controller uses: JSON requests and watch streams."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JSON: ...

    def stream(
        self, path: str, query: Mapping[str, str], read_timeout: float
    ) -> AsyncIterator[JSON]: ...


class KubeClient:
    """Client over kubernetes_asyncio's ApiClient that returns and streams raw JSON."""

    def __init__(self, api_client: Any, fence: WriteFence | None = None) -> None:
        self._api = api_client
        self.fence = fence or WriteFence()

    async def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: Any,
        content_type: str,
        request_timeout: Any,
    ) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            return await self._api.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=request_timeout,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise APIError(0, "ConnectionFailed", f"{method} {path}: {error}") from error

    async def _raise_for_status(self, response: Any) -> None:
        if 200 <= response.status <= 299:
            return
        raw = await response.read()
        response.release()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"message": raw.decode(errors="replace")[:500]}
        if not isinstance(body, dict):
            body = {"message": str(body)[:500]}
        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        raise error_from_status(response.status, body, retry_after)

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JSON:
        """Send one request and return the decoded JSON body."""
        if method != "GET":
            self.fence.check()
        response = await self._send(method, path, query, body, content_type, REQUEST_TIMEOUT)
        await self._raise_for_status(response)
        try:
            raw = await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise APIError(0, "ConnectionFailed", f"{method} {path}: {error}") from error
        finally:
            response.release()
        decoded = json.loads(raw) if raw else {}
        return decoded if isinstance(decoded, dict) else {}

    async def stream(
        self, path: str, query: Mapping[str, str], read_timeout: float
    ) -> AsyncIterator[JSON]:
        """Yield the watch events of ``path`` as raw dicts, one per line.

        ``read_timeout`` (seconds) bounds the wait for any single line, so a connection that stays
        open but sends nothing ends with TimeoutError instead of hanging.
        """
        client_timeout = aiohttp.ClientTimeout(sock_connect=10, sock_read=read_timeout)
        response = await self._send("GET", path, query, None, "application/json", client_timeout)
        try:
            await self._raise_for_status(response)
            while True:
                try:
                    line = await response.content.readline()
                except (aiohttp.ClientError, OSError) as error:
                    raise APIError(0, "ConnectionFailed", f"watch {path}: {error}") from error
                if not line:
                    return
                if line.strip():
                    event = json.loads(line)
                    if isinstance(event, dict):
                        yield event
        finally:
            response.close()
