"""Hypothesis strategies for the classes of a generated STTP module, derived from its spec.

Used by the tests (every struct and message round-trips build -> parse) as ``sttp_strategies``
(tests/ is on the test path through tests/conftest.py); it lives with the tests so that neither the
library nor the generator needs hypothesis. Values respect the spec: integer ranges, constraints,
conditions (a conditional field is drawn exactly when its condition holds) and switch cases.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from hypothesis import strategies as st

from gridbind.codegen.spec import FieldDef, Spec, StructDef
from gridbind.sttp import encoding

#: Largest collections drawn, to keep examples fast.
MAX_ITEMS = 4
MAX_BYTES = 48


def sttp_values() -> st.SearchStrategy[encoding.SttpValue]:
    """Every ValueTypeCode with a matching Python value."""
    vt = encoding.ValueType
    int64 = st.integers(-(1 << 63), (1 << 63) - 1)
    pairs: list[st.SearchStrategy[Any]] = [
        st.just(encoding.SttpValue(vt.NULL, None)),
        int64.map(lambda v: encoding.SttpValue(vt.INT64, v)),
        st.floats(width=32, allow_nan=False).map(lambda v: encoding.SttpValue(vt.SINGLE, v)),
        st.floats(allow_nan=False).map(lambda v: encoding.SttpValue(vt.DOUBLE, v)),
        int64.map(lambda v: encoding.SttpValue(vt.STTP_TIME, v)),
        st.booleans().map(lambda v: encoding.SttpValue(vt.BOOL, v)),
        st.uuids().map(lambda v: encoding.SttpValue(vt.GUID, v)),
        st.text(max_size=20).map(lambda v: encoding.SttpValue(vt.STRING, v)),
        st.binary(max_size=MAX_BYTES).map(lambda v: encoding.SttpValue(vt.STTP_BUFFER, v)),
        st.binary(max_size=MAX_BYTES).map(lambda v: encoding.SttpValue(vt.STTP_MARKUP, v)),
        st.builds(encoding.BulkTransportRef, st.integers(0, 15), st.uuids(), int64).map(
            lambda v: encoding.SttpValue(vt.STTP_BULK_TRANSPORT, v)
        ),
    ]
    return st.one_of(pairs)


#: Strategies of hand-written codecs, by the dotted name a spec uses.
CODEC_STRATEGIES: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
    "gridbind.sttp.encoding.STTP_VALUE": sttp_values,
    "gridbind.sttp.encoding.UInt15": lambda: st.integers(0, 32767),
    "gridbind.sttp.encoding.SEG8": lambda: st.integers(0, (1 << 64) - 1),
    "gridbind.sttp.encoding.SEG4": lambda: st.integers(0, (1 << 64) - 1),
}


class Strategies:
    """Strategies for the dataclasses of ``module``, generated from ``spec``."""

    def __init__(self, spec: Spec, module: ModuleType) -> None:
        self.spec = spec
        self.module = module
        self._cache: dict[str, st.SearchStrategy[Any]] = {}

    def for_struct(self, name: str) -> st.SearchStrategy[Any]:
        """Instances of struct or message ``name``."""
        if name not in self._cache:
            self._cache[name] = st.deferred(lambda: self._struct(self.spec.structs[name]))
        return self._cache[name]

    def _struct(self, struct: StructDef) -> st.SearchStrategy[Any]:
        cls = getattr(self.module, struct.name)
        switch_keys = {
            f.on: [code for code, _ in f.cases]
            for f in struct.fields
            if f.kind == "switch" and f.default_case is None
        }

        @st.composite
        def draw_struct(draw: Callable[[st.SearchStrategy[Any]], Any]) -> Any:
            values: dict[str, Any] = {}
            for fdef in struct.fields:
                if fdef.length_of is not None:
                    continue
                if fdef.when is not None and not self._holds(fdef, values):
                    values[fdef.name] = None
                    continue
                if fdef.kind == "switch":
                    values[fdef.name] = draw(self._switch(fdef, values[fdef.on]))
                elif fdef.name in switch_keys:
                    values[fdef.name] = draw(self._switch_key(fdef, switch_keys[fdef.name]))
                else:
                    values[fdef.name] = draw(self.for_field(fdef, struct))
            return cls(**values)

        return draw_struct()

    def _holds(self, fdef: FieldDef, values: dict[str, Any]) -> bool:
        when = fdef.when
        assert when is not None
        value = int(values[when.field])
        if when.op == "equals":
            return value == when.value
        if when.op == "not_equals":
            return value != when.value
        if when.op == "not_bits":
            return not value & when.value
        return bool(value & when.value)

    def _switch_key(self, fdef: FieldDef, codes: list[int]) -> st.SearchStrategy[Any]:
        if fdef.kind == "enum":
            enum_cls = getattr(self.module, fdef.type)
            return st.sampled_from([enum_cls(code) for code in codes])
        return st.sampled_from(codes)

    def _switch(self, fdef: FieldDef, key: Any) -> st.SearchStrategy[Any]:
        for code, case in fdef.cases:
            if code == int(key):
                return st.none() if case is None else self.for_field(case, None)
        assert fdef.default_case is not None
        return self.for_field(fdef.default_case, None)

    def for_field(self, fdef: FieldDef, struct: StructDef | None) -> st.SearchStrategy[Any]:
        """Values of one field (ignoring its condition)."""
        c = fdef.constraints
        if "choices" in c:
            if fdef.kind in ("enum", "flags"):
                enum_cls = getattr(self.module, fdef.type)
                return st.sampled_from(
                    [enum_cls[v] if isinstance(v, str) else enum_cls(v) for v in c["choices"]]
                )
            return st.sampled_from(c["choices"])
        kind = fdef.kind
        if kind == "int":
            low = -(1 << (fdef.bits - 1)) if fdef.signed else 0
            high = (1 << (fdef.bits - 1)) - 1 if fdef.signed else (1 << fdef.bits) - 1
            return st.integers(max(low, c.get("min", low)), min(high, c.get("max", high)))
        if kind == "bbb":
            high = (1 << fdef.bits) - 1 if fdef.bits else (1 << 64) - 1
            return st.integers(max(0, c.get("min", 0)), min(high, c.get("max", high)))
        if kind == "float":
            floats = st.floats(width=fdef.bits, allow_nan=False)
            if "min" in c or "max" in c:
                floats = st.floats(
                    min_value=c.get("min"), max_value=c.get("max"), width=fdef.bits, allow_nan=False
                )
            return floats
        if kind == "bool":
            return st.booleans()
        if kind == "guid":
            return st.uuids()
        if kind == "ascii":
            size = fdef.size.const if fdef.size and fdef.size.const else 255
            alphabet = st.characters(min_codepoint=32, max_codepoint=126)
            return st.text(alphabet, max_size=min(size, c.get("max_length", size))).filter(
                lambda text: not text.endswith(fdef.pad)
            )
        if kind in ("string", "bytes"):
            return self._sized(fdef)
        if kind == "array":
            assert fdef.of is not None
            low, high = self._bounds(fdef, MAX_ITEMS)
            return st.lists(self.for_field(fdef.of, None), min_size=low, max_size=high)
        if kind == "enum":
            return st.sampled_from(list(getattr(self.module, fdef.type)))
        if kind == "flags":
            bits = int(self.spec.enums[fdef.type].base[1:])
            flag_cls = getattr(self.module, fdef.type)
            return st.integers(0, (1 << bits) - 1).map(flag_cls)
        if kind == "struct":
            return self.for_struct(fdef.type)
        if kind == "codec":
            return CODEC_STRATEGIES[fdef.codec]()
        raise AssertionError(f"no strategy for {fdef.kind}")

    def _bounds(self, fdef: FieldDef, cap: int) -> tuple[int, int]:
        c = fdef.constraints
        if fdef.size is not None and fdef.size.const is not None:
            return fdef.size.const, fdef.size.const
        high = cap
        if fdef.prefix is not None:
            high = min(high, (1 << int(fdef.prefix[1:])) - 1)
        low = c.get("min_length", 0)
        high = max(low, min(high, c.get("max_length", high)))
        return low, high

    def _sized(self, fdef: FieldDef) -> st.SearchStrategy[Any]:
        low, high = self._bounds(fdef, MAX_BYTES)
        if fdef.kind == "bytes":
            return st.binary(min_size=low, max_size=high)
        encoding = fdef.encoding.replace("-", "").replace("_", "").lower()
        if encoding in ("ascii", "usascii"):
            alphabet = st.characters(max_codepoint=127)
        elif encoding.startswith("utf"):
            alphabet = st.characters(blacklist_categories=("Cs",))
        else:
            # single-byte code pages: draw from the first 256 code points, keep encodable ones
            alphabet = st.characters(max_codepoint=255).filter(
                lambda ch: _encodable(ch, fdef.encoding)
            )
        # at most 4 bytes per character in UTF-8: stay under a byte-length prefix
        return st.text(
            alphabet, min_size=low, max_size=max(low, high // 4 if fdef.prefix else high)
        )


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True
