"""When the C37.118 -> STTP bridge announces metadata and holds or releases measurements (sans-IO).

A configuration change replaces the publisher's metadata; subscribers that were subscribed get
CONFIGURATION_CHANGED and subscribe again. :class:`HoldCore` decides, with time passed in as
``now`` (seconds) and deadlines out (:meth:`HoldCore.next_deadline`,
:meth:`HoldCore.handle_timer`):

- whether a new configuration is announced now or deferred: at most one announcement per
  ``min_change_interval`` (a device flapping its configuration gets its latest one announced
  when the interval is over);
- which measurement batches are held (while a subscriber has yet to follow the new metadata, or
  an announcement is deferred) and when they are released, in order: every awaited subscriber
  subscribed again, or ``hold_seconds`` passed, or more than ``max_hold_measurements`` are held.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from typing import Any

#: Stands in the set of awaited subscribers while an announcement is deferred.
DEFERRED = object()

Batch = list[Any]


class HoldCore:
    """Announcement rate limit and the measurement hold of one bridge."""

    def __init__(
        self,
        hold_seconds: float = 3.0,
        max_hold_measurements: int = 500_000,
        min_change_interval: float = 1.0,
    ) -> None:
        self.hold_seconds = hold_seconds
        self.max_hold_measurements = max_hold_measurements
        self.min_change_interval = min_change_interval
        self.awaiting: set[Hashable] = set()
        self.held: deque[Batch] = deque()
        self.held_count = 0
        self.last_definition = -math.inf
        self.deferred_at: float | None = None
        self.release_at: float | None = None

    def configuration_changed(self, now: float) -> bool:
        """A new configuration arrived: True to announce it now; False when it is deferred (the
        latest one is announced when :meth:`handle_timer` says so)."""
        due = self.last_definition + self.min_change_interval
        if due > now:
            self.awaiting.add(DEFERRED)
            if self.deferred_at is None:
                self.deferred_at = due
            return False
        return True

    def defined(self, now: float, subscribed: set[Hashable]) -> list[Batch]:
        """Metadata was announced to the publisher whose ``subscribed`` connections must now
        subscribe again; returns the batches to publish now (nothing is left to wait for)."""
        self.last_definition = now
        if subscribed:
            self.awaiting |= subscribed
            self.release_at = now + self.hold_seconds
        if not self.awaiting:
            return self._release()
        return []

    def data(self, batch: Batch) -> list[Batch]:
        """A batch of measurements: the batches to publish now (none while holding)."""
        if not self.awaiting:
            return [batch]
        self.held.append(batch)
        self.held_count += len(batch)
        if self.held_count > self.max_hold_measurements:
            return self._release(force=True)
        return []

    def subscribed(self, connection: Hashable) -> list[Batch]:
        """A subscriber subscribed (again): the batches to publish now."""
        if connection not in self.awaiting:
            return []
        self.awaiting.discard(connection)
        return self._release() if not self.awaiting else []

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must run next (None: no timer needed)."""
        deadlines = [t for t in (self.deferred_at, self.release_at) if t is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> tuple[bool, list[Batch]]:
        """``(announce, batches)``: announce the latest configuration now (then call
        :meth:`defined`), and the batches to publish now."""
        batches: list[Batch] = []
        if self.release_at is not None and now >= self.release_at:
            batches = self._release()
        announce = False
        if self.deferred_at is not None and now >= self.deferred_at:
            self.deferred_at = None
            self.awaiting.discard(DEFERRED)
            announce = True
        return announce, batches

    def _release(self, force: bool = False) -> list[Batch]:
        deferred = DEFERRED in self.awaiting
        if deferred and not force:
            # The subscribers' new metadata is not out yet; it is due at ``deferred_at``.
            self.awaiting = {DEFERRED}
            self.release_at = None
            return []
        self.awaiting = {DEFERRED} if deferred else set()
        self.release_at = None
        self.held_count = 0
        batches = list(self.held)
        self.held.clear()
        return batches
