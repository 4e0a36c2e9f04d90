"""gridbind.sttp: the Streaming Telemetry Transport Protocol, in two wire profiles.

- ``"ieee2664"`` (default): the deployed IEEE Std 2664 wire spoken by openPDC, openHistorian,
  SIEGate and the Grid Protection Alliance APIs (``sttpapi``).
- ``"draft-0.8"``: the seed specification v0.8.23.

``Publisher(profile=..., **options)`` and ``Subscriber(profile=..., **options)`` return the
profile's implementation; both profiles share :class:`Measurement` and tick-based time.
"""

from __future__ import annotations

import importlib
from typing import Any

from gridbind.sttp.errors import DecodeError, InvalidArgument, MetadataError, SttpError
from gridbind.sttp.measurement import (
    TICKS_PER_SECOND,
    UNIX_EPOCH_TICKS,
    Measurement,
    ticks_from_datetime,
    ticks_now,
    ticks_to_datetime,
)

PROFILES = {"ieee2664": "gridbind.sttp.ieee2664", "draft-0.8": "gridbind.sttp.draft"}
DEFAULT_PROFILE = "ieee2664"

__all__ = [
    "DEFAULT_PROFILE",
    "DecodeError",
    "InvalidArgument",
    "PROFILES",
    "SttpError",
    "TICKS_PER_SECOND",
    "UNIX_EPOCH_TICKS",
    "Measurement",
    "MetadataError",
    "Publisher",
    "Subscriber",
    "profile_module",
    "ticks_from_datetime",
    "ticks_now",
    "ticks_to_datetime",
]


def profile_module(profile: str) -> Any:
    """Import and return the implementation module of a wire profile."""
    try:
        return importlib.import_module(PROFILES[profile])
    except KeyError:
        raise InvalidArgument(
            f"unknown STTP profile {profile!r}; known: {', '.join(PROFILES)}"
        ) from None


def Publisher(profile: str = DEFAULT_PROFILE, **options: Any) -> Any:  # noqa: N802 - factory
    """Create the publisher of ``profile``; see that profile's ``Publisher`` for the options."""
    return profile_module(profile).Publisher(**options)


def Subscriber(profile: str = DEFAULT_PROFILE, **options: Any) -> Any:  # noqa: N802 - factory
    """Create the subscriber of ``profile``; see that profile's ``Subscriber`` for the options."""
    return profile_module(profile).Subscriber(**options)
