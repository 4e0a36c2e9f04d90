"""The deployed IEEE Std 2664 STTP wire (openPDC, openHistorian, SIEGate, sttpapi).

``Publisher`` and ``Subscriber`` are asyncio transports over the sans-IO cores in
:mod:`.publisher_session` and :mod:`.subscriber_session` (their events in :mod:`.events`, the
publisher's shared policy and metadata in :mod:`.publisher_state`); :mod:`.metadata` holds
the XML data set model, :mod:`.compact` the compact measurement format and signal index cache,
:mod:`.wire` the framing and small payload codecs (built on the structures generated from ``specs/sttp/ieee2664.yaml``).
``gridbind.sttp.Publisher(profile="ieee2664", ...)`` returns :class:`Publisher`.

Names are imported lazily, so importing one submodule (or ``gridbind.sttp``'s factory) does not
load the whole asyncio runtime.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DataSet": "gridbind.sttp.ieee2664.metadata",
    "DataTable": "gridbind.sttp.ieee2664.metadata",
    "synthetic_pmu_metadata": "gridbind.sttp.ieee2664.metadata",
    "SubscriptionSettings": "gridbind.sttp.ieee2664.params",
    "Publisher": "gridbind.sttp.ieee2664.publisher",
    "PublisherConfig": "gridbind.sttp.ieee2664.publisher_state",
    "SubscriberConfig": "gridbind.sttp.ieee2664.subscriber_session",
    "Subscriber": "gridbind.sttp.ieee2664.subscriber",
    "collect": "gridbind.sttp.ieee2664.subscriber",
    "PmuSource": "gridbind.sttp.ieee2664.synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
