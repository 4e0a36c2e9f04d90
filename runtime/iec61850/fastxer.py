"""Fast path of the 8-2 codec: specialised lxml encoders/decoders for the hot PDUs.

Report floods and data-set reads are dominated by ``Data``; xsdata's generic binding engine spends
~15x what a direct lxml walk needs. This module walks schema-valid lxml trees straight into the
*generated* xsdata classes (and back), so the typed API stays the same and the codec keeps
validating every document with the XSD in the parsing pass (:mod:`gridbind.iec61850.codec`).

Covered: ``MMSpdu`` carrying confirmed-RequestPDU / confirmed-ResponsePDU with ``read`` or
``write``, and unconfirmed-PDU with ``informationReport``; inside them ObjectName,
VariableAccessSpecification (without alternateAccess), AccessResult, DataAccessError and every
Data alternative, recursively. Anything else returns :data:`NOT_FAST` (decode) or ``None``
(encode) and the codec uses xsdata; ``tests/iec61850/test_codec_fast.py`` checks that both paths
give equal objects and identical bytes.

The decoders trust the tree shape because the schema has already validated it (one child per
CHOICE, required elements present); they only bound the nesting depth. Hand-written, not emitted
by codegen: see DECISIONS.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m

__all__ = ["NOT_FAST", "decode_mmspdu", "encode_mmspdu", "decode_data", "encode_data"]

NS = "http://www.iec.ch/61850/2018/SCSM_8_2"
_P = "{" + NS + "}"


class _NotFast:
    """Marker: this PDU is not covered by the fast path."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_FAST"


NOT_FAST: Any = _NotFast()


class _Unsupported(Exception):
    pass


def _q(name: str) -> str:
    return _P + name


# ----------------------------------------------------------------------------------------------
# decoding (schema-valid lxml element -> generated classes)


def _text(el: etree._Element) -> str:
    return el.text or ""


def _hex(el: etree._Element) -> bytes:
    return bytes.fromhex("".join((el.text or "").split()))


def _boolean(el: etree._Element) -> bool:
    return (el.text or "").strip() in ("true", "1")


_Data = m.Data
_D_INTEGER = m.Data.Integer
_D_UNSIGNED = m.Data.Unsigned
_D_BITS = m.Data.BitString
_D_FLOAT = m.Data.FloatingPoint
_D_OCTETS = m.Data.OctetString
_D_VISIBLE = m.Data.VisibleString
_D_BTIME = m.Data.BinaryTime
_D_MMS = m.Data.MmsString
_D_UTC = m.Data.UtcTime
_STRUCTURE = m.Structure
_ARRAY = m.Array


def _limit(depth: int, max_depth: int) -> None:
    from gridbind.iec61850.codec import LimitExceeded

    raise LimitExceeded(f"elements nested deeper than {max_depth} (at depth {depth})")


def _data_choice(el: etree._Element, depth: int, max_depth: int) -> Any:
    """``el`` is the alternative element inside a Data-typed element, at XML depth ``depth``."""
    tag = el.tag
    if tag == _T_STRUCTURE or tag == _T_ARRAY:
        if depth + 2 > max_depth and len(el):
            _limit(depth + 2, max_depth)
        items = [_Data(choice=_data_choice(d[0], depth + 2, max_depth)) for d in el]
        return _STRUCTURE(data=items) if tag == _T_STRUCTURE else _ARRAY(data=items)
    decode = _DATA_DECODERS.get(tag)
    if decode is None:
        raise _Unsupported(tag)
    return decode(el)


