"""Sans-IO session cores of the draft profile: bytes in, events out, bytes to send.

:class:`PublisherSession` and :class:`SubscriberSession` implement the seed's rules for one
connection: session negotiation (publisher first: ProtocolVersions, then OperationalModes, each
answered by RequestSucceeded/RequestFailed, with time-outs), nothing else before negotiation
completes, subscriptions with RuntimeIDMapping, data points (basic / DEFLATE / TSSC,
fragments), metadata, SecureDataChannel keys, NoOp keep-alive, and RequestFailed with
TerminateConnection. A malformed or out-of-order frame is answered with RequestFailed
(terminate) and the session closes; the transport then closes the socket.

Time is passed in explicitly (``now``, seconds of a monotonic clock); transports call
:meth:`tick` at :meth:`next_deadline`.

The code lives in :mod:`~gridbind.sttp.draft.core` (shared machinery),
:mod:`~gridbind.sttp.draft.publisher_session`, :mod:`~gridbind.sttp.draft.subscriber_session`
and :mod:`~gridbind.sttp.draft.events`; this module gathers them.
"""

from __future__ import annotations

from gridbind.sttp.draft.core import ALGORITHM_VERSIONS, STATEFUL, STATELESS, _modes
from gridbind.sttp.draft.events import (
    BulkReceived,
    CommandFailed,
    CommandSucceeded,
    DataChannelSecured,
    DataPointsReceived,
    Event,
    MappingChanged,
    MetadataReceived,
    MetadataSchemaReceived,
    NegotiationComplete,
    SessionClosed,
    SubscriptionChanged,
    VerificationTimedOut,
    Verified,
)
from gridbind.sttp.draft.publisher_session import Catalog, PublisherSession
from gridbind.sttp.draft.subscriber_session import SubscriberSession

__all__ = [
    "ALGORITHM_VERSIONS",
    "STATEFUL",
    "STATELESS",
    "BulkReceived",
    "Catalog",
    "CommandFailed",
    "CommandSucceeded",
    "DataChannelSecured",
    "DataPointsReceived",
    "Event",
    "MappingChanged",
    "MetadataReceived",
    "MetadataSchemaReceived",
    "NegotiationComplete",
    "PublisherSession",
    "SessionClosed",
    "SubscriberSession",
    "SubscriptionChanged",
    "VerificationTimedOut",
    "Verified",
    "_modes",
]
