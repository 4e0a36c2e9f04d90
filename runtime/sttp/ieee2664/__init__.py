"""The deployed IEEE Std 2664 STTP wire (openPDC, openHistorian, SIEGate, sttpapi).

``Publisher`` and ``Subscriber`` are asyncio transports over the sans-IO cores in
:mod:`.session`; :mod:`.metadata` holds the XML data set model, :mod:`.compact` the compact
measurement format and signal index cache, :mod:`.wire` the framing and small payload codecs.
``gridbind.sttp.Publisher(profile="ieee2664", ...)`` returns :class:`Publisher`.
"""

from __future__ import annotations

from gridbind.sttp.ieee2664.metadata import DataSet, DataTable, synthetic_pmu_metadata
from gridbind.sttp.ieee2664.params import SubscriptionSettings
from gridbind.sttp.ieee2664.publisher import Publisher
from gridbind.sttp.ieee2664.session import PublisherConfig, SubscriberConfig
from gridbind.sttp.ieee2664.subscriber import Subscriber, collect
from gridbind.sttp.ieee2664.synthetic import PmuSource

__all__ = [
    "DataSet",
    "DataTable",
    "PmuSource",
    "Publisher",
    "PublisherConfig",
    "Subscriber",
    "SubscriberConfig",
    "SubscriptionSettings",
    "collect",
    "synthetic_pmu_metadata",
]
