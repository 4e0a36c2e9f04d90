"""Logs of IEC 61850-7-2 / 8-1 over 8-2: log control blocks and readJournal (:mod:`.lcb`),
the persistent store (:mod:`.store`) and journal entries both ways (:mod:`.journal`)."""

from .journal import LogEntry, LoggedValue
from .lcb import LogEngine
from .store import LogStore

__all__ = ["LogEngine", "LogStore", "LogEntry", "LoggedValue"]