_T_STRUCTURE = _q("structure")
_T_ARRAY = _q("array")
_DATA_DECODERS: dict[str, Callable[[etree._Element], Any]] = {
    _q("boolean"): _boolean,
    _q("bit-string"): lambda el: _D_BITS(value=_text(el)),
    _q("integer"): lambda el: _D_INTEGER(value=int(el.text)),
    _q("unsigned"): lambda el: _D_UNSIGNED(value=int(el.text)),
    _q("floating-point"): lambda el: _D_FLOAT(value=_hex(el)),
    _q("octet-string"): lambda el: _D_OCTETS(value=_hex(el)),
    _q("visible-string"): lambda el: _D_VISIBLE(value=_text(el)),
    _q("binary-time"): lambda el: _D_BTIME(value=_hex(el)),
    _q("mMSString"): lambda el: _D_MMS(value=_text(el)),
    _q("utc-time"): lambda el: _D_UTC(value=_hex(el)),
}


def decode_data(el: etree._Element, depth: int = 1, max_depth: int = 64) -> m.Data:
    """A schema-valid Data-typed element (``<Data>``, ``<success>``...) -> :class:`Data`."""
    return _Data(choice=_data_choice(el[0], depth + 1, max_depth))


_DAE_BY_TAG = {
    _q(name): cls
    for name, cls in (
        ("object-invalidated", m.DataAccessError.ObjectInvalidated),
        ("hardware-fault", m.DataAccessError.HardwareFault),
        ("temporarily-unavailable", m.DataAccessError.TemporarilyUnavailable),
        ("object-access-denied", m.DataAccessError.ObjectAccessDenied),
        ("object-undefined", m.DataAccessError.ObjectUndefined),
        ("invalid-address", m.DataAccessError.InvalidAddress),
        ("type-unsupported", m.DataAccessError.TypeUnsupported),
        ("type-inconsistent", m.DataAccessError.TypeInconsistent),
        ("object-attribute-inconsistent", m.DataAccessError.ObjectAttributeInconsistent),
        ("object-access-unsupported", m.DataAccessError.ObjectAccessUnsupported),
        ("object-non-existent", m.DataAccessError.ObjectNonExistent),
        ("object-value-invalid", m.DataAccessError.ObjectValueInvalid),
    )
}
_DAE_TAG = {cls: tag for tag, cls in _DAE_BY_TAG.items()}


def _data_access_error(el: etree._Element) -> m.DataAccessError:
    return m.DataAccessError(choice=_DAE_BY_TAG[el[0].tag]())


def _object_name(el: etree._Element) -> m.ObjectName:
    alt = el[0]
    tag = alt.tag
    if tag == _T_DOMAIN:
        return m.ObjectName(
            choice=m.ObjectName.DomainSpecific(domain_id=alt[0].text, item_id=alt[1].text)
        )
    if tag == _T_VMD:
        return m.ObjectName(choice=m.ObjectName.VmdSpecific(value=alt.text))
    return m.ObjectName(choice=m.ObjectName.AaSpecific(value=alt.text))


_T_DOMAIN = _q("domain-specific")
_T_VMD = _q("vmd-specific")
_T_AA = _q("aa-specific")


def _vas(el: etree._Element) -> m.VariableAccessSpecification:
    alt = el[0]
    if alt.tag == _T_LIST_OF_VARIABLE:
        items = []
        for seq in alt:
            if len(seq) != 1:
                raise _Unsupported("alternateAccess")
            spec = seq[0]
            items.append(
                m.VariableDefs.Sequence(
                    variable_specification=m.VariableSpecification(name=_object_name(spec[0]))
                )
            )
        return m.VariableAccessSpecification(choice=m.VariableDefs(sequence=items))
    return m.VariableAccessSpecification(choice=_object_name(alt))


_T_LIST_OF_VARIABLE = _q("listOfVariable")
_T_SUCCESS = _q("success")
_T_FAILURE = _q("failure")


def _access_results(el: etree._Element, depth: int, max_depth: int) -> m.ListOfAccessResult:
    out = []
    for result in el:
        alt = result[0]
        if alt.tag == _T_SUCCESS:
            out.append(
                m.AccessResult(choice=_Data(choice=_data_choice(alt[0], depth + 3, max_depth)))
            )
        else:
            out.append(m.AccessResult(choice=_data_access_error(alt)))
    return m.ListOfAccessResult(access_result=out)


