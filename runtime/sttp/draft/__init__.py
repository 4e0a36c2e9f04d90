"""STTP, draft-0.8 profile (the seed specification v0.8.23): publisher and subscriber.

- :class:`Publisher` / :class:`Subscriber`: asyncio endpoints (TCP, TLS, UDP data channel with
  AES, forward and reverse connections); see :mod:`gridbind.sttp.draft.transport`.
- :class:`PublisherSession` / :class:`SubscriberSession`: the sans-IO protocol cores.
- :class:`Gateway`: publisher and subscriber over one connection (bidirectional exchange).
- :mod:`gridbind.sttp.draft.sync`: blocking helpers for scripts.
- :class:`MetadataDatabase`, :class:`AccessControl`, :class:`Options` / :class:`Policy`
  (data point characteristics), :class:`TlsConfig`.

``gridbind.sttp.Publisher(profile="draft-0.8", **options)`` calls :class:`Publisher`.
"""

from __future__ import annotations

from gridbind.sttp.draft.access import AccessControl
from gridbind.sttp.draft.characteristics import Options, Policy
from gridbind.sttp.draft.gateway import Gateway
from gridbind.sttp.draft.metadata import MetadataDatabase, QueryResult
from gridbind.sttp.draft.session import (
    Catalog,
    NegotiationComplete,
    PublisherSession,
    SessionClosed,
    SubscriberSession,
)
from gridbind.sttp.draft.transport import (
    CommandError,
    Publisher,
    SessionError,
    Subscriber,
    SubscriptionRefused,
)
from gridbind.sttp.encoding import ValueType
from gridbind.sttp.tls import TlsConfig

__all__ = [
    "AccessControl",
    "Catalog",
    "CommandError",
    "Gateway",
    "MetadataDatabase",
    "NegotiationComplete",
    "Options",
    "Policy",
    "Publisher",
    "PublisherSession",
    "QueryResult",
    "SessionClosed",
    "SessionError",
    "Subscriber",
    "SubscriberSession",
    "SubscriptionRefused",
    "TlsConfig",
    "ValueType",
]
