"""Strict XER codec of IEC 61850-8-2: bytes or XML elements <-> the generated typed classes.

Decode (untrusted input)::

    from gridbind.iec61850 import codec
    pdu = codec.decode_pdu(data)            # bytes/str, an lxml element or an xml.etree element
    match pdu.choice:                       # gridbind.generated.iec61850_8_2.Mmspdu
        case m.ConfirmedRequestPdu(invoke_id=i, service=s): ...
    env = codec.decode(data)                # any global element: Mmspdu or an E2E envelope
                                            # (ClearTransfer, HandshakeReq, ... of E2E_4)

Encode::

    data = codec.encode(pdu)                # bytes, no XML declaration, default namespace
    el = codec.to_element(pdu)              # lxml element (a fresh tree the caller owns)
    el = codec.to_etree(pdu)                # xml.etree element (what slixmpp wants)
    codec.pdu_names(pdu)                    # ("confirmed-RequestPDU", "read"): Annex D lookup

E2E envelopes are encoded with their namespace as default namespace and the 8-2 namespace under
the prefix ``mms`` (``<ClearTransfer xmlns="...E2E_4" xmlns:mms="...SCSM_8_2">``).

What "strict" means here, in this order:

1. Input limits before any parsing: at most ``Limits.max_bytes`` (default 1 MiB); UTF-8 only
   (decoded as UTF-8 whatever the declaration says);
   any ``<!DOCTYPE``/``<!ENTITY`` is refused (:class:`ForbiddenXml`), so no DTD, entity, billion
   laughs or external entity can reach the parser.
2. One lxml parse with recover, DTD loading, entity resolution, XInclude and network all off,
   comments and processing instructions dropped, libxml2's own depth/size guards on, and the
   XMLSchema of the generated XSD set attached to the parser: validation happens in the same pass
   (:class:`MalformedXml`, :class:`SchemaViolation`, :class:`UnknownRoot`).
3. An application nesting limit (``Limits.max_depth``, default 64 elements) checked while the
   typed object is built (:class:`LimitExceeded`).
4. The typed object is built by the fast path (:mod:`gridbind.iec61850.fastxer`: lxml decoders
   emitted by codegen for every generated class) or, for anything it does not cover, by xsdata
   with one shared, warmed ``XmlContext``, ``fail_on_converter_warnings`` and a fresh ``ns_map``
   per call.

Elements handed in are never modified. Both kinds are first bounded on the caller's tree by one
walk that stops early (depth, a lower bound of the serialised size against ``max_bytes``, lxml
entity-reference nodes refused), so hostile trees are refused before any copy. An ``xml.etree``
element is then serialised and parsed again through the strict path above; an lxml element is
copied and validated (xsdata empties the trees it parses, so it never sees the caller's tree).

Every failure is a :class:`CodecError` subclass with a one-line message naming the place (line or
element path) and the reason. Encoding validates the produced tree against the schema by default
(``validate=False`` to skip), so a too-long identifier or a bad bit string never leaves the
process. The codec is meant for one thread (asyncio); lxml parsers are not shared across threads.
"""

from __future__ import annotations

import copy
import re
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from lxml import etree

import gridbind.generated.iec61850_8_2 as _gen
from gridbind.errors import LocalError, RemoteError
from gridbind.generated.iec61850_8_2 import Mmspdu
from gridbind.iec61850 import fastxer, schemaset
from gridbind.iec61850.errors import Iec61850Error

__all__ = [
    "SCSM_NS",
    "E2E_NS",
    "Limits",
    "DEFAULT_LIMITS",
    "CodecError",
    "MalformedXml",
    "ForbiddenXml",
    "LimitExceeded",
    "SchemaViolation",
    "UnknownRoot",
    "EncodeError",
    "Codec",
    "default_codec",
    "decode",
    "decode_pdu",
    "encode",
    "to_element",
    "to_etree",
    "validate",
    "pdu_names",
    "schema_dir",
    "xml_text_problem",
]