def _read_request(el: etree._Element, depth: int, max_depth: int) -> m.ReadRequest:
    spec = None
    if len(el) == 2:
        spec = _boolean(el[0])
    return m.ReadRequest(specification_with_result=spec, variable_access_specification=_vas(el[-1]))


def _read_response(el: etree._Element, depth: int, max_depth: int) -> m.ReadResponse:
    vas = _vas(el[0]) if len(el) == 2 else None
    return m.ReadResponse(
        variable_access_specification=vas,
        list_of_access_result=_access_results(el[-1], depth + 1, max_depth),
    )


def _write_request(el: etree._Element, depth: int, max_depth: int) -> m.WriteRequest:
    data = [_Data(choice=_data_choice(d[0], depth + 3, max_depth)) for d in el[1]]
    return m.WriteRequest(
        variable_access_specification=_vas(el[0]), list_of_data=m.ListOfData(data=data)
    )


_WRITE_SUCCESS = m.Null


def _write_response(el: etree._Element, depth: int, max_depth: int) -> m.WriteResponse:
    items = []
    for choice in el:
        alt = choice[0]
        if alt.tag == _T_SUCCESS:
            items.append(m.WriteResponse.Choice(choice=_WRITE_SUCCESS()))
        else:
            items.append(m.WriteResponse.Choice(choice=_data_access_error(alt)))
    return m.WriteResponse(choice=items)


def _information_report(el: etree._Element, depth: int, max_depth: int) -> m.InformationReport:
    return m.InformationReport(
        variable_access_specification=_vas(el[0]),
        list_of_access_result=_access_results(el[1], depth + 1, max_depth),
    )


_REQUESTS = {_q("read"): _read_request, _q("write"): _write_request}
_RESPONSES = {_q("read"): _read_response, _q("write"): _write_response}
_T_CONF_REQ = _q("confirmed-RequestPDU")
_T_CONF_RSP = _q("confirmed-ResponsePDU")
_T_UNCONF = _q("unconfirmed-PDU")
_T_INFO = _q("informationReport")


def decode_mmspdu(root: etree._Element, max_depth: int = 64) -> Any:
    """A schema-valid ``MMSpdu`` element -> :class:`Mmspdu`, or :data:`NOT_FAST`."""
    try:
        pdu = root[0]
        tag = pdu.tag
        if tag == _T_CONF_REQ or tag == _T_CONF_RSP:
            service = pdu[1][0]
            table = _REQUESTS if tag == _T_CONF_REQ else _RESPONSES
            decode = table.get(service.tag)
            if decode is None:
                return NOT_FAST
            body = decode(service, 4, max_depth)
            invoke_id = int(pdu[0].text)
            if tag == _T_CONF_REQ:
                return m.Mmspdu(
                    choice=m.ConfirmedRequestPdu(
                        invoke_id=invoke_id, service=m.ConfirmedServiceRequest(choice=body)
                    )
                )
            return m.Mmspdu(
                choice=m.ConfirmedResponsePdu(
                    invoke_id=invoke_id, service=m.ConfirmedServiceResponse(choice=body)
                )
            )
        if tag == _T_UNCONF:
            report = pdu[0][0]
            if report.tag != _T_INFO:
                return NOT_FAST
            body = _information_report(report, 4, max_depth)
            return m.Mmspdu(
                choice=m.UnconfirmedPdu(service=m.UnconfirmedService(information_report=body))
            )
        return NOT_FAST
    except _Unsupported:
        return NOT_FAST


# ----------------------------------------------------------------------------------------------
# encoding (generated classes -> lxml element)

_SubElement = etree.SubElement


def _set_text(parent: etree._Element, tag: str, text: str) -> None:
    # Empty values are written as empty-element tags, like xsdata does.
    _SubElement(parent, tag).text = text or None


