"""Fast path of the 8-2 codec: the lxml decoders/encoders that codegen emits from the XSD.

xsdata's generic binding engine spends ~15x what a direct lxml walk needs, which matters for
report floods and data-set reads. ``gridbind codegen xsd`` therefore also writes
``gridbind.generated.iec61850_8_2.fastxer``: one specialised decoder and one encoder per
generated class, built from xsdata's own metadata of those classes, so the typed API stays the
xsdata classes and the output is what xsdata writes, byte for byte. This module adapts it to the
codec: it covers every PDU of the schema set (MMSpdu and the E2E envelopes); for a document or
object it has no code for it answers :data:`NOT_FAST` / ``None`` and the codec uses xsdata.

Decoders trust the tree shape because the codec has validated it against the XSD in the parsing
pass; they only bound the nesting depth (:class:`gridbind.iec61850.codec.LimitExceeded`).
``tests/iec61850/test_codec_fast.py`` and the property tests compare both paths.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from gridbind.generated.iec61850_8_2 import fastxer as _generated
from gridbind.generated.iec61850_8_2 import scsm_8_2 as _scsm

__all__ = ["NOT_FAST", "decode", "encode", "decode_mmspdu", "encode_mmspdu"]


class _NotFast:
    """Marker: this document is not covered by the fast path."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_FAST"


NOT_FAST: Any = _NotFast()


def decode(root: etree._Element, max_depth: int = 64, tag: str | None = None) -> Any:
    """A schema-valid root element -> typed object, or :data:`NOT_FAST`.

    ``tag``: ``root.tag`` when the caller has read it already (lxml builds the string anew on
    every access).
    """
    try:
        return _generated.decode(root, max_depth, tag)
    except _generated.NotCovered:
        return NOT_FAST
    except _generated.TooDeep:
        from gridbind.iec61850.codec import LimitExceeded

        raise LimitExceeded(f"elements nested deeper than {max_depth}") from None
    except (ValueError, TypeError):
        # A value the schema accepts but Python cannot convert the same way: let xsdata decide.
        return NOT_FAST


def encode(obj: Any, nsmap: dict[str | None, str]) -> etree._Element | None:
    """Typed root object -> new lxml element, or None when not covered (or not encodable here)."""
    try:
        return _generated.encode(obj, nsmap)
    except (_generated.NotCovered, AttributeError, TypeError, ValueError):
        # Unknown or malformed objects go through xsdata, which reports them in its own words.
        return None


def decode_mmspdu(root: etree._Element, max_depth: int = 64) -> Any:
    """Alias of :func:`decode` kept for the MMSpdu-only callers."""
    return decode(root, max_depth)


def encode_mmspdu(pdu: Any) -> etree._Element | None:
    """:func:`encode` with the 8-2 namespace as default namespace."""
    return encode(pdu, {None: _scsm.__NAMESPACE__})
