"""What a generated 8-2 package declares, read from its source: classes, fields, enumerations.

The source is parsed (:mod:`ast`), never imported, so the types of any tree can be read side by
side: the committed ``generated/iec61850_8_2`` before a regeneration, the fresh output, or a
git revision (``git show REV:PATH``). :mod:`gridbind.codegen.xsddiff` compares two such
:class:`TypeSet` s, :mod:`gridbind.codegen.runtime_check` checks the runtime's uses against one.
"""

from __future__ import annotations

import ast
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridbind.codegen.errors import SpecError

__all__ = [
    "ClassInfo",
    "FieldInfo",
    "TypeSet",
    "module_names",
    "read_folder",
    "read_git",
    "read_sources",
]

#: Modules of the generated package that hold no schema types.
NOT_TYPES = {"__init__.py", "fastxer.py"}
#: Metadata keys that are not restrictions (facets) of a field.
_NOT_FACETS = {"name", "type", "namespace", "choices", "required", "nillable", "mixed"}


@dataclass(frozen=True)
class FieldInfo:
    """One dataclass field of a generated class."""

    name: str
    xml: str  # element/attribute name ("" for text content and compound fields)
    kind: str  # Element | Elements (a CHOICE) | Attribute | Text | Wildcard
    annotation: str  # the Python annotation as written, e.g. "None | int", "list[Data]"
    min_occurs: int
    max_occurs: int | None  # None: unbounded
    facets: tuple[tuple[str, str], ...] = ()  # restrictions: (name, value) sorted
    choices: tuple[tuple[str, str], ...] = ()  # CHOICE alternatives: (element name, type)
    has_default: bool = True  # False: the constructor needs it

    @property
    def many(self) -> bool:
        return self.max_occurs is None or self.max_occurs > 1

    @property
    def cardinality(self) -> str:
        """``1``, ``0..1``, ``0..n``, ``1..n``, ``2..5``..."""
        high = "n" if self.max_occurs is None else str(self.max_occurs)
        return (
            str(self.min_occurs) if high == str(self.min_occurs) else f"{self.min_occurs}..{high}"
        )

    @property
    def value_type(self) -> str:
        """The annotation without ``None |`` and the ``list[...]`` of repeated fields."""
        text = self.annotation.strip()
        if text.startswith("list[") and text.endswith("]"):
            text = text[5:-1]
        parts = [p.strip() for p in _split_union(text) if p.strip() != "None"]
        return " | ".join(parts)


@dataclass(frozen=True)
class ClassInfo:
    """One generated class (nested classes are separate entries, ``Outer.Inner``)."""

    module: str
    qualname: str
    xml: str  # Meta.name or the class name
    kind: str  # dataclass | enum
    fields: dict[str, FieldInfo] = field(default_factory=dict)  # inherited ones included
    values: tuple[str, ...] = ()  # enumeration values
    bases: tuple[str, ...] = ()  # generated base classes (qualnames, same module)

    @property
    def key(self) -> str:
        return f"{self.module}.{self.qualname}"


@dataclass
class TypeSet:
    """Every class of a generated package by ``module.Qualname``, and its namespaces."""

    classes: dict[str, ClassInfo]
    namespaces: dict[str, str]  # module -> target namespace

    def by_name(self) -> dict[str, list[ClassInfo]]:
        """Classes by bare qualname (``Data.Integer``), as the runtime refers to them."""
        out: dict[str, list[ClassInfo]] = {}
        for info in self.classes.values():
            out.setdefault(info.qualname, []).append(info)
        return out