#: Namespace of the 8-2 payload (MMS PDUs in XER).
SCSM_NS: str = _gen.scsm_8_2.__NAMESPACE__
#: Namespace of the IEC 62351-4 end-to-end envelope.
E2E_NS: str = _gen.e2e_4.__NAMESPACE__
_XS = "{http://www.w3.org/2001/XMLSchema}"
_MMSPDU_TAG = "{" + SCSM_NS + "}MMSpdu"

T = TypeVar("T")


# ----------------------------------------------------------------------------------------------
# errors


class CodecError(Iec61850Error, ValueError):
    """Base of every codec failure; ``str(err)`` is one line, ``err.where`` the place if known."""

    def __init__(self, reason: str, where: str = "") -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"{where}: {reason}" if where else reason)


class MalformedXml(CodecError, RemoteError):
    """Not well-formed XML (truncated PDU, bad characters, unclosed tags, wrong encoding)."""


class ForbiddenXml(CodecError, RemoteError):
    """XML features never accepted from peers: DOCTYPE, entity declarations, non-UTF-8 input."""


class LimitExceeded(CodecError, RemoteError):
    """Input larger or deeper than :class:`Limits` allows."""


class SchemaViolation(CodecError, RemoteError):
    """Well-formed XML that the XSD refuses (two CHOICE alternatives, bad pattern or length...)."""


class UnknownRoot(SchemaViolation):
    """The root element is not a global element of the schema set (wrong namespace or name)."""


class EncodeError(CodecError, LocalError):
    """A typed object that cannot be encoded into a schema-valid PDU."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied to every decoded document.

    ``max_bytes``: serialized size; ``max_depth``: element nesting (an MMSpdu with Data nested
    N levels deep needs about 2*N + 12). libxml2 adds its own hard guards on top.
    """

    max_bytes: int = 1 << 20
    max_depth: int = 64


DEFAULT_LIMITS = Limits()

_FORBIDDEN = re.compile(rb"<!(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)")
_BOMS = (b"\xff\xfe", b"\xfe\xff")


def schema_dir() -> Path:
    """Folder of the XSD set installed next to the generated package."""
    return schemaset.SCHEMA_DIR


# ----------------------------------------------------------------------------------------------
# schema set


