"""Which VF link states follow from a LACP verdict.

The policy is level-triggered: every pass compares the VFs' current states with the
target and returns the changes, so a VF that another writer flipped (the SR-IOV CNI
attaching a pod sets ``auto``) is corrected on the next pass.

- Down: every ``auto`` VF becomes ``disable``, so bonds inside pods fail over to
  their VF on the other PF.
- Up: every ``disable`` VF becomes ``auto``.
- Unknown: nothing changes. Unknown means the agent cannot tell; disabling VFs on
  uncertainty cuts pods off, while leaving them as they are keeps the last decision
  that was made on real LACP data.
- ``enable`` VFs are never touched: the user pinned them up.
"""

from __future__ import annotations

from collections.abc import Iterable

from api.v1alpha1.types import LACPState, VFCounts
from nodeagent.links import VFInfo, VFLinkState

_TRANSITIONS: dict[LACPState, tuple[VFLinkState, VFLinkState]] = {
    LACPState.DOWN: (VFLinkState.AUTO, VFLinkState.DISABLE),
    LACPState.UP: (VFLinkState.DISABLE, VFLinkState.AUTO),
}


def plan_vf_changes(state: LACPState, vfs: Iterable[VFInfo]) -> list[tuple[int, VFLinkState]]:
    """Return (VF index, new link state) for every VF that must change, by VF index."""
    transition = _TRANSITIONS.get(state)
    if transition is None:
        return []
    source, target = transition
    ordered = sorted(vfs, key=lambda vf: vf.index)
    return [(vf.index, target) for vf in ordered if vf.link_state == source]


def plan_restore(vfs: Iterable[VFInfo]) -> list[tuple[int, VFLinkState]]:
    """Return the changes that put every ``disable`` VF back to ``auto``."""
    return plan_vf_changes(LACPState.UP, vfs)


def count_vfs(vfs: Iterable[VFInfo]) -> VFCounts:
    """Count VFs in total, managed (auto or disable) and disabled."""
    states = [vf.link_state for vf in vfs]
    return VFCounts(
        total=len(states),
        managed=sum(1 for s in states if s != VFLinkState.ENABLE),
        disabled=sum(1 for s in states if s == VFLinkState.DISABLE),
    )
