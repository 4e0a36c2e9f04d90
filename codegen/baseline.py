"""The 8-2 types the hand-written runtime was last found to fit (a committed baseline).

A field the runtime uses whose type or cardinality changed, or a CHOICE that lost an
alternative, can only be seen by comparing with the types the runtime was written against.
Comparing with the generated package as it was before a regeneration sees it once: the next
``codegen all`` (or ``check-runtime``, or CI's ``--check``) compares the new types with
themselves and passes. So codegen keeps ``generated/iec61850_8_2/runtime_baseline.json``: the
types of the last regeneration the runtime fitted, written only when it fits, and compared with
by every check until the runtime is adapted.
"""

from __future__ import annotations

import json
from pathlib import Path

from gridbind.codegen.xsdtypes import ClassInfo, FieldInfo, TypeSet

__all__ = ["NAME", "dump", "load", "path", "write"]

#: File name of the baseline inside the generated 8-2 package (see pipeline's kept files).
NAME = "runtime_baseline.json"


def path(package: Path) -> Path:
    """Where the baseline of the generated package folder ``package`` lives."""
    return Path(package) / NAME


def _field(info: FieldInfo) -> list:
    return [
        info.name,
        info.xml,
        info.kind,
        info.annotation,
        info.min_occurs,
        info.max_occurs,
        [list(f) for f in info.facets],
        [list(c) for c in info.choices],
        info.has_default,
    ]


def dump(types: TypeSet) -> str:
    """The baseline text of ``types`` (one class per line, sorted, so diffs are reviewable)."""
    lines = [
        "{",
        f' "namespaces": {json.dumps(types.namespaces, sort_keys=True)},',
        ' "classes": {',
    ]
    items = sorted(types.classes.items())
    for i, (key, c) in enumerate(items):
        value = [
            c.module,
            c.qualname,
            c.xml,
            c.kind,
            [_field(f) for f in c.fields.values()],
            list(c.values),
            list(c.bases),
        ]
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines += [" }", "}", ""]
    return "\n".join(lines)


def load(package: Path) -> TypeSet | None:
    """The baseline of ``package``, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads(path(package).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    classes: dict[str, ClassInfo] = {}
    for key, (module, qualname, xml, kind, fields, values, bases) in data["classes"].items():
        infos = {}
        for name, fxml, fkind, annotation, low, high, facets, choices, has_default in fields:
            infos[name] = FieldInfo(
                name,
                fxml,
                fkind,
                annotation,
                low,
                high,
                tuple(tuple(f) for f in facets),
                tuple(tuple(c) for c in choices),
                has_default,
            )
        classes[key] = ClassInfo(module, qualname, xml, kind, infos, tuple(values), tuple(bases))
    return TypeSet(classes=classes, namespaces=dict(data["namespaces"]))


def write(package: Path, types: TypeSet) -> bool:
    """Record ``types`` as the baseline of ``package``; True when the file changed."""
    text = dump(types)
    target = path(package)
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return False
    target.write_text(text, encoding="utf-8")
    return True
