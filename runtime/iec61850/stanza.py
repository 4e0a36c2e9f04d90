"""The stanza level of IEC 61850-8-2, shared by every transport (XMPP, in-memory).

What an 8-2 payload looks like inside a stanza, and nothing about how stanzas move:

- :func:`stanza_for_pdu`: Annex D Table D.1 (which stanza and type carries which PDU/service);
- :func:`unwrap`: the one 8-2 child of a received stanza (structure only);
- :func:`decode_payload`: the strict codec gate (injected: a :class:`~.codec.Codec`) turns it into
  the typed object (``Mmspdu`` or an envelope such as ``AssociationContext``) in one validating
  decode, measuring the MMSpdu's octets for the PDU size limit on the way (an AES-GCM
  ``EncrTransfer`` of the usual shape is read directly by :func:`.e2ewire.read`, which leaves
  every other form to that decode);
- :func:`payload_bytes`: a typed payload's bytes for a stanza (the envelope of E2E off cached,
  the per-message E2E envelopes written around their values by :mod:`.e2ewire`);
- :func:`payload_element`: a typed payload as an ``xml.etree`` element (in-memory transport);
- :class:`Received`: a received stanza as the protocol cores see it.

Namespaces come from the generated module; the transport errors (:class:`XmppError` and kin) are
defined here so that every transport raises the same ones.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from gridbind.errors import RemoteError
from gridbind.generated.iec61850_8_2 import e2e_4 as _e2e
from gridbind.generated.iec61850_8_2 import scsm_8_2 as _scsm
from gridbind.iec61850.errors import Iec61850Error

from . import codec as _codec
from . import e2ewire as _e2ewire
from .envelope import PP_8_2, association_id, names_8_2

__all__ = [
    "PAYLOAD_NS",
    "ASSOC_NS",
    "RESOURCE",
    "stanza_for_pdu",
    "Received",
    "Found",
    "unwrap",
    "decode_payload",
    "payload_bytes",
    "payload_element",
    "to_bytes",
    "to_bytes_with_inner",
    "XmppError",
    "LinkLost",
    "RequestTimeout",
    "InvalidPayload",
    "StanzaError",
    "error_text",
    "answer_matches",
]

#: Namespace of the 8-2 payload (version 2018, revision A, release 1).
PAYLOAD_NS: str = _scsm.__NAMESPACE__
#: Namespace of the IEC 62351-4 envelopes (``AssociationContext`` with E2E security off).
ASSOC_NS: str = _e2e.__NAMESPACE__
#: The resource every 8-2 entity binds (Annex D).
RESOURCE = "IEC"
#: Seconds an endpoint still takes the answer to a request that timed out (or whose requester
#: gave up, after the request's own time limit): nobody gets it, but an E2E shell must still
#: open it (``on_answer``) or the peer's next envelope breaks the sequence and ends the
#: association. Bounds how long such a request is remembered.
LATE_ANSWER_GRACE = 5.0
_MMSPDU_TAG = "{" + PAYLOAD_NS + "}MMSpdu"
_ASSOC_TAG = "{" + ASSOC_NS + "}AssociationContext"
_APPL_TAG = "{" + ASSOC_NS + "}applData"
_ENCR_TAG = "{" + ASSOC_NS + "}EncrTransfer"

# Annex D, Table D.1: confirmed request services carried in iq get; all others in iq set.
_IQ_GET_SERVICES = frozenset(
    {
        "getNameList",
        "read",
        "getVariableAccessAttributes",
        "getNamedVariableListAttributes",
        "readJournal",
        "fileRead",
        "fileDirectory",
        "obtainFile",
        "extendedGetNameList",
    }
)
_IQ_SET_SERVICES = frozenset(
    {
        "write",
        "defineNamedVariableList",
        "deleteNamedVariableList",
        "fileOpen",
        "fileClose",
        "fileDelete",
    }
)
_RESULTS = frozenset(
    {
        "confirmed-ResponsePDU",
        "confirmed-ErrorPDU",
        "cancel-ResponsePDU",
        "cancel-ErrorPDU",
        "conclude-ResponsePDU",
        "conclude-ErrorPDU",
        "initiate-ResponsePDU",
        "initiate-ErrorPDU",
    }
)


def error_text(text: str, limit: int = 500) -> str:
    """A stanza error text that may quote peer input: at most ``limit`` characters, each one
    XML 1.0 can carry (others, CR included, become ``?``)."""
    return "".join(
        (
            c
            if c in "\t\n" or " " <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd" or c >= "\U00010000"
            else "?"
        )
        for c in text[:limit]
    )


def answer_matches(asked: str, sender: str) -> bool:
    """Whether an iq answer from ``sender`` may answer a request sent to ``asked`` (the full JID
    asked, or any resource of a bare JID asked), as slixmpp matches them."""
    if sender == asked:
        return True
    return "/" not in asked and sender.split("/", 1)[0] == asked


def stanza_for_pdu(pdu: str, service: str | None = None) -> tuple[str, str]:
    """Annex D Table D.1: ``(stanza, type)`` carrying a PDU (and, for requests, its service).

    ``pdu`` is the MMSpdu alternative (``confirmed-RequestPDU``, ``rejectPDU``, ...). Raises
    ``ValueError`` for a PDU or service that has no mapping (the caller rejects it).
    """
    if pdu == "confirmed-RequestPDU":
        if service in _IQ_GET_SERVICES:
            return ("iq", "get")
        if service in _IQ_SET_SERVICES:
            return ("iq", "set")
        raise ValueError(f"service {service!r} is not mapped to XMPP (Annex D)")
    if pdu in _RESULTS:
        return ("iq", "result")
    if pdu in {"unconfirmed-PDU", "rejectPDU"}:
        return ("message", "normal")
    if pdu == "cancel-RequestPDU":
        return ("iq", "get")
    if pdu in {"conclude-RequestPDU", "initiate-RequestPDU"}:
        return ("iq", "set")
    raise ValueError(f"PDU {pdu!r} is not mapped to XMPP (Annex D)")


# ---------------------------------------------------------------------------------- errors
class XmppError(Iec61850Error):
    """Base class of transport errors."""


class LinkLost(XmppError, RemoteError):
    """The session ended for good (e.g. an RFC 6120 stream error such as ``conflict``) while a
    request waited for its answer, or before it was sent."""


class RequestTimeout(XmppError, RemoteError):
    """No answer to an iq within the time limit."""


class InvalidPayload(XmppError, RemoteError):
    """An answer failed the strict gate (envelope or payload) or came in another association."""


class StanzaError(XmppError, RemoteError):
    """A peer (or the XMPP server) answered with an RFC 6120 stanza error (Table D.2).

    ``by``: the error element's ``by`` attribute (RFC 6120 8.3.2, the entity that generated the
    error), when the answer carried one."""

    def __init__(self, condition: str, text: str = "", etype: str = "cancel", by: str = "") -> None:
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition = condition
        self.text = text
        self.etype = etype
        self.by = by


# ---------------------------------------------------------------------------------- received
@dataclass
class Received:
    """An 8-2 stanza received, its payload decoded (or refused) by the strict gate.

    ``payload`` is the typed ``Mmspdu`` (outside an association) or envelope; None when
    ``error`` says why the gate refused it, in which case ``invoke_id`` is the invokeID of a
    refused confirmed request when it could be read (for the rejectPDU). ``size``: octets of the
    serialised MMSpdu (for the negotiated PDU size).
    """

    kind: str  # "iq" | "message"
    type: str
    sender: str  # full JID
    id: str
    payload: Any = None
    association: str | None = None
    error: Exception | None = None
    invoke_id: int | None = None
    size: int = 0
    #: The transport's handle of the stanza (for the reply).
    handle: Any = field(default=None, repr=False)


@dataclass
class Found:
    """The 8-2 child of a stanza: the element, the MMSpdu inside an envelope, and a problem."""

    element: ET.Element
    inner: ET.Element | None
    association: str | None
    problem: str | None


def _local_of(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _is_8_2(tag: Any) -> bool:
    # A PAYLOAD_NS or E2E element is 8-2 traffic; so is an MMSpdu or AssociationContext in another
    # namespace (refused as malformed rather than left to the default "feature-not-implemented").
    if not isinstance(tag, str):
        return False
    if tag.startswith(("{" + PAYLOAD_NS + "}", "{" + ASSOC_NS + "}")):
        return True
    return _local_of(tag) in ("MMSpdu", "AssociationContext")


def is_8_2(xml: ET.Element) -> bool:
    """True when a stanza carries an 8-2 payload (for a transport's stanza matcher)."""
    return any(_is_8_2(child.tag) for child in xml)


def unwrap(xml: ET.Element) -> Found | None:
    """The 8-2 content of a stanza (structure only; the schema check is the gate's), or None."""
    children = [c for c in xml if isinstance(c.tag, str)]
    ours = [c for c in children if _is_8_2(c.tag)]
    if not ours:
        return None
    first = ours[0]
    problem = None
    if len(ours) > 1:
        problem = f"{len(ours)} payloads in one stanza"
    elif _local_of(xml.tag) == "iq" and len(children) > 1:
        problem = "an iq request carries exactly one payload (RFC 6120)"
    elif not first.tag.startswith(("{" + PAYLOAD_NS + "}", "{" + ASSOC_NS + "}")):
        problem = (
            f"{_local_of(first.tag)} in namespace {first.tag[1:].split('}')[0]!r} is not 8-2"
            if first.tag.startswith("{")
            else f"{first.tag} without namespace"
        )
    inner = None
    association = None
    if first.tag == _ASSOC_TAG:
        asso = first.find("{" + ASSOC_NS + "}assoID")
        association = asso.text if asso is not None else None
        appl = first.find(_APPL_TAG)
        if appl is not None:
            inner = appl.find(_MMSPDU_TAG)
    elif first.tag.startswith("{" + ASSOC_NS + "}"):
        # Another E2E envelope (ClearTransfer...): its MMSpdu, wherever the schema puts it.
        inner = first.find(".//" + _MMSPDU_TAG)
    return Found(first, inner, association, problem)


def _invoke_id_of(element: ET.Element) -> int | None:
    """The invokeID of a request the gate refused, when it is readable (for the rejectPDU)."""
    root = element
    if element.tag != _MMSPDU_TAG:
        appl = element.find(_APPL_TAG)
        inner = appl.find(_MMSPDU_TAG) if appl is not None else None
        if inner is None:
            return None
        root = inner
    el = root.find(f"{{{PAYLOAD_NS}}}confirmed-RequestPDU/{{{PAYLOAD_NS}}}invokeID")
    text = (el.text or "").strip() if el is not None else ""
    return (
        int(text)
        if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) < 1 << 32
        else None
    )


