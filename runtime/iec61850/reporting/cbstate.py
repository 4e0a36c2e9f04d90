"""What report and log control blocks share: the attribute access of a control block, the
members of its data set, the walk from a changed attribute to the members it belongs to, and
the integrity period.

Reports (:mod:`.rcb`) and logs (:mod:`..logs.lcb`) both watch data set members; keeping the
walk here keeps their trigger rules the same (a member is concerned by a change only in its
own FC).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from ..model import (
    ControlBlock,
    DataAccessError,
    DataAttribute,
    LogicalNode,
    ModelError,
    ServerModel,
    fcs_of,
)

__all__ = [
    "CbState",
    "Member",
    "members_of",
    "member_reference",
    "watch_members",
    "concerned",
    "integrity_period",
    "advance_integrity",
    "MIN_INTEGRITY_MS",
    "MIN_LOG_INTEGRITY_MS",
]

#: The shortest integrity period of reports run (ms, unless the engine is told otherwise): a
#: client writing IntgPd 1 must not make the IED build a report of the whole data set every
#: millisecond.
MIN_INTEGRITY_MS = 100
#: The same for logs: every integrity period is a write to the log's disk.
MIN_LOG_INTEGRITY_MS = 1000

#: node, FC, 8-1 reference of one data set member
Member = tuple[Any, str, str]


def member_reference(ref: str, fc: str) -> str:
    """The 8-1 data reference of a data set member: ``LD/LN$FC$DO$DA``."""
    ln_ref, _, rest = ref.partition(".")
    return f"{ln_ref}${fc}${rest.replace('.', '$')}" if rest else f"{ln_ref}${fc}"


def integrity_period(ms: int | None, floor_ms: int = MIN_INTEGRITY_MS) -> float:
    """Seconds between integrity reports or log entries (0: none), never below ``floor_ms``."""
    return max(ms, floor_ms) / 1000 if ms else 0.0


def advance_integrity(deadline: float, period: float, now: float) -> float:
    """The integrity deadline after the one due at ``deadline``: on the period's grid, or a
    period from ``now`` when the engine fell behind (no burst of missed periods)."""
    nxt = deadline + period
    return nxt if nxt > now else now + period


@dataclass(eq=False)
class CbState:
    """The run-time state every control block has: its attributes in the model."""

    cb: ControlBlock

    def integrity(self, floor_ms: int) -> float:
        """Seconds between integrity reports or entries. The floor guards against clients;
        the period the SCL configured (``scl_intgpd``) is the IED's own choice and is kept."""
        scl = self.scl_intgpd
        return integrity_period(self.get("IntgPd"), min(floor_ms, scl) if scl else floor_ms)

    def __post_init__(self) -> None:
        self.scl_intgpd: int = self.get("IntgPd") or 0

    def get(self, name: str) -> Any:
        attr = self.cb.children.get(name)
        return attr.value if isinstance(attr, DataAttribute) else None

    def put(self, name: str, value: Any) -> None:
        attr = self.cb.children.get(name)
        if isinstance(attr, DataAttribute):
            attr.value = value


def members_of(model: ServerModel, ds_ref: str) -> list[Member]:
    """The members of data set ``ds_ref``; ``object-value-invalid`` when there is none."""
    if not ds_ref:
        raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, "DatSet is empty")
    try:
        ds = model.dataset(ds_ref)
    except ModelError:
        raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, f"no data set {ds_ref!r}") from None
    return [(model.resolve_member(f), f.fc, member_reference(f.ref, f.fc)) for f in ds.members]


S = TypeVar("S")


def watch_members(blocks: Iterable[tuple[S, list[Member]]]) -> dict[int, list[tuple[S, int]]]:
    """id(member node) -> [(block, member index)] of the watching ``blocks``."""
    watch: dict[int, list[tuple[S, int]]] = {}
    for block, members in blocks:
        for i, (node, _, _) in enumerate(members):
            watch.setdefault(id(node), []).append((block, i))
    return watch


def concerned(
    watch: dict[int, list[tuple[S, int]]], attr: DataAttribute
) -> Iterator[tuple[S, int]]:
    """The (block, member index) pairs whose member holds ``attr`` in ``attr``'s FC.

    A member is a node *and* an FC: ``MMXU1.TotW`` in MX is not concerned by its CF ``db``
    (SG and SE are the same settings seen two ways, as everywhere in the model)."""
    fcs = fcs_of(attr)
    node: Any = attr
    while node is not None and not isinstance(node, LogicalNode):
        for block, index in watch.get(id(node), ()):
            if block.members[index][1] in fcs:  # type: ignore[attr-defined]
                yield block, index
        node = node.parent
