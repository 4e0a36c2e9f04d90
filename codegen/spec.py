"""Reading and checking an STTP spec (specs/sttp/*.yaml) into a small model codegen renders.

The language is documented in specs/sttp/README.md. Every problem becomes a :class:`SpecError`
whose one line names the file, the YAML line and the path inside the document.
"""

from __future__ import annotations

import importlib
import keyword
import re
import struct as pystruct
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import construct
import yaml

from gridbind.codegen.errors import SpecError

PathT = tuple[Any, ...]

INT_TYPES = {
    f"{sign}{bits}": (bits, sign == "i") for sign in ("u", "i") for bits in (8, 16, 24, 32, 64)
}
FLOAT_TYPES = {"f32": 32, "f64": 64}
BBB_BITS = {f"bits{n}": n for n in range(1, 8)}
SIMPLE_TYPES = set(INT_TYPES) | set(FLOAT_TYPES) | {"bool", "guid", "ascii", "string", "bytes"}
COMPOSITE_TYPES = {"array", "switch", "codec"}
BBB_ONLY_TYPES = set(BBB_BITS) | {"seg4", "seg8"}
RESERVED_NAMES = {"parse", "build", "validate", "read", "write", "CODE", "INFO"}
CONSTRAINT_KEYS = ("min", "max", "choices", "min_length", "max_length")
FIELD_KEYS = {
    "name",
    "type",
    "doc",
    "decision",
    "when",
    "default",
    "endian",
    "size",
    "pad",
    "prefix",
    "encoding",
    "order",
    "of",
    "count",
    "on",
    "cases",
    "default_case",
    "codec",
    "py",
    "length_of",
    "adjust",
    *CONSTRAINT_KEYS,
}
#: Module-level names of a generated module that spec types must not shadow.
MODULE_NAMES = {
    "Any", "BitByteReader", "BitByteWriter", "ClassVar", "ConstraintError", "DECISIONS",
    "MESSAGES", "MessageInfo", "PROFILE", "Self", "WireError", "build_frame", "c", "dataclass",
    "enum", "field", "message_info", "parse_frame", "parse_payload", "struct", "uuid",
}  # fmt: skip
_SIZE_EXPR = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:([+-])\s*(\d+))?\s*$")


def int_range(bits: int, signed: bool) -> tuple[int, int]:
    """The lowest and highest value of a ``bits``-wide integer."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


# --- YAML with line numbers -------------------------------------------------------------------


def constant_name(name: str) -> str:
    """``NamedVersion`` -> ``NAMED_VERSION`` (the construct object of a struct)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).upper()


def format_path(path: PathT) -> str:
    """``("structs", "Version", "fields", 1, "type")`` -> ``structs.Version.fields[1].type``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "$"


class _Loader(yaml.SafeLoader):
    """SafeLoader; nodes are converted by :func:`load_yaml` to keep their line numbers."""


def load_yaml(text: str, file: str) -> tuple[Any, dict[PathT, int]]:
    """Parse YAML safely; returns the data and the 1-based line of every path in it."""
    lines: dict[PathT, int] = {}
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = str(mark.line + 1) if mark else "1"
            reason = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
            raise SpecError(file, line, f"invalid YAML: {reason}") from None
        except yaml.YAMLError as exc:
            raise SpecError(file, "1", f"invalid YAML: {' '.join(str(exc).split())}") from None
        if node is None:
            raise SpecError(file, "1", "empty document")

        def convert(node: yaml.Node, path: PathT) -> Any:
            lines.setdefault(path, node.start_mark.line + 1)
            if isinstance(node, yaml.MappingNode):
                out: dict[Any, Any] = {}
                for key_node, value_node in node.value:
                    if not isinstance(key_node, yaml.ScalarNode):
                        raise SpecError(
                            file,
                            f"{key_node.start_mark.line + 1}:{format_path(path)}",
                            "mapping keys must be scalars",
                        )
                    key = loader.construct_object(key_node, deep=True)
                    if isinstance(key, bool) or key is None:
                        # YAML 1.1 reads the key `on:` as true; keys are names here
                        key = key_node.value
                    sub = path + (key,)
                    if key in out:
                        raise SpecError(
                            file,
                            f"{key_node.start_mark.line + 1}:{format_path(sub)}",
                            f"duplicate key {key!r}",
                        )
                    lines[sub] = key_node.start_mark.line + 1
                    out[key] = convert(value_node, sub)
                return out
            if isinstance(node, yaml.SequenceNode):
                return [convert(item, path + (i,)) for i, item in enumerate(node.value)]
            try:
                return loader.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                raise SpecError(
                    file, f"{node.start_mark.line + 1}:{format_path(path)}", f"bad value: {exc}"
                ) from None

        return convert(node, ()), lines
    finally:
        loader.dispose()


# --- the model --------------------------------------------------------------------------------


@dataclass
class Cond:
    """A field's presence condition."""

    field: str
    op: str  # "equals" | "not_equals" | "bits" (any set) | "not_bits" (all clear)
    value: int


@dataclass
class Size:
    """A size or count: constant, or an earlier field plus a constant."""

    const: int | None = None
    field: str | None = None
    offset: int = 0


