"""Machine-checkable probes of ``specs/iec61850_8_2/DECISIONS.md`` over an 8-2 schema set.

The authored XSDs had to guess where the official schema was not available; each guess is a
numbered entry of DECISIONS.md. :data:`PROBES` maps an entry number to a predicate over the XSD
set that says whether a schema set *settles* the guess (agrees with it), *contradicts* it (with
the evidence), or leaves it *open* (the construct the guess is about is not there, e.g. renamed
beyond recognition). ``gridbind codegen diff`` and ``codegen all`` run them on a new schema set,
so dropping in the official code component tells which entries to revisit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

__all__ = ["E2E_ELEMENTS", "Outcome", "PROBES", "Schemas", "probe", "titles"]

XS_NS = "http://www.w3.org/2001/XMLSchema"
_XS = "{" + XS_NS + "}"
# The namespaces carry the edition's year (``http://www.iec.ch/61850/2018/SCSM_8_2``); a new
# edition changes it, so the probes find the 8-2 and E2E namespaces by their last path segment
# (or take them from the generated modules' ``__NAMESPACE__``), never by a hard-coded year.
_SCSM_TAIL = re.compile(r"https?://www\.iec\.ch/61850/[^/]+/SCSM_8_2")
_E2E_TAIL = re.compile(r"https?://www\.iec\.ch/62351/[^/]+/E2E_4")
SETTLED, CONTRADICTED, OPEN = "settled", "contradicted", "open"


@dataclass(frozen=True)
class Outcome:
    """What a schema set says about one DECISIONS.md entry."""

    number: int
    title: str
    status: str  # settled | contradicted | open
    evidence: str

    def line(self) -> str:
        return f"DECISIONS {self.number} ({self.title}): {self.status} - {self.evidence}"


class Schemas:
    """A schema set (``{relative path: bytes}``) with the few look-ups the probes need."""

    def __init__(
        self, files: dict[str, bytes], namespaces: Mapping[str, str] | None = None
    ) -> None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        self.docs = {rel: etree.fromstring(data, parser) for rel, data in sorted(files.items())}
        given = dict(namespaces or {})
        #: target namespaces of the 8-2 and E2E schemas of this set ("" when absent)
        self.scsm_ns = given.get("scsm_8_2") or self._find(_SCSM_TAIL, "MMSpdu")
        self.e2e_ns = given.get("e2e_4") or self._find(_E2E_TAIL, "HandshakeReq")

    def _find(self, pattern: re.Pattern[str], element: str) -> str:
        """The target namespace matching ``pattern``, else the one declaring ``element``."""
        targets = sorted({d.get("targetNamespace", "") for d in self.docs.values()})
        for namespace in targets:
            if pattern.fullmatch(namespace):
                return namespace
        for namespace in targets:
            if namespace and element in self.global_elements(namespace):
                return namespace
        return ""

    def namespace_docs(self, namespace: str) -> list[etree._Element]:
        return [d for d in self.docs.values() if d.get("targetNamespace", "") == namespace]

    def elements(self, name: str, namespace: str | None = None) -> list[etree._Element]:
        """Every ``xs:element`` declared with ``name`` (global or local)."""
        docs = self.docs.values() if namespace is None else self.namespace_docs(namespace)
        return [e for d in docs for e in d.iter(f"{_XS}element") if e.get("name") == name]

    def global_elements(self, namespace: str) -> set[str]:
        return {
            e.get("name", "")
            for d in self.namespace_docs(namespace)
            for e in d.findall(f"{_XS}element")
            if e.get("name")
        }

    def named_type(self, qname: str, context: etree._Element) -> etree._Element | str:
        """The named type ``qname`` refers to (its node), or ``xs:NAME`` for a built-in."""
        prefix, _, local = qname.rpartition(":")
        namespace = context.nsmap.get(prefix or None, "")
        if namespace == XS_NS:
            return f"xs:{local}"
        for doc in self.namespace_docs(namespace) or list(self.docs.values()):
            for kind in ("complexType", "simpleType"):
                found = doc.find(f"{_XS}{kind}[@name='{local}']")
                if found is not None:
                    return found
        return qname

    def type_of(self, element: etree._Element) -> etree._Element | str | None:
        """An element's type: a complexType/simpleType node, ``xs:NAME``, or None (empty)."""
        type_name = element.get("type")
        if type_name:
            return self.named_type(type_name, element)
        for kind in ("complexType", "simpleType"):
            inline = element.find(f"{_XS}{kind}")
            if inline is not None:
                return inline
        return None

    def builtin_base(self, node: etree._Element | str | None, depth: int = 0) -> str | None:
        """The XSD built-in a simple type restricts (through named types), e.g. ``xs:int``."""
        if node is None or depth > 20:
            return None
        if isinstance(node, str):
            return node if node.startswith("xs:") else None
        restriction = node.find(f"{_XS}restriction")
        base = None if restriction is None else restriction.get("base")
        if restriction is None or not base:
            return None
        return self.builtin_base(self.named_type(base, restriction), depth + 1)

    def facets(self, node: etree._Element | str | None, depth: int = 0) -> dict[str, str]:
        """Facets of a simple type, the nearest restriction winning (``pattern``, ``maxLength``)."""
        if node is None or isinstance(node, str) or depth > 20:
            return {}
        restriction = node.find(f"{_XS}restriction")
        if restriction is None:
            return {}
        base = self.facets(self.named_type(restriction.get("base", ""), restriction), depth + 1)
        for facet in restriction:
            value = facet.get("value")
            if isinstance(facet.tag, str) and value is not None:
                base[etree.QName(facet).localname] = value
        return base

    def child_names(self, node: etree._Element | str | None) -> list[str]:
        """Names (or refs) of the elements a complex type holds directly, in order."""
        if node is None or isinstance(node, str):
            return []
        out: list[str] = []

        def walk(parent: etree._Element) -> None:
            for child in parent:
                if child.tag == f"{_XS}element":
                    out.append(child.get("name") or child.get("ref", "").rpartition(":")[2])
                elif child.tag in {f"{_XS}{k}" for k in ("sequence", "choice", "all")}:
                    walk(child)
                elif child.tag in (f"{_XS}complexContent", f"{_XS}extension"):
                    walk(child)

        walk(node)
        return out

    def choice_of(self, type_name: str, namespace: str | None = None) -> list[str] | None:
        for doc in self.namespace_docs(self.scsm_ns if namespace is None else namespace):
            node = doc.find(f"{_XS}complexType[@name='{type_name}']")
            if node is not None:
                return self.child_names(node)
        return None


