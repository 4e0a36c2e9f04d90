"""What the IED holds for each association while its transport cannot take more, bounded.

The server hands what it sends (answers, reports, control reports) to the transport at once
while the transport's backlog is below ``high_water`` octets (and the transport is connected).
Above it, the items of each association wait here, in order, in the association's own queue,
which holds at most ``max_pdus`` items and ``max_bytes`` octets; the server drains the queues in
turn as the transport gets room, so no association waits behind another's whole queue.

What this bounds is the IED's memory, not one client's effect on another: over XMPP the backlog
is that of the IED's one stream (:meth:`.xmpp.IecXmpp.backlog`), the same for every peer, and a
client that does not read is buffered by the XMPP server, never backing up the IED's stream. When
the stream backs up, every association waits; the busiest one reaches its bound first and is the
one that loses reports or is aborted, while the others keep their queues within their bounds.
When a new item would pass an association's bound, the policy decides:

- ``"drop-oldest"`` (the default): the oldest *unbuffered* report of that association is
  dropped (all its segments), with a log line, until the new item fits: it is lost, and the
  client sees the gap in SqNum (7-2: a URCB's reports may be lost). Buffered reports are never
  dropped one by one, since a BRCB's client must not miss an entry between two it received:
  when only dropping one would make room, or nothing droppable is left (answers and control
  reports: a client that keeps sending requests and reads nothing), the association is
  aborted. Under E2E security (IEC 62351-4) no report is droppable either: each sealed PDU
  carries its place in the association's sequence (ClearToken2), and a gap makes the client's
  E2E layer abort anyway, so the bound aborts the association cleanly instead;
- ``"abort"``: the association is aborted at once.

A concluded association's queue keeps only its answers (the conclude's last): its reports and
control reports are dropped as above. Until it drains it counts as an association of its peer
against the per-peer bound (:attr:`~.association.AssociationCore.lingering`), so a client that
associates, floods and concludes in a loop never piles up queues.

A segmented report is kept or dropped whole: once one of its segments has gone to the
transport, the rest are not droppable; a report dropped goes with the segments still to come.

An abort is the 8-2 abort: its URCBs are released, its BRCBs go on buffering for its return
(ResvTms), and the BRCB entries that were waiting here count as not delivered: they stay in the
buffer and a client that resynchronises (its last EntryID, then RptEna) gets them.

:class:`Outbox` is sans-IO: the server measures items, asks the transport's backlog and carries
out what :meth:`Outbox.put` decides.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from gridbind.iec61850.errors import InvalidArgument

__all__ = ["OutboxLimits", "Outbox", "Queued", "Overflow", "POLICIES"]

#: What happens when an association's queue would pass its bound (see the module docstring).
POLICIES = ("drop-oldest", "abort")


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    """The bound of each association's queue, and when items start to wait in the IED."""

    #: Items (stanzas) one association may have waiting.
    max_pdus: int = 512
    #: Octets one association may have waiting.
    max_bytes: int = 4 << 20
    #: Transport backlog (octets) for a peer above which the IED holds its items back.
    high_water: int = 256 << 10
    policy: str = "drop-oldest"

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise InvalidArgument(f"outbox policy {self.policy!r} is not one of {POLICIES}")
        if self.max_pdus < 1 or self.max_bytes < 1 or self.high_water < 0:
            raise InvalidArgument("outbox bounds must be positive")


@dataclass(slots=True)
class Queued:
    """One waiting item: ``report`` is the report it is a segment of (None: an answer or a
    control report); only ``droppable`` ones (unbuffered reports) are ever dropped."""

    item: Any
    size: int
    report: Any = None
    droppable: bool = False


@dataclass(slots=True)
class Overflow:
    """What :meth:`Outbox.put` decided: the reports dropped (their items), or to abort."""

    dropped: list[Queued] = field(default_factory=list)
    abort: bool = False


class Outbox:
    """The waiting items of every association, keyed by the caller (peer, association id)."""

    def __init__(self, limits: OutboxLimits | None = None) -> None:
        self.limits = limits or OutboxLimits()
        self._queues: dict[Hashable, deque[Queued]] = {}
        self._bytes: dict[Hashable, int] = {}
        #: Reports dropped so far, and associations aborted for their queue (figures).
        self.dropped_reports = 0
        self.aborted = 0

    def holds(self, key: Hashable) -> bool:
        """True while ``key`` has items waiting (new ones must queue behind them)."""
        return key in self._queues

    def __bool__(self) -> bool:
        return bool(self._queues)

    def keys(self) -> list[Hashable]:
        """The associations with waiting items, oldest queue first."""
        return list(self._queues)

    def waiting(self, key: Hashable) -> tuple[int, int]:
        """(items, octets) waiting for ``key``."""
        return len(self._queues.get(key, ())), self._bytes.get(key, 0)

    def put(
        self, key: Hashable, item: Any, size: int, report: Any = None, droppable: bool = False
    ) -> Overflow:
        """Queue ``item`` (``size`` octets) for ``key``; what the bound made of it."""
        queue = self._queues.setdefault(key, deque())
        used = self._bytes.get(key, 0)
        limits = self.limits
        verdict = Overflow()
        fits = len(queue) < limits.max_pdus and used + size <= limits.max_bytes
        if not fits and limits.policy == "drop-oldest":
            while queue and not (len(queue) < limits.max_pdus and used + size <= limits.max_bytes):
                victim = next((q.report for q in queue if q.droppable), None)
                if victim is None:
                    break
                for q in [q for q in queue if q.report is victim]:
                    queue.remove(q)
                    used -= q.size
                    verdict.dropped.append(q)
                self.dropped_reports += 1
            fits = len(queue) < limits.max_pdus and used + size <= limits.max_bytes
        # a segment of a report dropped just now goes with it: a report is dropped whole
        whole = report is not None and any(q.report is report for q in verdict.dropped)
        if not fits and not whole:
            verdict.abort = True
            self.aborted += 1
        if whole or verdict.abort:  # nothing is queued
            self._bytes[key] = used
            if not queue:
                del self._queues[key], self._bytes[key]
            return verdict
        queue.append(Queued(item, size, report, droppable and report is not None))
        self._bytes[key] = used + size
        return verdict

    def pop(self, key: Hashable) -> Queued | None:
        """The oldest waiting item of ``key`` (None when there is none)."""
        queue = self._queues.get(key)
        if not queue:
            return None
        head = queue.popleft()
        self._bytes[key] -= head.size
        if not queue:
            del self._queues[key]
            del self._bytes[key]
        return head

    def prune(self, key: Hashable, keep: Callable[[Queued], bool]) -> list[Queued]:
        """Drop the items of ``key`` that ``keep`` refuses, the rest in order; the dropped."""
        queue = self._queues.get(key)
        if queue is None:
            return []
        kept = deque(q for q in queue if keep(q))
        dropped = [q for q in queue if not keep(q)]
        if kept:
            self._queues[key] = kept
            self._bytes[key] = sum(q.size for q in kept)
        else:
            self.discard(key)
        return dropped

    def discard(self, key: Hashable) -> list[Queued]:
        """Drop everything waiting for ``key`` (its association aborted); returned."""
        self._bytes.pop(key, None)
        return list(self._queues.pop(key, ()))
