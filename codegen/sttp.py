"""``gridbind codegen sttp``: a checked STTP spec -> one Python module (construct + dataclasses).

The model comes from :mod:`gridbind.codegen.spec`; this module turns each piece into Python source
fragments and lets the jinja2 template ``templates/sttp_module.py.j2`` lay them out. Output is
black-formatted and depends only on the spec, so regeneration is byte-identical.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from gridbind.codegen.render import header, render_template, write_python
from gridbind.codegen.spec import EnumDef, FieldDef, Spec, StructDef, constant_name, load_spec

_INT_CONS = {8: "Int8", 16: "Int16", 24: "Int24", 32: "Int32", 64: "Int64"}
_PY_SIMPLE = {
    "int": "int",
    "float": "float",
    "bool": "bool",
    "guid": "uuid.UUID",
    "ascii": "str",
    "string": "str",
    "bytes": "bytes",
    "bbb": "int",
}
_PY_DEFAULT = {
    "int": "0",
    "float": "0.0",
    "bool": "False",
    "guid": "_ZERO_GUID",
    "ascii": '""',
    "string": '""',
    "bytes": 'b""',
    "bbb": "0",
}


def module_name(spec_file: str | Path) -> str:
    """``draft-0.8.yaml`` -> ``draft_0_8``."""
    stem = Path(spec_file).stem
    name = re.sub(r"\W", "_", stem)
    return name if not name[0].isdigit() else "_" + name


class _Renderer:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.codec_modules: dict[str, str] = {}  # module -> alias

    def ref(self, dotted: str) -> str:
        """``pkg.mod.NAME`` -> ``_pkg_mod.NAME``, importing ``pkg.mod`` under that alias.

        ``import a.b as _a_b`` binds through sys.modules, so a runtime package may import its
        generated module while that module imports the package's codecs (no circular failure).
        """
        module, _, attr = dotted.rpartition(".")
        if not module:
            return dotted
        alias = "_" + module.replace(".", "_")
        self.codec_modules[module] = alias
        return f"{alias}.{attr}"

    def py_ref(self, annotation: str) -> str:
        """A codec's ``py`` annotation with dotted names routed through :meth:`ref`."""
        return re.sub(
            r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+", lambda m: self.ref(m.group(0)), annotation
        )

    # construct expressions

    def int_cons(self, bits: int, signed: bool, little: bool) -> str:
        return f"c.{_INT_CONS[bits]}{'s' if signed else 'u'}{'l' if little else 'b'}"

    def base_cons(self, type_name: str) -> str:
        bits = int(type_name[1:])
        return self.int_cons(bits, type_name[0] == "i", self.spec.byte_order == "little")

    def size_expr(self, fdef: FieldDef) -> str:
        size = fdef.size
        assert size is not None
        if size.const is not None:
            return str(size.const)
        expr = f"c.this.{size.field}"
        if size.offset:
            expr += f" {'+' if size.offset > 0 else '-'} {abs(size.offset)}"
        return expr

    def cons(self, fdef: FieldDef) -> str:
        kind = fdef.kind
        if kind == "int":
            out = self.int_cons(fdef.bits, fdef.signed, fdef.little)
        elif kind == "float":
            out = f"c.Float{fdef.bits}{'l' if self.spec.byte_order == 'little' else 'b'}"
        elif kind == "bool":
            out = "c.Flag"
        elif kind == "guid":
            out = f"_s.Guid(dotnet={fdef.dotnet})"
        elif kind == "ascii":
            out = f"_s.FixedAscii({self.size_expr(fdef)}, {fdef.pad!r})"
        elif kind == "string":
            assert fdef.prefix is not None  # the spec reader gives every string a prefix (u16)
            out = f"c.PascalString({self.base_cons(fdef.prefix)}, {fdef.encoding!r})"
        elif kind == "bytes":
            if fdef.prefix:
                out = f"c.Prefixed({self.base_cons(fdef.prefix)}, c.GreedyBytes)"
            elif fdef.size is not None:
                out = f"c.Bytes({self.size_expr(fdef)})"
            else:
                out = "c.GreedyBytes"
        elif kind == "array":
            assert fdef.of is not None
            of = fdef.of
            if of.kind == "struct" and self.spec.structs[of.type].layout == "bit-byte-block":
                out = f"_s.BitByteArray({of.type})"
            else:
                elem = self.cons(of)
                if fdef.prefix:
                    out = f"c.PrefixedArray({self.base_cons(fdef.prefix)}, {elem})"
                elif fdef.size is not None:
                    out = f"c.Array({self.size_expr(fdef)}, {elem})"
                else:
                    out = f"c.GreedyRange({elem})"
        elif kind == "switch":
            cases = ", ".join(
                f"{code}: {self.cons(case) if case is not None else 'c.Pass'}"
                for code, case in fdef.cases
            )
            default = (
                self.cons(fdef.default_case) if fdef.default_case else f"_s.NoCase({fdef.on!r})"
            )
            out = f"c.Switch(c.this.{fdef.on}, {{{cases}}}, default={default})"
        elif kind == "codec":
            out = self.ref(fdef.codec)
        elif kind == "enum":
            out = f"_s.EnumOf({self.base_cons(self.spec.enums[fdef.type].base)}, {fdef.type})"
        elif kind == "flags":
            out = f"_s.FlagsOf({self.base_cons(self.spec.enums[fdef.type].base)}, {fdef.type})"
        elif kind == "struct":
            out = constant_name(fdef.type)
        else:  # pragma: no cover - the checker refuses other kinds in construct layout
            raise AssertionError(kind)
        if fdef.length_of is not None:
            out = f"c.Rebuild({out}, c.len_(c.this.{fdef.length_of})"
            out += f" + {fdef.adjust})" if fdef.adjust else ")"
        if fdef.when is not None:
            out = f"c.If({self.cond(fdef, 'c.this.')}, {out})"
        return out

    def cond(self, fdef: FieldDef, prefix: str) -> str:
        when = fdef.when
        assert when is not None
        ref = f"{prefix}{when.field}"
        if when.op == "equals":
            return f"{ref} == {when.value}"
        if when.op == "not_equals":
            return f"{ref} != {when.value}"
        if when.op == "not_bits":
            return f"({ref} & {when.value:#x}) == 0"
        return f"({ref} & {when.value:#x}) != 0"

    def cond_text(self, fdef: FieldDef) -> str:
        when = fdef.when
        assert when is not None
        if when.op == "bits":
            return f"{when.field} has bits {when.value:#x}"
        if when.op == "not_bits":
            return f"{when.field} has none of bits {when.value:#x}"
        return f"{when.field} {'==' if when.op == 'equals' else '!='} {when.value}"

    # Python types and defaults

    def py_type(self, fdef: FieldDef) -> str:
        kind = fdef.kind
        if kind in _PY_SIMPLE:
            out = _PY_SIMPLE[kind]
        elif kind == "array":
            assert fdef.of is not None
            out = f"list[{self.py_type(fdef.of)}]"
        elif kind == "switch":
            options: list[str] = []
            for _, case in fdef.cases:
                name = self.py_type(case) if case is not None else "None"
                if name not in options:
                    options.append(name)
            if fdef.default_case is not None:
                name = self.py_type(fdef.default_case)
                if name not in options:
                    options.append(name)
            if "None" not in options:
                options.append("None")
            out = " | ".join(options)
        elif kind == "codec":
            out = self.py_ref(fdef.py)
        else:
            out = fdef.type
        if fdef.when is not None and not out.endswith("None"):
            out += " | None"
        return out

    def default(self, fdef: FieldDef, struct: StructDef) -> str:
        """The right-hand side of the dataclass field."""
        if fdef.when is not None:
            return "None"
        if fdef.has_default:
            return self.literal(fdef, fdef.default)
        return self.plain_default(fdef, struct)

    def literal(self, fdef: FieldDef, value: Any) -> str:
        if fdef.kind in ("enum", "flags") and isinstance(value, str):
            return f"{fdef.type}.{value}"
        if fdef.kind in ("enum", "flags"):
            return f"{fdef.type}({value!r})"
        if fdef.kind == "guid":
            return f"uuid.UUID({str(value)!r})"
        return repr(value)

    def plain_default(self, fdef: FieldDef, struct: StructDef | None) -> str:
        kind = fdef.kind
        c = fdef.constraints
        if "choices" in c:
            return self.literal(fdef, c["choices"][0])
        if kind in ("int", "float", "bbb") and "min" in c and c["min"] > 0:
            return repr(c["min"] if kind != "float" else float(c["min"]))
        if kind in _PY_DEFAULT:
            if kind in ("string", "bytes", "ascii") and c.get("min_length", 0) > 0:
                filler = "x" if kind != "bytes" else "\\x00"
                text = filler * c["min_length"]
                return f'b"{text}"' if kind == "bytes" else f'"{text}"'
            return _PY_DEFAULT[kind]
        if kind == "enum":
            first = next(iter(self.spec.enums[fdef.type].values))
            return f"{fdef.type}.{first}"
        if kind == "flags":
            return f"{fdef.type}(0)"
        if kind == "struct":
            return f"field(default_factory={fdef.type})"
        if kind == "array":
            assert fdef.of is not None
            count = fdef.size.const if fdef.size is not None else None
            if count:
                elem = self.plain_default(fdef.of, None)
                if elem.startswith("field(default_factory="):
                    elem = elem[len("field(default_factory=") : -1] + "()"
                return f"field(default_factory=lambda: [{elem} for _ in range({count})])"
            return "field(default_factory=list)"
        if kind == "switch":
            assert struct is not None
            on = next(f for f in struct.fields if f.name == fdef.on)
            on_value = self.default_value_of(on)
            for code, case in fdef.cases:
                if code == on_value:
                    if case is None:
                        return "None"
                    value = self.plain_default(case, None)
                    if value.startswith("field("):
                        return value
                    return f"field(default_factory=lambda: {value})"
            return "None"
        if kind == "codec":
            known = {"int": "0", "float": "0.0", "str": '""', "bytes": 'b""', "bool": "False"}
            if fdef.py in known:
                return known[fdef.py]
            return f"field(default_factory={self.py_ref(fdef.py)})"
        raise AssertionError(kind)  # pragma: no cover

    def default_value_of(self, fdef: FieldDef) -> int | None:
        if fdef.has_default:
            value = fdef.default
            if fdef.kind == "enum" and isinstance(value, str):
                return self.spec.enums[fdef.type].values[value]
            return value if isinstance(value, int) else None
        if fdef.kind == "enum":
            return next(iter(self.spec.enums[fdef.type].values.values()))
        if fdef.kind == "int":
            return int(fdef.constraints.get("choices", [fdef.constraints.get("min", 0)])[0])
        return None

    # validation

    def checks(self, struct: StructDef) -> list[str]:
        lines: list[str] = []
        for fdef in struct.fields:
            if fdef.length_of is not None:
                continue
            ref = f"self.{fdef.name}"
            label = f"{struct.name}.{fdef.name}"
            body: list[str] = []
            c = fdef.constraints
            if "min" in c:
                body.append(
                    f"_s.check({ref} >= {c['min']!r}, "
                    f'lambda: f"{label} = {{{ref}!r}} is below the minimum {c["min"]!r}")'
                )
            if "max" in c:
                body.append(
                    f"_s.check({ref} <= {c['max']!r}, "
                    f'lambda: f"{label} = {{{ref}!r}} is above the maximum {c["max"]!r}")'
                )
            if "choices" in c:
                choices = "(" + ", ".join(self.literal(fdef, v) for v in c["choices"]) + ",)"
                body.append(
                    f"_s.check({ref} in {choices}, "
                    f'lambda: f"{label} = {{{ref}!r}} is not one of {choices}")'
                )
            if "min_length" in c:
                body.append(
                    f"_s.check(len({ref}) >= {c['min_length']}, "
                    f'lambda: f"{label} has {{len({ref})}} items/characters, '
                    f'fewer than {c["min_length"]}")'
                )
            if "max_length" in c:
                body.append(
                    f"_s.check(len({ref}) <= {c['max_length']}, "
                    f'lambda: f"{label} has {{len({ref})}} items/characters, '
                    f'more than {c["max_length"]}")'
                )
            if fdef.when is not None:
                cond = self.cond(fdef, "self.")
                text = self.cond_text(fdef)
                lines.append(f"if {cond}:")
                lines.append(
                    f'    _s.check({ref} is not None, lambda: "{label} is required when {text}")'
                )
                lines.extend("    " + line for line in body)
                lines.append("else:")
                lines.append(
                    f'    _s.check({ref} is None, lambda: "{label} must be None unless {text}")'
                )
            else:
                lines.extend(body)
        return lines

    # struct.Struct fast path for fixed layouts

    _FMT_INT = {(8, False): "B", (8, True): "b", (16, False): "H", (16, True): "h"}
    _FMT_INT |= {(32, False): "I", (32, True): "i", (64, False): "Q", (64, True): "q"}

    def fast_path(self, struct: StructDef) -> dict[str, Any] | None:
        """A ``struct.Struct`` plan when every field has a fixed width and no condition."""
        if struct.layout != "construct" or not struct.fields:
            return None
        little: bool | None = None
        fmt = ""
        index = 0
        unpack: list[tuple[str, str]] = []
        pack: list[str] = []

        def scalar(fdef: FieldDef) -> tuple[str, str, str] | None:
            """(format char, value from ``{}``, packable from ``{}``) of one element."""
            nonlocal little
            kind = fdef.kind
            if kind in ("enum", "flags"):
                base = self.spec.enums[fdef.type].base
                bits, is_little = int(base[1:]), self.spec.byte_order == "little"
                char = self._FMT_INT.get((bits, False))
                wrap = (
                    f"_s.enum_value({fdef.type}, {{}})" if kind == "enum" else f"{fdef.type}({{}})"
                )
                if char is None:
                    return None
                if bits > 8:
                    if little is not None and little != is_little:
                        return None
                    little = is_little
                return char, wrap, "int({})"
            if kind == "int":
                char = self._FMT_INT.get((fdef.bits, fdef.signed))
                if char is None:
                    return None
                if fdef.bits > 8:
                    if little is not None and little != fdef.little:
                        return None
                    little = fdef.little
                return char, "{}", "{}"
            if kind == "float":
                is_little = self.spec.byte_order == "little"
                if little is not None and little != is_little:
                    return None
                little = is_little
                return ("f" if fdef.bits == 32 else "d"), "{}", "{}"
            if kind == "bool":
                return "?", "{}", "{}"
            if kind == "guid":
                attr = "bytes_le" if fdef.dotnet else "bytes"
                return "16s", f"uuid.UUID({attr}={{}})", f"{{}}.{attr}"
            return None

        for fdef in struct.fields:
            if (
                fdef.when is not None
                or fdef.length_of is not None
                or fdef.constraints.get("choices")
            ):
                return None
            if fdef.kind == "array" and fdef.size is not None and fdef.size.const:
                assert fdef.of is not None
                elem = scalar(fdef.of)
                if elem is None or elem[1] != "{}" or elem[0] == "16s":
                    return None
                count = fdef.size.const
                fmt += f"{count}{elem[0]}"
                unpack.append((fdef.name, f"list(v[{index}:{index + count}])"))
                pack.append(f"*self.{fdef.name}")
                index += count
                continue
            elem = scalar(fdef)
            if elem is None:
                return None
            fmt += elem[0]
            unpack.append((fdef.name, elem[1].format(f"v[{index}]")))
            pack.append(elem[2].format(f"self.{fdef.name}"))
            index += 1
        arrays = [
            (f.name, f.size.const)
            for f in struct.fields
            if f.kind == "array" and f.size is not None and f.size.const
        ]
        return {
            "fmt": (">" if not little else "<") + fmt,
            "unpack": unpack,
            "pack": pack,
            "arrays": arrays,
        }

    # bit-byte-block

    def bbb_read(self, fdef: FieldDef) -> str:
        kind = fdef.kind
        if kind == "int":
            out = f"r.read_int({fdef.bits})" if fdef.signed else f"r.read_uint({fdef.bits})"
        elif kind == "bbb":
            out = f"r.read_uint({fdef.bits})" if fdef.bits else f"r.read_segments({fdef.type[3:]})"
        elif kind == "codec":
            out = f"{self.ref(fdef.codec)}.read(r)"
        elif kind in ("enum", "flags"):
            bits = int(self.spec.enums[fdef.type].base[1:])
            out = f"{fdef.type}(r.read_uint({bits}))"
        elif kind == "struct":
            out = f"{fdef.type}.read(r)"
        else:
            method = {
                "bool": "read_bool",
                "float": f"read_f{fdef.bits}",
                "guid": "read_guid",
                "string": "read_string",
                "bytes": "read_buffer",
                "ascii": "read_ascii",
            }[kind]
            out = f"r.{method}()"
        if fdef.when is not None:
            out = f"{out} if {self.cond(fdef, '')} else None"
        return out

    def bbb_write(self, fdef: FieldDef) -> str:
        kind = fdef.kind
        value = f"self.{fdef.name}"
        if kind == "int":
            out = f"w.write_{'int' if fdef.signed else 'uint'}({fdef.bits}, {value})"
        elif kind == "bbb":
            if fdef.bits:
                out = f"w.write_uint({fdef.bits}, {value})"
            else:
                out = f"w.write_segments({fdef.type[3:]}, {value})"
        elif kind == "codec":
            out = f"{self.ref(fdef.codec)}.write(w, {value})"
        elif kind in ("enum", "flags"):
            bits = int(self.spec.enums[fdef.type].base[1:])
            out = f"w.write_uint({bits}, int({value}))"
        elif kind == "struct":
            out = f"{value}.write(w)"
        else:
            method = {
                "bool": "write_bool",
                "float": f"write_f{fdef.bits}",
                "guid": "write_guid",
                "string": "write_string",
                "bytes": "write_buffer",
                "ascii": "write_ascii",
            }[kind]
            out = f"w.{method}({value})"
        if fdef.when is not None:
            return f"if {value} is not None:\n    {out}"
        return out

    # assembly

    def enum_context(self, enum: EnumDef) -> dict[str, Any]:
        return {
            "name": enum.name,
            "flags": enum.flags,
            "doc": _doc(enum.doc, enum.decision, f"Wire type {enum.base}."),
            "members": list(enum.values.items()),
            "bitfields": [
                {
                    "name": bf.name,
                    "mask": f"{bf.mask:#x}",
                    "shift": bf.shift,
                    "enum": bf.enum,
                    "doc": bf.doc or f"Bits {bf.mask:#x} of the flags.",
                    "py": bf.enum or "int",
                }
                for bf in enum.bitfields
            ],
        }

    def struct_context(self, struct: StructDef) -> dict[str, Any]:
        public = [f for f in struct.fields if f.length_of is None]
        fields = []
        for fdef in public:
            doc = _doc(fdef.doc, fdef.decision) if (fdef.doc or fdef.decision) else ""
            fields.append(
                {
                    "name": fdef.name,
                    "py": self.py_type(fdef),
                    "default": self.default(fdef, struct),
                    "doc": doc,
                }
            )
        extra = ""
        if struct.is_message:
            extra = (
                f"Code {struct.code:#04x}, {struct.kind} from {struct.direction}, "
                f"{'response expected' if struct.response else 'no response'}, "
                f"{struct.channel} channel."
            )
        ctx: dict[str, Any] = {
            "name": struct.name,
            "const": constant_name(struct.name),
            "doc": _doc(struct.doc, struct.decision, extra),
            "fields": fields,
            "names": tuple(f.name for f in public),
            "checks": self.checks(struct),
            "bbb": struct.layout == "bit-byte-block",
            "fast": self.fast_path(struct),
            "message": struct.is_message,
            "code": f"{struct.code:#04x}" if struct.is_message else None,
        }
        if ctx["bbb"]:
            ctx["reads"] = [(f.name, self.bbb_read(f)) for f in struct.fields]
            ctx["writes"] = [self.bbb_write(f) for f in struct.fields]
        else:
            ctx["cons"] = []
            for fdef in struct.fields:
                size = fdef.size
                if size is not None and size.field is not None and size.offset < 0:
                    # a length below the adjustment would make a negative size
                    ctx["cons"].append((None, f"c.Check(c.this.{size.field} >= {-size.offset})"))
                ctx["cons"].append((fdef.name, self.cons(fdef)))
        return ctx

    def context(self, source: str) -> dict[str, Any]:
        spec = self.spec
        enums = [self.enum_context(e) for e in spec.enums.values()]
        structs = [self.struct_context(s) for s in spec.structs.values()]
        messages = [
            {
                "code": f"{m.code:#04x}",
                "name": m.name,
                "kind": m.kind,
                "direction": m.direction,
                "response": m.response,
                "channel": m.channel,
            }
            for m in spec.messages
        ]
        frame = None
        if spec.frame is not None:
            frame = {
                "struct": spec.frame.struct,
                "code": spec.frame.code,
                "payload": spec.frame.payload,
            }
        defaults = [f["default"] for st_ in structs for f in st_["fields"]]
        return {
            "uses": {
                "field": any(d.startswith("field(") for d in defaults),
                "enum": bool(enums),
                "struct": any(st_["fast"] for st_ in structs),
                "classvar": bool(messages),
                "bbb": any(st_["bbb"] for st_ in structs),
                "any": bool(messages) or spec.frame is not None,
            },
            "header": header(source),
            "doc": _doc(spec.doc, "", f"Profile {spec.profile!r}."),
            "profile": spec.profile,
            "codec_modules": sorted(self.codec_modules.items()),
            "enums": enums,
            "structs": structs,
            "messages": messages,
            "frame": frame,
            "decisions": sorted(spec.decisions.items()),
        }


def _doc(doc: str, decision: str, extra: str = "") -> str:
    """A docstring body: paragraphs wrapped for a 100-column file, quotes escaped."""
    parts = [" ".join(doc.split())] if doc.strip() else []
    if extra:
        parts.append(extra)
    if decision:
        parts.append("Decision: " + " ".join(decision.split()))
    paragraphs = [textwrap.fill(p, width=90, break_on_hyphens=False) for p in parts]
    text = "\n\n".join(paragraphs) or "(undocumented)"
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text.endswith('"'):
        text += " "
    return text


def render_spec(spec: Spec, source: str) -> str:
    """The module source (not yet formatted) for a checked spec."""
    renderer = _Renderer(spec)
    context = renderer.context(source)
    return render_template("sttp_module.py.j2", context)


def generate(spec_path: str | Path, out_file: str | Path, display: str | None = None) -> Path:
    """Compile ``spec_path`` into ``out_file``; ``display`` names the spec in errors and header."""
    name = display or str(spec_path)
    spec = load_spec(spec_path, name)
    return write_python(Path(out_file), render_spec(spec, name))
