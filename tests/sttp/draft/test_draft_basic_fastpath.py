"""The basic-encoding fast path is byte-identical to the generated SendDataPoints codec and
never accepts what the generated codec would refuse or read differently."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp.draft.basic import decode_points, encode_points
from gridbind.sttp.draft.packets import WirePoint, _to_datapoint
from gridbind.sttp.encoding import ValueType


def f32(x: float) -> float:
    return struct.unpack(">f", struct.pack(">f", x))[0]


values = {
    ValueType.SINGLE: st.floats(width=32, allow_nan=False),
    ValueType.DOUBLE: st.floats(allow_nan=False),
    ValueType.INT64: st.integers(-(2**63), 2**63 - 1),
    ValueType.BOOL: st.booleans(),
}
point = st.sampled_from(sorted(values)).flatmap(
    lambda kind: st.builds(
        WirePoint,
        st.integers(0, 2**31 - 1),
        st.just(kind),
        st.integers(-(2**63), 2**63 - 1),
        values[kind],
        st.one_of(st.integers(0, 300), st.integers(0, 2**64 - 1)),
    )
)


def generated(payload: bytes):
    try:
        parsed = wire.SendDataPoints.parse(payload).points
    except (wire.WireError, wire.ConstraintError, ValueError):
        return None
    return [
        (
            p.runtime_id,
            p.value.type,
            p.timestamp.value if p.timestamp.type == 4 else None,
            p.value.value,
            p.quality,
        )
        for p in parsed
    ]


def norm(rows):
    """Floats by bit pattern, so NaN compares equal to itself."""
    if rows is None:
        return None
    return [tuple(struct.pack(">d", x) if isinstance(x, float) else x for x in row) for row in rows]


@settings(max_examples=150, deadline=None)
@given(st.lists(point, max_size=40))
def test_identical_bytes_and_values(points):
    reference = wire.SendDataPoints(points=[_to_datapoint(p) for p in points]).build()
    assert encode_points(points) == reference
    assert norm(decode_points(reference)) == norm(generated(reference))


@settings(max_examples=250, deadline=None)
@given(st.lists(point, min_size=1, max_size=8), st.data())
def test_mutations_never_diverge(points, data):
    payload = bytearray(encode_points(points))
    for _ in range(data.draw(st.integers(1, 3))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        index = data.draw(st.integers(0, max(len(payload) - 1, 0)))
        if action == "flip" and payload:
            payload[index] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del payload[index:]
        else:
            payload.insert(index, data.draw(st.integers(0, 255)))
    fast = decode_points(bytes(payload))
    if fast is not None:
        assert norm(fast) == norm(generated(bytes(payload)))


def test_uncommon_points_fall_back():
    assert encode_points([WirePoint(-1, ValueType.SINGLE, 0, 1.0)]) is None
    assert encode_points([WirePoint(1, ValueType.STRING, 0, "x")]) is None
    assert encode_points([WirePoint(1, ValueType.SINGLE, 0, 1)]) is None  # int is not a float
    text = wire.SendDataPoints(points=[_to_datapoint(WirePoint(1, ValueType.STRING, 0, "x"))])
    assert decode_points(text.build()) is None
    assert decode_points(b"") == []