def decode_payload(found: Found, gate: _codec.Codec, item: Received) -> Received:
    """Fill ``item`` with the typed payload of ``found`` (or the gate's refusal)."""
    item.association = found.association
    if found.problem is not None:
        item.error = _codec.SchemaViolation(found.problem)
        item.invoke_id = _invoke_id_of(found.element)
        return item
    if found.element.tag == _ENCR_TAG:
        # An encrypted association's envelope of the usual shape: read directly (a subset of
        # what the schema accepts, the same value); any other goes the generic way below.
        fast = _e2ewire.read(found.element, gate.limits.max_bytes)
        if fast is not None:
            item.payload, item.size = fast
            item.association = fast[0].tbp.token2.asso_id
            return item
    try:
        if found.inner is not None:
            # One serialisation: the envelope's octets, and the MMSpdu's own size within them.
            data, item.size = to_bytes_with_inner(found.element, found.inner)
        else:
            data = to_bytes(found.element)
            item.size = len(data)
        item.payload = gate.decode(data)
        item.association = association_id(item.payload)
    except RecursionError:
        item.error = _codec.LimitExceeded("elements nested too deep to serialise")
    except _codec.CodecError as exc:
        item.error = exc
    if item.error is not None:
        item.invoke_id = _invoke_id_of(found.element)
    return item


