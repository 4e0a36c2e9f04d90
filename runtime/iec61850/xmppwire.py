"""8-2 payload stanzas on slixmpp's stream, serialised once by the codec.

slixmpp serialises a stanza by walking its ``xml.etree`` tree in Python, element by element,
and 8-2 payloads are trees of a dozen or more elements. The codec already produces the
payload's bytes (lxml's serialiser, after the schema check), so :class:`WireIq` and
:class:`WireMessage` carry those bytes next to a childless stanza element holding only the
routing attributes, and :func:`serialise` (an ``out_sync`` filter of the slixmpp client, added
after XEP-0198's counter) hands slixmpp the finished bytes, which its send queue writes as they
are. The stanzas stay real :class:`slixmpp.Iq` / :class:`slixmpp.Message` objects, so XEP-0198
counts them and keeps them for a resend; a resend goes around the filters, so
:func:`materialise` first puts the payload element into the stanza (the adapter does it in its
``send`` wrapper).

The bytes are what the codec wrote: no carriage return in text is left raw (lxml writes it as
``&#13;``), and the attribute values are escaped here the same way; a tab, line feed or
carriage return in one is a character reference, as attribute-value normalisation would turn
it raw into a space at the receiver.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from slixmpp import Iq, Message

__all__ = ["WireIq", "WireMessage", "iq", "message", "serialise", "materialise"]

_IQ_TAG = "{jabber:client}iq"
_MESSAGE_TAG = "{jabber:client}message"
_ATTR_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\r": "&#13;",
        "\n": "&#10;",
    }
)


def _attr(value: str) -> str:
    return value.translate(_ATTR_ESCAPES)


class _Wired:
    """What a wire stanza adds to slixmpp's: the finished bytes and the payload's own."""

    xml: ET.Element
    wire: bytes
    payload: bytes | None
    materialised: bool


class WireIq(Iq, _Wired):
    """An iq whose 8-2 payload travels as the codec's bytes."""


class WireMessage(Message, _Wired):
    """A message whose 8-2 payload travels as the codec's bytes."""


def _finish(stanza: Any, name: str, attrs: dict[str, str], payload: bytes | None) -> None:
    # an empty value is no attribute, as in slixmpp (a request without id or sender)
    head = "<" + name + "".join(f' {k}="{_attr(v)}"' for k, v in attrs.items() if v)
    if payload is None:
        stanza.wire = (head + "/>").encode()
    else:
        stanza.wire = b"".join(((head + ">").encode(), payload, f"</{name}>".encode()))
    stanza.payload = payload
    stanza.materialised = payload is None


def iq(stream: Any, itype: str, to: str, sid: str, payload: bytes | None) -> WireIq:
    """An ``iq`` of ``itype`` to ``to`` with id ``sid`` carrying ``payload`` (or nothing)."""
    attrs = {"type": itype, "to": to, "id": sid}
    stanza = WireIq(stream, ET.Element(_IQ_TAG, {k: v for k, v in attrs.items() if v}), recv=True)
    _finish(stanza, "iq", attrs, payload)
    return stanza


def message(stream: Any, to: str, payload: bytes) -> WireMessage:
    """A ``message type='normal'`` to ``to`` carrying ``payload``."""
    attrs = {"type": "normal", "to": to}
    stanza = WireMessage(stream, ET.Element(_MESSAGE_TAG, attrs), recv=True)
    _finish(stanza, "message", attrs, payload)
    return stanza


def serialise(stanza: Any) -> Any:
    """slixmpp out filter: a wire stanza's bytes (sent as they are), any other stanza as is."""
    if isinstance(stanza, _Wired):
        return stanza.wire
    return stanza


def materialise(stanza: Any) -> None:
    """Put a wire stanza's payload into its element, for a send that bypasses the filters
    (XEP-0198's resend after a resumption): slixmpp then serialises the element itself."""
    if isinstance(stanza, _Wired) and not stanza.materialised and stanza.payload is not None:
        stanza.xml.append(ET.fromstring(stanza.payload))
        stanza.materialised = True