@dataclass
class FieldDef:
    """One field of a struct (or the element of an array, or a switch case)."""

    name: str
    type: str  # the spec's type name
    kind: str  # int float bool guid ascii string bytes array switch codec enum flags struct bbb
    path: PathT
    doc: str = ""
    decision: str = ""
    bits: int = 0
    signed: bool = False
    little: bool = False
    size: Size | None = None
    prefix: str | None = None
    encoding: str = "utf-8"
    pad: str = " "
    dotnet: bool = False
    of: FieldDef | None = None
    on: str | None = None
    cases: list[tuple[int, FieldDef | None]] = field(default_factory=list)
    default_case: FieldDef | None = None
    codec: str = ""
    py: str = ""
    when: Cond | None = None
    constraints: dict[str, Any] = field(default_factory=dict)
    length_of: str | None = None
    adjust: int = 0
    default: Any = None
    has_default: bool = False

    @property
    def greedy(self) -> bool:
        """Runs to the end of the payload."""
        if self.kind == "bytes":
            return self.size is None and self.prefix is None
        if self.kind == "array":
            return self.size is None and self.prefix is None
        return False


@dataclass
class BitField:
    """A multi-bit sub-field of a flags type."""

    name: str
    mask: int
    shift: int
    enum: str | None
    doc: str = ""


@dataclass
class EnumDef:
    """An IntEnum or IntFlag."""

    name: str
    base: str
    values: dict[str, int]
    flags: bool
    path: PathT
    bitfields: list[BitField] = field(default_factory=list)
    doc: str = ""
    decision: str = ""


@dataclass
class StructDef:
    """A struct, or a message (a struct with a code and command metadata)."""

    name: str
    fields: list[FieldDef]
    path: PathT
    layout: str = "construct"  # | "bit-byte-block"
    doc: str = ""
    decision: str = ""
    code: int | None = None
    kind: str = ""
    direction: str = ""
    response: bool = False
    channel: str = ""

    @property
    def is_message(self) -> bool:
        """Whether this struct is a command/response."""
        return self.code is not None


@dataclass
class Frame:
    """Which struct frames messages, and its code/payload fields."""

    struct: str
    code: str
    payload: str


@dataclass
class Spec:
    """A checked spec."""

    file: str
    profile: str
    doc: str
    byte_order: str
    enums: dict[str, EnumDef]
    structs: dict[str, StructDef]  # structs and messages, in dependency order
    frame: Frame | None
    decisions: dict[str, str]

    @property
    def messages(self) -> list[StructDef]:
        """Messages sorted by code."""
        return sorted(
            (s for s in self.structs.values() if s.is_message),
            key=lambda s: -1 if s.code is None else s.code,
        )


# --- checking ---------------------------------------------------------------------------------