def _hexstr(value: bytes) -> str:
    return value.hex().upper()


def _enc_data_choice(parent: etree._Element, value: Any) -> None:
    kind = type(value)
    if kind is _STRUCTURE or kind is _ARRAY:
        el = _SubElement(parent, _T_STRUCTURE if kind is _STRUCTURE else _T_ARRAY)
        for item in value.data:
            _enc_data_choice(_SubElement(el, _T_DATA), item.choice)
        return
    encode = _DATA_ENCODERS.get(kind)
    if encode is None:
        raise _Unsupported(kind.__name__)
    encode(parent, value)


_T_DATA = _q("Data")
_DATA_ENCODERS: dict[type, Callable[[etree._Element, Any], None]] = {
    bool: lambda p, v: _set_text(p, _T_BOOLEAN, "true" if v else "false"),
    _D_BITS: lambda p, v: _set_text(p, _q("bit-string"), v.value),
    _D_INTEGER: lambda p, v: _set_text(p, _q("integer"), str(v.value)),
    _D_UNSIGNED: lambda p, v: _set_text(p, _q("unsigned"), str(v.value)),
    _D_FLOAT: lambda p, v: _set_text(p, _q("floating-point"), _hexstr(v.value)),
    _D_OCTETS: lambda p, v: _set_text(p, _q("octet-string"), _hexstr(v.value)),
    _D_VISIBLE: lambda p, v: _set_text(p, _q("visible-string"), v.value),
    _D_BTIME: lambda p, v: _set_text(p, _q("binary-time"), _hexstr(v.value)),
    _D_MMS: lambda p, v: _set_text(p, _q("mMSString"), v.value),
    _D_UTC: lambda p, v: _set_text(p, _q("utc-time"), _hexstr(v.value)),
}
_T_BOOLEAN = _q("boolean")


def encode_data(parent: etree._Element, data: m.Data) -> None:
    """Append the alternative of ``data`` under ``parent`` (a Data-typed element)."""
    _enc_data_choice(parent, data.choice)


def _enc_object_name(parent: etree._Element, name: m.ObjectName) -> None:
    alt = name.choice
    kind = type(alt)
    if kind is m.ObjectName.DomainSpecific:
        el = _SubElement(parent, _T_DOMAIN)
        _set_text(el, _q("domainId"), alt.domain_id)
        _set_text(el, _q("itemId"), alt.item_id)
    elif kind is m.ObjectName.VmdSpecific:
        _set_text(parent, _T_VMD, alt.value)
    elif kind is m.ObjectName.AaSpecific:
        _set_text(parent, _T_AA, alt.value)
    else:
        raise _Unsupported("ObjectName")


def _enc_vas(parent: etree._Element, vas: m.VariableAccessSpecification) -> None:
    el = _SubElement(parent, _q("variableAccessSpecification"))
    alt = vas.choice
    if type(alt) is m.VariableDefs:
        lov = _SubElement(el, _T_LIST_OF_VARIABLE)
        for seq in alt.sequence:
            if seq.alternate_access is not None:
                raise _Unsupported("alternateAccess")
            spec = _SubElement(_SubElement(lov, _q("SEQUENCE")), _q("variableSpecification"))
            if seq.variable_specification.name is None:
                raise _Unsupported("VariableSpecification")
            _enc_object_name(_SubElement(spec, _q("name")), seq.variable_specification.name)
    elif type(alt) is m.ObjectName:
        _enc_object_name(_SubElement(el, _q("variableListName")), alt)
    else:
        raise _Unsupported("VariableAccessSpecification")


