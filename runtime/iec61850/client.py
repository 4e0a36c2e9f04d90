"""The asyncio client of IEC 61850-8-2: associate with an IED over XMPP and use its services.

::

    async with Client(XmppSettings(jid="ops@dso.example", password=..., ca_file=...,
                                   host="127.0.0.1", port=5222)) as client:
        ied = await client.associate("feeder7@dso.example/IEC")
        print(await ied.get_logical_device_directory("FDR1LD0"))
        print(await ied.get_data_values("FDR1MEAS/MMXU1.TotW.mag.f", "MX"))
        await ied.set_data_values("FDR1LD0/GGIO1.Ind1.d", "DC", "feeder 7 breaker")
        async for report in ied.reports():   # informationReports the server sends
            ...
        await ied.conclude()

References are ACSI ObjectReferences (``LD/LN.DO.DA``) with a functional constraint. Values are
Python values (see :mod:`gridbind.iec61850.model`); structures come back as dicts named after the
server's type description (fetched once per reference and cached). :meth:`ClientAssociation.
request` sends any typed ``ConfirmedServiceRequest`` (built with :mod:`gridbind.iec61850.mms`)
and returns the typed response.

This is the asyncio shell of the sans-IO :class:`~.client_protocol.ClientProtocol`, on the
slixmpp adapter (from ``settings``) or any transport of that shape (``transport=``, e.g. an
endpoint of :class:`~gridbind.iec61850.memory.MemoryNetwork`).

Errors: :class:`ServiceFailed` (a confirmed-ErrorPDU), :class:`DataAccessFailed` (a per-item
failure of a read or write), :class:`RequestRejected` (a rejectPDU), :class:`AssociationAborted`,
and the transport's :class:`~.stanza.StanzaError` / :class:`~.stanza.RequestTimeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850.errors import InvalidArgument

from . import codec as _codec
from . import mms
from .association import (
    CONFIRMED_SERVICES,
    Association,
    AssociationCore,
    AssociationEnded,
    InitiateParams,
)
from .client_protocol import (
    AssociationAborted,
    ClientError,
    ClientProtocol,
    DataAccessFailed,
    ReportReceived,
    RequestRejected,
    ServiceFailed,
)
from .control.client import ControlClient, ControlOutcome
from .e2e.layer import E2EEnvelopes
from .envelope import ClearContext, EnvelopeFactory
from .liveness import DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT, PeerLiveness, Ping
from .logs.client_api import LoggingMixin
from .mmsdata import floating_point_octets, floating_point_value
from .model import Timestamp
from .protocol import Call, ErrorReply, Reply, Send, Transport
from .references import parse_reference
from .reporting.client_api import ReportingMixin
from .services.mmsview import (
    binary_time_octets,
    td_kind,
    timestamp_octets,
    timestamp_of_binary_time,
)
from .stanza import StanzaError, XmppError
from .xmpp import IecXmpp, XmppSettings

__all__ = [
    "Client",
    "ClientAssociation",
    "ClientError",
    "ServiceFailed",
    "DataAccessFailed",
    "RequestRejected",
    "AssociationAborted",
    "mms_name",
    "dataset_name",
    "reference_of",
    "to_python",
    "from_python",
    "MAX_QUEUED_REPORTS",
]

log = logging.getLogger(__name__)

#: informationReports kept per association until read (the oldest is dropped beyond).
MAX_QUEUED_REPORTS = 1024

_GATE: _codec.Codec | None = None


def _gate() -> _codec.Codec:
    global _GATE
    if _GATE is None:
        # Answers may carry whole files and data sets: a larger bound than requests get.
        _GATE = _codec.Codec(_codec.Limits(max_bytes=4 << 20))
    return _GATE


@functools.lru_cache(maxsize=4096)  # pure and hot (every read/write): parse a reference once
def mms_name(reference: str, fc: str | None = None) -> tuple:
    """``LD/LN[.DO.DA]`` + FC -> key ``("domain-specific", LD, "LN$FC$DO$DA")``.

    ``LD/LN.DO.arr(3)`` names one element of an array attribute (alternateAccess index 3, a
    fourth item of the key). Syntax and length limits are checked by
    :func:`gridbind.iec61850.references.parse_reference` (a ``ValueError``); the FC is left to
    the server to judge, so that FC ``XX`` gets its answer.
    """
    ref = parse_reference(reference)
    indexes = [i for i, (_, index) in enumerate(ref.path) if index is not None]
    if indexes and indexes != [len(ref.path) - 1]:
        raise InvalidArgument(f"{reference}: only the last element may carry an array index")
    names = [name for name, _ in ref.path]
    if names and not fc:
        raise InvalidArgument("a data reference needs a functional constraint")
    item = "$".join([ref.ln, *([fc] if fc else []), *names])
    if len(item) > 64:
        raise InvalidArgument(f"itemId of {len(item)} characters exceeds 64")
    if indexes:
        return ("domain-specific", ref.ld, item, ref.path[-1][1])
    return ("domain-specific", ref.ld, item)


def _variable(key: tuple) -> m.VariableDefs.Sequence:
    return mms.variable(mms.dom(key[1], key[2]), key[3] if len(key) == 4 else None)


def dataset_name(reference: str) -> m.ObjectName:
    """``LD/LN.DS`` (persistent) or ``@DS`` (this association only) -> ObjectName."""
    if reference.startswith("@"):
        return mms.aa(reference[1:])
    ld, sep, rest = reference.partition("/")
    ln, dot, ds = rest.partition(".")
    if not sep or not dot or not ld or not ln or not ds:
        raise InvalidArgument(f"not a data set reference: {reference!r}")
    return mms.dom(ld, f"{ln}${ds}")


def reference_of(name: m.ObjectName) -> tuple[str, str]:
    """Domain-specific ObjectName -> (``LD/LN.DO.DA``, FC)."""
    _, ld, item = mms.name_key(name)
    parts = item.split("$")
    ref = f"{ld}/{parts[0]}"
    if len(parts) > 2:
        ref += "." + ".".join(parts[2:])
    return ref, parts[1] if len(parts) > 1 else ""


_Spec = m.ObjectName | m.TypeDescription | None  # a TypeSpecification's alternatives


def _components(struct: m.TypeDescription.Structure) -> list[tuple[str, _Spec]]:
    return [
        (seq.component_name or "", seq.component_type.choice) for seq in struct.components.sequence
    ]


def _described(spec: _Spec) -> m.TypeDescription:
    """The type description of a component or element; a type given by name is refused."""
    if not isinstance(spec, m.TypeDescription):
        raise ClientError("a type given by name (typeName) is not supported")
    return spec


def _optional(spec: _Spec) -> m.TypeDescription | None:
    """For decoding: a type given by name reads as untyped (lists, not dicts)."""
    return spec if isinstance(spec, m.TypeDescription) else None


def to_python(data: m.Data, td: m.TypeDescription | None = None) -> Any:
    """Data -> Python value; structures become dicts when a type description names them."""
    choice = data.choice
    if isinstance(choice, m.Structure):
        if td is not None and isinstance(td.choice, m.TypeDescription.Structure):
            comps = _components(td.choice)
            if len(comps) == len(choice.data):
                return {
                    name: to_python(d, _optional(sub))
                    for (name, sub), d in zip(comps, choice.data, strict=True)
                }
        return [to_python(d) for d in choice.data]
    if isinstance(choice, m.Array):
        sub = None
        if td is not None and isinstance(td.choice, m.TypeDescription.Array):
            sub = _optional(td.choice.element_type.choice)
        return [to_python(d, sub) for d in choice.data]
    if isinstance(choice, bool):
        return choice
    if isinstance(choice, m.Data.FloatingPoint):
        return floating_point_value(choice.value)
    if isinstance(choice, m.Data.UtcTime):
        return Timestamp.from_octets(choice.value)
    if isinstance(choice, m.Data.BinaryTime):
        return timestamp_of_binary_time(choice.value)
    if choice is None:
        raise ClientError("Data without a value")
    return choice.value


def from_python(value: Any, td: m.TypeDescription) -> m.Data:
    """Python value -> Data of type ``td`` (raises ``TypeError``/``ValueError`` on mismatch)."""
    kind = td_kind(td)
    desc = td.choice
    if isinstance(desc, m.TypeDescription.Structure):
        comps = _components(desc)
        if isinstance(value, dict):
            missing = [n for n, _ in comps if n not in value]
            extra = set(value) - {n for n, _ in comps}
            if missing or extra:
                raise InvalidArgument(f"structure needs exactly {[n for n, _ in comps]}")
            items = [from_python(value[n], _described(sub)) for n, sub in comps]
        else:
            values = list(value)
            if len(values) != len(comps):
                raise InvalidArgument(f"structure of {len(comps)} components")
            items = [
                from_python(v, _described(sub)) for v, (_, sub) in zip(values, comps, strict=True)
            ]
        return m.Data(choice=m.Structure(data=items))
    if isinstance(desc, m.TypeDescription.Array):
        element = _described(desc.element_type.choice)
        return m.Data(choice=m.Array(data=[from_python(v, element) for v in value]))
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidArgument("expected a bool")
        return m.Data(choice=value)
    if kind in ("integer", "unsigned"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"expected an int for {kind}")
        cls = m.Data.Integer if kind == "integer" else m.Data.Unsigned
        return m.Data(choice=cls(value=value))
    if isinstance(desc, m.TypeDescription.FloatingPoint):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArgument("expected a number")
        width = 32 if desc.format_width == 32 else 64
        return m.Data(choice=m.Data.FloatingPoint(value=floating_point_octets(value, width)))
    if kind == "bit-string":
        if not isinstance(value, str) or value.strip("01"):
            raise InvalidArgument("expected a bit string of 0/1 characters")
        return m.Data(choice=m.Data.BitString(value=value))
    if kind == "octet-string":
        return m.Data(choice=m.Data.OctetString(value=bytes(value)))
    if kind in ("visible-string", "mMSString"):
        if not isinstance(value, str):
            raise InvalidArgument("expected a str")
        text = m.Data.VisibleString if kind == "visible-string" else m.Data.MmsString
        return m.Data(choice=text(value=value))
    if kind in ("utc-time", "binary-time"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = Timestamp.from_float(float(value))
        if not isinstance(value, Timestamp):
            raise InvalidArgument("expected a Timestamp or seconds")
        if kind == "utc-time":
            return m.Data(choice=m.Data.UtcTime(value=timestamp_octets(value)))
        return m.Data(choice=m.Data.BinaryTime(value=binary_time_octets(value)))
    raise InvalidArgument(f"unknown type {kind}")


def _failure_code(result: m.AccessResult) -> str | None:
    choice = result.choice
    return mms.name_of(choice) if isinstance(choice, m.DataAccessError) else None


class ClientAssociation(ReportingMixin, LoggingMixin):
    """One association with an IED; every ACSI method is a coroutine."""

    def __init__(self, client: Client, assoc: Association) -> None:
        self.client = client
        self.assoc = assoc
        self._slots = asyncio.Semaphore(max(1, assoc.params.max_outstanding_calling))
        self._types: dict[tuple[str, str], m.TypeDescription] = {}
        self._inflight: set[asyncio.Task] = set()
        self._aborted: set[asyncio.Task] = set()
        self._reports: asyncio.Queue[m.InformationReport | None] = asyncio.Queue()
        #: informationReports dropped because nobody read them (beyond MAX_QUEUED_REPORTS).
        self.dropped_reports = 0
        #: getNameList, or extendedGetNameList (8-2) when the server offers it and it is chosen.
        self.name_service = "getNameList"
        #: The control services (LastApplError and CommandTermination reports go there).
        self.controls = ControlClient(self, from_python, mms_name)

    @property
    def peer(self) -> str:
        return self.assoc.peer

    @property
    def id(self) -> str:
        return self.assoc.id

    @property
    def params(self) -> InitiateParams:
        return self.assoc.params

    @property
    def open(self) -> bool:
        return self.assoc.open

    # ---------------------------------------------------------------- plumbing
    async def request(
        self, request: m.ConfirmedServiceRequest, *, timeout: float | None = None
    ) -> Any:
        """Send one confirmed request (see :mod:`.mms`); returns the typed response
        (``ReadResponse``, ``WriteResponse``, ...)."""
        proto = self.client.protocol
        proto.check_open(self.assoc)
        async with self._slots:
            call = proto.call(self.assoc, request, time.time())
            answer = await self._send(call, timeout)
            try:
                return proto.result(self.assoc, call, answer, time.time())
            finally:
                if proto.events or proto.core.events:  # e.g. an E2E abort to send
                    self.client._flush()

    async def _send(self, call: Call, timeout: float | None) -> Any:
        # The waiting task is registered so that the association's end can stop it at once
        # (no second task per request: the hot path of every service).
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            answer = await self.client.transport.request(
                call.to, call.iq_type, call.payload, timeout
            )
            self.client.protocol.heard(self.assoc.peer, time.monotonic())
            return answer
        except asyncio.CancelledError:
            self.client.protocol.abandon(self.assoc, call)
            if task in self._aborted:  # cancelled by _ended(), not by the caller
                task.uncancel()
                raise AssociationAborted(self._ended_text("ended during a request")) from None
            raise
        except XmppError as exc:
            if not self.assoc.open and not isinstance(exc, StanzaError):
                self.client.protocol.abandon(self.assoc, call)
                raise AssociationAborted(self._ended_text(f"ended: {exc}")) from None
            return exc
        except Exception:  # e.g. the codec refusing to encode the request: nothing was sent
            self.client.protocol.abandon(self.assoc, call)
            raise
        finally:
            self._inflight.discard(task)
            self._aborted.discard(task)

    def _ended_text(self, what: str) -> str:
        reason = self.client.protocol.ended_reason(self.assoc)
        return f"association {self.id} with {self.peer} {what}" + (f": {reason}" if reason else "")

    def _ended(self) -> None:
        """The association ended: fail every request still waiting, end the report stream."""
        for task in list(self._inflight):
            self._aborted.add(task)
            task.cancel()
        self._reports.put_nowait(None)
        self.controls.ended()

    def _report(self, report: m.InformationReport) -> None:
        if self.controls.take(report):
            return
        if self._reports.qsize() >= MAX_QUEUED_REPORTS:
            self._reports.get_nowait()
            self.dropped_reports += 1
        self._reports.put_nowait(report)

    async def reports(self) -> AsyncIterator[m.InformationReport]:
        """The informationReports of this association as they arrive, until the association
        ends (LastApplError and CommandTermination go to :attr:`controls` instead)."""
        while True:
            report = await self._reports.get()
            if report is None:
                self._reports.put_nowait(None)  # the end stays visible to other readers
                return
            yield report

    async def conclude(self) -> None:
        """Release the association (conclude)."""
        if not self.assoc.open:
            return
        proto = self.client.protocol
        call = proto.conclude(self.assoc, time.time())
        answer = await self.client.transport.request(call.to, call.iq_type, call.payload)
        release = proto.concluded(self.assoc, answer, time.time())
        self.client._flush()
        if release is not None:  # E2E: the signed ReleaseReq/ReleaseRsp end it
            answer = await self.client.transport.request(
                release.to, release.iq_type, release.payload
            )
            proto.released(release, answer, time.time())

    async def __aenter__(self) -> ClientAssociation:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.assoc.open and self.client.transport.connected:
            await self.conclude()

    # ---------------------------------------------------------------- directories
    async def _names(self, object_class: str, scope: str, domain: str | None) -> list[str]:
        names: list[str] = []
        after = None
        service = self.name_service
        for _ in range(100000):
            response = await self.request(
                mms.get_name_list(object_class, scope, domain, after, service=service)
            )
            got = response.list_of_identifier.identifier
            more = True if response.more_follows is None else response.more_follows
            names += got
            if not more or not got:
                return names
            after = got[-1]
        raise ClientError("name list paging does not end")

    async def get_server_directory(self, object_class: str = "LD") -> list[str]:
        """GetServerDirectory: logical device names (``LD``) or file names (``FILE``)."""
        if object_class == "FILE":
            return [e["name"] for e in await self.list_files()]
        return await self._names("domain", "vmdSpecific", None)

    async def get_logical_device_directory(self, ld: str) -> list[str]:
        """GetLogicalDeviceDirectory: the LN names of ``ld``."""
        return [n for n in await self._names("namedVariable", "domainSpecific", ld) if "$" not in n]

    async def get_logical_node_directory(self, ln_ref: str, acsi_class: str = "DATA") -> list[str]:
        """GetLogicalNodeDirectory: names of data (``DATA``), data sets (``DATA-SET``) or control
        blocks (``BRCB``, ``URCB``, ``LCB``, ``GoCB``, ``MSVCB``, ``SGCB``) or logs (``LOG``) of one
        LN."""
        ld, _, ln = ln_ref.partition("/")
        if acsi_class == "DATA-SET":
            if ln not in await self.get_logical_device_directory(ld):
                raise ServiceFailed("getNameList", ("access", "object-non-existent", ln_ref))
            lists = await self._names("namedVariableList", "domainSpecific", ld)
            return [n.split("$", 1)[1] for n in lists if n.split("$", 1)[0] == ln]
        if acsi_class == "LOG":  # the journals (logs) of the LN
            if ln not in await self.get_logical_device_directory(ld):
                raise ServiceFailed("getNameList", ("access", "object-non-existent", ln_ref))
            logs = await self._names("journal", "domainSpecific", ld)
            return [n.split("$", 1)[1] for n in logs if n.split("$", 1)[0] == ln]
        fc_of = {"BRCB": "BR", "URCB": "RP", "LCB": "LG", "GoCB": "GO", "MSVCB": "MS"}
        if acsi_class not in fc_of and acsi_class not in ("DATA", "SGCB"):
            raise InvalidArgument(f"unknown ACSI class {acsi_class!r}")
        names = await self._names("namedVariable", "domainSpecific", ld)
        if ln not in names:
            raise ServiceFailed("getNameList", ("access", "object-non-existent", ln_ref))
        out: list[str] = []
        for name in names:
            parts = name.split("$")
            if parts[0] != ln or len(parts) != 3:
                continue
            if acsi_class == "DATA" and parts[1] not in ("BR", "RP", "LG", "GO", "MS"):
                if parts[1] == "SP" and parts[2] == "SGCB":
                    continue
                if parts[2] not in out:
                    out.append(parts[2])
            elif acsi_class == "SGCB" and parts[1] == "SP" and parts[2] == "SGCB":
                out.append(parts[2])
            elif fc_of.get(acsi_class) == parts[1]:
                out.append(parts[2])
        return sorted(out)

    async def get_data_definition(self, reference: str, fc: str) -> m.TypeDescription:
        """GetDataDefinition: the MMS type description of ``reference`` in ``fc`` (cached)."""
        key = (reference, fc)
        if key not in self._types:
            name = mms_name(reference, fc)
            if len(name) == 4:  # an array element: the element type of the array
                td = await self.get_data_definition(reference[: reference.rindex("(")], fc)
                if not isinstance(td.choice, m.TypeDescription.Array):
                    raise InvalidArgument(f"{reference}: not an array")
                td = _described(td.choice.element_type.choice)
            else:
                response = await self.request(
                    mms.get_variable_access_attributes(mms.dom(name[1], name[2]))
                )
                td = response.type_description
            self._types[key] = td
        return self._types[key]

    async def get_data_directory(self, reference: str, fc: str | None = None) -> list[str]:
        """GetDataDirectory: component names of a data object (all FCs, or one)."""
        ld, _, rest = reference.partition("/")
        ln, _, path = rest.partition(".")
        if fc is not None:
            td = await self.get_data_definition(reference, fc)
            struct = td.choice
            if not isinstance(struct, m.TypeDescription.Structure):
                return []
            return [n for n, _ in _components(struct)]
        seen: list[str] = []
        names = await self._names("namedVariable", "domainSpecific", ld)
        want = path.split(".")
        depth = 2 + len(want)
        exists = False
        for name in names:
            parts = name.split("$")
            if parts[0] != ln or parts[2:depth] != want:
                continue
            exists = True
            if len(parts) == depth + 1 and parts[-1] not in seen:
                seen.append(parts[-1])
        if not exists:
            raise ServiceFailed("getNameList", ("access", "object-non-existent", reference))
        return sorted(seen)

    async def browse(self) -> dict[str, Any]:
        """The server's model as a tree ``{LD: {LN: {FC: {DO: ...}}}}`` from its name lists."""
        tree: dict[str, Any] = {}
        for ld in await self.get_server_directory():
            ld_tree: dict[str, Any] = {}
            for name in await self._names("namedVariable", "domainSpecific", ld):
                node = ld_tree
                for part in name.split("$"):
                    node = node.setdefault(part, {})
            tree[ld] = ld_tree
        return tree

    # ---------------------------------------------------------------- values
    async def get_data_values(self, reference: str, fc: str) -> Any:
        """GetDataValues of one FCD/FCDA: a Python value (dict for a structure)."""
        td = await self.get_data_definition(reference, fc)
        response = await self.request(mms.read(_variable(mms_name(reference, fc))))
        return self._value(reference, response, td)

    @staticmethod
    def _value(reference: str, response: m.ReadResponse, td: m.TypeDescription | None) -> Any:
        results = response.list_of_access_result.access_result
        if len(results) != 1:
            raise ClientError(f"{len(results)} results for one variable")
        choice = results[0].choice
        if isinstance(choice, m.DataAccessError):
            raise DataAccessFailed(reference, mms.name_of(choice))
        if choice is None:
            raise ClientError("an access result without data")
        return to_python(choice, td)

    async def get_all_data_values(self, ln_ref: str, fc: str | None = None) -> dict[str, Any]:
        """GetAllDataValues of an LN: ``{FC: {DO: ...}}`` (or ``{DO: ...}`` for one FC)."""
        if fc is not None:
            return await self.get_data_values(ln_ref, fc)
        ld, _, ln = ln_ref.partition("/")
        key = (ln_ref, "")
        if key not in self._types:
            response = await self.request(mms.get_variable_access_attributes(mms.dom(ld, ln)))
            self._types[key] = response.type_description
        response = await self.request(mms.read(mms.dom(ld, ln)))
        return self._value(ln_ref, response, self._types[key])

    async def set_data_values(self, reference: str, fc: str, value: Any) -> None:
        """SetDataValues of one FCD/FCDA (raises :class:`DataAccessFailed` when refused)."""
        td = await self.get_data_definition(reference, fc)
        data = from_python(value, td)
        response = await self.request(mms.write([_variable(mms_name(reference, fc))], [data]))
        results = mms.write_results(response)
        if len(results) != 1:
            raise ClientError(f"{len(results)} write results for one variable")
        if results[0] is not None:
            raise DataAccessFailed(reference, results[0])

    # ---------------------------------------------------------------- data sets
    async def get_data_set_directory(self, ds_ref: str) -> list[tuple[str, str]]:
        """GetDataSetDirectory: members as (reference, FC)."""
        response = await self.request(mms.get_named_variable_list_attributes(dataset_name(ds_ref)))
        return [reference_of(name) for name in mms.var_def_names(response.list_of_variable)]

    async def get_data_set_values(self, ds_ref: str) -> list[Any]:
        """GetDataSetValues: one value per member (a :class:`DataAccessFailed` for a failure)."""
        members = await self.get_data_set_directory(ds_ref)
        tds = [await self.get_data_definition(ref, fc) for ref, fc in members]
        response = await self.request(mms.read_list(dataset_name(ds_ref)))
        out: list[Any] = []
        for (ref, _), td, result in zip(
            members, tds, response.list_of_access_result.access_result, strict=False
        ):
            code = _failure_code(result)
            out.append(DataAccessFailed(ref, code) if code else to_python(result.choice, td))
        return out

    async def set_data_set_values(self, ds_ref: str, values: list[Any]) -> list[str | None]:
        """SetDataSetValues: per-member result (None = success, else a DataAccessError name)."""
        members = await self.get_data_set_directory(ds_ref)
        if len(values) != len(members):
            raise InvalidArgument(f"{ds_ref} has {len(members)} members")
        datas = [
            from_python(v, await self.get_data_definition(ref, fc))
            for v, (ref, fc) in zip(values, members, strict=True)
        ]
        return mms.write_results(await self.request(mms.write(dataset_name(ds_ref), datas)))

    async def create_data_set(self, ds_ref: str, members: Iterable[tuple[str, str]]) -> None:
        """CreateDataSet: ``LD/LN.DS`` is persistent, ``@DS`` lives as long as the association."""
        await self.request(
            mms.define_named_variable_list(
                dataset_name(ds_ref), [_variable(mms_name(ref, fc)) for ref, fc in members]
            )
        )

    async def delete_data_set(self, ds_ref: str) -> None:
        """DeleteDataSet (raises :class:`ServiceFailed` when it was not deleted)."""
        response = await self.request(mms.delete_named_variable_list([dataset_name(ds_ref)]))
        matched, deleted = response.number_matched, response.number_deleted
        if not matched:
            raise ServiceFailed(
                "deleteNamedVariableList", ("access", "object-non-existent", ds_ref)
            )
        if not deleted:
            raise ServiceFailed(
                "deleteNamedVariableList", ("access", "object-access-denied", f"{ds_ref} kept")
            )

    # ---------------------------------------------------------------- setting groups
    async def get_sgcb_values(self, ld: str) -> dict[str, Any]:
        """GetSGCBValues: NumOfSG, ActSG, EditSG, CnfEdit, LActTm."""
        return await self.get_data_values(f"{ld}/LLN0.SGCB", "SP")

    async def select_active_sg(self, ld: str, group: int) -> None:
        await self.set_data_values(f"{ld}/LLN0.SGCB.ActSG", "SP", group)

    async def select_edit_sg(self, ld: str, group: int) -> None:
        await self.set_data_values(f"{ld}/LLN0.SGCB.EditSG", "SP", group)

    async def set_edit_sg_value(self, reference: str, value: Any) -> None:
        await self.set_data_values(reference, "SE", value)

    async def get_edit_sg_value(self, reference: str) -> Any:
        return await self.get_data_values(reference, "SE")

    async def confirm_edit_sg_values(self, ld: str) -> None:
        await self.set_data_values(f"{ld}/LLN0.SGCB.CnfEdit", "SP", True)

    # ---------------------------------------------------------------- GoCB / MSVCB
    async def get_gocb_values(self, reference: str) -> dict[str, Any]:
        return await self.get_data_values(reference, "GO")

    async def set_gocb_values(self, reference: str, **attributes: Any) -> None:
        for name, value in attributes.items():
            await self.set_data_values(f"{reference}.{name}", "GO", value)

    async def get_msvcb_values(self, reference: str) -> dict[str, Any]:
        return await self.get_data_values(reference, "MS")

    async def set_msvcb_values(self, reference: str, **attributes: Any) -> None:
        for name, value in attributes.items():
            await self.set_data_values(f"{reference}.{name}", "MS", value)

    # ---------------------------------------------------------------- controls
    async def operate(self, reference: str, value: Any, **kw: Any) -> ControlOutcome:
        """Operate ``LD/LN.DO`` (see :meth:`.control.client.ControlClient.operate`)."""
        return await self.controls.operate(reference, value, **kw)

    async def select(self, reference: str) -> ControlOutcome:
        """Select (read of ``$SBO``, sbo-with-normal-security)."""
        return await self.controls.select(reference)

    async def select_with_value(self, reference: str, value: Any, **kw: Any) -> ControlOutcome:
        """SelectWithValue (write of ``$SBOw``, sbo-with-enhanced-security)."""
        return await self.controls.select_with_value(reference, value, **kw)

    async def cancel(self, reference: str, value: Any, **kw: Any) -> ControlOutcome:
        """Cancel (write of ``$Cancel``)."""
        return await self.controls.cancel(reference, value, **kw)

    # ---------------------------------------------------------------- files
    async def list_files(self, spec: str | None = None) -> list[dict[str, Any]]:
        """GetServerDirectory(FILE): ``[{"name", "size", "modified"}]`` (all pages)."""
        out: list[dict[str, Any]] = []
        after: list[str] | None = None
        while True:
            response = await self.request(mms.file_directory(spec, after))
            entries = response.list_of_directory_entry.directory_entry
            out += [_entry(e) for e in entries]
            if not response.more_follows or not entries:
                return out
            after = mms.segments(entries[-1].file_name)

    async def get_file_attribute_values(self, name: str) -> dict[str, Any]:
        response = await self.request(mms.file_directory(name))
        entries = response.list_of_directory_entry.directory_entry
        if len(entries) != 1:
            raise ServiceFailed("fileDirectory", ("file", "file-non-existent", name))
        return _entry(entries[0])

    async def get_file(self, name: str) -> bytes:
        """GetFile: fileOpen, fileRead until no more follows, fileClose."""
        frsm = (await self.request(mms.file_open(name))).frsm_id
        chunks: list[bytes] = []
        try:
            while True:
                response = await self.request(mms.file_read(frsm))
                chunks.append(response.file_data)
                if response.more_follows is False or not response.file_data:
                    break
        finally:
            if self.assoc.open:
                await self.request(mms.file_close(frsm))
        return b"".join(chunks)

    async def delete_file(self, name: str) -> None:
        await self.request(mms.file_delete(name))

    async def set_file(self, name: str, data: bytes, *, timeout: float = 60.0) -> None:
        """SetFile: offer ``data`` and ask the server to obtain it as ``name`` (obtainFile);
        the server reads it back with fileOpen/fileRead/fileClose in this association."""
        proto = self.client.protocol
        source = proto.offer(self.assoc, bytes(data))
        try:
            await self.request(mms.obtain_file([source], name), timeout=timeout)
        finally:
            # A server that opened the offer and never closed it must not keep the data alive.
            proto.withdraw(self.assoc, source)


