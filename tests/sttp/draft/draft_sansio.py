"""Helpers for driving the draft profile's sans-IO sessions against each other in tests.

Imported by test modules (`from draft_sansio import encode, frames, pump`); not a conftest.
"""

from __future__ import annotations

import struct
from typing import Any


def encode(code: int, payload: bytes) -> bytes:
    """One command/response frame: uint8 code, uint16 length (header included), payload."""
    return struct.pack(">BH", code, len(payload) + 3) + payload


def frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split a byte stream into ``(code, payload)`` frames."""
    out, offset = [], 0
    while offset < len(data):
        code, length = struct.unpack_from(">BH", data, offset)
        out.append((code, data[offset + 3 : offset + length]))
        offset += length
    return out


def pump(pub: Any, sub: Any, now: float = 0.0) -> tuple[list[Any], list[Any]]:
    """Move bytes both ways until quiet; returns (publisher events, subscriber events)."""
    pub_events: list[Any] = []
    sub_events: list[Any] = []
    for _ in range(100):
        a = pub.data_to_send()
        if a:
            sub_events += sub.receive_data(a, now)
        b = sub.data_to_send()
        if b:
            pub_events += pub.receive_data(b, now)
        if not a and not b:
            return pub_events, sub_events
    raise AssertionError("sessions did not settle")
