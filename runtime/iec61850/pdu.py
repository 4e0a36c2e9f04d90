"""MMSpdu XER elements <-> the neutral forms the server and client work with.

The element layout is the project's 8-2 XSD (``specs/iec61850_8_2/SCSM_8_2.xsd``): root
``MMSpdu`` in :data:`~gridbind.iec61850.xmpp.PAYLOAD_NS`, one child per PDU alternative, every
CHOICE an element named by its alternative. Elements are ``xml.etree`` elements because that is
what slixmpp carries in its stanzas (no re-parse on the hot path). Strict validation of untrusted
payloads against the XSD is the codec's job and happens before :func:`decode` on the server.

Neutral forms (tuples) are documented in :mod:`gridbind.iec61850.services.acsi` and
:mod:`gridbind.iec61850.services.mmsview`. Anything unexpected raises :class:`PduError`, which
the receiver turns into a rejectPDU; it never propagates as another exception type.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from .association import InitiateParams, bits_to_services, services_to_bits
from .mmsdata import MmsDataError, floating_point_octets, floating_point_value
from .model import Timestamp
from .xmpp import PAYLOAD_NS

__all__ = [
    "PduError",
    "encode",
    "decode",
    "to_bytes",
    "to_bytes_with_inner",
    "MAX_DATA_DEPTH",
    "tag",
]

_P = "{" + PAYLOAD_NS + "}"
_REJECT_PART = re.compile(r"[A-Za-z][A-Za-z-]{0,40}")
#: Nesting bound of Data / TypeDescription while decoding (a hostile PDU cannot recurse deeper).
MAX_DATA_DEPTH = 24


class PduError(ValueError):
    """The payload is not a PDU this implementation understands.

    ``reason`` is a rejectPDU reason (``group:reason``) and ``invoke_id`` the request's invokeID
    when it could be read.
    """

    def __init__(
        self, message: str, reason: str = "pdu-error:invalid-pdu", invoke_id: int | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.invoke_id = invoke_id


_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def to_bytes(root: ET.Element) -> bytes:
    """Serialise a payload element (UTF-8, default namespaces, no prefixes).

    About three times faster than ``ET.tostring`` for the attribute-free trees of MMS PDUs;
    anything unusual (attributes, comments) falls back to ``ET.tostring``.
    """
    out: list[str] = []
    try:
        _ser(root, out, None)
    except _Fallback:
        return ET.tostring(root)
    return "".join(out).encode()


def to_bytes_with_inner(root: ET.Element, inner: ET.Element) -> tuple[bytes, int]:
    """``(to_bytes(root), len(to_bytes(inner)))`` in one serialisation.

    ``inner`` is a descendant of ``root`` in another namespace than its parent (the MMSpdu in
    the ``applData`` of an AssociationContext), so it serialises inside ``root`` exactly as on
    its own (with its ``xmlns``): its octets are a slice of the envelope's.
    """
    out: list[str] = []
    span: list[int] = []
    try:
        _ser_around(root, out, None, inner, span)
    except _Fallback:
        return to_bytes(root), len(to_bytes(inner))
    if len(span) != 2:  # not found, or its parent is in its namespace: no shortcut
        return "".join(out).encode(), len(to_bytes(inner))
    part = "".join(out[span[0] : span[1]])
    size = len(part) if part.isascii() else len(part.encode())
    return "".join(out).encode(), size


class _Fallback(Exception):
    pass


#: "{ns}local" -> (ns, local, "<local", '<local xmlns="ns"', "</local>"), bounded: tags come
#: from peers, so the memo stops growing at _SPLIT_MAX entries.
_SPLIT: dict[str, tuple[str, str, str, str, str]] = {}
_SPLIT_MAX = 2048


def _split(t: str) -> tuple[str, str, str, str, str]:
    if t[0] == "{":
        ns, _, local = t[1:].partition("}")
    else:
        ns, local = "", t
    parts = (ns, local, "<" + local, f'<{local} xmlns="{ns}"', f"</{local}>")
    if len(_SPLIT) < _SPLIT_MAX:
        _SPLIT[t] = parts
    return parts


def _escape(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:
        return text.translate(_ESCAPES)
    return text


def _ser(el: ET.Element, out: list[str], parent_ns: str | None) -> None:
    t = el.tag
    if not isinstance(t, str) or el.attrib:
        raise _Fallback
    parts = _SPLIT.get(t) or _split(t)
    ns = parts[0]
    append = out.append
    append(parts[2] if ns == parent_ns else parts[3])
    text = el.text
    if text or len(el):
        append(">")
        if text:
            append(_escape(text))
        for child in el:
            _ser(child, out, ns)
            tail = child.tail
            if tail:
                append(_escape(tail))
        append(parts[4])
    else:
        append("/>")


def _ser_around(
    el: ET.Element, out: list[str], parent_ns: str | None, inner: ET.Element, span: list[int]
) -> None:
    # _ser for the few envelope elements, noting where ``inner`` starts and ends in ``out``.
    t = el.tag
    if not isinstance(t, str) or el.attrib:
        raise _Fallback
    parts = _SPLIT.get(t) or _split(t)
    ns = parts[0]
    out.append(parts[2] if ns == parent_ns else parts[3])
    text = el.text
    if text or len(el):
        out.append(">")
        if text:
            out.append(_escape(text))
        for child in el:
            if child is inner:
                start = len(out)
                _ser(child, out, ns)
                if (_SPLIT.get(child.tag) or _split(child.tag))[0] != ns:  # serialised as alone
                    span += [start, len(out)]
            else:
                _ser_around(child, out, ns, inner, span)
            tail = child.tail
            if tail:
                out.append(_escape(tail))
        out.append(parts[4])
    else:
        out.append("/>")


def tag(name: str) -> str:
    return _P + name


def _el(parent: ET.Element, name: str, text: Any = None) -> ET.Element:
    el = ET.SubElement(parent, _P + name)
    if text is not None:
        el.text = text if isinstance(text, str) else str(text)
    return el


def _local(el: ET.Element) -> str:
    t = el.tag
    if not isinstance(t, str) or not t.startswith(_P):
        raise PduError(f"element {t!r} outside the payload namespace")
    return t[len(_P) :]


def _only(el: ET.Element) -> ET.Element:
    children = list(el)
    if len(children) != 1:
        raise PduError(f"<{_local(el)}> must hold exactly one alternative")
    return children[0]


def _child(el: ET.Element, name: str, required: bool = True) -> ET.Element | None:
    found = el.find(_P + name)
    if found is None and required:
        raise PduError(f"<{_local(el)}> lacks <{name}>")
    return found


def _text(el: ET.Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _int(el: ET.Element | None, lo: int | None = None, hi: int | None = None) -> int:
    text = _text(el)
    try:
        value = int(text)
    except ValueError:
        raise PduError(f"not an integer: {text[:40]!r}") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise PduError(f"integer {value} out of range", "confirmed-requestPDU:value-out-of-range")
    return value


def _bool(el: ET.Element | None, default: bool = False) -> bool:
    if el is None:
        return default
    text = _text(el)
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise PduError(f"not a boolean: {text[:20]!r}")


def _bits(el: ET.Element | None) -> str:
    text = _text(el)
    if text.strip("01"):
        raise PduError("bit string with characters other than 0 and 1")
    return text


def _hex(el: ET.Element | None) -> bytes:
    try:
        return bytes.fromhex(_text(el))
    except ValueError:
        raise PduError("octet string is not hexadecimal") from None


# ---------------------------------------------------------------- names
def _object_name(parent: ET.Element, name: str, value: tuple) -> ET.Element:
    el = _el(parent, name)
    kind = value[0]
    if kind == "domain-specific":
        ds = _el(el, "domain-specific")
        _el(ds, "domainId", value[1])
        _el(ds, "itemId", value[2])
    elif kind in ("vmd-specific", "aa-specific"):
        _el(el, kind, value[1])
    else:
        raise PduError(f"unknown ObjectName kind {kind!r}")
    return el


def _identifier(el: ET.Element | None) -> str:
    text = _text(el)
    if not 1 <= len(text) <= 64:
        raise PduError("Identifier must be 1..64 characters")
    return text


def _read_object_name(el: ET.Element) -> tuple:
    alt = _only(el)
    kind = _local(alt)
    if kind == "domain-specific":
        return (kind, _identifier(_child(alt, "domainId")), _identifier(_child(alt, "itemId")))
    if kind in ("vmd-specific", "aa-specific"):
        return (kind, _identifier(alt))
    raise PduError(f"unknown ObjectName alternative {kind!r}")


def _var_defs(parent: ET.Element, name: str, names: list[tuple]) -> None:
    el = _el(parent, name)
    for n in names:
        seq = _el(el, "SEQUENCE")
        spec = _el(seq, "variableSpecification")
        if n[0] == "domain-specific" and len(n) == 4:
            # One array element: ("domain-specific", LD, item, index) -> alternateAccess index
            _object_name(spec, "name", n[:3])
            aa = _el(seq, "alternateAccess")
            sel = _el(_el(_el(aa, "CHOICE"), "unnamed"), "selectAccess")
            _el(sel, "index", n[3])
        else:
            _object_name(spec, "name", n)


def _read_var_defs(el: ET.Element) -> list[tuple]:
    out = []
    for seq in el:
        if _local(seq) != "SEQUENCE":
            raise PduError("listOfVariable holds SEQUENCE elements")
        spec = _child(seq, "variableSpecification")
        name = _read_object_name(_child(spec, "name"))
        aa = _child(seq, "alternateAccess", required=False)
        if aa is not None:
            name = name + (_read_index(aa),)
        out.append(name)
    return out


def _read_index(aa: ET.Element) -> int:
    """The one alternateAccess form supported: a single unnamed selectAccess index."""
    unsupported = PduError(
        "only alternateAccess of one array index is supported",
        "confirmed-requestPDU:unrecognized-modifier",
    )
    choices = list(aa)
    if len(choices) != 1:
        raise unsupported
    unnamed = _only(choices[0])
    if _local(unnamed) != "unnamed":
        raise unsupported
    select = _only(unnamed)
    if _local(select) != "selectAccess":
        raise unsupported
    index = _only(select)
    if _local(index) != "index":
        raise unsupported
    return _int(index, 0, 2**32 - 1)


def _vas(parent: ET.Element, spec: tuple) -> None:
    el = _el(parent, "variableAccessSpecification")
    if spec[0] == "listOfVariable":
        _var_defs(el, "listOfVariable", spec[1])
    else:
        _object_name(el, "variableListName", spec[1])


def _read_vas(el: ET.Element) -> tuple:
    alt = _only(el)
    kind = _local(alt)
    if kind == "listOfVariable":
        return (kind, _read_var_defs(alt))
    if kind == "variableListName":
        return (kind, _read_object_name(alt))
    raise PduError(f"unknown variableAccessSpecification {kind!r}")


def _file_name(parent: ET.Element, name: str, segments: list[str]) -> None:
    el = _el(parent, name)
    for seg in segments:
        _el(el, "GraphicString", seg)


def _read_file_name(el: ET.Element) -> list[str]:
    segs = []
    for g in el:
        if _local(g) != "GraphicString":
            raise PduError("FileName holds GraphicString elements")
        text = g.text or ""
        if not 1 <= len(text) <= 64:
            raise PduError("GraphicString must be 1..64 characters")
        segs.append(text)
    if not segs:
        raise PduError("empty FileName")
    return segs


# ---------------------------------------------------------------- Data
def _float_hex(value: float, width: int) -> str:
    # The 8-1 layout (exponent-width octet + IEEE 754) is decided in one place: mmsdata.
    try:
        return floating_point_octets(value, 64 if width == 64 else 32).hex()
    except MmsDataError as exc:
        raise PduError(str(exc)) from None


def _utc_hex(ts: Timestamp) -> str:
    return (
        (ts.seconds & 0xFFFFFFFF).to_bytes(4, "big")
        + (ts.fraction & 0xFFFFFF).to_bytes(3, "big")
        + bytes([ts.quality & 0xFF])
    ).hex()


_EPOCH_1984 = 441763200  # 1984-01-01T00:00:00Z in Unix seconds


def _btime_hex(ts: Timestamp) -> str:
    # TimeOfDay counts from 1984-01-01: earlier times (an unset EntryTime is 1970) become 1984.
    t = min(max(0.0, ts.to_float() - _EPOCH_1984), 65535 * 86400.0)
    days = min(65535, int(t // 86400))
    ms = min(86_399_999, int(round((t - days * 86400) * 1000)))
    return ms.to_bytes(4, "big").hex() + days.to_bytes(2, "big").hex()


def _data(parent: ET.Element, name: str, data: tuple) -> None:
    el = _el(parent, name)
    _data_into(el, data)


def _data_into(el: ET.Element, data: tuple) -> None:
    kind = data[0]
    if kind in ("structure", "array"):
        holder = _el(el, kind)
        for item in data[1]:
            _data(holder, "Data", item)
    elif kind == "boolean":
        _el(el, kind, "true" if data[1] else "false")
    elif kind in ("integer", "unsigned"):
        _el(el, kind, str(int(data[1])))
    elif kind == "floating-point":
        _el(el, kind, _float_hex(data[1], data[2] if len(data) > 2 else 32))
    elif kind == "bit-string":
        _el(el, kind, data[1])
    elif kind == "octet-string":
        _el(el, kind, bytes(data[1]).hex())
    elif kind == "visible-string":
        _el(el, kind, data[1])
    elif kind == "mMSString":
        _el(el, kind, data[1])
    elif kind == "utc-time":
        _el(el, kind, _utc_hex(data[1]))
    elif kind == "binary-time":
        _el(el, kind, _btime_hex(data[1]))
    else:
        raise PduError(f"unknown Data kind {kind!r}")


def _read_data(el: ET.Element, depth: int = 0) -> tuple:
    if depth > MAX_DATA_DEPTH:
        raise PduError("Data nested too deeply", "confirmed-requestPDU:max-recursion-exceeded")
    alt = _only(el)
    kind = _local(alt)
    if kind in ("structure", "array"):
        items = []
        for d in alt:
            if _local(d) != "Data":
                raise PduError(f"{kind} holds Data elements")
            items.append(_read_data(d, depth + 1))
        return (kind, items)
    if kind == "boolean":
        return (kind, _bool(alt))
    if kind == "integer":
        return (kind, _int(alt))
    if kind == "unsigned":
        return (kind, _int(alt, lo=0))
    if kind == "floating-point":
        raw = _hex(alt)
        try:
            return (kind, floating_point_value(raw), 32 if len(raw) == 5 else 64)
        except MmsDataError as exc:
            raise PduError(str(exc)) from None
    if kind == "bit-string":
        bits = _bits(alt)
        if not bits:
            raise PduError("empty bit string in Data")
        return (kind, bits)
    if kind == "octet-string":
        return (kind, _hex(alt))
    if kind == "visible-string":
        text = alt.text or ""
        if any(not " " <= c <= "~" for c in text):
            raise PduError("visible-string with characters outside ' '..'~'")
        return (kind, text)
    if kind == "mMSString":
        return (kind, alt.text or "")
    if kind == "utc-time":
        raw = _hex(alt)
        if len(raw) != 8:
            raise PduError("utc-time must be 8 octets")
        return (
            kind,
            Timestamp(int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:7], "big"), raw[7]),
        )
    if kind == "binary-time":
        raw = _hex(alt)
        if len(raw) not in (4, 6):
            raise PduError("binary-time must be 4 or 6 octets")
        ms = int.from_bytes(raw[:4], "big")
        days = int.from_bytes(raw[4:6], "big") if len(raw) == 6 else 0
        return (kind, Timestamp.from_float(_EPOCH_1984 + days * 86400 + ms / 1000))
    raise PduError(f"unknown Data alternative {kind!r}")


# ---------------------------------------------------------------- type descriptions
def _td(parent: ET.Element, name: str, td: tuple) -> None:
    el = _el(parent, name)
    _td_into(el, td)


def _td_into(el: ET.Element, td: tuple) -> None:
    kind = td[0]
    if kind == "structure":
        st = _el(el, "structure")
        comps = _el(st, "components")
        for cname, ctd in td[1]:
            seq = _el(comps, "SEQUENCE")
            _el(seq, "componentName", cname)
            spec = _el(seq, "componentType")
            _td(spec, "typeDescription", ctd)
    elif kind == "array":
        arr = _el(el, "array")
        _el(arr, "numberOfElements", td[1])
        spec = _el(arr, "elementType")
        _td(spec, "typeDescription", td[2])
    elif kind == "boolean" or kind == "utc-time":
        _el(el, kind)
    elif kind == "floating-point":
        fp = _el(el, kind)
        _el(fp, "format-width", 32 if td[1] == 32 else 64)
        _el(fp, "exponent-width", 8 if td[1] == 32 else 11)
    elif kind == "binary-time":
        _el(el, kind, "true" if td[1] else "false")
    elif kind in (
        "integer",
        "unsigned",
        "bit-string",
        "octet-string",
        "visible-string",
        "mMSString",
    ):
        _el(el, kind, td[1])
    else:
        raise PduError(f"unknown type kind {kind!r}")


def _read_td(el: ET.Element, depth: int = 0) -> tuple:
    if depth > MAX_DATA_DEPTH:
        raise PduError("TypeDescription nested too deeply")
    alt = _only(el)
    kind = _local(alt)
    if kind == "structure":
        comps = []
        for seq in _child(alt, "components"):
            spec = _child(seq, "componentType")
            comps.append(
                (
                    _text(_child(seq, "componentName")),
                    _read_td(_child(spec, "typeDescription"), depth + 1),
                )
            )
        return (kind, comps)
    if kind == "array":
        spec = _child(alt, "elementType")
        return (
            kind,
            _int(_child(alt, "numberOfElements"), lo=0),
            _read_td(_child(spec, "typeDescription"), depth + 1),
        )
    if kind in ("boolean", "utc-time"):
        return (kind,)
    if kind == "floating-point":
        return (kind, 32 if _int(_child(alt, "format-width")) == 32 else 64)
    if kind == "binary-time":
        return (kind, _bool(alt))
    if kind in ("integer", "unsigned", "bit-string", "octet-string", "visible-string", "mMSString"):
        return (kind, _int(alt))
    raise PduError(f"unknown TypeDescription {kind!r}")


# ---------------------------------------------------------------- service requests
def _encode_request(svc: ET.Element, service: str, args: Any) -> None:
    if service in ("getNameList", "extendedGetNameList"):
        object_class, scope, domain, continue_after = args
        el = _el(svc, service)
        oc = _el(el, "objectClass")
        boc = _el(oc, "basicObjectClass")
        _el(boc, object_class)
        sc = _el(el, "objectScope")
        if scope == "domainSpecific":
            _el(sc, scope, domain)
        else:
            _el(sc, scope)
        if continue_after:
            _el(el, "continueAfter", continue_after)
    elif service == "read":
        el = _el(svc, "read")
        _vas(el, args)
    elif service == "write":
        spec, datas = args
        el = _el(svc, "write")
        _vas(el, spec)
        lod = _el(el, "listOfData")
        for d in datas:
            _data(lod, "Data", d)
    elif service == "getVariableAccessAttributes":
        el = _el(svc, service)
        _object_name(el, "name", args)
    elif service == "defineNamedVariableList":
        name, members = args
        el = _el(svc, service)
        _object_name(el, "variableListName", name)
        _var_defs(el, "listOfVariable", members)
    elif service == "getNamedVariableListAttributes":
        el = _el(svc, service)
        alt = _object_name(ET.Element("x"), "x", args)
        for child in alt:
            el.append(child)
    elif service == "deleteNamedVariableList":
        scope, names, domain = args
        el = _el(svc, service)
        _el(_el(el, "scopeOfDelete"), scope)
        lst = _el(el, "listOfVariableListName")
        for n in names:
            _object_name(lst, "ObjectName", n)
        if domain:
            _el(el, "domainName", domain)
    elif service == "fileOpen":
        segments, position = args
        el = _el(svc, service)
        _file_name(el, "fileName", segments)
        _el(el, "initialPosition", position)
    elif service in ("fileRead", "fileClose"):
        _el(svc, service, args)
    elif service == "fileDelete":
        _file_name(svc, service, args)
    elif service == "fileDirectory":
        spec, after = args
        el = _el(svc, service)
        if spec:
            _file_name(el, "fileSpecification", spec)
        if after:
            _file_name(el, "continueAfter", after)
    elif service == "obtainFile":
        source, dest = args
        el = _el(svc, service)
        _file_name(el, "sourceFile", source)
        _file_name(el, "destinationFile", dest)
    else:
        raise PduError(f"cannot encode service {service!r}")


def _decode_request(alt: ET.Element) -> tuple[str, Any]:
    service = _local(alt)
    if service in ("getNameList", "extendedGetNameList"):
        oc = _only(_only(_child(alt, "objectClass")))
        scope = _only(_child(alt, "objectScope"))
        scope_name = _local(scope)
        domain = _identifier(scope) if scope_name == "domainSpecific" else None
        after = _child(alt, "continueAfter", required=False)
        return service, (
            _local(oc),
            scope_name,
            domain,
            _identifier(after) if after is not None else None,
        )
    if service == "read":
        return service, _read_vas(_child(alt, "variableAccessSpecification"))
    if service == "write":
        spec = _read_vas(_child(alt, "variableAccessSpecification"))
        datas = [_read_data(d) for d in _child(alt, "listOfData")]
        return service, (spec, datas)
    if service == "getVariableAccessAttributes":
        return service, _read_object_name(_child(alt, "name"))
    if service == "defineNamedVariableList":
        return service, (
            _read_object_name(_child(alt, "variableListName")),
            _read_var_defs(_child(alt, "listOfVariable")),
        )
    if service == "getNamedVariableListAttributes":
        return service, _read_object_name(alt)
    if service == "deleteNamedVariableList":
        sod = _child(alt, "scopeOfDelete", required=False)
        lst = _child(alt, "listOfVariableListName", required=False)
        names = [_read_object_name(n) for n in lst] if lst is not None else []
        dom = _child(alt, "domainName", required=False)
        return service, (
            _local(_only(sod)) if sod is not None else "specific",
            names,
            _identifier(dom) if dom is not None else None,
        )
    if service == "fileOpen":
        return service, (
            _read_file_name(_child(alt, "fileName")),
            _int(_child(alt, "initialPosition"), lo=0),
        )
    if service in ("fileRead", "fileClose"):
        return service, _int(alt)
    if service == "fileDelete":
        return service, _read_file_name(alt)
    if service == "fileDirectory":
        spec = _child(alt, "fileSpecification", required=False)
        after = _child(alt, "continueAfter", required=False)
        return service, (
            _read_file_name(spec) if spec is not None else None,
            _read_file_name(after) if after is not None else None,
        )
    if service == "obtainFile":
        return service, (
            _read_file_name(_child(alt, "sourceFile")),
            _read_file_name(_child(alt, "destinationFile")),
        )
    raise PduError(
        f"service {service!r} not supported", "confirmed-requestPDU:unrecognized-service"
    )


# ---------------------------------------------------------------- service responses
def _encode_response(svc: ET.Element, service: str, result: Any) -> None:
    if service in ("getNameList", "extendedGetNameList"):
        names, more = result
        el = _el(svc, service)
        lst = _el(el, "listOfIdentifier")
        for n in names:
            _el(lst, "Identifier", n)
        _el(el, "moreFollows", "true" if more else "false")
    elif service == "read":
        el = _el(svc, "read")
        lst = _el(el, "listOfAccessResult")
        for res in result:
            _access_result(lst, res)
    elif service == "write":
        el = _el(svc, "write")
        for code in result:
            ch = _el(el, "CHOICE")
            if code is None:
                _el(ch, "success")
            else:
                fail = _el(ch, "failure")
                _el(fail, code)
    elif service == "getVariableAccessAttributes":
        deletable, td = result
        el = _el(svc, service)
        _el(el, "mmsDeletable", "true" if deletable else "false")
        _td(el, "typeDescription", td)
    elif service in ("defineNamedVariableList", "obtainFile", "fileClose", "fileDelete"):
        _el(svc, service)
    elif service == "getNamedVariableListAttributes":
        deletable, members = result
        el = _el(svc, service)
        _el(el, "mmsDeletable", "true" if deletable else "false")
        _var_defs(el, "listOfVariable", members)
    elif service == "deleteNamedVariableList":
        matched, deleted = result
        el = _el(svc, service)
        _el(el, "numberMatched", matched)
        _el(el, "numberDeleted", deleted)
    elif service == "fileOpen":
        frsm, size, mtime = result
        el = _el(svc, service)
        _el(el, "frsmID", frsm)
        _file_attrs(el, size, mtime)
    elif service == "fileRead":
        data, more = result
        el = _el(svc, service)
        _el(el, "fileData", data.hex())
        _el(el, "moreFollows", "true" if more else "false")
    elif service == "fileDirectory":
        entries, more = result
        el = _el(svc, service)
        lst = _el(el, "listOfDirectoryEntry")
        for segments, size, mtime in entries:
            entry = _el(lst, "DirectoryEntry")
            _file_name(entry, "fileName", segments)
            _file_attrs(entry, size, mtime)
        _el(el, "moreFollows", "true" if more else "false")
    else:
        raise PduError(f"cannot encode a {service!r} response")


def _file_attrs(parent: ET.Element, size: int, mtime: str | None) -> None:
    fa = _el(parent, "fileAttributes")
    _el(fa, "sizeOfFile", size)
    if mtime:
        _el(fa, "lastModified", mtime)


def _read_file_attrs(el: ET.Element) -> tuple[int, str | None]:
    lm = _child(el, "lastModified", required=False)
    return _int(_child(el, "sizeOfFile"), lo=0), (_text(lm) or None)


def _access_result(parent: ET.Element, res: tuple) -> None:
    ar = _el(parent, "AccessResult")
    if res[0] == "success":
        _data(ar, "success", res[1])
    else:
        fail = _el(ar, "failure")
        _el(fail, res[1])


def _read_access_result(el: ET.Element) -> tuple:
    alt = _only(el)
    kind = _local(alt)
    if kind == "success":
        return ("success", _read_data(alt))
    if kind == "failure":
        return ("failure", _local(_only(alt)))
    raise PduError(f"unknown AccessResult {kind!r}")


def _decode_response(alt: ET.Element) -> tuple[str, Any]:
    service = _local(alt)
    if service in ("getNameList", "extendedGetNameList"):
        names = [_text(i) for i in _child(alt, "listOfIdentifier")]
        return service, (names, _bool(_child(alt, "moreFollows", required=False), True))
    if service == "read":
        return service, [_read_access_result(r) for r in _child(alt, "listOfAccessResult")]
    if service == "write":
        out: list[str | None] = []
        for ch in alt:
            a = _only(ch)
            out.append(None if _local(a) == "success" else _local(_only(a)))
        return service, out
    if service == "getVariableAccessAttributes":
        return service, (
            _bool(_child(alt, "mmsDeletable")),
            _read_td(_child(alt, "typeDescription")),
        )
    if service in ("defineNamedVariableList", "obtainFile", "fileClose", "fileDelete"):
        return service, None
    if service == "getNamedVariableListAttributes":
        return service, (
            _bool(_child(alt, "mmsDeletable")),
            _read_var_defs(_child(alt, "listOfVariable")),
        )
    if service == "deleteNamedVariableList":
        return service, (
            _int(_child(alt, "numberMatched")),
            _int(_child(alt, "numberDeleted")),
        )
    if service == "fileOpen":
        size, mtime = _read_file_attrs(_child(alt, "fileAttributes"))
        return service, (_int(_child(alt, "frsmID")), size, mtime)
    if service == "fileRead":
        return service, (
            _hex(_child(alt, "fileData")),
            _bool(_child(alt, "moreFollows", required=False), True),
        )
    if service == "fileDirectory":
        entries = []
        for entry in _child(alt, "listOfDirectoryEntry"):
            size, mtime = _read_file_attrs(_child(entry, "fileAttributes"))
            entries.append((_read_file_name(_child(entry, "fileName")), size, mtime))
        return service, (entries, _bool(_child(alt, "moreFollows", required=False), False))
    raise PduError(f"unknown response service {service!r}")


# ---------------------------------------------------------------- errors
def _service_error(parent: ET.Element, name: str, err: tuple) -> None:
    cls, code, text = err
    el = _el(parent, name)
    ec = _el(el, "errorClass")
    if cls == "others":
        _el(ec, "others", code)
    else:
        c = _el(ec, cls)
        _el(c, code)
    if text:
        _el(
            el,
            "additionalDescription",
            "".join(ch if " " <= ch <= "~" else "?" for ch in text)[:200],
        )


def _read_service_error(el: ET.Element) -> tuple[str, str, str]:
    cls_el = _only(_child(el, "errorClass"))
    cls = _local(cls_el)
    code = _text(cls_el) if cls == "others" else _local(_only(cls_el))
    return cls, code, _text(_child(el, "additionalDescription", required=False))


# ---------------------------------------------------------------- PDUs
def _initiate(el: ET.Element, prefix: str, p: InitiateParams, request: bool) -> None:
    _el(el, "localDetailCalling" if request else "localDetailCalled", p.max_pdu_size)
    _el(el, f"{prefix}MaxServOutstandingCalling", p.max_outstanding_calling)
    _el(el, f"{prefix}MaxServOutstandingCalled", p.max_outstanding_called)
    _el(el, f"{prefix}DataStructureNestingLevel", p.nesting_level)
    detail = _el(el, "initRequestDetail" if request else "initResponseDetail")
    _el(detail, f"{prefix}VersionNumber", p.version)
    _el(detail, f"{prefix}ParameterCBB", p.parameter_cbb)
    _el(
        detail,
        "servicesSupportedCalling" if request else "servicesSupportedCalled",
        services_to_bits(p.services),
    )


def _read_initiate(el: ET.Element, prefix: str, request: bool) -> InitiateParams:
    detail = _child(el, "initRequestDetail" if request else "initResponseDetail")
    local = _child(el, "localDetailCalling" if request else "localDetailCalled", required=False)
    nesting = _child(el, f"{prefix}DataStructureNestingLevel", required=False)
    return InitiateParams(
        max_pdu_size=_int(local, lo=0, hi=2**31 - 1) if local is not None else 65000,
        max_outstanding_calling=_int(
            _child(el, f"{prefix}MaxServOutstandingCalling"), -32768, 32767
        ),
        max_outstanding_called=_int(_child(el, f"{prefix}MaxServOutstandingCalled"), -32768, 32767),
        nesting_level=_int(nesting, -128, 127) if nesting is not None else 5,
        version=_int(_child(detail, f"{prefix}VersionNumber"), -32768, 32767),
        parameter_cbb=_bits(_child(detail, f"{prefix}ParameterCBB")),
        services=bits_to_services(
            _bits(
                _child(detail, "servicesSupportedCalling" if request else "servicesSupportedCalled")
            )
        ),
    )


def encode(pdu: tuple) -> ET.Element:
    """Neutral PDU tuple -> ``MMSpdu`` element.

    Forms: ``("confirmed-RequestPDU", invoke_id, service, args)``,
    ``("confirmed-ResponsePDU", invoke_id, service, result)``,
    ``("confirmed-ErrorPDU", invoke_id, (class, code, text))``,
    ``("initiate-RequestPDU"|"initiate-ResponsePDU", InitiateParams)``,
    ``("initiate-ErrorPDU"|"conclude-ErrorPDU", (class, code, text))``,
    ``("conclude-RequestPDU",)``, ``("conclude-ResponsePDU",)``,
    ``("rejectPDU", original_invoke_id | None, "group:reason")``,
    ``("cancel-RequestPDU"|"cancel-ResponsePDU", invoke_id)``,
    ``("cancel-ErrorPDU", invoke_id, (class, code, text))``,
    ``("informationReport", spec, [AccessResult])``.
    """
    root = ET.Element(_P + "MMSpdu")
    kind = pdu[0]
    if kind == "confirmed-RequestPDU":
        el = _el(root, kind)
        _el(el, "invokeID", pdu[1])
        _encode_request(_el(el, "service"), pdu[2], pdu[3])
    elif kind == "confirmed-ResponsePDU":
        el = _el(root, kind)
        _el(el, "invokeID", pdu[1])
        _encode_response(_el(el, "service"), pdu[2], pdu[3])
    elif kind == "confirmed-ErrorPDU":
        el = _el(root, kind)
        _el(el, "invokeID", pdu[1])
        _service_error(el, "serviceError", pdu[2])
    elif kind == "initiate-RequestPDU":
        _initiate(_el(root, kind), "proposed", pdu[1], True)
    elif kind == "initiate-ResponsePDU":
        _initiate(_el(root, kind), "negotiated", pdu[1], False)
    elif kind in ("initiate-ErrorPDU", "conclude-ErrorPDU"):
        _service_error(root, kind, pdu[1])
    elif kind in ("conclude-RequestPDU", "conclude-ResponsePDU"):
        _el(root, kind)
    elif kind in ("cancel-RequestPDU", "cancel-ResponsePDU"):
        _el(root, kind, pdu[1])
    elif kind == "cancel-ErrorPDU":
        el = _el(root, kind)
        _el(el, "originalInvokeID", pdu[1])
        _service_error(el, "serviceError", pdu[2])
    elif kind == "rejectPDU":
        el = _el(root, kind)
        if pdu[1] is not None:
            _el(el, "originalInvokeID", pdu[1])
        group, _, reason = pdu[2].partition(":")
        if not (_REJECT_PART.fullmatch(group) and _REJECT_PART.fullmatch(reason)):
            raise PduError(f"not a reject reason: {pdu[2][:60]!r}")
        rr = _el(el, "rejectReason")
        _el(_el(rr, group), reason)
    elif kind == "informationReport":
        el = _el(root, "unconfirmed-PDU")
        ir = _el(_el(el, "service"), "informationReport")
        _vas(ir, pdu[1])
        lst = _el(ir, "listOfAccessResult")
        for res in pdu[2]:
            _access_result(lst, res)
    else:
        raise PduError(f"cannot encode PDU kind {kind!r}")
    return root


def decode(root: ET.Element) -> tuple:
    """``MMSpdu`` element -> neutral PDU tuple (see :func:`encode`); raises :class:`PduError`."""
    if root.tag != _P + "MMSpdu":
        raise PduError(f"payload root is {root.tag!r}, not MMSpdu", "pdu-error:unknown-pdu-type")
    alt = _only(root)
    kind = _local(alt)
    invoke_id: int | None = None
    try:
        if kind == "confirmed-RequestPDU":
            invoke_id = _int(_child(alt, "invokeID"), 0, 2**32 - 1)
            service, args = _decode_request(_only(_child(alt, "service")))
            return (kind, invoke_id, service, args)
        if kind == "confirmed-ResponsePDU":
            invoke_id = _int(_child(alt, "invokeID"), 0, 2**32 - 1)
            service, result = _decode_response(_only(_child(alt, "service")))
            return (kind, invoke_id, service, result)
        if kind == "confirmed-ErrorPDU":
            invoke_id = _int(_child(alt, "invokeID"), 0, 2**32 - 1)
            return (kind, invoke_id, _read_service_error(_child(alt, "serviceError")))
        if kind == "initiate-RequestPDU":
            return (kind, _read_initiate(alt, "proposed", True))
        if kind == "initiate-ResponsePDU":
            return (kind, _read_initiate(alt, "negotiated", False))
        if kind in ("initiate-ErrorPDU", "conclude-ErrorPDU"):
            return (kind, _read_service_error(alt))
        if kind in ("conclude-RequestPDU", "conclude-ResponsePDU"):
            if len(alt) or _text(alt):
                raise PduError(f"{kind} is NULL")
            return (kind,)
        if kind in ("cancel-RequestPDU", "cancel-ResponsePDU"):
            return (kind, _int(alt, 0, 2**32 - 1))
        if kind == "cancel-ErrorPDU":
            return (
                kind,
                _int(_child(alt, "originalInvokeID")),
                _read_service_error(_child(alt, "serviceError")),
            )
        if kind == "rejectPDU":
            orig = _child(alt, "originalInvokeID", required=False)
            rr = _only(_child(alt, "rejectReason"))
            return (
                kind,
                _int(orig) if orig is not None else None,
                f"{_local(rr)}:{_local(_only(rr))}",
            )
        if kind == "unconfirmed-PDU":
            ir = _only(_child(alt, "service"))
            if _local(ir) != "informationReport":
                raise PduError("unknown unconfirmed service")
            return (
                "informationReport",
                _read_vas(_child(ir, "variableAccessSpecification")),
                [_read_access_result(r) for r in _child(ir, "listOfAccessResult")],
            )
    except PduError as exc:
        if exc.invoke_id is None:
            exc.invoke_id = invoke_id
        raise
    except (RecursionError, TypeError, AttributeError, IndexError) as exc:
        raise PduError(f"malformed {kind}: {exc}", invoke_id=invoke_id) from None
    raise PduError(f"unknown PDU {kind!r}", "pdu-error:unknown-pdu-type")