def _entry(entry: m.DirectoryEntry) -> dict[str, Any]:
    return {
        "name": "/".join(mms.segments(entry.file_name)),
        "size": entry.file_attributes.size_of_file,
        "modified": entry.file_attributes.last_modified,
    }


class Client:
    """An 8-2 client application: one XMPP session (or ``transport``), any number of
    associations.

    Peer liveness: while its associations with an IED are idle, the client pings the IED's full
    JID (XEP-0199) every ``peer_ping_interval`` seconds (jittered; None: never) and aborts them
    when no answer comes within ``peer_ping_timeout`` or the XMPP server answers that the IED
    cannot be reached (see :mod:`.liveness`), as the IED's ``unavailable`` presence would.
    """

    def __init__(
        self,
        settings: XmppSettings | None = None,
        *,
        transport: Transport | None = None,
        max_pdu_size: int = 65000,
        max_outstanding: int = 16,
        nesting_level: int = 10,
        services: frozenset[str] = frozenset(CONFIRMED_SERVICES),
        envelopes: EnvelopeFactory = ClearContext,
        e2e: Any = None,
        peer_ping_interval: float | None = DEFAULT_PING_INTERVAL,
        peer_ping_timeout: float = DEFAULT_PING_TIMEOUT,
    ) -> None:
        if e2e is not None:  # an E2EConfig / E2EPolicy: IEC 62351-4 per peer
            envelopes = E2EEnvelopes(e2e)
        self.protocol = ClientProtocol(
            InitiateParams(
                max_pdu_size=max_pdu_size,
                max_outstanding_calling=max_outstanding,
                max_outstanding_called=max_outstanding,
                nesting_level=nesting_level,
                services=services,
            ),
            envelopes=envelopes,
            liveness=PeerLiveness(peer_ping_interval, peer_ping_timeout),
        )
        if transport is None:
            if settings is None:
                raise InvalidArgument("Client needs XMPP settings or a transport")
            transport = IecXmpp(settings)
        self.transport: Any = transport
        transport.set_handlers(
            self._on_inbound,
            on_peer_unavailable=self._peer_unavailable,
            on_link_lost=self._link_lost,
            gate=_gate(),
        )
        self._sessions: dict[tuple[str, str], ClientAssociation] = {}
        if hasattr(transport, "on_answer"):  # E2E opens answers in arrival order
            transport.on_answer = self._on_answer
        if hasattr(transport, "on_resumed"):
            transport.on_resumed = self._link_resumed
        # The liveness timer: one task re-armed from the core's next deadline, woken early when
        # an association starts or a ping is answered; one task per ping in flight.
        self._timer: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._pings: set[asyncio.Task] = set()

    @property
    def xmpp(self) -> Any:
        """The transport (named for the XMPP adapter it usually is)."""
        return self.transport

    @property
    def core(self) -> AssociationCore:
        return self.protocol.core

    async def connect(self) -> None:
        await self.transport.start()
        if self.protocol.liveness.enabled and self._timer is None:
            self._timer = asyncio.get_running_loop().create_task(self._watch_peers())

    async def _watch_peers(self) -> None:
        proto = self.protocol
        # (not ``while True``: asyncio.wait_for of Python 3.11 swallows a cancellation that
        # comes as the wake-up completes, e.g. close() right after associate())
        while self._timer is asyncio.current_task():
            pause = 0.0  # after a failure: no busy loop on a deadline left in the past
            try:
                for ping in proto.tick(time.monotonic(), link_up=self.transport.connected):
                    task = asyncio.get_running_loop().create_task(self._ping(ping))
                    self._pings.add(task)
                    task.add_done_callback(self._pings.discard)
                self._flush()
            except Exception:  # noqa: BLE001 - the timer must outlive a failing handler
                log.exception("peer liveness timer")
                pause = 1.0
            deadline = proto.next_deadline()
            self._wake.clear()
            delay = None if deadline is None else max(pause, deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _ping(self, ping: Ping) -> None:
        error: BaseException | None = None
        try:
            # The core's deadline decides; the transport's own time-out only backs it up.
            if ping.probe:
                await self._probe(ping.peer, self.protocol.liveness.timeout + 1.0)
            else:
                await self.transport.ping(ping.peer, self.protocol.liveness.timeout + 1.0)
        except Exception as exc:  # noqa: BLE001 - judged by the core (XmppError) or logged
            if not isinstance(exc, XmppError):
                log.warning("ping of %s failed: %r", ping.peer, exc)
            error = exc
        self.protocol.ping_answered(ping, error, time.monotonic())
        self._flush()
        self._wake.set()

    async def _probe(self, peer: str, timeout: float) -> None:
        """An 8-2 request the peer must answer (one getNameList page, in an association with
        it): any 8-2 answer, even an error, shows it alive; the XMPP failure is raised."""
        session = next(
            (s for s in self._sessions.values() if s.assoc.peer == peer and s.assoc.open), None
        )
        if session is None:
            return  # no association left to ask in: nothing to judge
        request = mms.get_name_list("domain", "vmdSpecific", service=session.name_service)
        try:
            await session.request(request, timeout=timeout)
        except XmppError:
            raise
        except ClientError:
            pass  # an 8-2 answer (ServiceFailed, RequestRejected...): the IED is there

    def _link_resumed(self) -> None:
        # Our own link was down (however briefly, maybe between two runs of the timer): a ping
        # in flight meanwhile says nothing of the peer; every peer gets a fresh idle period.
        self.protocol.link_resumed(time.monotonic())
        self._wake.set()

    async def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        tasks = [*self._pings, *([timer] if timer is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self, conclude_timeout: float = 3.0) -> None:
        """Conclude open associations (bounded by ``conclude_timeout``) and leave."""
        await self._stop_timer()

        async def conclude(session: ClientAssociation) -> None:
            try:
                await session.conclude()
            except (ClientError, XmppError) as exc:
                log.info("conclude of %s failed: %s", session.id, exc)

        if self.transport.connected:
            open_sessions = [s for s in self._sessions.values() if s.assoc.open]
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(conclude(s) for s in open_sessions)), conclude_timeout
                )
            except TimeoutError:
                log.info("conclude did not finish within %s s", conclude_timeout)
        self.protocol.link_lost("client closed")
        self._flush()
        await self.transport.close()

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def associate(self, server_jid: str, *, timeout: float = 10.0) -> ClientAssociation:
        """Initiate an association with ``server_jid`` (a full JID, resource ``IEC``)."""
        if "/" not in server_jid:
            server_jid += "/IEC"
        call = self.protocol.initiate(server_jid, time.time())
        self.transport.track_peer(server_jid)
        try:
            answer: Any = await self.transport.request(call.to, call.iq_type, call.payload, timeout)
        except Exception as exc:  # noqa: BLE001 - handed to the protocol, which raises it
            answer = exc
        try:
            assoc = self.protocol.initiated(call, answer, time.time())
        finally:
            self._flush()  # e.g. the HandshakeSecAbort of a refused E2E answer
        session = ClientAssociation(self, assoc)
        self._sessions[assoc.key] = session
        self._flush()
        self._wake.set()  # the liveness timer watches the new peer
        return session

    @property
    def associations(self) -> list[ClientAssociation]:
        return list(self._sessions.values())

    def _on_inbound(self, item: Any) -> None:
        self.protocol.heard(item.sender, time.monotonic())
        try:
            for o in self.protocol.receive(item, time.time()):
                if isinstance(o, Reply):
                    self.transport.reply(o.request, o.payload)
                elif isinstance(o, ErrorReply):
                    self.transport.reply_error(o.request, o.condition, o.text, o.etype)
                elif isinstance(o, Send):
                    self.transport.send_message(o.to, o.payload)
        finally:
            self._flush()

    def _on_answer(self, item: Any) -> None:
        self.protocol.answer_arrived(item, time.time())

    def _flush(self) -> None:
        for event in self.protocol.take_events():
            if isinstance(event, Send):
                if self.transport.connected:
                    self.transport.send_message(event.to, event.payload)
            elif isinstance(event, ReportReceived):
                session = self._sessions.get(event.association.key)
                if session is not None:
                    session._report(event.report)
            elif isinstance(event, AssociationEnded):
                session = self._sessions.pop(event.association.key, None)
                if session is not None:
                    session._ended()
                if not self.core.of_peer(event.association.peer):
                    self.transport.untrack_peer(event.association.peer)

    def _peer_unavailable(self, jid: str) -> None:
        self.protocol.peer_unavailable(jid)
        self._flush()

    def _link_lost(self) -> None:
        self.protocol.link_lost(self.transport.lost_reason or "XMPP link lost")
        self._flush()
