"""Both profiles' sans-IO sessions: after ``tick(now)``, ``next_deadline()`` is never at or
before ``now`` (a due time that tick() does not act on makes the shell's timer spin), in every
state reached cheaply: fresh, negotiated, awaiting a keep-alive answer, closed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from gridbind.sttp.draft.metadata import MetadataDatabase
from gridbind.sttp.draft.session import Catalog
from gridbind.sttp.draft.session import PublisherSession as DraftPublisherSession
from gridbind.sttp.draft.session import SubscriberSession as DraftSubscriberSession
from gridbind.sttp.ieee2664 import synthetic_pmu_metadata
from gridbind.sttp.ieee2664.publisher import _Core as PublisherCore
from gridbind.sttp.ieee2664.publisher_session import PublisherSession, SessionTiming
from gridbind.sttp.ieee2664.publisher_state import PublisherState
from gridbind.sttp.ieee2664.subscriber import _Core as SubscriberCore
from gridbind.sttp.ieee2664.subscriber_session import SubscriberConfig, SubscriberSession

METADATA, _ = synthetic_pmu_metadata(4)


def never_due_after_tick(session: Any, times: Iterable[float]) -> None:
    for now in times:
        session.tick(now)
        due = session.next_deadline()
        assert due is None or due > now, (type(session).__name__, now, due)


def draft_pair(now: float = 0.0) -> tuple[DraftPublisherSession, DraftSubscriberSession]:
    options = dict(keepalive_interval=0.2, noop_timeout=1.0, negotiation_timeout=2.0)
    pub = DraftPublisherSession(Catalog(MetadataDatabase()), now=now, **options)
    sub = DraftSubscriberSession(now=now, **options)  # type: ignore[arg-type]
    return pub, sub


def draft_pump(pub: Any, sub: Any, now: float) -> None:
    for _ in range(50):
        a, b = pub.data_to_send(), sub.data_to_send()
        if a:
            sub.receive_data(a, now)
        if b:
            pub.receive_data(b, now)
        if not a and not b:
            return


@pytest.mark.parametrize("role", ["publisher", "subscriber"])
def test_draft_sessions_before_negotiation(role):
    pub, sub = draft_pair()
    # keep-alive (0.2 s) before the negotiation deadline (2 s): nothing may be due before it
    never_due_after_tick(pub if role == "publisher" else sub, [0.0, 0.1, 0.25, 0.5, 1.9])


@pytest.mark.parametrize("role", ["publisher", "subscriber"])
def test_draft_sessions_negotiated_keepalive_and_closed(role):
    pub, sub = draft_pair()
    draft_pump(pub, sub, 0.05)
    assert pub.negotiated and sub.negotiated
    session = pub if role == "publisher" else sub
    assert session.next_deadline() == pytest.approx(0.25)  # from negotiation on
    never_due_after_tick(session, [0.1, 0.25, 0.3])  # a NoOp out, its answer awaited
    never_due_after_tick(session, [0.5, 1.3, 5.0])  # not answered: closed
    assert session.closed


def ieee2664_publisher(timing: SessionTiming) -> PublisherCore:
    return PublisherCore(PublisherSession(PublisherState(METADATA), now=0.0, timing=timing), int)


def test_ieee2664_publisher_session_fresh_negotiated_and_expired():
    timing = SessionTiming(negotiation_timeout=2.0, noop_interval=0.2)
    never_due_after_tick(ieee2664_publisher(timing), [0.0, 0.1, 0.25, 1.9, 2.0, 3.0])
    core = ieee2664_publisher(timing)
    subscriber = SubscriberSession(SubscriberConfig(compress_payload=False))
    subscriber.start()
    core.receive_data(subscriber.data_to_send(), 0.05)
    never_due_after_tick(core, [0.1, 0.25, 0.3, 0.9, 1.0])
    core.close("done")
    never_due_after_tick(core, [1.1, 5.0])


def test_ieee2664_subscriber_session_idle_and_expired():
    core = SubscriberCore(SubscriberSession(SubscriberConfig(), idle_timeout=0.5))
    core.receive_data(b"", 0.0)
    never_due_after_tick(core, [0.1, 0.5, 0.6, 2.0])
    core.close("done")
    never_due_after_tick(core, [3.0])