Probe = Callable[[Schemas], tuple[str, str]]


def _root(s: Schemas) -> tuple[str, str]:
    if "MMSpdu" in s.global_elements(s.scsm_ns):
        return SETTLED, "global element MMSpdu"
    found = sorted(s.global_elements(s.scsm_ns))
    return CONTRADICTED, f"no global element MMSpdu; global elements: {', '.join(found[:6])}"


def _qualified(s: Schemas) -> tuple[str, str]:
    ours = {
        rel: d
        for rel, d in s.docs.items()
        if d.get("targetNamespace") in {s.scsm_ns, s.e2e_ns} - {""}
    }
    off = [rel for rel, d in ours.items() if d.get("elementFormDefault") != "qualified"]
    if not ours:
        return OPEN, "no 8-2 or E2E schema"
    if off:
        return CONTRADICTED, f"elementFormDefault is not qualified in {', '.join(off)}"
    return SETTLED, "the 8-2 and E2E schemas are elementFormDefault=qualified"


def _iso_names(s: Schemas) -> tuple[str, str]:
    wanted = ("confirmed-RequestPDU", "domain-specific", "floating-point", "utc-time", "domainId")
    missing = [n for n in wanted if not s.elements(n, s.scsm_ns)]
    if not missing:
        return SETTLED, f"elements {', '.join(wanted)} exist"
    other = [
        n for n in ("confirmedRequestPDU", "domainID", "bool", "floatingPoint") if s.elements(n)
    ]
    note = f"; other spellings: {', '.join(other)}" if other else ""
    return CONTRADICTED, f"no element {', '.join(missing)}{note}"


def _item_wrappers(s: Schemas) -> tuple[str, str]:
    lists = s.elements("listOfAccessResult", s.scsm_ns)
    if not lists:
        return OPEN, "no element listOfAccessResult"
    children = s.child_names(s.type_of(lists[0]))
    if children == ["AccessResult"]:
        return SETTLED, "listOfAccessResult holds <AccessResult> items"
    return CONTRADICTED, f"listOfAccessResult holds {', '.join(children) or 'no element'}"


