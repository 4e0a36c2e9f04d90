"""The log services of a client association: Get/Set LCB values, GetLogStatusValues,
QueryLogByTime and QueryLogAfter (readJournal, every page). Mixed into
:class:`~..client.ClientAssociation`."""

from __future__ import annotations

from typing import Any

from ..client_protocol import ClientError
from ..reporting.client_api import set_cb_attributes
from .journal import LogEntry, parse_journal_entry, read_journal_after, read_journal_by_time

__all__ = ["LoggingMixin", "LCB_WRITE_ORDER", "MAX_QUERY_ENTRIES"]

#: Configuration first, the enable last.
LCB_WRITE_ORDER = ("DatSet", "TrgOps", "IntgPd", "LogEna")
#: Entries one query collects at most unless the caller says otherwise.
MAX_QUERY_ENTRIES = 100_000
_STATUS = ("OldEntrTm", "NewEntrTm", "OldEnt", "NewEnt")


class LoggingMixin:
    """Needs ``request``, ``get_data_values`` and ``set_data_values`` of the association."""

    async def get_lcb_values(self, reference: str) -> dict[str, Any]:
        """GetLCBValues of ``LD/LN.name``."""
        return await self.get_data_values(reference, "LG")  # type: ignore[attr-defined]

    async def set_lcb_values(self, reference: str, **attributes: Any) -> dict[str, str | None]:
        """SetLCBValues: per attribute None (written) or the DataAccessError name."""
        return await set_cb_attributes(self, reference, "LG", LCB_WRITE_ORDER, attributes)

    async def get_log_status_values(self, lcb_reference: str) -> dict[str, Any]:
        """GetLogStatusValues: OldEntrTm, NewEntrTm, OldEnt, NewEnt of the LCB's log."""
        values = await self.get_lcb_values(lcb_reference)
        return {k: values[k] for k in _STATUS}

    async def query_log_by_time(
        self,
        log_ref: str,
        start: float,
        stop: float | None = None,
        *,
        max_entries: int = MAX_QUERY_ENTRIES,
    ) -> list[LogEntry]:
        """QueryLogByTime of ``LD/LN$LogName`` (seconds since 1970), every page."""
        return await self._pages(
            read_journal_by_time(log_ref, start, stop), log_ref, stop, max_entries
        )

    async def query_log_after(
        self,
        log_ref: str,
        start: float,
        entry_id: bytes,
        *,
        max_entries: int = MAX_QUERY_ENTRIES,
    ) -> list[LogEntry]:
        """QueryLogAfter: the entries after ``entry_id`` (whose time is ``start``)."""
        request = read_journal_after(log_ref, start, entry_id)
        return await self._pages(request, log_ref, None, max_entries)

    async def _pages(
        self, request: Any, log_ref: str, stop: float | None, max_entries: int
    ) -> list[LogEntry]:
        out: list[LogEntry] = []
        while True:
            response = await self.request(request)  # type: ignore[attr-defined]
            entries = [parse_journal_entry(e) for e in response.list_of_journal_entry.journal_entry]
            out += entries
            if len(out) > max_entries:
                raise ClientError(f"the log holds more than {max_entries} entries in range")
            if not response.more_follows or not entries:
                return out
            last = entries[-1]
            request = read_journal_after(log_ref, last.time.to_float(), last.entry_id, stop)
