"""The asyncio client of IEC 61850-8-2: associate with an IED over XMPP and use its services.

::

    async with Client(XmppSettings(jid="ops@dso.example", password=..., ca_file=...,
                                   host="127.0.0.1", port=5222)) as client:
        ied = await client.associate("feeder7@dso.example/IEC")
        print(await ied.get_logical_device_directory("FDR1LD0"))
        print(await ied.get_data_values("FDR1MEAS/MMXU1.TotW.mag.f", "MX"))
        await ied.set_data_values("FDR1LD0/GGIO1.Ind1.d", "DC", "feeder 7 breaker")
        await ied.conclude()

References are ACSI ObjectReferences (``LD/LN.DO.DA``) with a functional constraint. Values are
Python values (see :mod:`gridbind.iec61850.model`); structures come back as dicts named after the
server's type description (fetched once per reference and cached).

Errors: :class:`ServiceFailed` (a confirmed-ErrorPDU), :class:`DataAccessFailed` (a per-item
failure of a read or write), :class:`RequestRejected` (a rejectPDU), :class:`AssociationAborted`,
and the transport's :class:`~.xmpp.StanzaError` / :class:`~.xmpp.RequestTimeout`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import codec as _codec
from . import pdu as _pdu
from .association import (
    CONFIRMED_SERVICES,
    Association,
    AssociationCore,
    AssociationEnded,
    AssociationError,
    InitiateParams,
)
from .model import Timestamp
from .references import parse_reference
from .xmpp import (
    IecXmpp,
    Inbound,
    InvalidPayload,
    StanzaError,
    XmppError,
    XmppSettings,
    stanza_for_pdu,
)

__all__ = [
    "Client",
    "ClientAssociation",
    "ClientError",
    "ServiceFailed",
    "DataAccessFailed",
    "RequestRejected",
    "AssociationAborted",
    "mms_name",
    "to_python",
    "from_python",
]

log = logging.getLogger(__name__)


class ClientError(Exception):
    """Base class of the client's service errors."""


class ServiceFailed(ClientError):
    """The server answered with a confirmed-ErrorPDU (``error_class``/``code`` as in the XSD)."""

    def __init__(self, service: str, error: tuple[str, str, str]) -> None:
        cls, code, text = error
        super().__init__(f"{service}: {cls}/{code}" + (f" ({text})" if text else ""))
        self.error_class, self.code, self.text = cls, code, text


class DataAccessFailed(ClientError):
    """One variable of a read or write failed; ``code`` is a DataAccessError name."""

    def __init__(self, reference: str, code: str) -> None:
        super().__init__(f"{reference}: {code}")
        self.reference, self.code = reference, code


class RequestRejected(ClientError):
    """The server rejected the request (rejectPDU); ``reason`` is ``group:reason``."""

    def __init__(self, reason: str, text: str = "") -> None:
        super().__init__(f"rejected: {reason}" + (f" ({text})" if text else ""))
        self.reason = reason


class AssociationAborted(ClientError):
    """The association ended (presence of the server lost, our link lost, concluded)."""


_GATE: _codec.Codec | None = None


def _gate() -> _codec.Codec:
    global _GATE
    if _GATE is None:
        # Answers may carry whole files and data sets: a larger bound than requests get.
        _GATE = _codec.Codec(_codec.Limits(max_bytes=4 << 20))
    return _GATE


@functools.lru_cache(maxsize=4096)  # pure and hot (every read/write): parse a reference once
def mms_name(reference: str, fc: str | None = None) -> tuple:
    """``LD/LN[.DO.DA]`` + FC -> domain-specific ObjectName ``(LD, LN$FC$DO$DA)``.

    ``LD/LN.DO.arr(3)`` names one element of an array attribute (alternateAccess index 3).
    Syntax and length limits are checked by :func:`gridbind.iec61850.references.parse_reference`
    (a ``ValueError``); the FC is left to the server to judge, so that FC ``XX`` gets its answer.
    """
    ref = parse_reference(reference)
    indexes = [i for i, (_, index) in enumerate(ref.path) if index is not None]
    if indexes and indexes != [len(ref.path) - 1]:
        raise ValueError(f"{reference}: only the last element may carry an array index")
    names = [name for name, _ in ref.path]
    if names and not fc:
        raise ValueError("a data reference needs a functional constraint")
    item = "$".join([ref.ln, *([fc] if fc else []), *names])
    if len(item) > 64:
        raise ValueError(f"itemId of {len(item)} characters exceeds 64")
    if indexes:
        return ("domain-specific", ref.ld, item, ref.path[-1][1])
    return ("domain-specific", ref.ld, item)