def _global_elements(xsd_dir: Path) -> tuple[dict[str, Path], set[tuple[str, str]]]:
    """Per namespace, the schema file to import (one nobody includes), and all global elements."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    files = sorted(p for p in xsd_dir.rglob("*.xsd"))
    docs = {p: etree.parse(str(p), parser).getroot() for p in files}
    included: set[Path] = set()
    for path, root in docs.items():
        for child in root:
            location = child.get("schemaLocation")
            if child.tag in (f"{_XS}include", f"{_XS}redefine") and location:
                included.add((path.parent / location).resolve())
    entry: dict[str, Path] = {}
    elements: set[tuple[str, str]] = set()
    for path, root in docs.items():
        ns = root.get("targetNamespace", "")
        for child in root:
            name = child.get("name")
            if child.tag == f"{_XS}element" and name:
                elements.add((ns, name))
        if path.resolve() not in included and ns not in entry:
            entry[ns] = path
    return entry, elements


@cache
def _schema_bundle() -> tuple[etree.XMLSchema, frozenset[tuple[str, str]]]:
    xsd_dir = schema_dir()
    entry, elements = _global_elements(xsd_dir)
    imports = "".join(
        f'<xs:import namespace="{ns}" schemaLocation="{path.resolve().as_uri()}"/>'
        for ns, path in sorted(entry.items())
    )
    driver = (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        f'targetNamespace="urn:gridbind:driver">{imports}</xs:schema>'
    )
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    doc = etree.fromstring(driver.encode(), parser, base_url=xsd_dir.as_uri() + "/")
    return etree.XMLSchema(doc), frozenset(elements)


# ----------------------------------------------------------------------------------------------
# the codec


class Codec:
    """One warmed codec: schema, strict parser, xsdata context and the root-element map.

    Use :func:`default_codec` (a process-wide instance) unless other :class:`Limits` are needed.
    """

    def __init__(
        self, limits: Limits = DEFAULT_LIMITS, *, fast: bool = True, lenient_x693: bool = False
    ) -> None:
        from xsdata.formats.dataclass.context import XmlContext
        from xsdata.formats.dataclass.parsers import XmlParser
        from xsdata.formats.dataclass.parsers.config import ParserConfig
        from xsdata.formats.dataclass.serializers import XmlSerializer
        from xsdata.formats.dataclass.serializers.config import SerializerConfig
        from xsdata.formats.dataclass.serializers.tree import TreeSerializer

        self.limits = limits
        self.fast = fast
        #: Also read X.693's literal forms where the schema guessed (DECISIONS.md 34).
        self.lenient_x693 = lenient_x693
        self._literal_forms: Any = None
        self.schema, elements = _schema_bundle()
        self.context = XmlContext()
        self._xml_parser = XmlParser(
            context=self.context, config=ParserConfig(fail_on_converter_warnings=True)
        )
        config = SerializerConfig(xml_declaration=False)
        self._serializer = XmlSerializer(context=self.context, config=config)
        self._tree_serializer = TreeSerializer(context=self.context, config=config)
        self._local = threading.local()
        self._choice_names: dict[tuple[type, type], str] = {}
        self.roots: dict[str, type] = {}
        for name in sorted(getattr(_gen, "__all__", dir(_gen))):
            cls = getattr(_gen, name, None)
            if not isinstance(cls, type) or not hasattr(cls, "__dataclass_fields__"):
                continue
            meta = self.context.build(cls)
            ns = meta.namespace or ""
            if (ns, meta.qname.split("}")[-1]) in elements:
                self.roots[meta.qname] = cls
        self._ns_of: dict[type, str] = {cls: qn[1:].split("}")[0] for qn, cls in self.roots.items()}
        for cls in self.roots.values():  # warm: build every reachable class's metadata now
            self._warm(cls, set())

    def _warm(self, cls: type, seen: set[type]) -> None:
        if cls in seen:
            return
        seen.add(cls)
        meta = self.context.build(cls)
        for var in meta.get_all_vars():
            for clazz in var.types:
                if hasattr(clazz, "__dataclass_fields__"):
                    self._warm(clazz, seen)
            for choice in var.elements.values() if var.elements else ():
                for clazz in choice.types:
                    if hasattr(clazz, "__dataclass_fields__"):
                        self._warm(clazz, seen)

    # ---- parsing ------------------------------------------------------------------------

    def _parser(self) -> etree.XMLParser:
        parser = getattr(self._local, "parser", None)
        if parser is None:
            parser = etree.XMLParser(
                # Decoded as UTF-8 whatever the XML declaration says (no UTF-7/EBCDIC tricks
                # around the DOCTYPE check).
                encoding="utf-8",
                schema=self.schema,
                recover=False,
                resolve_entities=False,
                load_dtd=False,
                dtd_validation=False,
                no_network=True,
                huge_tree=False,
                remove_comments=True,
                remove_pis=True,
                remove_blank_text=False,
                collect_ids=False,
            )
            self._local.parser = parser
        return parser

    def parse_tree(
        self, data: bytes | str | Any, *, lenient_x693: bool | None = None
    ) -> etree._Element:
        """Strictly parse and validate; returns a schema-valid lxml root the caller owns.

        ``lenient_x693`` (default: the codec's setting) first rewrites X.693's value lists of
        SEQUENCE OF CHOICE and its ``<true/>``/``<false/>`` into the schema's forms
        (:mod:`gridbind.iec61850.x693`); the result is then validated as usual.
        """
        lenient = self.lenient_x693 if lenient_x693 is None else lenient_x693
        if type(data) is not bytes:
            if isinstance(data, etree._Element):
                # Bound depth and size on the caller's tree first (cheap, stops early), then
                # copy: a hostile tree is refused before any work proportional to its size.
                _check_tree(data, self.limits)
                tree = copy.deepcopy(data)
                if lenient:
                    self.literal_forms().rewrite(tree)
                return self._check_element(tree)
            if isinstance(data, ET.Element):
                # ET serialises recursively: bound depth and size first, without recursion.
                _check_tree(data, self.limits)
                try:
                    data = ET.tostring(data, encoding="utf-8", xml_declaration=False)
                except (TypeError, ValueError, AttributeError) as exc:
                    raise MalformedXml(f"cannot serialise the element tree: {exc}") from None
                # ET writes a carriage return in text raw, and the parser's end-of-line
                # handling would turn it into a line feed (DECISIONS.md 32): keep the value.
                data = data.replace(b"\r", b"&#13;")
            elif isinstance(data, str):
                data = data.encode("utf-8")
            elif isinstance(data, (bytes, bytearray, memoryview)):
                data = bytes(data)
            else:
                raise CodecError(f"cannot decode a {type(data).__name__}")
        if len(data) > self.limits.max_bytes:
            raise LimitExceeded(f"document of {len(data)} bytes exceeds {self.limits.max_bytes}")
        # UTF-16/32 input always contains NUL bytes.
        if data.find(b"\x00") >= 0 or data.startswith(_BOMS):
            raise ForbiddenXml("only UTF-8 documents are accepted")
        # Every declaration starts with "<!": one byte search (memchr) spares the regex scan
        # for the documents that have no "!" at all (nearly every PDU).
        if data.find(b"!") >= 0:
            found = _FORBIDDEN.search(data)
            if found:
                raise ForbiddenXml(f"{found.group(0).decode()[2:]} declarations are not accepted")
        if lenient:
            return self._parse_lenient(data)
        parser = getattr(self._local, "parser", None) or self._parser()
        try:
            root = etree.fromstring(data, parser)
        except etree.XMLSyntaxError as exc:
            error = _syntax_error(exc)
            if isinstance(error, SchemaViolation):
                # Validation runs while parsing, so a truncated document often trips the schema
                # first ("<co" at the end is an unexpected element): report malformedness first.
                error = self._wellformedness_error(data) or error
            raise error from None
        # No DOCTYPE check on the tree: the parser decodes UTF-8 whatever the declaration says,
        # so libxml2 can only meet a DOCTYPE through the literal bytes the scan above refused.
        return root

    def literal_forms(self) -> Any:
        """The X.693 forms of the schema set (built on first use)."""
        if self._literal_forms is None:
            from gridbind.iec61850.x693 import LiteralForms

            self._literal_forms = LiteralForms(schema_dir())
        return self._literal_forms

    def _parse_lenient(self, data: bytes) -> etree._Element:
        """Parse without the schema (same guards), rewrite X.693's forms, then validate."""
        plain = getattr(self._local, "plain", None)
        if plain is None:
            plain = self._local.plain = etree.XMLParser(
                encoding="utf-8",
                recover=False,
                resolve_entities=False,
                load_dtd=False,
                no_network=True,
                huge_tree=False,
                remove_comments=True,
                remove_pis=True,
                collect_ids=False,
            )
        try:
            root = etree.fromstring(data, plain)
        except etree.XMLSyntaxError as exc:
            raise _syntax_error(exc) from None
        _check_tree(root, self.limits)
        self.literal_forms().rewrite(root)
        return self._check_element(root)

    def _wellformedness_error(self, data: bytes) -> CodecError | None:
        plain = etree.XMLParser(
            recover=False, resolve_entities=False, load_dtd=False, no_network=True
        )
        try:
            etree.fromstring(data, plain)
        except etree.XMLSyntaxError as exc:
            return _syntax_error(exc)
        return None

    def _check_element(self, root: etree._Element) -> etree._Element:
        """Validate a (copied, already bounded) lxml tree; every failure is a CodecError."""
        try:
            self.schema.assertValid(root)
        except etree.DocumentInvalid as exc:
            raise _schema_error(exc.error_log) from None
        except etree.Error as exc:  # XMLSchemaValidateError ("Internal error...") and kin
            raise SchemaViolation(f"schema validation failed: {_clean(str(exc))}") from None
        return root

    def decode(self, data: bytes | str | Any, *, lenient_x693: bool | None = None) -> Any:
        """Bytes, str or an element -> the typed object of its root (Mmspdu, ClearTransfer...).

        ``lenient_x693``: see :meth:`parse_tree` (default: the codec's setting).
        """
        root = self.parse_tree(data, lenient_x693=lenient_x693)
        if self.fast:
            # from_element's fast path inlined (one call less per PDU); every root the fast
            # path covers is a global element of the schema set, i.e. in ``self.roots``.
            result = _fast_decode(root, self.limits.max_depth)
            if result is not _NOT_FAST:
                return result
        return self.from_element(root, owned=True)

    def decode_pdu(self, data: bytes | str | Any, *, lenient_x693: bool | None = None) -> Mmspdu:
        """Like :meth:`decode` but the root must be ``MMSpdu`` of the 8-2 namespace."""
        root = self.parse_tree(data, lenient_x693=lenient_x693)
        if root.tag != _MMSPDU_TAG:
            raise UnknownRoot(f"expected MMSpdu, got {_pretty(root.tag)}", "/")
        return self.from_element(root, owned=True)

    def from_element(self, root: etree._Element, *, owned: bool = False) -> Any:
        """A schema-valid lxml element -> typed object (copies ``root`` unless ``owned``)."""
        tag = root.tag
        cls = self.roots.get(tag) if isinstance(tag, str) else None
        if cls is None or not isinstance(tag, str):
            raise UnknownRoot(f"{_pretty(tag)} is not a PDU of the schema set", "/")
        if self.fast:
            result = fastxer.decode(root, self.limits.max_depth, tag)
            if result is not fastxer.NOT_FAST:
                return result
        _check_depth(root, self.limits.max_depth)
        tree = root if owned else copy.deepcopy(root)
        try:
            obj: Any = self._xml_parser.parse(tree, cls, ns_map={})
        except Exception as exc:  # noqa: BLE001 - xsdata raises ParserError/ConverterWarning...
            raise SchemaViolation(f"cannot build {cls.__name__}: {exc}") from None
        self._empty_booleans_to_none(obj)
        return obj

    def _empty_booleans_to_none(self, obj: Any) -> None:
        """xsdata keeps an empty boolean (``<moreFollows/>``, valid where the XSD has a default)
        as ``""``; the fast path reads it as None like an absent element (DECISIONS.md 33)."""
        stack = [obj]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
                continue
            if not hasattr(node, "__dataclass_fields__"):
                continue
            for var in self.context.build(type(node)).get_all_vars():
                value = getattr(node, var.name, None)
                if value == "" and bool in var.types:
                    setattr(node, var.name, None)
                elif value is not None and not isinstance(value, (str, bytes, int, float)):
                    stack.append(value)

    # ---- serializing --------------------------------------------------------------------

    def _ns_map(self, obj: Any) -> dict[str | None, str]:
        ns = self._ns_of.get(type(obj))
        if ns is None:
            raise EncodeError(f"{type(obj).__name__} is not a root PDU type of the schema set")
        if ns == SCSM_NS:
            return {None: SCSM_NS}
        return {None: ns, "mms": SCSM_NS}

    def to_element(self, obj: Any, *, validate: bool = True) -> etree._Element:
        """Typed object -> a new lxml element (schema-validated unless ``validate=False``)."""
        ns_map = self._ns_map(obj)
        root = None
        if self.fast:
            root = fastxer.encode(obj, ns_map)
        if root is None:
            try:
                root = self._tree_serializer.render(obj, ns_map=ns_map).getroot()
            except Exception as exc:  # noqa: BLE001 - xsdata raises SerializerError and others
                problem = _unwritable_text(obj)
                if problem:
                    raise EncodeError(problem) from None
                raise EncodeError(f"cannot serialize {type(obj).__name__}: {exc}") from None
        if validate:
            try:
                self.schema.assertValid(root)
            except etree.DocumentInvalid as exc:
                err = _schema_error(exc.error_log)
                raise EncodeError(err.reason, err.where) from None
        return root

    def encode(self, obj: Any, *, validate: bool = True) -> bytes:
        """Typed object -> UTF-8 bytes without XML declaration (default namespace, no prefixes)."""
        return etree.tostring(self.to_element(obj, validate=validate), encoding="utf-8")

    def to_etree(self, obj: Any, *, validate: bool = True) -> ET.Element:
        """Typed object -> ``xml.etree.ElementTree.Element`` (for slixmpp stanzas).

        The tree holds values, not their XML form: whoever serialises it must write a carriage
        return in text as ``&#13;`` (DECISIONS.md 32); ``xml.etree`` and slixmpp write it raw,
        and the receiving parser then reads a line feed.
        """
        return ET.fromstring(self.encode(obj, validate=validate))

    def validate(self, data: bytes | str | Any, *, lenient_x693: bool | None = None) -> None:
        """Raise a :class:`CodecError` unless ``data`` is a strictly parseable, valid document."""
        self.parse_tree(data, lenient_x693=lenient_x693)

    # ---- introspection ------------------------------------------------------------------

    def choice_name(self, obj: Any) -> str:
        """Element name of the alternative held by ``obj.choice`` (a generated CHOICE class).

        ``choice_name(Mmspdu(choice=ConfirmedRequestPdu(...)))`` -> ``"confirmed-RequestPDU"``.
        """
        key = (type(obj), type(obj.choice))
        name = self._choice_names.get(key)
        if name is None:
            meta = self.context.build(type(obj))
            for var in meta.get_all_vars():
                if var.name != "choice" or not var.is_elements:
                    continue
                for choice in var.elements.values():
                    if type(obj.choice) in choice.types:
                        name = choice.local_name
                        break
            if name is None:
                raise EncodeError(f"{type(obj.choice).__name__} is no alternative of {key[0]}")
            self._choice_names[key] = name
        return name

    def pdu_names(self, pdu: Mmspdu) -> tuple[str, str | None]:
        """``(PDU alternative, service)`` of an MMSpdu, as Annex D Table D.1 names them.

        ``("confirmed-RequestPDU", "read")``, ``("unconfirmed-PDU", "informationReport")``,
        ``("rejectPDU", None)``...
        """
        kind = self.choice_name(pdu)
        body = pdu.choice
        if isinstance(body, (_gen.ConfirmedRequestPdu, _gen.ConfirmedResponsePdu)):
            return kind, self.choice_name(body.service)
        if kind == "unconfirmed-PDU":
            return kind, "informationReport"
        return kind, None


#: Characters XML 1.0 cannot carry at all, not even as a character reference: C0 controls but
#: TAB, LF and CR, lone surrogates, U+FFFE and U+FFFF (DECISIONS.md 32).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text_problem(text: str) -> str | None:
    """Why ``text`` cannot be written as XER text (a one-line reason), or None if it can.

    XML 1.0 has no way to carry C0 control characters other than TAB, LF and CR: written raw
    they make the whole XMPP stream ill-formed (the server closes it), and X.680's escapes
    (``<bel/>``...) need mixed content that the schema's string types do not allow.
    """
    found = _NOT_XML.search(text)
    if found is None:
        return None
    return (
        f"character U+{ord(found.group(0)):04X} at position {found.start()} cannot be sent: "
        "XML 1.0 has no representation for it"
    )


def _unwritable_text(obj: Any) -> str | None:
    """The first string of a typed object that XML cannot carry, described; None if none."""
    stack = [("", obj)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            problem = xml_text_problem(node)
            if problem:
                return f"{path.lstrip('.') or 'text'}: {problem}"
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(node))
        elif hasattr(node, "__dataclass_fields__"):
            stack.extend(
                (f"{path}.{name}", getattr(node, name)) for name in node.__dataclass_fields__
            )
    return None


def _pretty(tag: object) -> str:
    tag = str(tag)  # a tag set by hand may be bytes or a QName; parsed tags are str
    return tag if not tag.startswith("{") else f"{tag[1:].split('}')[1]} ({tag[1:].split('}')[0]})"


def _check_tree(root: Any, limits: Limits) -> None:
    """Bound an lxml or xml.etree tree before it is copied or serialised (no recursion).

    Refuses nesting deeper than ``limits.max_depth`` and trees whose serialised form is certain to
    exceed ``limits.max_bytes``: the walk adds up a lower bound of the UTF-8 size (tags by local
    name, text, tail, comments, attribute names and values; no namespace declarations, no
    escaping) and stops as soon as either limit is passed, so a 10 MB text or a 10,000-deep tree
    is refused at once. lxml entity-reference nodes (``etree.Entity``) are refused: no entity
    reaches the parser through bytes either.
    """
    max_bytes, max_depth = limits.max_bytes, limits.max_depth
    size = 0
    stack = [(root, 1)]
    pop, extend = stack.pop, stack.extend
    while stack:
        node, depth = pop()
        if depth > max_depth:
            raise LimitExceeded(f"elements nested deeper than {max_depth}")
        tag, text, tail = node.tag, node.text, node.tail
        children = len(node)
        if type(tag) is str:
            local = len(tag) - tag.find("}") - 1  # "{ns}name" -> len("name")
            size += 2 * local + 5 if text or children else local + 3  # <n>..</n> or <n/>
            for key, value in node.items():
                size += len(key) - key.find("}") + 3 + _text_size(value, max_bytes, tag)
        elif tag is _ENTITY:
            raise ForbiddenXml(f"entity reference {text} is not accepted", _where(node))
        if text:
            size += _text_size(text, max_bytes, tag)
        if tail:
            size += _text_size(tail, max_bytes, tag)
        if size > max_bytes:
            raise LimitExceeded(f"element tree of more than {max_bytes} bytes of XML")
        if children:
            depth += 1
            extend([(child, depth) for child in node])


_ENTITY = etree.Entity  # the ``tag`` of lxml entity-reference nodes
_fast_decode = fastxer.decode
_NOT_FAST = fastxer.NOT_FAST


def _text_size(text: Any, limit: int, tag: Any) -> int:
    """UTF-8 size of one text (or at least ``limit + 1`` when longer than ``limit`` anyway)."""
    if not isinstance(text, str):
        raise MalformedXml(f"text of {_pretty(str(tag))} is a {type(text).__name__}, not str")
    if len(text) > limit or text.isascii():
        return len(text)  # characters are a lower bound of the UTF-8 bytes
    return len(text.encode("utf-8", "surrogatepass"))


def _where(node: Any) -> str:
    parent = node.getparent() if isinstance(node, etree._Element) else None
    if parent is None or not isinstance(parent.tag, str):
        return ""
    return f"element {parent.tag.rsplit('}', 1)[-1]}"


def _check_depth(root: etree._Element, limit: int) -> None:
    depth = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            depth += 1
            if depth > limit:
                raise LimitExceeded(f"elements nested deeper than {limit}")
        else:
            depth -= 1


def _syntax_error(exc: etree.XMLSyntaxError) -> CodecError:
    # The parser's error_log keeps entries of earlier documents when a schema is attached, so
    # only the exception's own code and message describe this document.
    code = exc.code or 0
    message = _clean(exc.msg or str(exc))
    where = f"line {exc.lineno}" if exc.lineno else _element_of(message)
    if _SCHEMA_CODES[0] <= code < _SCHEMA_CODES[1]:
        if code == _NO_GLOBAL_DECLARATION:
            return UnknownRoot(message, where)
        return SchemaViolation(message, where)
    lowered = message.lower()
    if "depth" in lowered or "huge" in lowered or "amplification" in lowered:
        return LimitExceeded(message, where)
    if "entity" in lowered or "doctype" in lowered or "dtd" in lowered:
        return ForbiddenXml(message, where)
    return MalformedXml(message, where)


#: libxml2 error codes of schema validity (XML_SCHEMAV_*), and "no matching global declaration".
_SCHEMA_CODES = (1800, 1900)
_NO_GLOBAL_DECLARATION = 1845
_LINE_PREFIX = re.compile(r"^line \d+: ")


def _clean(message: str) -> str:
    message = _LINE_PREFIX.sub("", message.strip())
    if message[:2] in ("b'", 'b"') and message[-1:] in ("'", '"'):
        message = message[2:-1]
    return re.sub(r"\s*\(line \d+\)$", "", message).strip()


_ELEMENT_IN_MESSAGE = re.compile(r"Element '(?:\{[^}]*\})?([^']+)'")


def _element_of(message: str) -> str:
    found = _ELEMENT_IN_MESSAGE.search(message)
    return f"element {found.group(1)}" if found else ""


def _schema_error(log: Any) -> SchemaViolation:
    entry = None
    for candidate in log:
        if candidate.domain == etree.ErrorDomains.SCHEMASV:
            entry = candidate
            break
    entry = entry or (log.last_error if log else None)
    if entry is None:
        return SchemaViolation("schema validation failed")
    where = entry.path or (f"line {entry.line}" if entry.line else "")
    message = entry.message.strip()
    if "No matching global declaration" in message:
        return UnknownRoot(message, where)
    return SchemaViolation(message, where)


_DEFAULT: Codec | None = None
_DEFAULT_LOCK = threading.Lock()


def default_codec() -> Codec:
    """The process-wide codec (built and warmed on first use, ~0.1 s)."""
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = Codec()
    return _DEFAULT


def decode(data: bytes | str | Any, *, lenient_x693: bool = False) -> Any:
    """:meth:`Codec.decode` of the default codec."""
    return default_codec().decode(data, lenient_x693=lenient_x693)


def decode_pdu(data: bytes | str | Any, *, lenient_x693: bool = False) -> Mmspdu:
    """:meth:`Codec.decode_pdu` of the default codec (``lenient_x693``: see ``parse_tree``)."""
    return default_codec().decode_pdu(data, lenient_x693=lenient_x693)


def encode(obj: Any, *, validate: bool = True) -> bytes:
    """:meth:`Codec.encode` of the default codec."""
    return default_codec().encode(obj, validate=validate)


def to_element(obj: Any, *, validate: bool = True) -> etree._Element:
    """:meth:`Codec.to_element` of the default codec."""
    return default_codec().to_element(obj, validate=validate)


def to_etree(obj: Any, *, validate: bool = True) -> ET.Element:
    """:meth:`Codec.to_etree` of the default codec."""
    return default_codec().to_etree(obj, validate=validate)


def validate(data: bytes | str | Any) -> None:
    """:meth:`Codec.validate` of the default codec."""
    default_codec().validate(data)


def pdu_names(pdu: Mmspdu) -> tuple[str, str | None]:
    """:meth:`Codec.pdu_names` of the default codec (for ``xmpp.stanza_for_pdu``)."""
    return default_codec().pdu_names(pdu)
