"""Does the hand-written runtime still fit the generated 8-2 classes?

The runtime (``runtime/``, the ``gridbind`` package) refers to generated classes by name
(``m.Data.Integer``), builds them with keyword arguments (``m.ObjectName(choice=...)``), matches
them (``case ConfirmedRequestPdu(invoke_id=i)``), checks them (``isinstance(x, m.Array)``) and
reads their fields. A new schema can rename or remove any of these, and the first sign used to
be an ImportError or a deep AttributeError in some test. :func:`uses` finds these uses in the
runtime's source (:mod:`ast`, nothing is imported) and :func:`check` verifies each against the
types of a generated package, naming the runtime line, the generated class and the field:

- a class used that no longer exists (with the rename, when one was found);
- a field passed, matched or read that the class no longer has;
- with the types the runtime was written against (``old``): a field used whose type, kind or
  cardinality changed, a CHOICE that lost an alternative, and a field read by name
  (``pdu.choice``) that was a field before and is a field of no class now;
- a constructor call that misses a field the class now requires;
- a name of a generated module (``fastxer.decode``) that is gone.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from gridbind.codegen.xsddiff import _rename_in
from gridbind.codegen.xsdtypes import ClassInfo, FieldInfo, TypeSet

__all__ = ["Problem", "Use", "check", "uses"]

PACKAGE = "gridbind.generated.iec61850_8_2"


@dataclass(frozen=True)
class Use:
    """One use of the generated package in the runtime's source."""

    file: str
    line: int
    kind: str  # class | field | construct | read | module
    module: str | None  # generated module (None: re-exported by the package)
    name: str  # class qualname, or module attribute for kind "module"
    attr: str = ""  # field (field/read); comma-joined keywords (construct)


@dataclass(frozen=True)
class Problem:
    """A use that does not fit the types: ``line()`` is what the command prints."""

    use: Use
    message: str

    def line(self) -> str:
        return f"{self.use.file}:{self.use.line}: {self.message}"


# --- finding the uses -------------------------------------------------------------------------