def dataset_name(reference: str) -> tuple:
    """``LD/LN.DS`` (persistent) or ``@DS`` (this association only) -> ObjectName."""
    if reference.startswith("@"):
        return ("aa-specific", reference[1:])
    ld, sep, rest = reference.partition("/")
    ln, dot, ds = rest.partition(".")
    if not sep or not dot or not ld or not ln or not ds:
        raise ValueError(f"not a data set reference: {reference!r}")
    return ("domain-specific", ld, f"{ln}${ds}")


def reference_of(name: tuple) -> tuple[str, str]:
    """Domain-specific ObjectName -> (``LD/LN.DO.DA``, FC)."""
    _, ld, item = name
    parts = item.split("$")
    ref = f"{ld}/{parts[0]}"
    if len(parts) > 2:
        ref += "." + ".".join(parts[2:])
    return ref, parts[1] if len(parts) > 1 else ""


def to_python(data: tuple, td: tuple | None = None) -> Any:
    """Data -> Python value; structures become dicts when a type description names them."""
    kind = data[0]
    if kind == "structure":
        if td is not None and td[0] == "structure" and len(td[1]) == len(data[1]):
            return {name: to_python(d, sub) for (name, sub), d in zip(td[1], data[1])}
        return [to_python(d) for d in data[1]]
    if kind == "array":
        sub = td[2] if td is not None and td[0] == "array" else None
        return [to_python(d, sub) for d in data[1]]
    return data[1]


