"""The reporting services of a client association: Get/Set BRCB/URCB values, enabling a report
and the stream of typed reports. Mixed into :class:`~..client.ClientAssociation`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from ..client_protocol import ClientError, DataAccessFailed
from ..errors import InvalidArgument
from ..mmsdata import BitFlags
from .rcb import member_reference
from .report_pdu import Report, ReportError, is_report, parse_report

__all__ = ["ReportingMixin", "RCB_WRITE_ORDER", "set_cb_attributes"]

log = logging.getLogger(__name__)

#: The order a SetBRCBValues / SetURCBValues writes attributes in: the reservation first,
#: configuration next, the enable (and GI) last.
RCB_WRITE_ORDER = (
    "Resv", "ResvTms", "RptID", "DatSet", "OptFlds", "BufTm", "TrgOps", "IntgPd",
    "PurgeBuf", "EntryID", "RptEna", "GI",
)  # fmt: skip


def _fc(buffered: bool) -> str:
    return "BR" if buffered else "RP"


async def set_cb_attributes(
    association: Any, reference: str, fc: str, order: tuple[str, ...], attributes: dict[str, Any]
) -> dict[str, str | None]:
    """Set<CB>Values: write ``attributes`` of the control block ``reference`` one by one in
    ``order``; per attribute None (written) or the DataAccessError name."""
    unknown = set(attributes) - set(order)
    if unknown:
        raise InvalidArgument(f"not writable attributes of a {fc} block: {sorted(unknown)}")
    results: dict[str, str | None] = {}
    for name in order:
        if name not in attributes:
            continue
        value = attributes[name]
        if isinstance(value, BitFlags):
            value = value.to_bits()
        try:
            await association.set_data_values(f"{reference}.{name}", fc, value)
            results[name] = None
        except DataAccessFailed as exc:
            results[name] = exc.code
    return results


class ReportingMixin:
    """Needs ``get_data_values``, ``set_data_values`` and ``reports`` of the association."""

    async def get_brcb_values(self, reference: str) -> dict[str, Any]:
        """GetBRCBValues: every attribute of the BRCB ``LD/LN.name``."""
        return await self.get_data_values(reference, "BR")  # type: ignore[attr-defined]

    async def get_urcb_values(self, reference: str) -> dict[str, Any]:
        """GetURCBValues: every attribute of the URCB ``LD/LN.name``."""
        return await self.get_data_values(reference, "RP")  # type: ignore[attr-defined]

    async def set_brcb_values(self, reference: str, **attributes: Any) -> dict[str, str | None]:
        """SetBRCBValues: per attribute None (written) or the DataAccessError name."""
        return await self._set_rcb(reference, True, attributes)

    async def set_urcb_values(self, reference: str, **attributes: Any) -> dict[str, str | None]:
        """SetURCBValues: per attribute None (written) or the DataAccessError name."""
        return await self._set_rcb(reference, False, attributes)

    async def _set_rcb(
        self, reference: str, buffered: bool, attributes: dict[str, Any]
    ) -> dict[str, str | None]:
        return await set_cb_attributes(self, reference, _fc(buffered), RCB_WRITE_ORDER, attributes)

    async def enable_reporting(
        self, reference: str, *, buffered: bool, gi: bool = False, **attributes: Any
    ) -> dict[str, str | None]:
        """Configure (``attributes``) and enable an RCB, then ask for a GI when ``gi``.

        Raises :class:`~..client_protocol.DataAccessFailed` when the enable is refused."""
        attributes["RptEna"] = True
        if gi:
            attributes["GI"] = True
        results = await self._set_rcb(reference, buffered, attributes)
        code = results.get("RptEna")
        if code:
            raise DataAccessFailed(f"{reference}.RptEna", code)
        return results

    async def disable_reporting(self, reference: str, *, buffered: bool) -> None:
        await self.set_data_values(  # type: ignore[attr-defined]
            f"{reference}.RptEna", _fc(buffered), False
        )

    async def report_stream(self) -> AsyncIterator[Report]:
        """The reports of this association as typed :class:`Report` objects (other
        informationReports are skipped; so is a malformed report, with a log line).

        A report that names its data set (OptFlds data-set-name) but carries no data
        references gets them from the data set's directory (read once per data set)."""
        directories: dict[str, list[str]] = {}
        async for info in self.reports():  # type: ignore[attr-defined]
            if not is_report(info):
                continue
            try:
                report = parse_report(info)
            except ReportError as exc:
                log.warning("malformed report: %s", exc)
                continue
            if report.dat_set and any(v.reference is None for v in report.values):
                await self._fill_references(report, directories)
            yield report

    async def _fill_references(self, report: Report, directories: dict[str, list[str]]) -> None:
        name = report.dat_set or ""
        if name not in directories:
            if len(directories) >= 64:  # a server naming ever new data sets: bounded
                directories.clear()
            ld_ln, _, ds = name.rpartition("$")
            try:
                members = await self.get_data_set_directory(  # type: ignore[attr-defined]
                    f"{ld_ln}.{ds}"
                )
            except ClientError as exc:
                log.warning("no directory of data set %s: %s", name, exc)
                members = []
            directories[name] = [member_reference(ref, fc) for ref, fc in members]
        refs = directories[name]
        for v in report.values:
            if v.reference is None and v.index < len(refs):
                v.reference = refs[v.index]