#: The bare AssociationContext's bytes before and after its MMSpdu, per (pp given, assoID):
#: the same for every PDU of an association. Bounded (assoIDs come from peers too).
_CONTEXT_PARTS: dict[tuple[bool, str], tuple[bytes, bytes]] = {}
_CONTEXT_MAX = 1024
_PROBE = _scsm.Mmspdu(choice=_scsm.Mmspdu.ConcludeRequestPdu())
_PROBE_BYTES = b"<mms:MMSpdu><mms:conclude-RequestPDU/></mms:MMSpdu>"


def payload_bytes(obj: Any, gate: _codec.Codec) -> bytes:
    """A typed payload (``Mmspdu`` or envelope) as the bytes a stanza carries, encoded and
    schema-validated by the gate.

    A bare ``AssociationContext`` (E2E off) is its association's constant envelope, encoded
    and validated once, around the MMSpdu encoded and validated on its own: the schema's
    ``applData`` holds the global ``MMSpdu`` element by reference, so the check is the same.
    ``EncrTransfer`` and ``ClearTransfer`` are written by :mod:`.e2ewire` (the gate's bytes, from
    a validated probe per association and values checked against their schema forms).
    """
    if type(obj) is _e2e.AssociationContext:
        appl, pp, asso_id = obj.appl_data, obj.pp, obj.asso_id
        if (
            type(appl) is _e2e.ApplData
            and type(appl.mmspdu) is _scsm.Mmspdu
            and type(asso_id) is str
            and (pp is None or (isinstance(pp, _e2e.ProtectedProtocol) and names_8_2(pp)))
        ):
            key = (pp is not None, asso_id)
            parts = _CONTEXT_PARTS.get(key) or _context_parts(key, gate)
            pdu = _e2ewire.mms_bytes(appl.mmspdu, gate) if parts is not None else None
            if parts is not None and pdu is not None:  # the gate's bytes, prefix and all
                return parts[0] + pdu + parts[1]
    elif type(obj) is _e2e.EncrTransfer:
        data = _e2ewire.write(obj, gate)
        if data is not None:
            return data
    elif type(obj) is _e2e.ClearTransfer:
        data = _e2ewire.write_clear(obj, gate)
        if data is not None:
            return data
    return gate.encode(obj)


