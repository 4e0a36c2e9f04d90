"""Events the draft profile's sans-IO sessions report (see :mod:`gridbind.sttp.draft.session`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp.measurement import Measurement

__all__ = [
    "BulkReceived",
    "CommandFailed",
    "CommandSucceeded",
    "DataChannelSecured",
    "DataPointsReceived",
    "Event",
    "FilterRequested",
    "MappingChanged",
    "MetadataReceived",
    "MetadataSchemaReceived",
    "NegotiationComplete",
    "SessionClosed",
    "SubscriptionChanged",
    "VerificationTimedOut",
    "Verified",
]


class Event:
    """Base of everything a session reports."""


@dataclass
class NegotiationComplete(Event):
    """Both sides agreed: protocol version, algorithms, the subscriber's UDP port (0 = none)."""

    version: tuple[int, int]
    stateful: str
    stateless: str
    udp_port: int


@dataclass
class SessionClosed(Event):
    """The session ended; the transport must close the connection."""

    reason: str
    by_peer: bool = False


@dataclass
class CommandSucceeded(Event):
    """The peer answered RequestSucceeded to one of our commands."""

    command: int
    reason: str = ""
    details: str = ""
    data: bytes = b""


@dataclass
class CommandFailed(Event):
    """The peer answered RequestFailed; ``proposed`` holds options the publisher offers."""

    command: int
    reason: str = ""
    details: str = ""
    terminate: bool = False
    data: bytes = b""
    proposed: dict[str, str] | None = None


@dataclass
class DataPointsReceived(Event):
    """Measurements of subscribed points (value types beyond float keep their Python form)."""

    measurements: list[Measurement]
    channel: str = "tcp"


@dataclass
class MappingChanged(Event):
    """RuntimeIDMapping received: keys added (with flags) and runtime IDs removed."""

    added: list[wire.DataPointKey]
    removed: list[int]


@dataclass
class SubscriptionChanged(Event):
    """Publisher side: the subscribed point set of this session changed."""

    points: list[uuid.UUID]


@dataclass
class MetadataSchemaReceived(Event):
    """GetMetadataSchemaResponse."""

    schema: wire.MetadataSchema


@dataclass
class MetadataReceived(Event):
    """All response items of one GetMetadata."""

    items: list[wire.MetadataResponseItem]


@dataclass
class DataChannelSecured(Event):
    """SecureDataChannel succeeded: AES-256 key and IV of the UDP data channel."""

    key: bytes
    iv: bytes


@dataclass
class BulkReceived(Event):
    """A complete BulkTransport buffer."""

    transfer_id: uuid.UUID
    fundamental_type: int
    data: bytes


@dataclass
class Verified(Event):
    """Publisher side: the subscriber confirmed receipt of a verified point."""

    signal_id: uuid.UUID
    timestamp: int


@dataclass
class VerificationTimedOut(Event):
    """Publisher side: no receipt for a verified point within the time-out."""

    signal_id: uuid.UUID
    timestamp: int


@dataclass
class FilterRequested(Event):
    """A publisher session waits for a metadata query / subscription evaluation (only with
    ``defer_filters``): the shell runs ``run()`` off its event loop (it returns, never raises, a
    bad query's error) and hands the result to ``session.filter_done(result, now)``; commands
    that arrive meanwhile wait, in order, in the session."""

    run: Callable[[], Any]