class _Scanner(ast.NodeVisitor):
    def __init__(self, file: str, modules: set[str]) -> None:
        self.file = file
        self.modules = modules
        # name -> ("package", None, "") | ("module", mod, "") | ("class", mod|None, qualname)
        self.aliases: dict[str, tuple[str, str | None, str]] = {}
        self.found: list[Use] = []
        self.reads: list[Use] = []
        # identifier-like strings of module-level tuple constants (``_PATHS = (("asso_id",),)``),
        # taken as field reads when the module calls getattr with a computed name
        self.names: list[Use] = []
        self.dynamic_getattr = False

    # imports and aliases

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == PACKAGE and alias.asname:
                self.aliases[alias.asname] = ("package", None, "")
            elif alias.name.startswith(PACKAGE + ".") and alias.asname:
                self.aliases[alias.asname] = ("module", alias.name.rsplit(".", 1)[1], "")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        source = node.module or ""
        for alias in node.names:
            bound = alias.asname or alias.name
            if source == PACKAGE:
                if alias.name in self.modules:
                    self.aliases[bound] = ("module", alias.name, "")
                else:
                    self.aliases[bound] = ("class", None, alias.name)
                    self._use(node, "class", None, alias.name)
            elif source.startswith(PACKAGE + "."):
                module = source.rsplit(".", 1)[1]
                self.aliases[bound] = ("class", module, alias.name)
                self._use(node, "class", module, alias.name)

    def visit_Module(self, node: ast.Module) -> None:
        for stmt in node.body:
            if isinstance(stmt, ast.Assign | ast.AnnAssign) and isinstance(
                stmt.value, ast.Tuple | ast.List | ast.Set
            ):
                for item in ast.walk(stmt.value):
                    if (
                        isinstance(item, ast.Constant)
                        and isinstance(item.value, str)
                        and item.value.isidentifier()
                    ):
                        self.names.append(Use(self.file, item.lineno, "read", None, "", item.value))
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        ref = self.resolve(node.value)
        if ref is not None and ref[0] == "class":
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.aliases[target.id] = ref
        self.generic_visit(node)

    # resolving expressions to generated things

    def resolve(self, node: ast.AST) -> tuple[str, str | None, str] | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            if base is None:
                return None
            kind, module, qual = base
            if kind == "package":
                if node.attr.startswith("_"):
                    return None  # __file__, __all__: the package object, not a class
                if node.attr in self.modules:
                    return ("module", node.attr, "")
                return ("class", None, node.attr)
            if kind == "module":
                if node.attr.startswith("__"):
                    return None  # __name__, __file__: the module object itself
                if module == "fastxer" or not node.attr[:1].isupper():
                    return ("moduleattr", module, node.attr)
                return ("class", module, node.attr)
            if kind == "class" and node.attr[:1].isupper():
                return ("class", module, f"{qual}.{node.attr}")
        return None

    def _use(self, node: ast.AST, kind: str, module: str | None, name: str, attr: str = "") -> None:
        self.found.append(Use(self.file, getattr(node, "lineno", 0), kind, module, name, attr))

    # the uses

    def visit_Attribute(self, node: ast.Attribute) -> None:
        ref = self.resolve(node)
        if ref is not None:
            kind, module, name = ref
            if kind == "class":
                self._use(node, "class", module, name)
            elif kind == "moduleattr":
                self._use(node, "module", module, name)
            return  # the chain's inner parts are prefixes of this use
        base = self.resolve(node.value)
        if base is not None and base[0] == "class":
            self._use(node, "field", base[1], base[2], node.attr)
        elif base is None and isinstance(node.ctx, ast.Load):
            self.reads.append(Use(self.file, node.lineno, "read", None, "", node.attr))
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        ref = self.aliases.get(node.id)
        if ref is not None and ref[0] == "class" and isinstance(node.ctx, ast.Load):
            self._use(node, "class", ref[1], ref[2])

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in {"getattr", "hasattr"}:
            if len(node.args) >= 2:
                named = node.args[1]
                if isinstance(named, ast.Constant) and isinstance(named.value, str):
                    # getattr(x, "choice") reads the field as x.choice does
                    self.reads.append(Use(self.file, node.lineno, "read", None, "", named.value))
                else:
                    self.dynamic_getattr = True
        ref = self.resolve(node.func)
        if ref is not None and ref[0] == "class":
            kwargs = [k.arg for k in node.keywords if k.arg is not None]
            for name in kwargs:
                self._use(node, "field", ref[1], ref[2], name)
            if all(k.arg is not None for k in node.keywords) and not node.args:
                self._use(node, "construct", ref[1], ref[2], ",".join(kwargs))
        self.generic_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        ref = self.resolve(node.cls)
        if ref is not None and ref[0] == "class":
            for name in node.kwd_attrs:
                self._use(node, "field", ref[1], ref[2], name)
        self.generic_visit(node)


def uses(runtime_dir: Path, modules: set[str], root: Path | None = None) -> list[Use]:
    """Every use of the generated 8-2 package in the ``.py`` files under ``runtime_dir``.

    ``modules``: the module names of the generated package (``scsm_8_2``, ``fastxer``...).
    Field reads by name (``x.choice`` on a value of unknown type) are kept only for modules
    that import the generated package. File names are shown relative to ``root``.
    """
    found: list[Use] = []
    for path in sorted(Path(runtime_dir).rglob("*.py")):
        try:
            shown = path.relative_to(root).as_posix() if root else path.as_posix()
        except ValueError:
            shown = path.as_posix()
        scanner = _Scanner(shown, modules)
        scanner.visit(ast.parse(path.read_text(encoding="utf-8")))
        found += scanner.found
        if scanner.aliases:
            found += scanner.reads
            if scanner.dynamic_getattr:
                found += scanner.names
    return found


