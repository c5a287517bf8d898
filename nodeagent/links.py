"""Plain typed view of the kernel's links, and the interface of the netlink adapter.

``nodeagent/netlink.py`` is the only module that speaks netlink (through pyroute2);
it returns these dataclasses, so the rest of the agent, and its unit tests with a
fake adapter, never see a netlink message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol


class VFLinkState(IntEnum):
    """IFLA_VF_LINK_STATE values."""

    AUTO = 0  # the VF's link follows the PF's link
    ENABLE = 1  # always up: the agent never touches it
    DISABLE = 2  # always down

    @property
    def label(self) -> str:
        """Return the lower-case name that ``ip link`` prints."""
        return self.name.lower()


@dataclass(frozen=True)
class VFInfo:
    """One VF of a PF: its index and link state."""

    index: int
    link_state: VFLinkState


@dataclass(frozen=True)
class BondSlaveInfo:
    """IFLA_INFO_SLAVE_DATA of a bond member. None means the kernel sent no such attribute."""

    state: int | None = None  # 0 active, 1 backup
    mii_status: int | None = None  # 0 up
    aggregator_id: int | None = None
    actor_state: int | None = None
    partner_state: int | None = None  # a u16 attribute holding the partner's state byte


@dataclass(frozen=True)
class BondInfo:
    """IFLA_INFO_DATA of a bond. None means the kernel sent no such attribute."""

    mode: int | None = None
    lacp_rate: int | None = None
    active_aggregator_id: int | None = None
    num_ports: int | None = None
    actor_key: int | None = None
    partner_key: int | None = None
    partner_mac: str | None = None


@dataclass(frozen=True)
class Link:
    """One network interface as RTM_NEWLINK describes it."""

    index: int
    name: str
    master: int | None = None
    kind: str | None = None  # IFLA_INFO_KIND, "bond" for a bond master
    slave_kind: str | None = None  # IFLA_INFO_SLAVE_KIND, "bond" for a bond member
    slave: BondSlaveInfo | None = None
    bond: BondInfo | None = None
    num_vfs: int | None = None
    vfs: tuple[VFInfo, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class LinkEvent:
    """RTM_NEWLINK or RTM_DELLINK notification; ``received_at`` is time.monotonic()."""

    deleted: bool
    index: int
    name: str
    master: int | None
    received_at: float


class VFWriteError(Exception):
    """The kernel rejected an RTM_SETLINK that sets VF link states."""

    def __init__(self, errno_value: int, message: str = "") -> None:
        super().__init__(errno_value, message)
        self.errno = errno_value
        self.message = message


class EventSocketLost(Exception):
    """The link event socket overflowed (ENOBUFS) or failed: reopen it and resync."""


class LinkReader(Protocol):
    """Netlink operations the reconcile pass needs."""

    async def get_link(self, name: str) -> Link | None:
        """Return the link named ``name`` with its VFs, or None when it does not exist."""

    async def get_link_by_index(self, index: int) -> Link | None:
        """Return the link with ``index`` (without VFs), or None when it does not exist."""

    async def count_members(self, master_index: int) -> int:
        """Return how many links have ``master_index`` as their master."""

    async def set_vf_link_states(
        self, pf_index: int, changes: Sequence[tuple[int, VFLinkState]]
    ) -> None:
        """Set the link state of several VFs in one RTM_SETLINK; raise VFWriteError."""