def _split_union(text: str) -> list[str]:
    """``A | list[B | C] | None`` -> ``["A", "list[B | C]", "None"]`` (top level only)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _value(node: ast.AST) -> Any:
    """A literal of the generated metadata: constants, tuples, dicts, type names, ForwardRef."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple | ast.List):
        return tuple(_value(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        # A None key is a ``**mapping`` splat: not a literal, kept as its source text.
        if any(k is None for k in node.keys):
            return ast.unparse(node)
        return {
            _value(k): _value(v)
            for k, v in zip(node.keys, node.values, strict=True)
            if k is not None
        }
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "ForwardRef" and node.args:
        return _value(node.args[0])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand)
    return ast.unparse(node)


def _field(name: str, node: ast.AnnAssign) -> FieldInfo:
    annotation = " ".join(ast.unparse(node.annotation).split())
    metadata: dict[str, Any] = {}
    has_default = node.value is not None
    if isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "field":
        keywords = {k.arg: k.value for k in node.value.keywords}
        has_default = "default" in keywords or "default_factory" in keywords
        if isinstance(keywords.get("metadata"), ast.Dict):
            metadata = _value(keywords["metadata"])
    many = annotation.startswith("list[")
    optional = "None" in _split_union(annotation)
    low = metadata.get("min_occurs", 0 if (many or optional or has_default) else 1)
    high = metadata.get("max_occurs", None if many else 1)
    choices = tuple(
        (str(c.get("name", c.get("wildcard", ""))), str(c.get("type", "")))
        for c in metadata.get("choices", ())
        if isinstance(c, dict)
    )
    facets = tuple(sorted((k, repr(v)) for k, v in metadata.items() if k not in _NOT_FACETS))
    facets = tuple(f for f in facets if f[0] not in ("min_occurs", "max_occurs"))
    # xsdata writes no type for the text content of a simple-content class (``value``)
    kind = str(metadata.get("type", "Text" if name == "value" else "Element"))
    return FieldInfo(
        name=name,
        xml="" if kind in ("Elements", "Text") else str(metadata.get("name", name)),
        kind=kind,
        annotation=annotation,
        min_occurs=int(low),
        max_occurs=None if high is None or high == "sys.maxsize" else int(high),
        facets=facets,
        choices=choices,
        has_default=has_default,
    )


def _classes(module: str, body: list[ast.stmt], prefix: str = "") -> list[ClassInfo]:
    out: list[ClassInfo] = []
    for node in body:
        if not isinstance(node, ast.ClassDef) or node.name == "Meta":
            continue
        qualname = f"{prefix}{node.name}"
        is_enum = any(ast.unparse(b).split(".")[-1] == "Enum" for b in node.bases)
        xml = node.name
        fields: dict[str, FieldInfo] = {}
        values: list[str] = []
        for item in node.body:
            if isinstance(item, ast.ClassDef) and item.name == "Meta":
                for stmt in item.body:
                    if (
                        isinstance(stmt, ast.Assign)
                        and getattr(stmt.targets[0], "id", "") == "name"
                        and isinstance(stmt.value, ast.Constant)
                    ):
                        xml = str(stmt.value.value)
            elif is_enum and isinstance(item, ast.Assign) and isinstance(item.value, ast.Constant):
                values.append(str(item.value.value))
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                fields[item.target.id] = _field(item.target.id, item)
        out.append(
            ClassInfo(
                module=module,
                qualname=qualname,
                xml=xml,
                kind="enum" if is_enum else "dataclass",
                fields=fields,
                values=tuple(values),
                bases=tuple(ast.unparse(b) for b in node.bases),
            )
        )
        out += _classes(module, node.body, prefix=f"{qualname}.")
    return out


def read_sources(sources: dict[str, str], display: str = "generated") -> TypeSet:
    """Types of a generated package given as ``{file name: source}``."""
    classes: dict[str, ClassInfo] = {}
    namespaces: dict[str, str] = {}
    for name, source in sorted(sources.items()):
        if not name.endswith(".py") or name in NOT_TYPES:
            continue
        module = name[:-3]
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise SpecError(f"{display}/{name}", str(exc.lineno or ""), "not Python") from None
        for stmt in tree.body:
            if (
                isinstance(stmt, ast.Assign)
                and getattr(stmt.targets[0], "id", "") == "__NAMESPACE__"
                and isinstance(stmt.value, ast.Constant)
            ):
                namespaces[module] = str(stmt.value.value)
        for info in _classes(module, tree.body):
            classes[info.key] = info
    return TypeSet(classes=_inherit(classes), namespaces=namespaces)


def _inherit(classes: dict[str, ClassInfo]) -> dict[str, ClassInfo]:
    """Give each class the fields of its generated bases (xsdata derives ``Array(ListOfData)``)."""

    def fields(info: ClassInfo, depth: int = 0) -> dict[str, FieldInfo]:
        merged: dict[str, FieldInfo] = {}
        for base in info.bases:
            parent = classes.get(f"{info.module}.{base}")
            if parent is not None and depth < 20:
                merged.update(fields(parent, depth + 1))
        merged.update(info.fields)
        return merged

    out = {}
    for key, info in classes.items():
        bases = tuple(b for b in info.bases if f"{info.module}.{b}" in classes)
        out[key] = ClassInfo(
            info.module, info.qualname, info.xml, info.kind, fields(info), info.values, bases
        )
    return out


def read_folder(folder: Path) -> TypeSet:
    """Types of the generated package in ``folder`` (empty when it does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return TypeSet(classes={}, namespaces={})
    sources = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.py"))}
    return read_sources(sources, folder.as_posix())


def read_git(root: Path, revision: str, folder: str) -> TypeSet:
    """Types of ``folder`` (relative to the checkout ``root``) at git ``revision``."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", "-C", str(root), *args],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            raise SpecError(revision, "", f"git cannot read it: {detail.strip()}") from None
        return out.stdout

    names = [n for n in git("ls-tree", "--name-only", f"{revision}:{folder}").split() if n]
    sources = {n: git("show", f"{revision}:{folder}/{n}") for n in names if n.endswith(".py")}
    return read_sources(sources, f"{revision}:{folder}")


def module_names(folder: Path) -> dict[str, set[str]]:
    """Top-level names of every module of the generated package in ``folder`` (``fastxer``
    included), for uses such as ``fastxer.decode``."""
    out: dict[str, set[str]] = {}
    for path in sorted(Path(folder).glob("*.py")):
        names: set[str] = set()
        for stmt in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(stmt, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(stmt.name)
            elif isinstance(stmt, ast.Assign):
                names |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                names.add(stmt.target.id)
            elif isinstance(stmt, ast.ImportFrom | ast.Import):
                names |= {(a.asname or a.name).split(".")[0] for a in stmt.names}
        out[path.stem] = names
    return out
