"""gridbind.sttp: the Streaming Telemetry Transport Protocol, in two wire profiles.

- ``"ieee2664"`` (default): the deployed IEEE Std 2664 wire spoken by openPDC, openHistorian,
  SIEGate and the Grid Protection Alliance APIs (``sttpapi``).
- ``"draft-0.8"``: the seed specification v0.8.23.

``Publisher(profile=..., **options)`` and ``Subscriber(profile=..., **options)`` return the
profile's implementation. Both implement the session contract of :mod:`gridbind.sttp.api`
(:class:`PublisherAPI` / :class:`SubscriberAPI`: ``start`` / ``stop`` / ``async with``,
``publish`` / ``drain`` / ``wait_subscribed``, ``subscribe`` / ``unsubscribe`` /
``request_metadata`` / ``batches``), take the same ``host`` / ``port`` (default 127.0.0.1:7165)
and the same :class:`TlsConfig` as ``tls=``, and share :class:`Measurement` and tick-based time.
For a literal profile the factories are typed with the concrete class; otherwise with the
protocol.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, overload

from gridbind.sttp.api import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ConnectionAPI,
    PublisherAPI,
    SubscriberAPI,
)
from gridbind.sttp.errors import (
    DecodeError,
    InvalidArgument,
    MetadataError,
    RequestRefused,
    SttpError,
)
from gridbind.sttp.measurement import (
    TICKS_PER_SECOND,
    UNIX_EPOCH_TICKS,
    Measurement,
    ticks_from_datetime,
    ticks_now,
    ticks_to_datetime,
)
from gridbind.sttp.tls import TlsConfig

if TYPE_CHECKING:  # the profiles load on first use (``profile_module``)
    from gridbind.sttp.draft import transport as draft
    from gridbind.sttp.ieee2664 import publisher as ieee2664_publisher
    from gridbind.sttp.ieee2664 import subscriber as ieee2664_subscriber

PROFILES = {"ieee2664": "gridbind.sttp.ieee2664", "draft-0.8": "gridbind.sttp.draft"}
DEFAULT_PROFILE = "ieee2664"

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_PROFILE",
    "ConnectionAPI",
    "DecodeError",
    "InvalidArgument",
    "PROFILES",
    "SttpError",
    "TICKS_PER_SECOND",
    "UNIX_EPOCH_TICKS",
    "Measurement",
    "MetadataError",
    "Publisher",
    "PublisherAPI",
    "RequestRefused",
    "Subscriber",
    "SubscriberAPI",
    "TlsConfig",
    "profile_module",
    "ticks_from_datetime",
    "ticks_now",
    "ticks_to_datetime",
]


def profile_module(profile: str) -> ModuleType:
    """Import and return the implementation module of a wire profile."""
    try:
        return importlib.import_module(PROFILES[profile])
    except KeyError:
        raise InvalidArgument(
            f"unknown STTP profile {profile!r}; known: {', '.join(PROFILES)}"
        ) from None


# The options are each profile's own (metadata, policies, modes), so they stay ``Any`` here;
# what comes back is typed: the concrete class for a literal profile, else the protocol.
@overload
def Publisher(  # noqa: N802 - factory
    profile: Literal["ieee2664"] = ..., **options: Any
) -> ieee2664_publisher.Publisher: ...
@overload
def Publisher(  # noqa: N802 - factory
    profile: Literal["draft-0.8"], **options: Any
) -> draft.Publisher: ...
@overload
def Publisher(profile: str, **options: Any) -> PublisherAPI: ...  # noqa: N802 - factory
def Publisher(profile: str = DEFAULT_PROFILE, **options: Any) -> PublisherAPI:  # noqa: N802
    """Create the publisher of ``profile``; see that profile's ``Publisher`` for the options."""
    publisher: PublisherAPI = profile_module(profile).Publisher(**options)
    return publisher


@overload
def Subscriber(  # noqa: N802 - factory
    profile: Literal["ieee2664"] = ..., **options: Any
) -> ieee2664_subscriber.Subscriber: ...
@overload
def Subscriber(  # noqa: N802 - factory
    profile: Literal["draft-0.8"], **options: Any
) -> draft.Subscriber: ...
@overload
def Subscriber(profile: str, **options: Any) -> SubscriberAPI: ...  # noqa: N802 - factory
def Subscriber(profile: str = DEFAULT_PROFILE, **options: Any) -> SubscriberAPI:  # noqa: N802
    """Create the subscriber of ``profile``; see that profile's ``Subscriber`` for the
    options."""
    subscriber: SubscriberAPI = profile_module(profile).Subscriber(**options)
    return subscriber


if TYPE_CHECKING:
    # Static proof that both profiles implement the shared contract: a divergence (a renamed
    # verb, an incompatible signature or result) fails ``mypy -p gridbind`` here.
    _publishers: tuple[type[PublisherAPI], ...] = (
        ieee2664_publisher.Publisher,
        draft.Publisher,
    )
    _subscribers: tuple[type[SubscriberAPI], ...] = (
        ieee2664_subscriber.Subscriber,
        draft.Subscriber,
    )
    _connections: tuple[type[ConnectionAPI], ...] = (ieee2664_publisher.Connection, draft._Link)
