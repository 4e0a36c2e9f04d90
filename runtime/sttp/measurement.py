"""The measurement record shared by both STTP wire profiles, and STTP time in ticks.

Both the seed's draft and IEEE 2664 carry time as 100-nanosecond ticks since 0001-01-01 00:00 UTC
(the .NET epoch used by every deployed STTP implementation), so ticks are the one time unit of the
runtime; conversions to ``datetime`` are provided for applications.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

TICKS_PER_SECOND = 10_000_000
#: Ticks between 0001-01-01 and the Unix epoch.
UNIX_EPOCH_TICKS = 621_355_968_000_000_000
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class Measurement:
    """One time-series value: which signal, when, what, and its quality/state flags.

    ``value`` is a float for the streaming profiles (TSSC carries it as a float32 bit pattern);
    the draft profile's richer SttpValue types use their own DataPoint record.
    """

    signal_id: uuid.UUID
    value: float
    timestamp: int = 0
    flags: int = 0


def ticks_now() -> int:
    """Current UTC time in ticks (100 ns resolution, from the system clock)."""
    return UNIX_EPOCH_TICKS + time.time_ns() // 100


def ticks_from_datetime(moment: datetime) -> int:
    """Ticks of an aware ``datetime`` (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10


def ticks_to_datetime(ticks: int) -> datetime:
    """UTC ``datetime`` of a tick count (sub-microsecond ticks are truncated)."""
    return _EPOCH + timedelta(microseconds=ticks // 10)
