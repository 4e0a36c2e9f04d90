"""A bounded, persistent log store on sqlite3 (the standard library): the entries of every log
of an IED, kept across server restarts.

An entry is ``(entry id, time, [(data reference, Data, reason code bits)])``; entry ids grow
per log and go on after a restart. Each log keeps at most ``max_entries`` (the oldest go).
Queries return at most ``limit`` entries in entry order.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m

__all__ = ["LogStore", "StoredEntry", "data_to_json", "data_from_json", "DEFAULT_MAX_ENTRIES"]

#: Entries kept per log unless the server says otherwise.
DEFAULT_MAX_ENTRIES = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_entry (
    log TEXT NOT NULL,
    entry_id INTEGER NOT NULL,
    time REAL NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (log, entry_id)
);
CREATE INDEX IF NOT EXISTS log_entry_time ON log_entry (log, time, entry_id);
"""


@dataclass(frozen=True, slots=True)
class StoredEntry:
    entry_id: int
    time: float  # seconds since 1970 (UTC)
    values: list[tuple[str, m.Data, str]]  # reference, value, reason code bits


_SIMPLE = {
    m.Data.Integer: "i", m.Data.Unsigned: "u", m.Data.BitString: "b", m.Data.VisibleString: "v",
    m.Data.MmsString: "s",
}  # fmt: skip
_OCTETS = {m.Data.FloatingPoint: "f", m.Data.OctetString: "o", m.Data.BinaryTime: "t"}
_OCTETS[m.Data.UtcTime] = "z"
_BY_TAG = {tag: cls for cls, tag in (*_SIMPLE.items(), *_OCTETS.items())}


def data_to_json(data: m.Data) -> Any:
    """A compact JSON form of a Data value (``[tag, value]``)."""
    c: Any = data.choice
    if isinstance(c, bool):
        return ["B", c]
    if isinstance(c, m.Structure):
        return ["S", [data_to_json(x) for x in c.data]]
    if isinstance(c, m.Array):
        return ["A", [data_to_json(x) for x in c.data]]
    tag = _SIMPLE.get(type(c))
    if tag is not None:
        return [tag, c.value]
    tag = _OCTETS.get(type(c))
    if tag is not None:
        return [tag, base64.b64encode(c.value).decode()]
    raise ValueError(f"no stored form for {type(c).__name__}")


def data_from_json(obj: Any) -> m.Data:
    tag, value = obj
    if tag == "B":
        return m.Data(choice=bool(value))
    if tag == "S":
        return m.Data(choice=m.Structure(data=[data_from_json(x) for x in value]))
    if tag == "A":
        return m.Data(choice=m.Array(data=[data_from_json(x) for x in value]))
    cls: Any = _BY_TAG[tag]
    if cls in _OCTETS:
        return m.Data(choice=cls(value=base64.b64decode(value)))
    return m.Data(choice=cls(value=value))


class LogStore:
    """The log entries in the sqlite file ``path`` (``":memory:"``: not persistent)."""

    def __init__(self, path: str | Path = ":memory:", max_entries: int = DEFAULT_MAX_ENTRIES):
        if max_entries < 1:
            raise ValueError("a log keeps at least one entry")
        self.max_entries = max_entries
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        # WAL + synchronous NORMAL: an entry survives a crash of the server process (not
        # necessarily a power cut) without an fsync per entry.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}

    def close(self) -> None:
        self._db.close()

    def add(self, log: str, time: float, values: list[tuple[str, m.Data, str]]) -> StoredEntry:
        content = json.dumps([[ref, data_to_json(d), reason] for ref, d, reason in values])
        with self._lock:
            entry_id = self._next.get(log)
            if entry_id is None:
                row = self._db.execute(
                    "SELECT MAX(entry_id) FROM log_entry WHERE log = ?", (log,)
                ).fetchone()
                entry_id = (row[0] or 0) + 1
            self._next[log] = entry_id + 1
            # one transaction (one WAL commit) for the entry and the trim of the oldest
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute(
                    "INSERT INTO log_entry (log, entry_id, time, content) VALUES (?, ?, ?, ?)",
                    (log, entry_id, time, content),
                )
                self._db.execute(
                    "DELETE FROM log_entry WHERE log = ? AND entry_id <= ?",
                    (log, entry_id - self.max_entries),
                )
        return StoredEntry(entry_id, time, values)

    def retain(self, logs: set[str] | frozenset[str] | list[str]) -> int:
        """Delete the entries of every log not in ``logs`` (logs dropped from the SCL);
        returns how many went."""
        keep = sorted(set(logs))
        marks = ",".join("?" * len(keep))
        with self._lock, self._db:
            self._db.execute("BEGIN")
            cur = self._db.execute(f"DELETE FROM log_entry WHERE log NOT IN ({marks})", keep)
            for log in [k for k in self._next if k not in keep]:
                del self._next[log]
            return cur.rowcount

    def status(self, log: str) -> tuple[StoredEntry | None, StoredEntry | None]:
        """The oldest and the newest entry of ``log`` (None when empty)."""
        with self._lock:
            rows = [
                self._db.execute(
                    f"SELECT entry_id, time, content FROM log_entry WHERE log = ?"
                    f" ORDER BY entry_id {order} LIMIT 1",
                    (log,),
                ).fetchone()
                for order in ("ASC", "DESC")
            ]
        old, new = (self._entry(r) if r else None for r in rows)
        return old, new

    def query(
        self,
        log: str,
        *,
        start: float | None = None,
        stop: float | None = None,
        after_entry: int | None = None,
        limit: int = 100,
    ) -> tuple[list[StoredEntry], bool]:
        """Entries with ``start <= time <= stop`` and ``entry_id > after_entry``, oldest
        first, at most ``limit``; and whether more follow."""
        sql = "SELECT entry_id, time, content FROM log_entry WHERE log = ?"
        args: list[Any] = [log]
        if start is not None:
            sql += " AND time >= ?"
            args.append(start)
        if stop is not None:
            sql += " AND time <= ?"
            args.append(stop)
        if after_entry is not None:
            sql += " AND entry_id > ?"
            args.append(after_entry)
        sql += " ORDER BY entry_id LIMIT ?"
        args.append(limit + 1)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [self._entry(r) for r in rows[:limit]], len(rows) > limit

    @staticmethod
    def _entry(row: tuple) -> StoredEntry:
        values = [(ref, data_from_json(d), reason) for ref, d, reason in json.loads(row[2])]
        return StoredEntry(row[0], row[1], values)
