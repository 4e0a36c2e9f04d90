"""Reading what a peer that follows X.693 literally sends where the authored XSD guessed.

The schema writes two ASN.1 constructs differently from basic XER (DECISIONS.md 4 and 6):

- items of a SEQUENCE OF a CHOICE type are wrapped in an element named by the item type
  (``<listOfAccessResult><AccessResult><success>``); X.693 writes them as a value list
  (``<listOfAccessResult><success>``);
- BOOLEAN is the text ``true``/``false``; X.693 writes ``<true/>``/``<false/>``.

:class:`LiteralForms` rewrites those X.693 forms into the schema's, on a parsed tree and before
it is validated, so the schema then checks the result as usual. It is built from the XSD set
(no element names written here): every element whose type is a sequence of one repeated
element of a CHOICE type is a *list*, every ``xs:boolean`` element a *boolean*. The codec uses
it only when asked (``lenient_x693=True``); writing always follows the schema.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

__all__ = ["LiteralForms"]

_XS = "{http://www.w3.org/2001/XMLSchema}"


class LiteralForms:
    """The X.693 value-list and boolean forms of one XSD set, and their rewrite."""

    def __init__(self, xsd_dir: Path) -> None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        #: list element tag -> (item wrapper tag, tags of the CHOICE alternatives)
        self.lists: dict[str, list[tuple[str, frozenset[str]]]] = {}
        #: tags of elements whose type is xs:boolean
        self.booleans: set[str] = set()
        for path in sorted(xsd_dir.rglob("*.xsd")):
            self._read(etree.parse(str(path), parser).getroot())

    def _read(self, schema: etree._Element) -> None:
        ns = schema.get("targetNamespace", "")
        qualified = schema.get("elementFormDefault") == "qualified"
        types = {t.get("name"): t for t in schema.iterchildren(f"{_XS}complexType")}

        def tag(name: str, top: bool) -> str:
            return f"{{{ns}}}{name}" if ns and (top or qualified) else name

        def choice_of(element: etree._Element) -> list[str] | None:
            """Alternatives of the CHOICE type of ``element``, or None."""
            body = element.find(f"{_XS}complexType")
            if body is None:
                body = types.get(_local(element.get("type", "")))
            if body is None or len(body) == 0:
                return None
            content = [c for c in body if c.tag != f"{_XS}annotation"]
            if len(content) != 1 or content[0].tag != f"{_XS}choice":
                return None
            names = [c.get("name") or "" for c in content[0].iterchildren(f"{_XS}element")]
            return names if all(names) else None

        def list_item(body: etree._Element | None) -> etree._Element | None:
            """The one repeated element of a sequence type, or None."""
            if body is None:
                return None
            content = [c for c in body if c.tag != f"{_XS}annotation"]
            if len(content) != 1 or content[0].tag != f"{_XS}sequence":
                return None
            items = list(content[0])
            if len(items) != 1 or items[0].tag != f"{_XS}element":
                return None
            item = items[0]
            return item if item.get("maxOccurs") == "unbounded" else None

        for element in schema.iter(f"{_XS}element"):
            name = element.get("name")
            if not name:
                continue
            top = element.getparent() is schema
            kind = element.get("type", "")
            if kind.partition(":")[0] in ("xs", "xsd") and kind.endswith(":boolean"):
                self.booleans.add(tag(name, top))
            body = element.find(f"{_XS}complexType")
            if body is None:
                body = types.get(_local(element.get("type", "")))
            item = list_item(body)
            item_name = item.get("name") if item is not None else None
            if item is None or not item_name:
                continue
            alternatives = choice_of(item)
            if alternatives:
                entry = (
                    tag(item_name, False),
                    frozenset(tag(a, False) for a in alternatives),
                )
                known = self.lists.setdefault(tag(name, top), [])
                if entry not in known:
                    known.append(entry)

    def rewrite(self, root: etree._Element) -> int:
        """Rewrite the X.693 forms under ``root`` in place; returns how many were rewritten."""
        changed = 0
        lists, booleans = self.lists, self.booleans
        for el in list(root.iter(etree.Element)):
            tag = el.tag
            assert isinstance(tag, str), "iter(etree.Element) yields elements only"
            if tag in booleans and len(el) == 1 and not (el.text or "").strip():
                child = el[0]
                local = _local(child.tag) if isinstance(child.tag, str) else ""
                if (
                    local in ("true", "false")
                    and len(child) == 0
                    and not (child.text or "").strip()
                ):
                    el.remove(child)
                    el.text = local
                    changed += 1
                continue
            for wrapper, alternatives in lists.get(tag, ()):
                bare = [c for c in el if c.tag in alternatives]
                if not bare:
                    continue
                for child in bare:
                    item = etree.Element(wrapper)
                    item.tail, child.tail = child.tail, None
                    child.addprevious(item)
                    item.append(child)
                    changed += 1
                break
        return changed


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].split(":")[-1]