def _enc_access_results(parent: etree._Element, results: m.ListOfAccessResult) -> None:
    el = _SubElement(parent, _q("listOfAccessResult"))
    for result in results.access_result:
        item = _SubElement(el, _q("AccessResult"))
        alt = result.choice
        if type(alt) is _Data:
            _enc_data_choice(_SubElement(item, _T_SUCCESS), alt.choice)
        elif type(alt) is m.DataAccessError:
            _enc_dae(_SubElement(item, _T_FAILURE), alt)
        else:
            raise _Unsupported("AccessResult")


def _enc_dae(parent: etree._Element, error: m.DataAccessError) -> None:
    tag = _DAE_TAG.get(type(error.choice))
    if tag is None:
        raise _Unsupported("DataAccessError")
    _SubElement(parent, tag)


def _enc_read_request(parent: etree._Element, body: m.ReadRequest) -> None:
    el = _SubElement(parent, _q("read"))
    if body.specification_with_result is not None:
        _set_text(
            el, _q("specificationWithResult"), "true" if body.specification_with_result else "false"
        )
    _enc_vas(el, body.variable_access_specification)


def _enc_read_response(parent: etree._Element, body: m.ReadResponse) -> None:
    el = _SubElement(parent, _q("read"))
    if body.variable_access_specification is not None:
        _enc_vas(el, body.variable_access_specification)
    _enc_access_results(el, body.list_of_access_result)


def _enc_write_request(parent: etree._Element, body: m.WriteRequest) -> None:
    el = _SubElement(parent, _q("write"))
    _enc_vas(el, body.variable_access_specification)
    lod = _SubElement(el, _q("listOfData"))
    for item in body.list_of_data.data:
        _enc_data_choice(_SubElement(lod, _T_DATA), item.choice)


def _enc_write_response(parent: etree._Element, body: m.WriteResponse) -> None:
    el = _SubElement(parent, _q("write"))
    for choice in body.choice:
        item = _SubElement(el, _q("CHOICE"))
        alt = choice.choice
        if type(alt) is m.Null:
            _SubElement(item, _T_SUCCESS)
        elif type(alt) is m.DataAccessError:
            _enc_dae(_SubElement(item, _T_FAILURE), alt)
        else:
            raise _Unsupported("Write-Response")


_ENC_REQUESTS = {m.ReadRequest: _enc_read_request, m.WriteRequest: _enc_write_request}
_ENC_RESPONSES = {m.ReadResponse: _enc_read_response, m.WriteResponse: _enc_write_response}
_NSMAP = {None: NS}


def encode_mmspdu(pdu: m.Mmspdu) -> etree._Element | None:
    """:class:`Mmspdu` -> a new lxml ``MMSpdu`` element, or None when not covered here."""
    alt = pdu.choice
    kind = type(alt)
    try:
        if kind is m.ConfirmedRequestPdu or kind is m.ConfirmedResponsePdu:
            service = alt.service.choice if alt.service is not None else None
            table = _ENC_REQUESTS if kind is m.ConfirmedRequestPdu else _ENC_RESPONSES
            encode = table.get(type(service))
            if encode is None:
                return None
            root = etree.Element(_q("MMSpdu"), nsmap=_NSMAP)
            el = _SubElement(root, _T_CONF_REQ if kind is m.ConfirmedRequestPdu else _T_CONF_RSP)
            _set_text(el, _q("invokeID"), str(alt.invoke_id))
            encode(_SubElement(el, _q("service")), service)
            return root
        if kind is m.UnconfirmedPdu:
            report = alt.service.information_report if alt.service is not None else None
            if report is None:
                return None
            root = etree.Element(_q("MMSpdu"), nsmap=_NSMAP)
            service = _SubElement(_SubElement(root, _T_UNCONF), _q("service"))
            el = _SubElement(service, _T_INFO)
            _enc_vas(el, report.variable_access_specification)
            _enc_access_results(el, report.list_of_access_result)
            return root
        return None
    except (_Unsupported, AttributeError, TypeError, ValueError):
        # Objects the fast path does not know (or malformed ones) go through xsdata, which
        # reports them with its own messages.
        return None
