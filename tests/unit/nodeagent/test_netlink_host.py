"""The real netlink adapter against this machine's kernel, on the loopback interface.

The host kernel has no bonding or VFs, so this covers requests, replies, ENODEV and
error acks; the bond and VF paths run in the kernel tier.
"""

from __future__ import annotations

import errno

import pytest

from nodeagent.links import VFLinkState, VFWriteError
from nodeagent.netlink import NetlinkClient


@pytest.fixture
def client() -> NetlinkClient:
    return NetlinkClient()


async def test_get_loopback(client: NetlinkClient) -> None:
    by_name = await client.get_link("lo")
    assert by_name is not None
    by_index = await client.get_link_by_index(by_name.index)
    client.close()

    assert by_name.name == "lo"
    assert by_index is not None
    assert by_index.name == "lo"
    assert by_name.master is None
    assert by_name.slave is None
    assert by_name.vfs == ()


async def test_missing_link_is_none(client: NetlinkClient) -> None:
    missing = await client.get_link("pfsr-none0")
    client.close()

    assert missing is None


async def test_no_members_of_loopback(client: NetlinkClient) -> None:
    link = await client.get_link("lo")
    assert link is not None
    members = await client.count_members(link.index)
    client.close()

    assert members == 0


async def test_vf_write_error_carries_errno(client: NetlinkClient) -> None:
    link = await client.get_link("lo")
    assert link is not None
    with pytest.raises(VFWriteError) as error:
        await client.set_vf_link_states(link.index, [(0, VFLinkState.DISABLE)])
    client.close()

    assert error.value.errno == errno.EOPNOTSUPP  # lo has no VFs to set