# --- checking them ----------------------------------------------------------------------------


def _lookup(types: TypeSet, module: str | None, qual: str) -> ClassInfo | None:
    if module is not None:
        return types.classes.get(f"{module}.{qual}")
    found = sorted(types.by_name().get(qual, []), key=lambda c: c.module)
    return found[0] if found else None


def _shape(f: FieldInfo, renames: dict[str, str]) -> tuple:
    return (f.kind, f.many, _rename_in(f.value_type, renames) if not f.choices else "")


def check(
    found: list[Use],
    new: TypeSet,
    old: TypeSet | None = None,
    module_names: dict[str, set[str]] | None = None,
    renames: dict[str, str] | None = None,
) -> list[Problem]:
    """The uses that do not fit ``new`` (see the module doc), one :class:`Problem` each."""
    renames = renames or {}
    qual_renames = {a.split(".", 1)[1]: b.split(".", 1)[1] for a, b in renames.items()}
    problems: list[Problem] = []
    seen: set[tuple] = set()

    def report(use: Use, message: str) -> None:
        key = (use.file, use.line, message)
        if key not in seen:
            seen.add(key)
            problems.append(Problem(use, message))

    def shown(module: str | None, qual: str) -> str:
        return f"{module}.{qual}" if module else qual

    new_fields = {name for c in new.classes.values() for name in c.fields}
    old_fields: dict[str, list[str]] = {}
    for c in (old.classes.values() if old else ()):
        for name in c.fields:
            old_fields.setdefault(name, []).append(c.key)

    for use in found:
        if use.kind == "read":
            if old is not None and use.attr in old_fields and use.attr not in new_fields:
                owners = ", ".join(sorted(old_fields[use.attr])[:3])
                report(
                    use, f"reads .{use.attr}, a field of {owners}; no generated class has it now"
                )
            continue
        if use.kind == "module":
            names = (module_names or {}).get(use.module or "")
            if names is not None and use.name not in names:
                report(use, f"{use.module}.{use.name} no longer exists in the generated package")
            continue
        info = _lookup(new, use.module, use.name)
        if info is None:
            key = f"{use.module}.{use.name}" if use.module else None
            hint = f" (renamed to {renames[key]}?)" if key and key in renames else ""
            report(use, f"generated class {shown(use.module, use.name)} no longer exists{hint}")
            continue
        before = _lookup(old, use.module, use.name) if old is not None else None
        if before is None and old is not None:
            back = {v: k for k, v in qual_renames.items()}
            before = _lookup(old, use.module, back.get(use.name, use.name))
        if use.kind == "field":
            field = info.fields.get(use.attr)
            if field is None:
                if use.attr in {"__class__", "__dataclass_fields__"} or use.attr.startswith("_"):
                    continue
                now = ", ".join(info.fields) or "none"
                report(use, f"generated class {info.key} has no field {use.attr!r} (fields: {now})")
                continue
            was = before.fields.get(use.attr) if before is not None else None
            if was is None:
                continue
            if _shape(was, qual_renames) != _shape(field, {}):
                report(
                    use,
                    f"generated field {info.key}.{use.attr} changed: "
                    f"{was.annotation} ({was.cardinality}) -> "
                    f"{field.annotation} ({field.cardinality})",
                )
            lost = [n for n, _ in was.choices if n not in dict(field.choices)]
            if lost:
                report(
                    use,
                    f"generated field {info.key}.{use.attr} lost CHOICE alternatives: "
                    + ", ".join(lost),
                )
        elif use.kind == "construct":
            given = set(filter(None, use.attr.split(",")))
            missing = [n for n, f in info.fields.items() if not f.has_default and n not in given]
            if missing:
                report(
                    use,
                    f"builds generated class {info.key} without its required field(s) "
                    + ", ".join(repr(m) for m in missing),
                )
    return problems
