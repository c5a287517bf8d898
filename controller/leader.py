"""Leader election on a coordination.k8s.io/v1 Lease, so two replicas never both write.

The algorithm is client-go's leaderelection. A candidate takes the Lease when it is
free, or when its record (holder, renewTime, resourceVersion) has not changed for
``lease_duration`` seconds of the candidate's own clock. The holder renews every
``retry_period`` seconds. Expiry is judged on local observation time, never on the
timestamps in the Lease, so clock skew between replicas does not matter.

Safety: the holder closes the write fence the moment it fails to renew within
``renew_deadline`` seconds, which is shorter than ``lease_duration``, so it stops
writing before any other replica can consider the Lease expired. Losing the Lease
raises LeadershipLostError, which ends the process with a non-zero exit code: a
fresh process starts clean instead of resuming with stale caches and state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.kube import APIError, Client, ConflictError, NotFoundError, WriteFence
from controller.resources import LEASES

logger = logging.getLogger(__name__)

LEASE_NAME = "pf-status-relay-controller"


class LeadershipLostError(Exception):
    """This replica held the Lease and could not renew it in time."""


@dataclass(frozen=True)
class LeaderSettings:
    """Lease timing in seconds, as in client-go's LeaderElectionConfig."""

    namespace: str
    identity: str
    name: str = LEASE_NAME
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError(
                "leader election needs lease duration > renew deadline > retry period > 0, got "
                f"{self.lease_duration}, {self.renew_deadline}, {self.retry_period}"
            )


def _micro_time() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class LeaderElector:
    """Acquires and keeps the Lease; opens and closes ``fence`` with leadership.

    ``client`` writes the Lease itself and must have a fence of its own that stays open.
    """

    def __init__(
        self,
        client: Client,
        settings: LeaderSettings,
        fence: WriteFence,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._settings = settings
        self._fence = fence
        self._clock = clock
        self._sleep = sleep
        self._observed: tuple[str, str, str] | None = None
        self._observed_at = 0.0
        self._lease: dict[str, Any] | None = None
        self.is_leader = False

    @property
    def _path(self) -> str:
        return LEASES.path(self._settings.namespace)

    def _spec(self, transitions: int, acquire_time: str | None) -> dict[str, Any]:
        now = _micro_time()
        return {
            "holderIdentity": self._settings.identity,
            "leaseDurationSeconds": max(1, int(self._settings.lease_duration)),
            "acquireTime": acquire_time or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def try_acquire_or_renew(self) -> bool:
        """Make one attempt to take or renew the Lease; return True when this replica holds it.

        ``client`` must not be behind the write fence: writing the Lease is how a
        replica earns the right to write anything else.
        """
        name = self._settings.name
        try:
            lease = await self._client.request("GET", LEASES.path(self._settings.namespace, name))
        except NotFoundError:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name, "namespace": self._settings.namespace},
                "spec": self._spec(0, None),
            }
            return await self._write("POST", self._path, body)
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        record = (
            holder,
            str(spec.get("renewTime") or ""),
            str(lease["metadata"]["resourceVersion"]),
        )
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock()
        duration = float(spec.get("leaseDurationSeconds") or self._settings.lease_duration)
        expired = self._clock() - self._observed_at > duration
        mine = holder == self._settings.identity
        if holder and not mine and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        lease["spec"] = self._spec(transitions, spec.get("acquireTime") if mine else None)
        return await self._write("PUT", LEASES.path(self._settings.namespace, name), lease)

    async def _write(self, method: str, path: str, body: dict[str, Any]) -> bool:
        try:
            written = await self._client.request(method, path, body=body)
        except ConflictError:
            return False
        self._lease = written
        metadata = written.get("metadata") or {}
        spec = written.get("spec") or {}
        self._observed = (
            str(spec.get("holderIdentity") or ""),
            str(spec.get("renewTime") or ""),
            str(metadata.get("resourceVersion") or ""),
        )
        self._observed_at = self._clock()
        return True

    async def acquire(self) -> None:
        """Wait until this replica holds the Lease, then open the write fence."""
        logger.info(
            "waiting to acquire lease %s/%s as %s",
            self._settings.namespace,
            self._settings.name,
            self._settings.identity,
        )
        failures = 0
        while True:
            try:
                if await self.try_acquire_or_renew():
                    break
            except APIError as error:
                # Another replica holding the Lease returns False above. An error here is
                # a fault (RBAC, a missing namespace), so the first one and every tenth
                # after it are warnings that carry the error naming the cause.
                level = logging.WARNING if failures % 10 == 0 else logging.DEBUG
                logger.log(
                    level,
                    "lease acquisition failed, retrying in %.1f s: %s",
                    self._settings.retry_period,
                    error,
                    extra={"lease": self._settings.name, "failures": failures + 1},
                )
                failures += 1
            await self._sleep(self._settings.retry_period)
        self.is_leader = True
        self._fence.open()
        logger.info("lease %s acquired by %s", self._settings.name, self._settings.identity)

    async def hold(self) -> None:
        """Renew the Lease until cancelled; raise LeadershipLostError when renewal fails."""
        last_renew = self._clock()
        while True:
            await self._sleep(self._settings.retry_period)
            # Bound each attempt by the time left, so a hung connection cannot keep this
            # replica writing past the renew deadline.
            left = self._settings.renew_deadline - (self._clock() - last_renew)
            try:
                async with asyncio.timeout(max(left, 0.001)):
                    renewed = await self.try_acquire_or_renew()
            except (APIError, TimeoutError) as error:
                logger.debug("lease renewal failed, retrying: %r", error)
                renewed = False
            now = self._clock()
            if renewed:
                last_renew = now
            elif now - last_renew > self._settings.renew_deadline or not self._still_ours():
                self._lose()
                raise LeadershipLostError(
                    f"lease {self._settings.name} lost by {self._settings.identity}"
                )

    def _still_ours(self) -> bool:
        return self._observed is None or self._observed[0] in ("", self._settings.identity)

    def _lose(self) -> None:
        self._fence.close()
        self.is_leader = False
        logger.error(
            "lease %s lost by %s; writes stopped, exiting",
            self._settings.name,
            self._settings.identity,
        )

    async def release(self) -> None:
        """Give the Lease up on a clean shutdown, so another replica takes over at once."""
        if not self.is_leader or self._lease is None:
            return
        self._fence.close()
        self.is_leader = False
        lease = dict(self._lease)
        lease["spec"] = {
            **(lease.get("spec") or {}),
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
        }
        path = LEASES.path(self._settings.namespace, self._settings.name)
        try:
            await self._client.request("PUT", path, body=lease)
            logger.info("lease %s released by %s", self._settings.name, self._settings.identity)
        except APIError as error:
            logger.warning("lease %s not released: %s", self._settings.name, error)
