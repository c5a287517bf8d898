"""Kubernetes access of the agent: the Event sink and the reader of its monitor.

Uses kubernetes_asyncio with the pod's service account, or a kubeconfig file given on
the command line. Every API error becomes ``ReportSendError`` or ``MonitorReadError``
so the callers retry instead of stopping.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from api.v1alpha1.types import GROUP, PLURAL, VERSION
from nodeagent.monitorwatch import MonitorReadError
from nodeagent.reporting import MonitorIdentity, ReportSendError

REQUEST_TIMEOUT_S = 10.0
_API_ERRORS = (ApiException, aiohttp.ClientError, OSError, asyncio.TimeoutError)


async def create_api_client(kubeconfig: str | None) -> client.ApiClient:
    """Return an API client from ``kubeconfig``, or from the in-cluster service account."""
    if kubeconfig:
        await config.load_kube_config(config_file=kubeconfig)
    else:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


class KubeEventSink:
    """Creates events.k8s.io/v1 Events."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._api = client.EventsV1Api(api_client)

    async def send(self, event: dict[str, Any]) -> None:
        namespace = event["metadata"]["namespace"]
        try:
            await self._api.create_namespaced_event(
                namespace,
                event,  # type: ignore[arg-type]  # the client sends a dict as is
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except _API_ERRORS as error:
            raise ReportSendError(_describe(error)) from error


class KubeMonitorSource:
    """Reads one PFLACPMonitor."""

    def __init__(self, api_client: client.ApiClient, identity: MonitorIdentity) -> None:
        self._api = client.CustomObjectsApi(api_client)
        self._identity = identity

    async def get(self) -> dict[str, Any] | None:
        try:
            result = await self._api.get_namespaced_custom_object(
                GROUP,
                VERSION,
                self._identity.namespace,
                PLURAL,
                self._identity.name,
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise MonitorReadError(_describe(error)) from error
        except _API_ERRORS as error:
            raise MonitorReadError(_describe(error)) from error
        return dict(result)


def _describe(error: BaseException) -> str:
    if isinstance(error, ApiException):
        return f"HTTP {error.status}: {error.reason}"
    return f"{type(error).__name__}: {error}"