def _boolean(s: Schemas) -> tuple[str, str]:
    data = s.choice_of("Data")
    found = [e for e in s.elements("boolean", s.scsm_ns)]
    if not found or data is None:
        return OPEN, "no Data/boolean element"
    kind = s.type_of(found[0])
    if kind == "xs:boolean" or s.builtin_base(kind) == "xs:boolean":
        return SETTLED, "Data/boolean is xs:boolean text"
    children = s.child_names(kind)
    shown = f"empty elements {', '.join(children)}" if children else str(found[0].get("type"))
    return CONTRADICTED, f"Data/boolean is {shown}, not xs:boolean text"


def _named_numbers(s: Schemas) -> tuple[str, str]:
    found = s.elements("object-non-existent", s.scsm_ns)
    if found:
        kind = s.type_of(found[0])
        if kind is None or (not isinstance(kind, str) and not s.child_names(kind)):
            return SETTLED, "<object-non-existent/> is an empty element"
        return CONTRADICTED, f"object-non-existent has content ({found[0].get('type')})"
    errors = s.elements("failure", s.scsm_ns)
    base = s.builtin_base(s.type_of(errors[0])) if errors else None
    if base:
        return CONTRADICTED, f"DataAccessError (failure) is {base}, not empty elements"
    return OPEN, "no object-non-existent element"


def _simple_base(name: str, want: str) -> Probe:
    def check(s: Schemas) -> tuple[str, str]:
        found = s.elements(name, s.scsm_ns)
        if not found:
            return OPEN, f"no element {name}"
        base = s.builtin_base(s.type_of(found[0]))
        if base == want:
            return SETTLED, f"{name} is {want}"
        return CONTRADICTED, f"{name} is {base or found[0].get('type')}, not {want}"

    return check


def _bit_string(s: Schemas) -> tuple[str, str]:
    found = s.elements("bit-string", s.scsm_ns)
    if not found:
        return OPEN, "no element bit-string"
    pattern = s.facets(s.type_of(found[0])).get("pattern")
    if pattern in ("[01]*", "[01]+"):
        return SETTLED, f"bit-string pattern {pattern}"
    return (
        CONTRADICTED,
        f"bit-string pattern is {pattern!r}, base {s.builtin_base(s.type_of(found[0]))}",
    )


def _identifier(s: Schemas) -> tuple[str, str]:
    for doc in s.namespace_docs(s.scsm_ns):
        node = doc.find(f"{_XS}simpleType[@name='Identifier']")
        if node is not None:
            facets = s.facets(node)
            if facets.get("maxLength") == "64" and facets.get("minLength") == "1":
                return SETTLED, "Identifier is 1..64 characters"
            return CONTRADICTED, f"Identifier facets: {facets}"
    return OPEN, "no simple type Identifier"


def _integers(s: Schemas) -> tuple[str, str]:
    out = []
    for name, want in (("integer", "xs:integer"), ("unsigned", "xs:nonNegativeInteger")):
        found = [e for e in s.elements(name, s.scsm_ns)]
        if not found:
            return OPEN, f"no Data/{name} element"
        base = s.builtin_base(s.type_of(found[0]))
        if base != want:
            out.append(f"Data/{name} is {base}, not {want}")
    return (CONTRADICTED, "; ".join(out)) if out else (SETTLED, "integer/unsigned as guessed")


DATA_ALTERNATIVES = [
    "array",
    "structure",
    "boolean",
    "bit-string",
    "integer",
    "unsigned",
    "floating-point",
    "octet-string",
    "visible-string",
    "binary-time",
    "mMSString",
    "utc-time",
]


def _data_alternatives(s: Schemas) -> tuple[str, str]:
    names = s.choice_of("Data")
    if names is None:
        return OPEN, "no complex type Data"
    extra = [n for n in names if n not in DATA_ALTERNATIVES]
    missing = [n for n in DATA_ALTERNATIVES if n not in names]
    if not extra and not missing:
        return SETTLED, "Data has exactly the 12 alternatives"
    parts = [f"more alternatives: {', '.join(extra)}" if extra else ""]
    parts.append(f"missing: {', '.join(missing)}" if missing else "")
    return CONTRADICTED, "Data has " + "; ".join(p for p in parts if p)


#: The E2E global elements the runtime relies on (an official set may add more).
E2E_ELEMENTS = {
    "HandshakeReq",
    "HandshakeAcc",
    "ApplicationReject",
    "HandshakeSecReject",
    "HandshakeSecAbort",
    "DtSecAbort",
    "ApplAbort",
    "ReleaseReq",
    "ReleaseRsp",
    "ClearTransfer",
    "EncrTransfer",
    "AssociationContext",
}