def from_python(value: Any, td: tuple) -> tuple:
    """Python value -> Data of type ``td`` (raises ``TypeError``/``ValueError`` on mismatch)."""
    kind = td[0]
    if kind == "structure":
        if isinstance(value, dict):
            missing = [n for n, _ in td[1] if n not in value]
            extra = set(value) - {n for n, _ in td[1]}
            if missing or extra:
                raise ValueError(f"structure needs exactly {[n for n, _ in td[1]]}")
            return (kind, [from_python(value[n], sub) for n, sub in td[1]])
        items = list(value)
        if len(items) != len(td[1]):
            raise ValueError(f"structure of {len(td[1])} components")
        return (kind, [from_python(v, sub) for v, (_, sub) in zip(items, td[1])])
    if kind == "array":
        return (kind, [from_python(v, td[2]) for v in value])
    if kind == "boolean":
        if not isinstance(value, bool):
            raise TypeError("expected a bool")
        return (kind, value)
    if kind in ("integer", "unsigned"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an int for {kind}")
        return (kind, value)
    if kind == "floating-point":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError("expected a number")
        return (kind, float(value), td[1])
    if kind == "bit-string":
        if not isinstance(value, str) or value.strip("01"):
            raise TypeError("expected a bit string of 0/1 characters")
        return (kind, value)
    if kind == "octet-string":
        return (kind, bytes(value))
    if kind in ("visible-string", "mMSString"):
        if not isinstance(value, str):
            raise TypeError("expected a str")
        return (kind, value)
    if kind in ("utc-time", "binary-time"):
        if isinstance(value, (int, float)):
            value = Timestamp.from_float(float(value))
        if not isinstance(value, Timestamp):
            raise TypeError("expected a Timestamp or seconds")
        return (kind, value)
    raise TypeError(f"unknown type {kind}")


@dataclass
class _Pending:
    future: asyncio.Future
    service: str


class ClientAssociation:
    """One association with an IED; every ACSI method is a coroutine."""

    def __init__(self, client: "Client", assoc: Association) -> None:
        self.client = client
        self.assoc = assoc
        self._invoke = 0
        self._slots = asyncio.Semaphore(max(1, assoc.params.max_outstanding_calling))
        self._types: dict[tuple[str, str], tuple] = {}
        self._rejects: dict[int, str] = {}
        self._inflight: set[asyncio.Future] = set()
        #: Why the association ended (an abort reason, or "concluded"), once it has.
        self._ended = ""
        # SetFile: files offered to this association's server only (source name -> data), and
        # the ones it has open (frsmID -> [data, position]). Another association, with the same
        # or another server, sees neither.
        self._offered: dict[str, bytes] = {}
        self._open: dict[int, list] = {}
        #: getNameList, or extendedGetNameList (8-2) when the server offers it and it is chosen.
        self.name_service = "getNameList"

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
    async def request(self, service: str, args: Any, *, timeout: float | None = None) -> Any:
        """Send one confirmed request; returns the neutral result (see :mod:`.pdu`)."""
        if not self.assoc.open:
            raise AssociationAborted(
                f"association {self.id} with {self.peer} is closed"
                + (f": {self._ended}" if self._ended else "")
            )
        if service not in self.assoc.peer_services:
            raise RequestRejected(
                "confirmed-requestPDU:unrecognized-service", f"{service} not offered"
            )
        async with self._slots:
            self._invoke = (self._invoke + 1) % (1 << 32)
            invoke_id = self._invoke
            payload = _pdu.encode(("confirmed-RequestPDU", invoke_id, service, args))
            return await self._exchange(payload, service, invoke_id, timeout)

    async def _exchange(
        self, payload: ET.Element, service: str, invoke_id: int, timeout: float | None
    ) -> Any:
        iq_type = stanza_for_pdu("confirmed-RequestPDU", service)[1]
        self.assoc.outstanding.add(invoke_id)
        sending = asyncio.ensure_future(self.client._send(self, iq_type, payload, timeout))
        self._inflight.add(sending)
        try:
            answer = await sending
        except asyncio.CancelledError:
            if not self.assoc.open and sending.cancelled():
                raise AssociationAborted(
                    f"association {self.id} with {self.peer} ended during {service}"
                    + (f": {self._ended}" if self._ended else "")
                ) from None
            raise
        except StanzaError as exc:
            reject = self._rejects.pop(invoke_id, None)
            if reject is not None:
                raise RequestRejected(reject, exc.text) from None
            if not self.assoc.open:
                raise AssociationAborted(str(exc)) from None
            raise
        except XmppError as exc:
            if not self.assoc.open:
                raise AssociationAborted(
                    f"association {self.id} with {self.peer} ended during {service}: {exc}"
                ) from None
            raise
        finally:
            self._inflight.discard(sending)
            self.assoc.outstanding.discard(invoke_id)
        message = self._decode(answer)
        if message[0] == "confirmed-ResponsePDU" and message[1] == invoke_id:
            if message[2] != service:
                raise ClientError(f"answer to {service} carries {message[2]}")
            return message[3]
        if message[0] == "confirmed-ErrorPDU" and message[1] == invoke_id:
            raise ServiceFailed(service, message[2])
        raise ClientError(f"unexpected answer {message[0]} to invokeID {invoke_id}")

    @staticmethod
    def _decode(answer: ET.Element | None) -> tuple:
        """Answers are untrusted too: the adapter's strict gate (:func:`_gate`) has validated
        the envelope and its payload; this is the neutral decode."""
        if answer is None:
            raise ClientError("empty answer")
        try:
            return _pdu.decode(answer)
        except (_codec.CodecError, _pdu.PduError) as exc:
            raise ClientError(f"invalid answer: {exc}") from None

    def _abort_pending(self, reason: str = "") -> None:
        """The association ended: fail every request still waiting for its answer."""
        self._ended = reason
        for fut in list(self._inflight):
            fut.cancel()

    async def conclude(self) -> None:
        """Release the association (conclude)."""
        if not self.assoc.open:
            return
        answer = await self.client._send(self, "set", _pdu.encode(("conclude-RequestPDU",)), None)
        message = self._decode(answer)
        if message[0] == "conclude-ErrorPDU":
            raise ServiceFailed("conclude", message[1])
        if message[0] != "conclude-ResponsePDU":
            raise ClientError(f"unexpected answer {message[0]} to conclude")
        self.client.core.concluded(self.assoc)
        self.client._flush()

    async def __aenter__(self) -> "ClientAssociation":
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.assoc.open and self.client.xmpp.connected:
            await self.conclude()

    # ---------------------------------------------------------------- directories
    async def _names(self, object_class: str, scope: str, domain: str | None) -> list[str]:
        names: list[str] = []
        after = None
        service = self.name_service
        for _ in range(100000):
            got, more = await self.request(service, (object_class, scope, domain, after))
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
        blocks (``BRCB``, ``URCB``, ``LCB``, ``GoCB``, ``MSVCB``, ``SGCB``) of one LN."""
        ld, _, ln = ln_ref.partition("/")
        if acsi_class == "DATA-SET":
            if ln not in await self.get_logical_device_directory(ld):
                raise ServiceFailed("getNameList", ("access", "object-non-existent", ln_ref))
            lists = await self._names("namedVariableList", "domainSpecific", ld)
            return [n.split("$", 1)[1] for n in lists if n.split("$", 1)[0] == ln]
        fc_of = {"BRCB": "BR", "URCB": "RP", "LCB": "LG", "GoCB": "GO", "MSVCB": "MS"}
        if acsi_class not in fc_of and acsi_class not in ("DATA", "SGCB"):
            raise ValueError(f"unknown ACSI class {acsi_class!r}")
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

    async def get_data_definition(self, reference: str, fc: str) -> tuple:
        """GetDataDefinition: the MMS type description of ``reference`` in ``fc`` (cached)."""
        key = (reference, fc)
        if key not in self._types:
            name = mms_name(reference, fc)
            if len(name) == 4:  # an array element: the element type of the array
                td = await self.get_data_definition(reference[: reference.rindex("(")], fc)
                if td[0] != "array":
                    raise ValueError(f"{reference}: not an array")
                td = td[2]
            else:
                _, td = await self.request("getVariableAccessAttributes", name)
            self._types[key] = td
        return self._types[key]

    async def get_data_directory(self, reference: str, fc: str | None = None) -> list[str]:
        """GetDataDirectory: component names of a data object (all FCs, or one)."""
        ld, _, rest = reference.partition("/")
        ln, _, path = rest.partition(".")
        if fc is not None:
            td = await self.get_data_definition(reference, fc)
            return [name for name, _ in td[1]] if td[0] == "structure" else []
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
        results = await self.request("read", ("listOfVariable", [mms_name(reference, fc)]))
        return self._value(reference, results, td)

    @staticmethod
    def _value(reference: str, results: list[tuple], td: tuple | None) -> Any:
        if len(results) != 1:
            raise ClientError(f"{len(results)} results for one variable")
        kind, value = results[0]
        if kind == "failure":
            raise DataAccessFailed(reference, value)
        return to_python(value, td)

    async def get_all_data_values(self, ln_ref: str, fc: str | None = None) -> dict[str, Any]:
        """GetAllDataValues of an LN: ``{FC: {DO: ...}}`` (or ``{DO: ...}`` for one FC)."""
        if fc is not None:
            return await self.get_data_values(ln_ref, fc)
        ld, _, ln = ln_ref.partition("/")
        key = (ln_ref, "")
        if key not in self._types:
            _, td = await self.request("getVariableAccessAttributes", ("domain-specific", ld, ln))
            self._types[key] = td
        results = await self.request("read", ("listOfVariable", [("domain-specific", ld, ln)]))
        return self._value(ln_ref, results, self._types[key])

    async def set_data_values(self, reference: str, fc: str, value: Any) -> None:
        """SetDataValues of one FCD/FCDA (raises :class:`DataAccessFailed` when refused)."""
        td = await self.get_data_definition(reference, fc)
        data = from_python(value, td)
        results = await self.request(
            "write", (("listOfVariable", [mms_name(reference, fc)]), [data])
        )
        if len(results) != 1:
            raise ClientError(f"{len(results)} write results for one variable")
        if results[0] is not None:
            raise DataAccessFailed(reference, results[0])

    # ---------------------------------------------------------------- data sets
    async def get_data_set_directory(self, ds_ref: str) -> list[tuple[str, str]]:
        """GetDataSetDirectory: members as (reference, FC)."""
        _, members = await self.request("getNamedVariableListAttributes", dataset_name(ds_ref))
        return [reference_of(m) for m in members]

    async def get_data_set_values(self, ds_ref: str) -> list[Any]:
        """GetDataSetValues: one value per member (a :class:`DataAccessFailed` for a failure)."""
        members = await self.get_data_set_directory(ds_ref)
        tds = [await self.get_data_definition(ref, fc) for ref, fc in members]
        results = await self.request("read", ("variableListName", dataset_name(ds_ref)))
        out: list[Any] = []
        for (ref, _), td, (kind, value) in zip(members, tds, results):
            out.append(DataAccessFailed(ref, value) if kind == "failure" else to_python(value, td))
        return out

    async def set_data_set_values(self, ds_ref: str, values: list[Any]) -> list[str | None]:
        """SetDataSetValues: per-member result (None = success, else a DataAccessError name)."""
        members = await self.get_data_set_directory(ds_ref)
        if len(values) != len(members):
            raise ValueError(f"{ds_ref} has {len(members)} members")
        datas = [
            from_python(v, await self.get_data_definition(ref, fc))
            for v, (ref, fc) in zip(values, members)
        ]
        return await self.request("write", (("variableListName", dataset_name(ds_ref)), datas))

    async def create_data_set(self, ds_ref: str, members: Iterable[tuple[str, str]]) -> None:
        """CreateDataSet: ``LD/LN.DS`` is persistent, ``@DS`` lives as long as the association."""
        await self.request(
            "defineNamedVariableList",
            (dataset_name(ds_ref), [mms_name(ref, fc) for ref, fc in members]),
        )

    async def delete_data_set(self, ds_ref: str) -> None:
        """DeleteDataSet (raises :class:`ServiceFailed` when it was not deleted)."""
        matched, deleted = await self.request(
            "deleteNamedVariableList", ("specific", [dataset_name(ds_ref)], None)
        )
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

    # ---------------------------------------------------------------- files
    async def list_files(self, spec: str | None = None) -> list[dict[str, Any]]:
        """GetServerDirectory(FILE): ``[{"name", "size", "modified"}]`` (all pages)."""
        out: list[dict[str, Any]] = []
        after = None
        seg = spec.split("/") if spec else None
        while True:
            entries, more = await self.request("fileDirectory", (seg, after))
            for segments, size, mtime in entries:
                out.append({"name": "/".join(segments), "size": size, "modified": mtime})
            if not more or not entries:
                return out
            after = entries[-1][0]

    async def get_file_attribute_values(self, name: str) -> dict[str, Any]:
        entries, _ = await self.request("fileDirectory", (name.split("/"), None))
        if len(entries) != 1:
            raise ServiceFailed("fileDirectory", ("file", "file-non-existent", name))
        segments, size, mtime = entries[0]
        return {"name": "/".join(segments), "size": size, "modified": mtime}

    async def get_file(self, name: str) -> bytes:
        """GetFile: fileOpen, fileRead until no more follows, fileClose."""
        frsm, size, _ = await self.request("fileOpen", (name.split("/"), 0))
        chunks: list[bytes] = []
        try:
            while True:
                data, more = await self.request("fileRead", frsm)
                chunks.append(data)
                if not more:
                    break
        finally:
            if self.assoc.open:
                await self.request("fileClose", frsm)
        return b"".join(chunks)

    async def delete_file(self, name: str) -> None:
        await self.request("fileDelete", name.split("/"))

    async def set_file(self, name: str, data: bytes, *, timeout: float = 60.0) -> None:
        """SetFile: offer ``data`` and ask the server to obtain it as ``name`` (obtainFile);
        the server reads it back with fileOpen/fileRead/fileClose in this association."""
        source = self._offer(bytes(data))
        try:
            await self.request("obtainFile", ([source], name.split("/")), timeout=timeout)
        finally:
            offered = self._offered.pop(source, None)
            # A server that opened the offer and never closed it must not keep the data alive.
            for frsm in [k for k, state in self._open.items() if state[0] is offered]:
                del self._open[frsm]

    def _offer(self, data: bytes) -> str:
        self.client._offer_ids += 1
        name = f"gridbind-setfile-{self.client._offer_ids}"
        self._offered[name] = data
        return name


class Client:
    """An 8-2 client application: one XMPP session, any number of associations."""

    def __init__(
        self,
        settings: XmppSettings,
        *,
        max_pdu_size: int = 65000,
        max_outstanding: int = 16,
        nesting_level: int = 10,
        services: frozenset[str] = frozenset(CONFIRMED_SERVICES),
    ) -> None:
        self.core = AssociationCore(
            InitiateParams(
                max_pdu_size=max_pdu_size,
                max_outstanding_calling=max_outstanding,
                max_outstanding_called=max_outstanding,
                nesting_level=nesting_level,
                services=services,
            )
        )
        self.xmpp = IecXmpp(
            settings,
            self._on_inbound,
            on_peer_unavailable=self._peer_unavailable,
            on_link_lost=self._link_lost,
            gate=_gate(),
        )
        self._sessions: dict[tuple[str, str], ClientAssociation] = {}
        # SetFile source names are unique per client; offers live in their ClientAssociation.
        self._offer_ids = 0

    async def connect(self) -> None:
        await self.xmpp.start()

    async def close(self, conclude_timeout: float = 3.0) -> None:
        """Conclude open associations (bounded by ``conclude_timeout``) and leave XMPP."""

        async def conclude(session: ClientAssociation) -> None:
            try:
                await session.conclude()
            except (ClientError, StanzaError, XmppError) as exc:
                log.info("conclude of %s failed: %s", session.id, exc)

        if self.xmpp.connected:
            open_sessions = [s for s in self._sessions.values() if s.assoc.open]
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(conclude(s) for s in open_sessions)), conclude_timeout
                )
            except asyncio.TimeoutError:
                log.info("conclude did not finish within %s s", conclude_timeout)
        self.core.link_lost()
        self._flush()
        await self.xmpp.close()

    async def __aenter__(self) -> "Client":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def associate(self, server_jid: str, *, timeout: float = 10.0) -> ClientAssociation:
        """Initiate an association with ``server_jid`` (a full JID, resource ``IEC``)."""
        if "/" not in server_jid:
            server_jid += "/IEC"
        assoc_id = self.core.new_id()
        self.xmpp.track_peer(server_jid)
        payload = _pdu.encode(("initiate-RequestPDU", self.core.proposal()))
        try:
            answer = await self.xmpp.request(
                server_jid, "set", payload, timeout, association=assoc_id
            )
        except InvalidPayload as exc:
            raise ClientError(f"invalid answer: {exc}") from None
        message = ClientAssociation._decode(answer)
        if message[0] == "initiate-ErrorPDU":
            raise ServiceFailed("initiate", message[1])
        if message[0] != "initiate-ResponsePDU":
            raise ClientError(f"unexpected answer {message[0]} to initiate")
        try:
            assoc = self.core.established(server_jid, assoc_id, message[1])
        except AssociationError as exc:
            raise ClientError(str(exc)) from None
        session = ClientAssociation(self, assoc)
        self._sessions[assoc.key] = session
        self.core.take_events()
        return session

    @property
    def associations(self) -> list[ClientAssociation]:
        return list(self._sessions.values())

    async def _send(
        self, session: ClientAssociation, iq_type: str, payload: ET.Element, timeout: float | None
    ) -> ET.Element | None:
        try:
            return await self.xmpp.request(
                session.peer, iq_type, payload, timeout, association=session.id
            )
        except InvalidPayload as exc:
            raise ClientError(f"invalid answer: {exc}") from None

    def _on_inbound(self, item: Inbound) -> None:
        if item.kind == "iq":
            self._serve_file_request(item)
            return
        if item.error is not None:  # informationReport / rejectPDU refused by the strict gate
            log.info("message from %s refused: %s", item.sender, item.error)
            return
        try:
            message = _pdu.decode(item.payload)
        except _pdu.PduError as exc:
            log.info("undecodable message from %s: %s", item.sender, exc)
            return
        session = self._sessions.get((item.sender, item.association or ""))
        if message[0] == "rejectPDU" and session is not None and message[1] is not None:
            if message[1] in session.assoc.outstanding:  # only rejects of waiting requests
                session._rejects[message[1]] = message[2]
        elif message[0] == "informationReport":
            log.debug(
                "informationReport from %s ignored (reports are not in this client)", item.sender
            )

    def _serve_file_request(self, item: Inbound) -> None:
        """A server reading a file we offered for SetFile (fileOpen/fileRead/fileClose).

        Only the association the offer was made in (peer + association id) may open it; any
        other gets ``file-non-existent``, as for a name never offered.
        """
        session = self._sessions.get((item.sender, item.association or ""))
        if item.error is not None:  # malformed envelope or refused by the strict gate
            if session is not None:
                self.xmpp.send_message(
                    item.sender,
                    _pdu.encode(("rejectPDU", None, "pdu-error:invalid-pdu")),
                    session.id,
                )
            self.xmpp.reply_error(item, "bad-request", f"pdu-error:invalid-pdu: {item.error}")
            return
        if not item.association:
            self.xmpp.reply_error(
                item, "not-authorized", "request outside an association", "cancel"
            )
            return
        if session is None:
            self.xmpp.reply_error(item, "item-not-found", "no such association", "cancel")
            return
        try:
            message = _pdu.decode(item.payload)
        except _pdu.PduError as exc:
            self.xmpp.reply_error(item, "bad-request", exc.reason)
            return
        if message[0] != "confirmed-RequestPDU":
            self.xmpp.reply_error(item, "bad-request", f"{message[0]} is not a request")
            return
        _, invoke_id, service, args = message
        try:
            if service == "fileOpen":
                segments, position = args
                data = session._offered.get("/".join(segments))
                if data is None:
                    raise LookupError("file-non-existent")
                if not 0 <= position <= len(data):
                    raise LookupError("position-invalid")
                if len(session._open) >= 16:
                    raise LookupError("file-busy")
                frsm = max(session._open, default=0) + 1
                session._open[frsm] = [data, position]
                result: Any = (frsm, len(data), None)
            elif service == "fileRead":
                state = session._open.get(args)
                if state is None:
                    raise LookupError("other")
                data, pos = state
                chunk = max(64, (session.params.max_pdu_size - 400) // 2)
                result = (data[pos : pos + chunk], pos + chunk < len(data))
                state[1] = min(len(data), pos + chunk)
            elif service == "fileClose":
                if session._open.pop(args, None) is None:
                    raise LookupError("other")
                result = None
            else:
                self.xmpp.send_message(
                    item.sender,
                    _pdu.encode(
                        ("rejectPDU", invoke_id, "confirmed-requestPDU:unrecognized-service")
                    ),
                    session.id,
                )
                self.xmpp.reply_error(item, "bad-request", f"{service} is not served by a client")
                return
            answer: tuple = ("confirmed-ResponsePDU", invoke_id, service, result)
        except LookupError as exc:
            answer = ("confirmed-ErrorPDU", invoke_id, ("file", str(exc.args[0]), ""))
        self.xmpp.reply(item, _pdu.encode(answer), session.id)

    def _flush(self) -> None:
        for event in self.core.take_events():
            if isinstance(event, AssociationEnded):
                session = self._sessions.pop(event.association.key, None)
                if session is not None:
                    session._abort_pending(event.reason or event.how)
                if not self.core.of_peer(event.association.peer):
                    self.xmpp.untrack_peer(event.association.peer)

    def _peer_unavailable(self, jid: str) -> None:
        self.core.peer_unavailable(jid)
        self._flush()

    def _link_lost(self) -> None:
        reason = self.xmpp.lost_reason or "XMPP link lost"
        for assoc in list(self.core.associations.values()):
            self.core.abort(assoc, reason)
        self._flush()
