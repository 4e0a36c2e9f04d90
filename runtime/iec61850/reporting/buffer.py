"""The bounded report buffer of one BRCB (IEC 61850-7-2 buffered reporting).

Entries keep their EntryID (8 octets, an increasing counter seeded from the wall clock: the
milliseconds since 1970 shifted left 16 bits, so the EntryIDs of a server run are above those of
every earlier run and a client's EntryID from before a restart is never taken for a current one) and stay in the buffer after they
were sent, so a client that comes back resumes after the last EntryID it received. When the
buffer is full the oldest entry goes; if that entry had not been sent yet, the next report sent
carries BufOvfl.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from .report_pdu import ReportContent

__all__ = ["ReportBuffer", "BufferedEntry", "entry_id_bytes", "entry_id_int"]


def entry_id_bytes(n: int) -> bytes:
    return n.to_bytes(8, "big")


def entry_id_int(raw: bytes) -> int:
    return int.from_bytes(raw.rjust(8, b"\x00")[:8], "big")


def first_entry_id() -> int:
    """The first EntryID of a buffer made now (see the module docstring)."""
    return max(int(time.time() * 1000) << 16, 1)


@dataclass(slots=True)
class BufferedEntry:
    entry_id: int
    content: ReportContent
    seq: int = 0  # the SqNum of the report: a resend repeats it


class ReportBuffer:
    """At most ``capacity`` entries, oldest first."""

    def __init__(self, capacity: int, first_id: int | None = None) -> None:
        if capacity < 1:
            raise ValueError("a report buffer holds at least one entry")
        self.capacity = capacity
        self.entries: deque[BufferedEntry] = deque()
        self._next = first_entry_id() if first_id is None else first_id
        #: The last entry id delivered to the client (0: none).
        self.delivered = 0
        #: An entry that was never delivered has been dropped.
        self.overflowed = False

    def add(self, content: ReportContent, seq: int = 0) -> BufferedEntry:
        entry = BufferedEntry(self._next, content, seq)
        content.entry_id = entry_id_bytes(self._next)
        self._next += 1
        if len(self.entries) >= self.capacity:
            dropped = self.entries.popleft()
            if dropped.entry_id > self.delivered:
                self.overflowed = True
        self.entries.append(entry)
        return entry

    def knows(self, entry_id: int) -> bool:
        """True when a client may resume after ``entry_id`` (0: from the oldest; an id that
        was issued and has since been dropped: from the oldest, with BufOvfl)."""
        return entry_id == 0 or 0 < entry_id < self._next

    def resume(self, entry_id: int) -> None:
        """The client has everything up to ``entry_id``: what follows is due."""
        oldest = self.entries[0].entry_id if self.entries else self._next
        if entry_id and entry_id < oldest - 1:
            self.overflowed = True  # entries after the client's one were dropped
        self.delivered = entry_id

    def due(self) -> list[BufferedEntry]:
        """The entries not delivered yet, oldest first."""
        return [e for e in self.entries if e.entry_id > self.delivered]

    def purge(self) -> None:
        self.entries.clear()
        self.overflowed = False
        self.delivered = self._next - 1