def _e2e_elements(s: Schemas) -> tuple[str, str]:
    found = s.global_elements(s.e2e_ns)
    if not found:
        return OPEN, "no E2E_4 namespace in the set"
    missing = sorted(E2E_ELEMENTS - found)
    if missing:
        return CONTRADICTED, f"no global element {', '.join(missing)}"
    return SETTLED, "all 12 E2E global elements exist"


def _appl_data(s: Schemas) -> tuple[str, str]:
    found = s.elements("applData", s.e2e_ns)
    if not found:
        return OPEN, "no element applData"
    children = s.child_names(s.type_of(found[0]))
    if children == ["MMSpdu"]:
        return SETTLED, "applData holds one mms:MMSpdu"
    return CONTRADICTED, f"applData holds {', '.join(children) or found[0].get('type')}"


def _asso_id(s: Schemas) -> tuple[str, str]:
    found = s.elements("assoID", s.e2e_ns)
    if not found:
        return OPEN, "no element assoID"
    pattern = s.facets(s.type_of(found[0])).get("pattern", "")
    if ":" in pattern:
        return SETTLED, f"assoID pattern {pattern}"
    return CONTRADICTED, f"assoID pattern is {pattern!r} (no n:n form)"


def _diagnostics(s: Schemas) -> tuple[str, str]:
    out, found = [], 0
    for name, high in (("HandshakeDiagnostics", "25"), ("DtDiagnostics", "15")):
        for doc in s.namespace_docs(s.e2e_ns):
            node = doc.find(f"{_XS}simpleType[@name='{name}']")
            if node is not None:
                found += 1
                facets = s.facets(node)
                if facets.get("maxInclusive") != high or s.builtin_base(node) is None:
                    shown = facets.get("maxInclusive", "unbounded")
                    out.append(f"{name} is {s.builtin_base(node)} up to {shown}, not 0..{high}")
    if not found:
        return OPEN, "no HandshakeDiagnostics or DtDiagnostics type"
    return (CONTRADICTED, "; ".join(out)) if out else (SETTLED, "0..25 and 0..15 numbers")


#: DECISIONS.md entry number -> (short title, probe).
PROBES: dict[int, tuple[str, Probe]] = {
    1: ("root element MMSpdu", _root),
    2: ("elementFormDefault qualified", _qualified),
    3: ("ISO 9506-2 element names", _iso_names),
    4: ("SEQUENCE OF item wrappers", _item_wrappers),
    6: ("BOOLEAN as text", _boolean),
    7: ("named numbers as empty elements", _named_numbers),
    8: ("OCTET STRING as hexBinary", _simple_base("octet-string", "xs:hexBinary")),
    9: ("BIT STRING as [01]*", _bit_string),
    10: ("Identifier 1..64", _identifier),
    11: ("integer widths", _integers),
    14: ("Data alternatives", _data_alternatives),
    20: ("E2E global elements", _e2e_elements),
    21: ("applData holds MMSpdu", _appl_data),
    24: ("assoID n or n:n", _asso_id),
    25: ("diagnostics as numbers", _diagnostics),
}


def titles(decisions_md: Path) -> dict[int, str]:
    """Entry number -> first bold phrase of DECISIONS.md (empty when the file is missing)."""
    import re

    try:
        text = decisions_md.read_text(encoding="utf-8")
    except OSError:
        return {}
    out = {}
    for match in re.finditer(r"^(\d+)\. (?:\*\*(.+?)\*\*)?", text, re.M):
        out[int(match.group(1))] = " ".join((match.group(2) or "").split())
    return out


def probe(files: dict[str, bytes], namespaces: Mapping[str, str] | None = None) -> list[Outcome]:
    """Run every probe on a schema set; a probe that fails on an odd schema is ``open``.

    ``namespaces``: module -> target namespace of the generated package (``scsm_8_2``,
    ``e2e_4``), when known; otherwise they are found in the set.
    """
    schemas = Schemas(files, namespaces)
    out = []
    for number, (title, check) in sorted(PROBES.items()):
        try:
            status, evidence = check(schemas)
        except Exception as exc:  # noqa: BLE001 - an unexpected schema shape is not a crash
            status, evidence = OPEN, f"probe could not read the schema ({exc})"
        out.append(Outcome(number, title, status, evidence))
    return out
