"""What changed between two generated 8-2 packages, at the level a maintainer reviews.

Classes added, removed and renamed (a removed and an added class with the same fields, nested
classes and values under a new name), and per class: fields added, removed or renamed (one
removed and one added of the same type and cardinality), re-typed, cardinality changes,
restriction (facet) changes, CHOICE alternatives added or removed, element names and
enumeration values. References to a renamed class are followed, so a rename is reported once,
not as a re-typing of every field that uses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gridbind.codegen.xsdtypes import ClassInfo, FieldInfo, TypeSet

__all__ = ["Change", "TypesDiff", "diff"]


@dataclass(frozen=True)
class Change:
    """One reviewable change: ``where`` is ``module.Class`` or ``module.Class.field``."""

    kind: str
    where: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.where}: {self.kind}" + (f": {self.detail}" if self.detail else "")


@dataclass
class TypesDiff:
    """The changes, in a stable order, and the class renames found."""

    changes: list[Change] = field(default_factory=list)
    renames: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def of_kind(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    def summary(self) -> str:
        """One line: counts of classes added/removed/renamed/changed."""
        count = {k: len(self.of_kind(k)) for k in ("class added", "class removed")}
        top = {c.where for c in self.changes if not c.kind.startswith(("class ", "module "))}
        classes = {w if w in self._classes else w.rsplit(".", 1)[0] for w in top}
        modules = len(self.of_kind("module added")) + len(self.of_kind("module removed"))
        return (
            f"{count['class added']} classes added, {count['class removed']} removed, "
            f"{len(self.renames)} renamed, {len(classes)} changed"
            + (f", {modules} modules added/removed" if modules else "")
        )

    def lines(self) -> list[str]:
        return [c.line() for c in self.changes]

    _classes: set[str] = field(default_factory=set, repr=False)


def _rename_in(text: str, renames: dict[str, str]) -> str:
    """``text`` (an annotation or type name) with old qualnames replaced by their new ones."""
    for old, new in sorted(renames.items(), key=lambda r: -len(r[0])):
        text = re.sub(rf"(?<![\w.]){re.escape(old)}(?![\w])", new, text)
    return text


def _qual(key: str) -> str:
    return key.split(".", 1)[1]


def _signature(info: ClassInfo, nested: list[str]) -> tuple:
    own = info.qualname

    def norm(text: str) -> str:
        return re.sub(rf"(?<![\w.]){re.escape(own)}(?![\w])", "@", text)

    fields = tuple(
        (f.name, f.kind, f.xml, f.cardinality, norm(f.value_type), f.facets, f.choices)
        for f in info.fields.values()
    )
    return (info.kind, fields, info.values, tuple(n[len(own) :] for n in nested))


def _find_renames(old: TypeSet, new: TypeSet) -> dict[str, str]:
    removed = sorted(set(old.classes) - set(new.classes))
    added = sorted(set(new.classes) - set(old.classes))

    def nested(types: TypeSet, key: str) -> list[str]:
        return sorted(_qual(k) for k in types.classes if k.startswith(key + "."))

    renames: dict[str, str] = {}
    by_sig: dict[tuple, list[str]] = {}
    for key in added:
        info = new.classes[key]
        if "." not in info.qualname and (info.fields or info.values):
            sig = (info.module, _signature(info, nested(new, key)))
            by_sig.setdefault(sig, []).append(key)
    for key in removed:
        info = old.classes[key]
        if "." in info.qualname:
            continue
        sig = (info.module, _signature(info, nested(old, key)))
        candidates = by_sig.get(sig, [])
        if len(candidates) == 1:
            target = candidates.pop()
            renames[key] = target
            for sub in removed:
                if sub.startswith(key + "."):
                    moved = target + sub[len(key) :]
                    if moved in new.classes:
                        renames[sub] = moved
    return renames


def _facets(old: FieldInfo, new: FieldInfo) -> str:
    a, b = dict(old.facets), dict(new.facets)
    parts = []
    for name in sorted(set(a) | set(b)):
        if name not in b:
            parts.append(f"{name} {a[name]} dropped")
        elif name not in a:
            parts.append(f"{name} {b[name]} added")
        elif a[name] != b[name]:
            parts.append(f"{name} {a[name]} -> {b[name]}")
    return "; ".join(parts)


def _describe(f: FieldInfo) -> str:
    where = f" <{f.xml}>" if f.xml else ""
    return f"{f.value_type or f.annotation}, {f.cardinality}{where}"


def _compare_field(where: str, old: FieldInfo, new: FieldInfo, qual: dict[str, str]) -> list:
    out = []
    if old.kind != new.kind:
        out.append(Change("re-typed", where, f"{old.kind} -> {new.kind}"))
    if old.choices or new.choices:
        a = {name: _rename_in(t, qual) for name, t in old.choices}
        b = dict(new.choices)
        for name in [n for n, _ in new.choices if n not in a]:
            out.append(Change("alternative added", where, f"{name} ({b[name]})"))
        for name in [n for n, _ in old.choices if n not in b]:
            out.append(Change("alternative removed", where, f"{name} ({a[name]})"))
        for name in [n for n, _ in new.choices if n in a and a[n] != b[n]]:
            out.append(Change("re-typed", where, f"alternative {name}: {a[name]} -> {b[name]}"))
    elif _rename_in(old.value_type, qual) != new.value_type:
        out.append(Change("re-typed", where, f"{old.value_type} -> {new.value_type}"))
    if old.cardinality != new.cardinality:
        out.append(Change("cardinality", where, f"{old.cardinality} -> {new.cardinality}"))
    if old.xml != new.xml and old.xml and new.xml:
        out.append(Change("element renamed", where, f"<{old.xml}> -> <{new.xml}>"))
    facets = _facets(old, new)
    if facets:
        out.append(Change("restriction", where, facets))
    return out


def _compare_class(old: ClassInfo, new: ClassInfo, qual: dict[str, str]) -> list[Change]:
    where = new.key
    out: list[Change] = []
    if old.xml != new.xml and old.qualname == new.qualname:
        out.append(Change("element renamed", where, f"<{old.xml}> -> <{new.xml}>"))
    added = [n for n in new.fields if n not in old.fields]
    removed = [n for n in old.fields if n not in new.fields]
    if len(added) == 1 and len(removed) == 1:
        a, b = old.fields[removed[0]], new.fields[added[0]]
        if (_rename_in(a.value_type, qual), a.cardinality) == (b.value_type, b.cardinality):
            out.append(
                Change("field renamed", where, f"{a.name} -> {b.name} (<{a.xml}> -> <{b.xml}>)")
            )
            added, removed = [], []
    for name in added:
        out.append(Change("field added", f"{where}.{name}", _describe(new.fields[name])))
    for name in removed:
        out.append(Change("field removed", f"{where}.{name}", _describe(old.fields[name])))
    for name in [n for n in new.fields if n in old.fields]:
        out += _compare_field(f"{where}.{name}", old.fields[name], new.fields[name], qual)
    gone = [v for v in old.values if v not in new.values]
    came = [v for v in new.values if v not in old.values]
    if gone or came:
        detail = "; ".join(
            part
            for part in (
                "added " + ", ".join(map(repr, came)) if came else "",
                "removed " + ", ".join(map(repr, gone)) if gone else "",
            )
            if part
        )
        out.append(Change("enumeration", where, detail))
    return out


def diff(old: TypeSet, new: TypeSet) -> TypesDiff:
    """Every reviewable change from ``old`` to ``new``."""
    result = TypesDiff(_classes=set(new.classes))
    for module in sorted(set(new.namespaces) - set(old.namespaces)):
        result.changes.append(Change("module added", module, new.namespaces[module]))
    for module in sorted(set(old.namespaces) - set(new.namespaces)):
        result.changes.append(Change("module removed", module, old.namespaces[module]))
    renames = _find_renames(old, new)
    result.renames = renames
    qual = {_qual(a): _qual(b) for a, b in renames.items()}
    for key in sorted(renames):
        if "." not in _qual(key):
            result.changes.append(Change("class renamed", key, f"-> {renames[key]} (same fields)"))
    for key in sorted(set(new.classes) - set(old.classes) - set(renames.values())):
        info = new.classes[key]
        shown = ", ".join(info.fields) or ", ".join(info.values)
        result.changes.append(Change("class added", key, f"<{info.xml}> ({shown})"))
    for key in sorted(set(old.classes) - set(new.classes) - set(renames)):
        result.changes.append(Change("class removed", key, f"<{old.classes[key].xml}>"))
    pairs = [(k, k) for k in sorted(set(old.classes) & set(new.classes))]
    pairs += sorted(renames.items())
    for before, after in sorted(pairs, key=lambda p: p[1]):
        result.changes += _compare_class(old.classes[before], new.classes[after], qual)
    return result
