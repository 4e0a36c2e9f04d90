"""Data point delivery characteristics ("Data Point Characteristics"): the subscriber's request,
the publisher's policy (which may refuse and propose), and the per-point publication filter.

Requests travel in Subscribe ``ConfigureOptions`` as an SttpNamedSet (decision: these names):

=================  =========================================================================
``priority``       0..6 (7 is reserved for the system)
``reliability``    ``reliable`` (command channel, default) or ``lossy`` (UDP data channel)
``exception``      ``true``: publish only on change, ``abs(last - value) >= deadband``
``deadband``       deviation for numeric values (default 0: any change publishes)
``zeroDeadband``   values with ``abs(value) <= zeroDeadband`` count as exactly 0.0
``resolution``     seconds between down-sampled values (> 0 turns down-sampling on)
``resolutionType`` ``latest`` | ``closest`` | ``bestQuality`` | ``filter``
``angle``          ``true``: the filter averages unwrapped angles in degrees (also taken from
                   the DataPoint metadata ``Signal Type`` PA)
=================  =========================================================================

Down-sampling puts every value in the window of the nearest multiple ``k*T`` of the resolution
``T`` (``[kT - T/2, kT + T/2)``); a window is emitted once a later window starts. ``latest`` emits
the last value received, ``closest`` the one nearest to ``kT``, ``bestQuality`` the one with the
smallest quality word (ties: nearest to ``kT``), ``filter`` the mean (angles unwrapped, averaged
and re-wrapped to (-180, 180]) stamped ``kT`` with the OR of the qualities.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp.errors import SttpError
from gridbind.sttp.measurement import TICKS_PER_SECOND

__all__ = [
    "CharacteristicsError",
    "Options",
    "Policy",
    "PointFilter",
    "RESOLUTION_TYPES",
]

RESOLUTION_TYPES = {"latest": 0, "closest": 1, "bestquality": 2, "filter": 3}
_TYPE_NAMES = {0: "latest", 1: "closest", 2: "bestQuality", 3: "filter"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class CharacteristicsError(SttpError, ValueError):
    """An option that cannot be read."""


def _bool(name: str, text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise CharacteristicsError(f"option {name}={text!r} is not a boolean")


#: Longest down-sampling resolution, seconds (a year; keeps the tick arithmetic finite).
MAX_RESOLUTION = 366 * 86400.0
#: Shortest non-zero resolution: one tick (a shorter one would be a zero-tick window).
MIN_RESOLUTION = 1 / TICKS_PER_SECOND


def _float(
    name: str, text: str, minimum: float = 0.0, maximum: float = sys.float_info.max
) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CharacteristicsError(f"option {name}={text[:40]!r} is not a number") from None
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise CharacteristicsError(
            f"option {name}={text[:40]!r} must be a finite number in {minimum:g}..{maximum:g}"
        )
    return value


@dataclass(frozen=True)
class Options:
    """Requested (or granted) characteristics of a group of data points."""

    priority: int = 0
    lossy: bool = False
    exception: bool = False
    deadband: float = 0.0
    zero_deadband: float = 0.0
    resolution: float = 0.0
    resolution_type: int = 0
    angle: bool = False

    @classmethod
    def from_named(cls, named: Mapping[str, str]) -> Options:
        """Read options from SttpNamedSet pairs; unknown names raise CharacteristicsError."""
        values: dict[str, Any] = {}
        for name, text in named.items():
            key = name.lower()
            if key == "priority":
                if text not in {str(i) for i in range(8)}:
                    raise CharacteristicsError(f"priority {text!r} is not 0..7")
                values["priority"] = int(text)
            elif key == "reliability":
                if text.lower() not in ("reliable", "lossy"):
                    raise CharacteristicsError(f"reliability {text!r} is not reliable|lossy")
                values["lossy"] = text.lower() == "lossy"
            elif key == "exception":
                values["exception"] = _bool(name, text)
            elif key == "deadband":
                values["deadband"] = _float(name, text)
            elif key == "zerodeadband":
                values["zero_deadband"] = _float(name, text)
            elif key == "resolution":
                values["resolution"] = _float(name, text, maximum=MAX_RESOLUTION)
                if 0 < values["resolution"] < MIN_RESOLUTION:
                    raise CharacteristicsError(f"resolution {text[:40]!r} is below one tick")
            elif key == "resolutiontype":
                if text.lower() not in RESOLUTION_TYPES:
                    raise CharacteristicsError(f"resolutionType {text!r} is unknown")
                values["resolution_type"] = RESOLUTION_TYPES[text.lower()]
            elif key == "angle":
                values["angle"] = _bool(name, text)
            else:
                raise CharacteristicsError(f"unknown subscription option {name!r}")
        return cls(**values)

    def to_named(self) -> dict[str, str]:
        """These options as SttpNamedSet pairs (defaults left out)."""
        out: dict[str, str] = {}
        default = Options()
        if self.priority != default.priority:
            out["priority"] = str(self.priority)
        if self.lossy:
            out["reliability"] = "lossy"
        if self.exception:
            out["exception"] = "true"
        if self.deadband:
            out["deadband"] = repr(self.deadband)
        if self.zero_deadband:
            out["zeroDeadband"] = repr(self.zero_deadband)
        if self.resolution:
            out["resolution"] = repr(self.resolution)
            out["resolutionType"] = _TYPE_NAMES[self.resolution_type]
        if self.angle:
            out["angle"] = "true"
        return out

    def state_flags(self, verification: bool) -> int:
        """The StateFlags of a RuntimeIDMapping key granting these options."""
        flags = int(wire.StateFlags.Timestamp | wire.StateFlags.KeyAction)
        flags |= (self.priority & 7) << 5
        if self.lossy:
            flags |= wire.StateFlags.Reliability
        if verification:
            flags |= wire.StateFlags.Verification
        if self.exception:
            flags |= wire.StateFlags.Exception
        if self.resolution:
            flags |= wire.StateFlags.Resolution | (self.resolution_type << 12)
        return flags


@dataclass(frozen=True)
class Policy:
    """What the publisher grants. A request outside it is refused with proposed options.

    Some limits are not negotiable and end the connection (RequestFailed for the Subscribe with
    TerminateConnection, see :meth:`subscription_problem`), as "Data Point Characteristics"
    says: ``lossy_points`` must be published over the lossy data channel (they are assigned
    ``reliability=lossy``, shown by the Reliability flag of their RuntimeIDMapping key), so a
    subscription including one from a subscriber without a UDP data channel is terminated;
    ``max_exception_points`` is the most points with exception delivery this publisher can
    fulfil for one subscriber ("e.g. based on volume"; ``None``: no limit).
    """

    max_priority: int = 6
    allow_lossy: bool = True
    allow_filter: bool = True
    allow_full_resolution: bool = True
    min_resolution: float = 0.0
    verified_points: frozenset = field(default_factory=frozenset)
    lossy_points: frozenset = field(default_factory=frozenset)
    max_exception_points: int | None = None

    def assign(self, point: Any, options: Options) -> Options:
        """The options published for ``point`` (``options`` with publisher-assigned values)."""
        if point in self.lossy_points and not options.lossy:
            return replace(options, lossy=True)
        return options

    def subscription_problem(self, wanted: Mapping[Any, Options], data_channel: bool) -> str:
        """Why this publisher cannot serve the subscription ``wanted`` (point -> assigned
        options) at all ("": it can); ``data_channel``: the subscriber defined a UDP one."""
        if not data_channel and self.lossy_points:
            required = sum(1 for point in wanted if point in self.lossy_points)
            if required:
                return (
                    f"the publisher requires {required} of the {len(wanted)} subscribed data "
                    "points to be published over a lossy data communications channel (UDP) and "
                    "the subscriber has not defined one"
                )
        if self.max_exception_points is not None:
            exceptions = sum(1 for options in wanted.values() if options.exception)
            if exceptions > self.max_exception_points:
                return (
                    f"the publisher cannot fulfil the requested exception characteristics for "
                    f"{exceptions} data points (at most {self.max_exception_points} per "
                    "subscriber)"
                )
        return ""

    def review(self, requested: Options) -> Options:
        """The options this policy grants for ``requested`` (equal when all is allowed)."""
        granted = requested
        if granted.priority > self.max_priority:
            granted = replace(granted, priority=self.max_priority)
        if granted.lossy and not self.allow_lossy:
            granted = replace(granted, lossy=False)
        if granted.resolution == 0 and not self.allow_full_resolution:
            granted = replace(granted, resolution=max(self.min_resolution, 1 / 30))
        if granted.resolution and granted.resolution < self.min_resolution:
            granted = replace(granted, resolution=self.min_resolution)
        if granted.resolution and granted.resolution_type == 3 and not self.allow_filter:
            granted = replace(granted, resolution_type=0)
        return granted


_SKIP = object()


def _wrap(angle: float) -> float:
    wrapped = math.fmod(angle + 180.0, 360.0)
    if wrapped <= 0:
        wrapped += 360.0
    return wrapped - 180.0


class PointFilter:
    """Per-point publication state: exception/deadband and down-sampling.

    :meth:`offer` takes one value and returns the ``(timestamp, value, quality)`` tuples to
    publish now (none, the value, or a finished down-sampling window).
    """

    __slots__ = ("options", "_last", "_has_last", "_window", "_items", "_numeric")

    def __init__(self, options: Options) -> None:
        self.options = options
        self._last: Any = None
        self._has_last = False
        self._window: int | None = None
        self._items: list[tuple[int, Any, int]] = []

    @property
    def passthrough(self) -> bool:
        """True when every value is published unchanged."""
        return not self.options.exception and not self.options.resolution

    def offer(self, timestamp: int, value: Any, quality: int) -> list[tuple[int, Any, int]]:
        """Values to publish after receiving ``value``."""
        options = self.options
        if options.resolution:
            out = self._downsample(timestamp, value, quality)
        else:
            out = [(timestamp, value, quality)]
        if options.exception:
            out = self._exceptions(out)
        return out

    def flush(self) -> list[tuple[int, Any, int]]:
        """Emit the open down-sampling window (e.g. at the end of a stream)."""
        if not self._items:
            return []
        out = [self._select()]
        self._items = []
        self._window = None
        if self.options.exception:
            out = self._exceptions(out)
        return out

    def _exceptions(self, items: list[tuple[int, Any, int]]) -> list[tuple[int, Any, int]]:
        out = []
        for stamp, value, quality in items:
            value = self._exceptional(value)
            if value is not _SKIP:
                out.append((stamp, value, quality))
        return out

    def _exceptional(self, value: Any) -> Any:
        """``value`` (zero-deadband clamped) when it is to be published, else ``_SKIP``."""
        options = self.options
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and options.zero_deadband and abs(value) <= options.zero_deadband:
            value = 0.0
        if not self._has_last:
            publish = True
        elif numeric and isinstance(self._last, (int, float)):
            publish = abs(self._last - value) >= options.deadband and self._last != value
            if options.deadband == 0:
                publish = self._last != value
        else:
            publish = self._last != value
        if publish:
            self._last = value
            self._has_last = True
            return value
        return _SKIP

    def _downsample(self, timestamp: int, value: Any, quality: int) -> list[tuple[int, Any, int]]:
        period = round(self.options.resolution * TICKS_PER_SECOND)
        window = (timestamp + period // 2) // period
        out: list[tuple[int, Any, int]] = []
        if self._window is not None and window != self._window and self._items:
            if window < self._window:
                return []  # late value for a window already emitted
            out.append(self._select())
            self._items = []
        self._window = window
        self._items.append((timestamp, value, quality))
        return out

    def _select(self) -> tuple[int, Any, int]:
        assert self._window is not None
        items = self._items
        period = round(self.options.resolution * TICKS_PER_SECOND)
        target = self._window * period
        kind = self.options.resolution_type
        if kind == 0:
            return items[-1]
        if kind == 1:
            return min(items, key=lambda item: abs(item[0] - target))
        if kind == 2:
            return min(items, key=lambda item: (item[2], abs(item[0] - target)))
        values = [item[1] for item in items]
        quality = 0
        for item in items:
            quality |= item[2]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return (target, items[-1][1], quality)  # non-numeric: the major (latest) value
        if self.options.angle:
            unwrapped = [float(values[0])]
            for v in values[1:]:
                unwrapped.append(unwrapped[-1] + _wrap(float(v) - unwrapped[-1]))
            return (target, _wrap(sum(unwrapped) / len(unwrapped)), quality)
        return (target, sum(float(v) for v in values) / len(values), quality)
