"""What the IEEE 2664 session cores report: small event dataclasses, one per happening.

Subscriber-side events come first, then the publisher side's; both cores return lists of them
from their input methods (``receive``, ``tick``, ``filter_done``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gridbind.sttp.ieee2664.compact import SignalIndexCache
from gridbind.sttp.ieee2664.metadata import DataSet
from gridbind.sttp.ieee2664.params import SubscriptionSettings
from gridbind.sttp.ieee2664.wire import BaseTimes, CipherKeys
from gridbind.sttp.measurement import Measurement


@dataclass
class Event:
    """Base of everything a session reports."""


@dataclass
class CommandSucceeded(Event):
    command: int
    message: str


@dataclass
class CommandFailed(Event):
    command: int
    message: str


@dataclass
class MetadataReceived(Event):
    metadata: DataSet
    wire_bytes: int


@dataclass
class MetadataArrived(Event):
    """A METADATA_REFRESH answer, not yet parsed (``SubscriberSession.defer_metadata``)."""

    payload: bytes


@dataclass
class SchemaReceived(Event):
    """Tables without rows: the primary metadata schema or the signal selection schema."""

    command: int
    schema: DataSet


@dataclass
class SubscriptionUpdated(Event):
    cache: SignalIndexCache
    cache_index: int


@dataclass
class MeasurementsReceived(Event):
    measurements: list[Measurement]


@dataclass
class BaseTimesUpdated(Event):
    base_times: BaseTimes


@dataclass
class CipherKeysUpdated(Event):
    keys: CipherKeys


@dataclass
class DataStartTime(Event):
    ticks: int


@dataclass
class ProcessingComplete(Event):
    message: str


@dataclass
class ConfigurationChanged(Event):
    pass


@dataclass
class Notification(Event):
    message: str


@dataclass
class BufferBlockReceived(Event):
    sequence: int
    signal_id: uuid.UUID | None
    payload: bytes


@dataclass
class UserResponse(Event):
    code: int
    command: int
    payload: bytes


@dataclass
class NoOp(Event):
    pass


# publisher-side events


@dataclass
class ModesDefined(Event):
    modes: int
    version: int


@dataclass
class MetadataRequested(Event):
    filters: str


@dataclass
class Subscribed(Event):
    settings: SubscriptionSettings
    signal_ids: list[uuid.UUID]
    temporal: bool


@dataclass
class Unsubscribed(Event):
    pass


@dataclass
class KeysRotationRequested(Event):
    pass


@dataclass
class ProcessingIntervalChanged(Event):
    interval: int


@dataclass
class SessionExpired(Event):
    """A deadline of the session passed (no DEFINE_OPERATIONAL_MODES in time): close it."""

    reason: str


@dataclass
class ReplayDue(Event):
    """The next batch of a historical replay may go (its processing interval passed)."""


@dataclass
class CipherKeysActivated(Event):
    """Rotated UDP keys were switched to without the subscriber's confirmation."""


@dataclass
class UserCommand(Event):
    command: int
    payload: bytes


@dataclass
class Confirmed(Event):
    command: int
    payload: bytes


@dataclass
class FilterRequested(Event):
    """The session waits for a filter evaluation (only with ``defer_filters``).

    The shell runs ``run()`` off its event loop (it never raises for a bad filter: it returns
    the error) and hands the result to :meth:`PublisherSession.filter_done`; commands that
    arrive meanwhile wait, in order, in the session.
    """

    run: Callable[[], Any]
