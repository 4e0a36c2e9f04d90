"""The installed 8-2 schema set: the one place that knows where it is.

``gridbind codegen`` copies the XSD set it generated the classes from into the generated package
(``gridbind.generated.iec61850_8_2``, folder ``xsd/``, the relative layout of the source kept so
``schemaLocation`` still resolves). The codec, the tests and the benchmarks read the schemas
through this module, never from ``specs/`` and never by file name: once an official schema set
is dropped into ``specs/iec61850_8_2/`` and regenerated, everything sees that set, whatever its
files are called and however they are laid out. Schemas are found by target namespace.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

import gridbind.generated.iec61850_8_2 as _generated

__all__ = ["SCHEMA_DIR", "files", "entry_points", "entry_point", "documents", "xml_schema"]

#: Folder of the installed XSD set (``XSD_SUBDIR`` of :mod:`gridbind.codegen.xsd`).
SCHEMA_DIR: Path = Path(_generated.__file__).resolve().parent / "xsd"
_XS = "{http://www.w3.org/2001/XMLSchema}"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def files() -> list[Path]:
    """Every ``.xsd`` of the installed set, sorted."""
    return sorted(SCHEMA_DIR.rglob("*.xsd"))


@cache
def _parsed() -> dict[Path, etree._Element]:
    return {path: etree.parse(str(path), _parser()).getroot() for path in files()}


def entry_points() -> dict[str, Path]:
    """Per target namespace, the schema file to load for it: the first one no other file of the
    set includes or redefines (an import brings in another namespace, so it does not count)."""
    docs = _parsed()
    included: set[Path] = set()
    for path, root in docs.items():
        for child in root:
            location = child.get("schemaLocation")
            if child.tag in (f"{_XS}include", f"{_XS}redefine") and location:
                included.add((path.parent / location).resolve())
    entry: dict[str, Path] = {}
    for path, root in docs.items():
        ns = root.get("targetNamespace", "")
        if path.resolve() not in included and ns not in entry:
            entry[ns] = path
    return entry


def entry_point(namespace: str) -> Path:
    """The schema file of ``namespace`` (see :func:`entry_points`); KeyError names what exists."""
    found = entry_points()
    if namespace not in found:
        raise KeyError(f"no schema of namespace {namespace!r} in {SCHEMA_DIR} ({sorted(found)})")
    return found[namespace]


def documents(namespace: str) -> list[etree._Element]:
    """The parsed ``xs:schema`` roots of every file of ``namespace`` (includes too)."""
    return [root for root in _parsed().values() if root.get("targetNamespace", "") == namespace]


@cache
def xml_schema(namespace: str) -> etree.XMLSchema:
    """``namespace``'s schema compiled by lxml straight from the installed files (imports are
    followed through their ``schemaLocation``; nothing is fetched)."""
    return etree.XMLSchema(etree.parse(str(entry_point(namespace)), _parser()))
