"""Building blocks shared by handshake and transfer: E2E time, canonical bytes, algorithm names.

**Canonical serialisation** (what signatures and ICVs cover; DECISIONS.md 36). The signed or
authenticated part of an envelope (``tbs`` of the handshake PDUs, ``tbp`` of the transfer PDUs,
``token3`` of release PDUs) is serialised by encoding the *whole typed envelope* with the
project's codec (:func:`gridbind.iec61850.codec.to_element`, E2E namespace as default, 8-2 under
the prefix ``mms``) and concatenating, in document order, the Exclusive XML Canonicalization 1.0
(W3C, without comments) of each child element of that part; text between the children is not
included and neither are the part's own start and end tags. A receiver never authenticates the
bytes it received but the re-encoding of the value it decoded, so the value the application gets
is exactly the value that was authenticated, and a server that re-serialises namespace prefixes
or whitespace in transit does not break the ICV.

**Time**: ``YYYYMMDDhhmmss,sssZ`` in UTC (no ``T``). ``now`` is POSIX wall-clock seconds (a
``float``, as :func:`time.time` gives) or an aware :class:`datetime.datetime`; the E2E checks are
about wall-clock time, so a monotonic clock must not be passed here.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import typing
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from gridbind.generated.iec61850_8_2 import e2e_4
from gridbind.iec61850 import codec
from gridbind.iec61850.errors import InvalidArgument

__all__ = [
    "SECURITY_LOG",
    "WINDOW_S",
    "Now",
    "alternative",
    "alternative_name",
    "canonical_part",
    "format_time",
    "parse_time",
    "to_posix",
]

#: Security events (handshakes, aborts, rekeys, releases) go to their own logger so an operator
#: can route them apart from protocol chatter.
SECURITY_LOG = logging.getLogger("gridbind.iec61850.security")

#: The accepted distance between a token's time and the local clock (notes: 10 minutes).
WINDOW_S = 600.0

Now = float | datetime


def to_posix(now: Now) -> float:
    """POSIX seconds of ``now`` (float or aware datetime)."""
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise InvalidArgument("E2E time must be an aware datetime (UTC)")
        return now.timestamp()
    return float(now)


@functools.lru_cache(maxsize=16)  # every message formats its time: one strftime per second
def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y%m%d%H%M%S")


def format_time(posix: float) -> str:
    """``YYYYMMDDhhmmss,sssZ`` of POSIX seconds (milliseconds truncated)."""
    seconds, ms = divmod(int(posix * 1000), 1000)
    return _second(seconds) + _MILLIS[ms]


#: ",000Z" .. ",999Z"
_MILLIS = tuple(f",{ms:03d}Z" for ms in range(1000))


def parse_time(text: str) -> float:
    """POSIX seconds of an E2E time string; ValueError if it is not one."""
    if (
        len(text) != 19
        or text[14] != ","
        or text[18] != "Z"
        or not text.isascii()
        or not (text[:14] + text[15:18]).isdigit()
    ):
        raise ValueError(f"not an E2E time: {text!r}")
    return _seconds(text[:14]) + int(text[15:18]) / 1000.0


@functools.lru_cache(maxsize=16)  # every message parses its time: one datetime per second
def _seconds(digits: str) -> int:
    # datetime() checks the ranges (strptime's job, at a tenth of its cost)
    dt = datetime(
        int(digits[0:4]), int(digits[4:6]), int(digits[6:8]),
        int(digits[8:10]), int(digits[10:12]), int(digits[12:14]), tzinfo=UTC,
    )  # fmt: skip
    return int(dt.timestamp())


def _c14n(el: etree._Element) -> bytes:
    return etree.tostring(el, method="c14n", exclusive=True, with_comments=False)


def canonical_part(envelope: Any, *path: str) -> bytes:
    """Canonical bytes of the content of the element at ``path`` (local names) in ``envelope``.

    ``canonical_part(clear_transfer, "tbp")`` -> the bytes the ICV covers.
    """
    el = codec.to_element(envelope, validate=False)
    for name in path:
        found = el.find(f"{{{codec.E2E_NS}}}{name}")
        if found is None:
            raise ValueError(f"{type(envelope).__name__} has no {'/'.join(path)}")
        el = found
    return b"".join(_c14n(child) for child in el.iterchildren(tag=etree.Element))


def _choices(cls: type) -> tuple[dict[str, Any], ...]:
    for f in dataclasses.fields(cls):
        if f.name == "choice":
            return f.metadata["choices"]
    raise TypeError(f"{cls.__name__} is not a generated CHOICE")


def _resolve(ref: Any) -> type:
    name = ref.__forward_arg__ if isinstance(ref, typing.ForwardRef) else ref
    obj: Any = sys.modules[e2e_4.__name__]
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def alternative(cls: type, name: str, value: Any = None) -> Any:
    """``cls(choice=<alternative named name>)`` using the generated metadata (no hand copies).

    ``alternative(e2e_4.AeaAlgorithm, "aes-128-gcm")``; ``value`` for valued alternatives
    (``alternative(e2e_4.DhKey, "ecdh-secp256r1", pub)``). KeyError for an unknown name.
    """
    for choice in _choices(cls):
        if choice["name"] == name:
            alt = _resolve(choice["type"])
            inner = alt() if value is None else alt(value=value)
            return cls(choice=inner)
    raise KeyError(f"{cls.__name__} has no alternative {name!r}")


def alternative_name(obj: Any) -> str:
    """Element name of the alternative held by a generated CHOICE object."""
    for choice in _choices(type(obj)):
        if type(obj.choice) is _resolve(choice["type"]):
            return choice["name"]
    raise ValueError(f"{type(obj).__name__} holds no alternative")


@functools.lru_cache(maxsize=64)  # generated classes never change; asked on every message
def alternative_names(cls: type) -> tuple[str, ...]:
    """All alternative names of a generated CHOICE class, in schema order."""
    return tuple(c["name"] for c in _choices(cls))