class _Checker:
    def __init__(self, file: str, data: Any, lines: dict[PathT, int]) -> None:
        self.file = file
        self.data = data
        self.lines = lines
        self.decisions: dict[str, str] = {}

    def error(self, path: PathT, reason: str) -> SpecError:
        probe = path
        while probe not in self.lines and probe:
            probe = probe[:-1]
        line = self.lines.get(probe, 1)
        return SpecError(self.file, f"{line}:{format_path(path)}", reason)

    def mapping(self, value: Any, path: PathT, allowed: set[str] | None = None) -> dict:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, got {_kind(value)}")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    raise self.error(
                        path + (key,),
                        f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})",
                    )
        return value

    def required(self, obj: dict, key: str, path: PathT) -> Any:
        if key not in obj or obj[key] is None:
            raise self.error(path, f"missing required key {key!r}")
        return obj[key]

    def text(self, obj: dict, key: str, path: PathT, default: str = "") -> str:
        value = obj.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(path + (key,), f"{key} must be text, got {_kind(value)}")
        return value

    def integer(self, value: Any, path: PathT) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, f"expected an integer, got {_kind(value)}")
        return value

    def identifier(self, value: Any, path: PathT, what: str) -> str:
        if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value):
            raise self.error(path, f"{what} {value!r} is not a Python identifier")
        return value

    def note_decision(self, obj: dict, path: PathT) -> str:
        decision = self.text(obj, "decision", path)
        if decision:
            self.decisions[format_path(path)] = " ".join(decision.split())
        return decision

    # top level

    def check(self) -> Spec:
        top = self.mapping(
            self.data,
            (),
            {
                "profile",
                "doc",
                "byte_order",
                "frame",
                "codes",
                "enums",
                "flags",
                "structs",
                "messages",
            },
        )
        profile = self.required(top, "profile", ())
        if not isinstance(profile, str) or not profile:
            raise self.error(("profile",), "profile must be a non-empty name")
        byte_order = top.get("byte_order", "big")
        if byte_order not in ("big", "little"):
            raise self.error(
                ("byte_order",), f"byte_order must be big or little, not {byte_order!r}"
            )
        self.little = byte_order == "little"
        self.enums: dict[str, EnumDef] = {}
        self.names: dict[str, PathT] = {}
        self.constants: dict[str, str] = {}  # construct constant -> its struct
        for section, is_flags in (("enums", False), ("flags", True)):
            for name, body in self.mapping(top.get(section) or {}, (section,)).items():
                self.enums[name] = self.enum(name, body, (section, name), is_flags)
        raw_structs: dict[str, tuple[dict, PathT, bool]] = {}
        for section in ("structs", "messages"):
            for name, body in self.mapping(top.get(section) or {}, (section,)).items():
                path = (section, name)
                self.claim(name, path, constant=True)
                raw_structs[name] = (body, path, section == "messages")
        self.struct_names = set(raw_structs)
        self.layouts = {
            name: (body.get("layout", "construct") if isinstance(body, dict) else "construct")
            for name, (body, _, _) in raw_structs.items()
        }
        structs = {name: self.struct(name, *raw) for name, raw in raw_structs.items()}
        self.check_codes(structs)
        self.check_code_enums(top.get("codes"), structs)
        for bitfield_owner in self.enums.values():
            for bf in bitfield_owner.bitfields:
                if bf.enum is not None and (bf.enum not in self.enums or self.enums[bf.enum].flags):
                    raise self.error(
                        bitfield_owner.path + ("fields", bf.name, "enum"),
                        f"unknown enum {bf.enum!r}",
                    )
        ordered = self.order(structs)
        self.check_array_elements(ordered)
        frame = self.frame(top.get("frame"), ordered) if top.get("frame") is not None else None
        return Spec(
            file=self.file,
            profile=profile,
            doc=self.text(top, "doc", ()),
            byte_order=byte_order,
            enums=self.enums,
            structs=ordered,
            frame=frame,
            decisions=self.decisions,
        )

    def claim(self, name: Any, path: PathT, constant: bool = False) -> None:
        """Reserve a type name; ``constant``: it also makes a module constant (structs, messages)."""
        self.identifier(name, path, "type name")
        if name in SIMPLE_TYPES | COMPOSITE_TYPES | BBB_ONLY_TYPES:
            raise self.error(path, f"{name!r} is a built-in type name")
        if name in self.names:
            raise self.error(
                path, f"{name!r} is already defined at {format_path(self.names[name])}"
            )
        if name in MODULE_NAMES or name.startswith("_"):
            raise self.error(path, f"{name!r} is reserved in the generated module")
        const = constant_name(name)
        if const in MODULE_NAMES:
            raise self.error(path, f"{name!r} makes the constant {const}, reserved in the module")
        for other in self.names:
            if constant_name(other) == const:
                raise self.error(path, f"{name!r} and {other!r} both make the constant {const}")
        if name in self.constants:
            raise self.error(
                path, f"{name!r} is the construct constant of {self.constants[name]!r}"
            )
        if constant:
            if const == name:
                raise self.error(
                    path,
                    f"{name!r} makes the construct constant {const}, the name of its own class "
                    "(give it a lowercase letter)",
                )
            if const in self.names:
                raise self.error(
                    path, f"{name!r} makes the construct constant {const}, already a type name"
                )
            self.constants[const] = name
        self.names[name] = path

    def enum(self, name: str, body: Any, path: PathT, is_flags: bool) -> EnumDef:
        self.claim(name, path)
        allowed = {"type", "values", "doc", "decision"} | ({"fields"} if is_flags else set())
        body = self.mapping(body, path, allowed)
        base = self.required(body, "type", path)
        if base not in INT_TYPES or INT_TYPES[base][1]:
            raise self.error(
                path + ("type",), f"enum type must be an unsigned integer, not {base!r}"
            )
        bits = INT_TYPES[base][0]
        values_raw = self.mapping(self.required(body, "values", path), path + ("values",))
        if not values_raw:
            raise self.error(path + ("values",), "an enum needs at least one value")
        values: dict[str, int] = {}
        seen: dict[int, str] = {}
        for member, value in values_raw.items():
            mpath = path + ("values", member)
            self.identifier(member, mpath, "member name")
            value = self.integer(value, mpath)
            if not 0 <= value < 1 << bits:
                raise self.error(mpath, f"value {value:#x} does not fit in {base}")
            if not is_flags and value in seen:
                raise self.error(mpath, f"duplicate value {value:#x} (also {seen[value]})")
            seen.setdefault(value, member)
            values[member] = value
        bitfields = []
        for bf_name, bf_body in self.mapping(body.get("fields") or {}, path + ("fields",)).items():
            bpath = path + ("fields", bf_name)
            self.identifier(bf_name, bpath, "field name")
            bf_body = self.mapping(bf_body, bpath, {"mask", "shift", "enum", "doc"})
            mask = self.integer(self.required(bf_body, "mask", bpath), bpath + ("mask",))
            if mask <= 0 or mask >= 1 << bits:
                raise self.error(bpath + ("mask",), f"mask {mask:#x} does not fit in {base}")
            shift = (mask & -mask).bit_length() - 1
            if (mask >> shift) & ((mask >> shift) + 1):
                raise self.error(bpath + ("mask",), f"mask {mask:#x} is not contiguous")
            if "shift" in bf_body and bf_body["shift"] != shift:
                raise self.error(
                    bpath + ("shift",), f"shift {bf_body['shift']} does not match mask (is {shift})"
                )
            enum_name = bf_body.get("enum")
            bitfields.append(
                BitField(bf_name, mask, shift, enum_name, self.text(bf_body, "doc", bpath))
            )
        return EnumDef(
            name=name,
            base=base,
            values=values,
            flags=is_flags,
            path=path,
            bitfields=bitfields,
            doc=self.text(body, "doc", path),
            decision=self.note_decision(body, path),
        )

    def struct(self, name: str, body: Any, path: PathT, is_message: bool) -> StructDef:
        allowed = {"doc", "decision", "fields", "layout"}
        if is_message:
            allowed |= {"code", "kind", "direction", "response", "channel"}
        body = self.mapping(body, path, allowed)
        layout = body.get("layout", "construct")
        if layout not in ("construct", "bit-byte-block"):
            raise self.error(path + ("layout",), "layout must be construct or bit-byte-block")
        raw_fields = body.get("fields", [])
        if raw_fields is None:
            raw_fields = []
        if not isinstance(raw_fields, list):
            raise self.error(path + ("fields",), f"fields must be a list, got {_kind(raw_fields)}")
        struct = StructDef(
            name=name,
            fields=[],
            path=path,
            layout=layout,
            doc=self.text(body, "doc", path),
            decision=self.note_decision(body, path),
        )
        if is_message:
            struct.code = self.integer(self.required(body, "code", path), path + ("code",))
            if not 0 <= struct.code <= 0xFFFF:
                raise self.error(path + ("code",), f"code {struct.code} is out of range")
            for key, choices in (
                ("kind", ("command", "response")),
                ("direction", ("publisher", "subscriber", "both")),
                ("channel", ("command", "data")),
            ):
                value = self.required(body, key, path)
                if value not in choices:
                    raise self.error(
                        path + (key,), f"{key} must be one of {', '.join(choices)}, not {value!r}"
                    )
                setattr(struct, key, value)
            response = self.required(body, "response", path)
            if not isinstance(response, bool):
                raise self.error(path + ("response",), "response must be true or false")
            struct.response = response
        known: dict[str, FieldDef] = {}
        for index, raw in enumerate(raw_fields):
            fpath = path + ("fields", index)
            fdef = self.field(raw, fpath, layout, known, top=True)
            if fdef.name in known:
                raise self.error(fpath + ("name",), f"duplicate field {fdef.name!r}")
            known[fdef.name] = fdef
            struct.fields.append(fdef)
        self.check_struct(struct)
        return struct

    def field(
        self, raw: Any, path: PathT, layout: str, known: dict[str, FieldDef], top: bool
    ) -> FieldDef:
        if isinstance(raw, str):
            raw = {"type": raw}
        raw = self.mapping(raw, path, FIELD_KEYS)
        if top:
            name = self.identifier(self.required(raw, "name", path), path + ("name",), "field name")
            if name in RESERVED_NAMES:
                raise self.error(path + ("name",), f"field name {name!r} is reserved")
        else:
            name = "item"
        type_name = self.required(raw, "type", path)
        if not isinstance(type_name, str):
            raise self.error(path + ("type",), f"type must be a name, got {_kind(type_name)}")
        fdef = FieldDef(name=name, type=type_name, kind="", path=path)
        fdef.doc = self.text(raw, "doc", path)
        fdef.decision = self.note_decision(raw, path)
        bbb = layout == "bit-byte-block"
        if type_name in INT_TYPES:
            fdef.kind = "int"
            fdef.bits, fdef.signed = INT_TYPES[type_name]
            endian = raw.get("endian")
            if endian not in (None, "big", "little"):
                raise self.error(path + ("endian",), "endian must be big or little")
            fdef.little = self.little if endian is None else endian == "little"
            if bbb and fdef.little:
                raise self.error(path + ("endian",), "bit-byte-block integers are big-endian")
        elif type_name in FLOAT_TYPES:
            fdef.kind = "float"
            fdef.bits = FLOAT_TYPES[type_name]
        elif type_name == "bool":
            fdef.kind = "bool"
        elif type_name == "guid":
            fdef.kind = "guid"
            order = raw.get("order", "rfc4122")
            if order not in ("rfc4122", "dotnet"):
                raise self.error(
                    path + ("order",), f"order must be rfc4122 or dotnet, not {order!r}"
                )
            if bbb and order != "rfc4122":
                raise self.error(path + ("order",), "bit-byte-block guids are rfc4122")
            fdef.dotnet = order == "dotnet"
        elif type_name == "ascii":
            fdef.kind = "ascii"
            if not bbb:
                size = self.integer(self.required(raw, "size", path), path + ("size",))
                if size <= 0:
                    raise self.error(path + ("size",), "size must be positive")
                fdef.size = Size(const=size)
                pad = raw.get("pad", " ")
                if not isinstance(pad, str) or len(pad) != 1 or not pad.isascii():
                    raise self.error(path + ("pad",), "pad must be one ASCII character")
                fdef.pad = pad
        elif type_name in ("string", "bytes"):
            fdef.kind = type_name
            if type_name == "string":
                encoding = raw.get("encoding", "utf-8")
                try:
                    "".encode(encoding)
                except (LookupError, TypeError):
                    raise self.error(
                        path + ("encoding",), f"unknown encoding {encoding!r}"
                    ) from None
                fdef.encoding = encoding
            if not bbb:
                self.sizing(fdef, raw, path, known, "size")
                if type_name == "string" and fdef.prefix is None:
                    if fdef.size is not None:
                        raise self.error(path + ("size",), "strings take a prefix, not a size")
                    fdef.prefix = "u16"
        elif type_name in BBB_ONLY_TYPES:
            if not bbb:
                raise self.error(path + ("type",), f"{type_name} exists only in bit-byte-block")
            fdef.kind = "bbb"
            fdef.bits = BBB_BITS.get(type_name, 0)
        elif type_name == "array":
            fdef.kind = "array"
            of = self.required(raw, "of", path)
            fdef.of = self.field(of, path + ("of",), layout, known, top=False)
            if fdef.of.kind == "switch":
                raise self.error(path + ("of",), "arrays of switches need a struct around them")
            if bbb:
                raise self.error(path + ("type",), "arrays are not supported in bit-byte-block")
            self.sizing(fdef, raw, path, known, "count")
        elif type_name == "switch":
            fdef.kind = "switch"
            if bbb:
                raise self.error(path + ("type",), "switches are not supported in bit-byte-block")
            on = self.required(raw, "on", path)
            target = known.get(on) if isinstance(on, str) else None
            if target is None:
                raise self.error(path + ("on",), f"bad reference: no earlier field {on!r}")
            if target.kind not in ("int", "enum"):
                raise self.error(path + ("on",), "switch needs an integer or enum field")
            fdef.on = on
            cases = self.mapping(self.required(raw, "cases", path), path + ("cases",))
            seen: set[int] = set()
            for key, case_type in cases.items():
                cpath = path + ("cases", key)
                code = self.value_of(target, key, cpath)
                if code in seen:
                    raise self.error(cpath, f"duplicate case {code:#x}")
                seen.add(code)
                case = None
                if case_type is not None:
                    case = self.field(case_type, cpath, layout, known, top=False)
                fdef.cases.append((code, case))
            if "default_case" in raw and raw["default_case"] is not None:
                fdef.default_case = self.field(
                    raw["default_case"], path + ("default_case",), layout, known, top=False
                )
        elif type_name == "codec":
            fdef.kind = "codec"
            fdef.codec = self.text(raw, "codec", path)
            if not fdef.codec:
                raise self.error(path, "missing required key 'codec'")
            fdef.py = self.text(raw, "py", path)
            if not fdef.py:
                raise self.error(path, "missing required key 'py'")
            self.resolve_codec(fdef.codec, path + ("codec",), bbb)
        elif type_name in self.enums:
            fdef.kind = "flags" if self.enums[type_name].flags else "enum"
        elif type_name in self.struct_names:
            fdef.kind = "struct"
            inner = self.layouts[type_name]
            if inner != layout and not (inner == "bit-byte-block" and not bbb):
                raise self.error(
                    path + ("type",), f"{type_name} ({inner}) cannot be embedded in a {layout}"
                )
            if inner == "bit-byte-block" and not bbb and top:
                raise self.error(
                    path + ("type",),
                    f"embed bit-byte-block struct {type_name} through an array (one block)",
                )
        else:
            raise self.error(path + ("type",), f"unknown type {type_name!r}")
        if fdef.kind == "array" and fdef.of is not None and fdef.of.kind == "struct":
            inner = self.layouts[fdef.of.type]
            if inner == "bit-byte-block" and not fdef.greedy:
                raise self.error(
                    path, "an array of a bit-byte-block struct must run to the end of the payload"
                )
        if top:
            self.options(fdef, raw, path, known)
        return fdef

    def sizing(
        self, fdef: FieldDef, raw: dict, path: PathT, known: dict[str, FieldDef], key: str
    ) -> None:
        if "prefix" in raw and raw["prefix"] is not None:
            prefix = raw["prefix"]
            if prefix not in INT_TYPES or INT_TYPES[prefix][1]:
                raise self.error(
                    path + ("prefix",), f"prefix must be an unsigned type, not {prefix!r}"
                )
            fdef.prefix = prefix
            if key in raw:
                raise self.error(path + (key,), f"give either prefix or {key}, not both")
            return
        if key not in raw:
            return
        value = raw[key]
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise self.error(path + (key,), f"{key} must not be negative")
            fdef.size = Size(const=value)
            return
        match = _SIZE_EXPR.match(value) if isinstance(value, str) else None
        if not match:
            raise self.error(path + (key,), f"{key} must be an integer, FIELD, or FIELD +/- N")
        ref, sign, number = match.groups()
        target = known.get(ref)
        if target is None:
            raise self.error(path + (key,), f"bad reference: no earlier field {ref!r}")
        if target.kind != "int":
            raise self.error(path + (key,), f"{key} field {ref!r} is not an integer")
        offset = int(number or 0) * (-1 if sign == "-" else 1)
        fdef.size = Size(field=ref, offset=offset)

    def value_of(self, target: FieldDef, key: Any, path: PathT) -> int:
        if isinstance(key, str) and target.kind in ("enum", "flags"):
            members = self.enums[target.type].values
            if key not in members:
                raise self.error(path, f"bad reference: {key!r} is not a {target.type} member")
            return members[key]
        return self.integer(key, path)

    def resolve_codec(self, dotted: str, path: PathT, bbb: bool) -> None:
        module_name, _, attr = dotted.rpartition(".")
        if not module_name:
            raise self.error(path, f"bad reference: codec {dotted!r} is not a dotted name")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise self.error(path, f"bad reference: cannot import {module_name}: {exc}") from None
        obj = getattr(module, attr, None)
        if obj is None:
            raise self.error(path, f"bad reference: {module_name} has no {attr!r}")
        if bbb:
            if not (callable(getattr(obj, "read", None)) and callable(getattr(obj, "write", None))):
                raise self.error(path, f"bad reference: {dotted} has no read/write")
        elif not isinstance(obj, construct.Construct):
            raise self.error(path, f"bad reference: {dotted} is not a construct.Construct")

    def options(self, fdef: FieldDef, raw: dict, path: PathT, known: dict[str, FieldDef]) -> None:
        if "when" in raw and raw["when"] is not None:
            wpath = path + ("when",)
            when = self.mapping(
                raw["when"], wpath, {"field", "equals", "not_equals", "bits", "not_bits"}
            )
            ref = self.required(when, "field", wpath)
            target = known.get(ref) if isinstance(ref, str) else None
            if target is None:
                raise self.error(wpath + ("field",), f"bad reference: no earlier field {ref!r}")
            ops = [op for op in ("equals", "not_equals", "bits", "not_bits") if op in when]
            if len(ops) != 1:
                raise self.error(
                    wpath, "when needs exactly one of equals, not_equals, bits, not_bits"
                )
            op = ops[0]
            if target.kind not in ("int", "enum", "flags", "bool"):
                raise self.error(
                    wpath + ("field",), f"cannot test field {ref!r} of type {target.type}"
                )
            if target.kind == "bool" and op != "equals":
                raise self.error(wpath, "a bool condition uses equals")
            if target.kind == "bool":
                if not isinstance(when[op], bool):
                    raise self.error(wpath + (op,), "compare a bool with true or false")
                value = int(when[op])
            else:
                value = self.value_of(target, when[op], wpath + (op,))
            fdef.when = Cond(ref, op, value)
        for key in CONSTRAINT_KEYS:
            if key in raw:
                fdef.constraints[key] = raw[key]
        self.check_constraints(fdef, path)
        if "length_of" in raw:
            if fdef.kind != "int" or fdef.signed:
                raise self.error(path + ("length_of",), "length_of needs an unsigned integer field")
            if fdef.when is not None:
                raise self.error(path + ("length_of",), "a computed field cannot be conditional")
            fdef.length_of = self.identifier(raw["length_of"], path + ("length_of",), "field name")
            fdef.adjust = self.integer(raw.get("adjust", 0), path + ("adjust",))
        elif "adjust" in raw:
            raise self.error(path + ("adjust",), "adjust needs length_of")
        if "default" in raw:
            self.check_default(fdef, raw["default"], path + ("default",))
            fdef.default = raw["default"]
            fdef.has_default = True

    def check_default(self, fdef: FieldDef, value: Any, path: PathT) -> None:
        """Refuse a ``default:`` the field could not hold (the module would be broken)."""

        def bad(reason: str) -> SpecError:
            return self.error(path, f"bad default: {reason}")

        kind = fdef.kind
        if kind == "switch":
            raise bad("a switch takes no default; its fallback case is default_case: TYPE")
        if kind in ("struct", "array"):
            raise bad(f"{kind} field {fdef.name!r} takes no default")
        if fdef.when is not None:
            raise bad(f"conditional field {fdef.name!r} defaults to None")
        if fdef.length_of is not None:
            raise bad(f"computed field {fdef.name!r} (length_of) takes no default")
        shown = _show(value)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind in ("int", "bbb"):
            if kind == "int":
                bits, signed, type_name = fdef.bits, fdef.signed, fdef.type
            else:
                bits, signed, type_name = fdef.bits or 64, False, fdef.type
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad(f"{shown} is not an integer ({type_name})")
            low, high = int_range(bits, signed)
            if not low <= value <= high:
                raise bad(f"{shown} does not fit {type_name}")
        elif kind == "float":
            if not number:
                raise bad(f"{shown} is not a number ({fdef.type})")
            try:
                pystruct.pack(">f" if fdef.bits == 32 else ">d", value)
            except (OverflowError, pystruct.error):
                raise bad(f"{shown} does not fit {fdef.type}") from None
        elif kind == "bool":
            if not isinstance(value, bool):
                raise bad(f"{shown} is not true or false")
        elif kind == "guid":
            try:
                uuid.UUID(value)
            except (TypeError, ValueError, AttributeError):
                raise bad(f"{shown} is not a GUID in text form") from None
        elif kind in ("ascii", "string"):
            if not isinstance(value, str):
                raise bad(f"{shown} is not text ({fdef.type})")
            try:
                encoded = value.encode("ascii" if kind == "ascii" else fdef.encoding)
            except UnicodeEncodeError:
                raise bad(f"{shown} cannot be encoded as {fdef.encoding}") from None
            self.check_default_length(fdef, len(encoded), shown, bad)
        elif kind == "bytes":
            if not isinstance(value, bytes):
                raise bad(f"{shown} is not bytes (write !!binary BASE64)")
            self.check_default_length(fdef, len(value), shown, bad)
        elif kind in ("enum", "flags"):
            enum = self.enums[fdef.type]
            if isinstance(value, str):
                if value not in enum.values:
                    raise bad(f"{shown} is not a {fdef.type} member")
            elif isinstance(value, bool):
                raise bad(
                    f"{shown} is not a {fdef.type} member (YAML reads Off/No as false: quote it)"
                )
            elif not isinstance(value, int):
                raise bad(f"{shown} is not a {fdef.type} member or value")
            elif kind == "enum" and value not in enum.values.values():
                raise bad(f"{shown} is not a {fdef.type} value")
            elif not 0 <= value < 1 << INT_TYPES[enum.base][0]:
                raise bad(f"{shown} does not fit {fdef.type} ({enum.base})")
        elif kind == "codec":
            accepted: dict[str, type | tuple[type, ...]] = {
                "int": int,
                "float": (int, float),
                "str": str,
                "bytes": bytes,
                "bool": bool,
            }
            expected = accepted.get(fdef.py)
            if expected is None:
                raise bad(f"a codec field of py {fdef.py} takes no default")
            if not isinstance(value, expected) or (fdef.py != "bool" and isinstance(value, bool)):
                raise bad(f"{shown} is not {fdef.py}")
        self.check_default_constraints(fdef, value, shown, bad)

    def check_default_length(self, fdef: FieldDef, length: int, shown: str, bad: Any) -> None:
        if fdef.prefix is not None and length >= 1 << INT_TYPES[fdef.prefix][0]:
            raise bad(f"{shown} is too long for a {fdef.prefix} prefix")
        if fdef.size is not None and fdef.size.const is not None:
            if fdef.kind == "bytes" and length != fdef.size.const:
                raise bad(f"{shown} is not {fdef.size.const} bytes")
            if length > fdef.size.const:
                raise bad(f"{shown} is longer than size {fdef.size.const}")
        if fdef.kind == "ascii" and fdef.size is None and length > 0xFF:
            raise bad(f"{shown} is too long for a bit-byte-block ascii (u8 length)")

    def check_default_constraints(self, fdef: FieldDef, value: Any, shown: str, bad: Any) -> None:
        c = fdef.constraints
        if "min" in c and value < c["min"]:
            raise bad(f"{shown} is below the minimum {c['min']!r}")
        if "max" in c and value > c["max"]:
            raise bad(f"{shown} is above the maximum {c['max']!r}")
        if "choices" in c:
            if fdef.kind in ("enum", "flags"):
                members = self.enums[fdef.type].values
                choices = [members.get(v, v) if isinstance(v, str) else v for v in c["choices"]]
                found = members.get(value, value) if isinstance(value, str) else value
            else:
                choices, found = c["choices"], value
            if found not in choices:
                raise bad(f"{shown} is not one of the choices {c['choices']!r}")
        length = len(value) if isinstance(value, (str, bytes)) else None
        if length is not None and length < c.get("min_length", 0):
            raise bad(f"{shown} is shorter than min_length {c['min_length']}")
        if length is not None and length > c.get("max_length", length):
            raise bad(f"{shown} is longer than max_length {c['max_length']}")

    def check_constraints(self, fdef: FieldDef, path: PathT) -> None:
        c = fdef.constraints
        numeric = fdef.kind in ("int", "float") or (
            fdef.kind == "codec" and fdef.py in ("int", "float")
        )
        sized = fdef.kind in ("string", "bytes", "array", "ascii")
        for key in ("min", "max"):
            if key in c:
                if not numeric:
                    raise self.error(path + (key,), f"bad constraint: {key} needs a numeric field")
                if isinstance(c[key], bool) or not isinstance(c[key], (int, float)):
                    raise self.error(path + (key,), f"bad constraint: {key} must be a number")
        if "min" in c and "max" in c and c["min"] > c["max"]:
            raise self.error(path + ("min",), f"bad constraint: min {c['min']} > max {c['max']}")
        if fdef.kind == "int":
            low, high = int_range(fdef.bits, fdef.signed)
            for key in ("min", "max"):
                if key in c and not low <= c[key] <= high:
                    raise self.error(
                        path + (key,), f"bad constraint: {key} {c[key]} is outside {fdef.type}"
                    )
        for key in ("min_length", "max_length"):
            if key in c:
                if not sized:
                    raise self.error(path + (key,), f"bad constraint: {key} needs a sized field")
                if isinstance(c[key], bool) or not isinstance(c[key], int) or c[key] < 0:
                    raise self.error(path + (key,), f"bad constraint: {key} must be a count >= 0")
        if "min_length" in c and "max_length" in c and c["min_length"] > c["max_length"]:
            raise self.error(path + ("min_length",), "bad constraint: min_length > max_length")
        if "choices" in c:
            if not isinstance(c["choices"], list) or not c["choices"]:
                raise self.error(path + ("choices",), "bad constraint: choices must be a list")
            if fdef.kind in ("struct", "array", "switch"):
                raise self.error(
                    path + ("choices",), "bad constraint: choices needs a scalar field"
                )

    def check_struct(self, struct: StructDef) -> None:
        by_name = {f.name: f for f in struct.fields}
        for index, fdef in enumerate(struct.fields):
            last = index == len(struct.fields) - 1
            if struct.layout == "construct" and fdef.greedy and not last:
                raise self.error(
                    fdef.path, f"{fdef.name} runs to the end of the payload, so it must be last"
                )
            if fdef.length_of is not None:
                target = by_name.get(fdef.length_of)
                if target is None or struct.fields.index(target) < index:
                    raise self.error(
                        fdef.path + ("length_of",),
                        f"bad reference: no later field {fdef.length_of!r}",
                    )
                if target.kind not in ("bytes", "array") or not (
                    target.size is not None and target.size.field == fdef.name
                ):
                    raise self.error(
                        fdef.path + ("length_of",),
                        f"{fdef.length_of!r} must be bytes/array sized by {fdef.name!r}",
                    )
            if fdef.size is not None and fdef.size.field is not None:
                ref = by_name[fdef.size.field]
                if ref.length_of != fdef.name:
                    raise self.error(
                        fdef.path,
                        f"size field {ref.name!r} must declare length_of: {fdef.name}",
                    )
                if ref.adjust != -fdef.size.offset:
                    raise self.error(
                        fdef.path,
                        f"size {ref.name} {fdef.size.offset:+d} does not undo adjust {ref.adjust}",
                    )

    def min_size(self, fdef: FieldDef | None, structs: dict[str, StructDef]) -> int:
        """Fewest bytes (bits, in bit-byte-block) a field can take on the wire."""
        if fdef is None or fdef.when is not None:
            return 0
        kind = fdef.kind
        if kind in ("int", "float"):
            return fdef.bits // 8
        if kind in ("bool", "codec", "bbb"):
            return 1  # codecs are documented to consume at least one byte (or bit)
        if kind == "guid":
            return 16
        if kind in ("enum", "flags"):
            return int(self.enums[fdef.type].base[1:]) // 8
        if kind in ("ascii", "string", "bytes", "array"):
            if fdef.prefix is not None:
                return int(fdef.prefix[1:]) // 8
            if fdef.size is not None and fdef.size.const is not None:
                if kind == "array":
                    return fdef.size.const * self.min_size(fdef.of, structs)
                return fdef.size.const
            return 0
        if kind == "switch":
            options = [self.min_size(case, structs) for _, case in fdef.cases]
            if fdef.default_case is not None:
                options.append(self.min_size(fdef.default_case, structs))
            return min(options) if options else 0
        if kind == "struct":
            return sum(self.min_size(f, structs) for f in structs[fdef.type].fields)
        return 0

    def check_array_elements(self, structs: dict[str, StructDef]) -> None:
        """Refuse arrays whose elements may take no space: a hostile count would spin forever."""
        for struct in structs.values():
            for fdef in struct.fields:
                if (
                    fdef.kind == "array"
                    and fdef.of is not None
                    and self.min_size(fdef.of, structs) == 0
                ):
                    raise self.error(
                        fdef.path + ("of",),
                        f"array elements of type {fdef.of.type!r} can be empty; "
                        "an element must take at least one byte",
                    )

    def check_codes(self, structs: dict[str, StructDef]) -> None:
        seen: dict[int, str] = {}
        for struct in structs.values():
            if struct.code is None:
                continue
            if struct.code in seen:
                raise self.error(
                    struct.path + ("code",),
                    f"duplicate code {struct.code:#04x} (also {seen[struct.code]})",
                )
            seen[struct.code] = struct.name

    def check_code_enums(self, raw: Any, structs: dict[str, StructDef]) -> None:
        """``codes:`` names the enum of the message codes (one, or one per kind); every message
        code must be a member of it, under the message's own name, so the enum the runtime keys
        its handler tables on and the messages cannot drift apart (``tests/codegen`` requires
        ``codes:`` in every spec of ``specs/sttp``)."""
        messages = [s for s in structs.values() if s.is_message]
        if raw is None:
            return
        by_kind = raw if isinstance(raw, dict) else {"command": raw, "response": raw}
        if isinstance(raw, dict):
            self.mapping(raw, ("codes",), {"command", "response"})
        for kind, name in by_kind.items():
            where = ("codes", kind) if isinstance(raw, dict) else ("codes",)
            enum = self.enums.get(name) if isinstance(name, str) else None
            if enum is None or enum.flags:
                raise self.error(where, f"bad reference: no enum {name!r}")
        for struct in messages:
            name = by_kind.get(struct.kind)
            if name is None:
                raise self.error(("codes",), f"no code enum for {struct.kind} messages")
            members = {value: member for member, value in self.enums[name].values.items()}
            member = None if struct.code is None else members.get(struct.code)
            if member is None:
                raise self.error(
                    struct.path + ("code",),
                    f"code {struct.code:#04x} of {struct.name} is not a member of {name}",
                )
            if member != struct.name:
                raise self.error(
                    struct.path + ("code",),
                    f"code {struct.code:#04x} is {name}.{member}, not {struct.name}",
                )

    def order(self, structs: dict[str, StructDef]) -> dict[str, StructDef]:
        ordered: dict[str, StructDef] = {}
        visiting: list[str] = []

        def deps(fdef: FieldDef | None) -> list[str]:
            if fdef is None:
                return []
            out = [fdef.type] if fdef.kind == "struct" else []
            out += deps(fdef.of)
            for _, case in fdef.cases:
                out += deps(case)
            out += deps(fdef.default_case)
            return out

        def visit(name: str) -> None:
            if name in ordered:
                return
            if name in visiting:
                raise self.error(structs[name].path, f"recursive struct {name!r}")
            visiting.append(name)
            for fdef in structs[name].fields:
                for dep in deps(fdef):
                    visit(dep)
            visiting.pop()
            ordered[name] = structs[name]

        for name in structs:
            visit(name)
        return ordered

    def frame(self, raw: Any, structs: dict[str, StructDef]) -> Frame:
        path = ("frame",)
        raw = self.mapping(raw, path, {"struct", "code", "payload"})
        name = self.required(raw, "struct", path)
        struct = structs.get(name) if isinstance(name, str) else None
        if struct is None or struct.is_message:
            raise self.error(path + ("struct",), f"bad reference: no struct {name!r}")
        by_name = {f.name: f for f in struct.fields}
        code = self.required(raw, "code", path)
        if code not in by_name or by_name[code].kind not in ("int", "enum"):
            raise self.error(
                path + ("code",), f"bad reference: {name} has no integer field {code!r}"
            )
        payload = self.required(raw, "payload", path)
        if payload not in by_name or by_name[payload].kind != "bytes":
            raise self.error(path + ("payload",), f"bad reference: {name} has no bytes {payload!r}")
        return Frame(name, code, payload)


def _show(value: Any) -> str:
    """A default value as the error shows it (one line, not too long)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def load_spec(path: str | Path, display: str | None = None) -> Spec:
    """Read and check one spec file; ``display`` is the file name used in errors and headers."""
    file = display or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(file, "", f"cannot read: {exc}") from None
    data, lines = load_yaml(text, file)
    return _Checker(file, data, lines).check()