def _context_parts(key: tuple[bool, str], gate: _codec.Codec) -> tuple[bytes, bytes] | None:
    probe = _e2e.AssociationContext(
        pp=PP_8_2 if key[0] else None, asso_id=key[1], appl_data=_e2e.ApplData(mmspdu=_PROBE)
    )
    data = gate.encode(probe)  # validated: a bad assoID fails here as it would in the whole
    if data.count(_PROBE_BYTES) != 1:
        return None
    head, _, tail = data.partition(_PROBE_BYTES)
    if len(_CONTEXT_PARTS) >= _CONTEXT_MAX:
        _CONTEXT_PARTS.clear()
    _CONTEXT_PARTS[key] = (head, tail)
    return head, tail


def payload_element(obj: Any, gate: _codec.Codec) -> ET.Element:
    """A typed payload (``Mmspdu`` or envelope) as the ``xml.etree`` element of a stanza.

    Encoded (and schema-validated) by the gate; the lxml tree is copied into ``xml.etree``
    element by element, about twice as fast as serialising and parsing it again.
    """
    source = gate.to_element(obj)
    root = ET.Element(str(source.tag), dict(source.attrib))  # the encoder's tags are str
    root.text = source.text
    _copy_children(source, root)
    return root


def _copy_children(source: Any, target: ET.Element) -> None:
    # The encoder's own tree: bounded depth (the schema's), elements only (no comments/PIs).
    sub = ET.SubElement
    for child in source:
        copy = (
            sub(target, child.tag, dict(child.attrib)) if child.attrib else sub(target, child.tag)
        )
        copy.text = child.text
        copy.tail = child.tail
        if len(child):
            _copy_children(child, copy)


# ---------------------------------------------------------------------------------- bytes
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
