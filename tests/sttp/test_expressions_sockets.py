"""One subscriber's hostile filter does not stall data to another (ieee2664, real sockets)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from functools import partial

import pytest

from gridbind.sttp.ieee2664 import (
    PmuSource,
    Publisher,
    Subscriber,
    SubscriptionSettings,
    synthetic_pmu_metadata,
)
from gridbind.sttp.ieee2664.events import CommandFailed, CommandSucceeded, MetadataReceived
from gridbind.sttp.ieee2664.subscriber_session import SubscriberConfig, SubscriberSession
from gridbind.sttp.measurement import ticks_now

ALL = "FILTER ActiveMeasurements WHERE SignalType <> 'NONE'"
# Every row costs the evaluator 6000 steps (one per list item): 400 rows exceed the budget (2
# million steps or 2 s), which ends the request in its worker thread while the event loop keeps
# streaming to everyone else.
_HEAVY = "PointTag IN (" + ", ".join(f"'x{i}'" for i in range(6000)) + ")"
# (filter, the publisher's answer): FAILED with a reason, or SUCCEEDED (RE2 is linear, so the
# catastrophic pattern is just a quick no-match).
HOSTILE = [
    (f"FILTER ActiveMeasurements WHERE {_HEAVY}", "budget"),
    ("FILTER ActiveMeasurements WHERE POWER(10, 100000000) > 1", "Power"),
    ("FILTER ActiveMeasurements WHERE REGEXMATCH('(a*)*b', '" + "a" * 30_000 + "')", None),
    ("FILTER ActiveMeasurements WHERE SPLIT(1, 1, 0) = 'x'", "Split"),
]


def _assert_kept_flowing(arrivals: list[float], windows: list[tuple[float, float]]) -> None:
    """Data kept arriving during each window in which a budget-exhausting filter ran: no gap
    anywhere near the window's length (evaluated on the event loop, the gap is all of it)."""
    longest = max(end - start for start, end in windows)
    assert longest > 0.25, windows  # the filters did real work, or the test proves nothing
    for start, end in windows:
        if end - start < 0.25:
            continue
        inside = [start] + [t for t in arrivals if start < t < end] + [end]
        gap = max(b - a for a, b in itertools.pairwise(inside))
        # a loaded 2-core machine stretches gaps (the worker thread holds the GIL in turns),
        # but on the event loop the gap would be the whole window
        assert gap < max(0.2, (end - start) * 0.6), (gap, end - start)


async def _hostile_request(
    port: int, session: SubscriberSession, request: Callable[[], None]
) -> object:
    """Send what ``request`` queues after the modes; the first SUCCEEDED/FAILED answer to it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        session.start()
        writer.write(session.data_to_send())
        await writer.drain()
        request()
        writer.write(session.data_to_send())
        await writer.drain()
        answers = 0
        while True:
            data = await asyncio.wait_for(reader.read(1 << 16), 15)
            assert data, "the publisher dropped the hostile subscriber instead of answering"
            for event in session.receive(data):
                if isinstance(event, (CommandFailed, CommandSucceeded, MetadataReceived)):
                    answers += 1
                    if answers == 2:  # the first answers DEFINE_OPERATIONAL_MODES
                        return event
    finally:
        writer.close()


@pytest.mark.timeout(60)
def test_hostile_filters_fail_alone_while_data_keeps_flowing_to_another_subscriber():
    metadata, signals = synthetic_pmu_metadata(400)
    arrivals: list[float] = []

    async def run() -> None:
        async with Publisher(metadata, port=0) as publisher:
            async with Subscriber(
                port=publisher.port,
                filter_expression=ALL,
                auto_reconnect=False,
                on_measurements=lambda batch: arrivals.append(time.monotonic()),
            ) as healthy:
                await healthy.wait_subscribed(10)
                source = PmuSource(signals, rate=50, start_ticks=ticks_now())
                stop = asyncio.Event()

                async def pump() -> None:
                    for frame in source.frames(100_000):
                        if stop.is_set():
                            return
                        publisher.publish(frame)
                        await asyncio.sleep(0.02)

                pumping = asyncio.get_running_loop().create_task(pump())
                await asyncio.sleep(0.3)
                windows = []
                for text, reason in HOSTILE:
                    session = SubscriberSession(SubscriberConfig())
                    request = partial(
                        session.subscribe, SubscriptionSettings(filter_expression=text)
                    )
                    start = time.monotonic()
                    answer = await _hostile_request(publisher.port, session, request)
                    windows.append((start, time.monotonic()))
                    if reason is None:
                        assert isinstance(answer, CommandSucceeded), (text[:60], answer)
                        assert "0 signals" in answer.message
                    else:
                        assert isinstance(answer, CommandFailed), (text[:60], answer)
                        assert (
                            "Bad filter expression" in answer.message and reason in answer.message
                        )
                metadata_session = SubscriberSession(SubscriberConfig())
                start = time.monotonic()
                answer = await _hostile_request(
                    publisher.port,
                    metadata_session,
                    partial(
                        metadata_session.request_metadata,
                        f"FILTER MeasurementDetail WHERE {_HEAVY}",
                    ),
                )
                windows.append((start, time.monotonic()))
                assert isinstance(answer, CommandFailed) and "budget" in answer.message
                await asyncio.sleep(0.2)
                stop.set()
                await pumping
                _assert_kept_flowing(arrivals, windows)
                assert healthy.subscribed

    asyncio.run(run())


def test_commands_behind_a_deferred_filter_wait_in_order_and_are_bounded():
    from gridbind.sttp.ieee2664.events import (
        FilterRequested,
        MetadataRequested,
        ModesDefined,
        Subscribed,
    )
    from gridbind.sttp.ieee2664.publisher_session import PublisherSession
    from gridbind.sttp.ieee2664.publisher_state import PublisherState
    from gridbind.sttp.ieee2664.wire import ProtocolError

    metadata, signals = synthetic_pmu_metadata(8)
    state = PublisherState(metadata)
    client = SubscriberSession(SubscriberConfig())
    session = PublisherSession(state)
    session.defer_filters = True
    client.start()
    client.subscribe(SubscriptionSettings(filter_expression=ALL))
    client.request_metadata()
    events = session.receive(client.data_to_send())
    assert [type(e) for e in events] == [ModesDefined, FilterRequested]
    request = events[1]
    answered = client.receive(session.data_to_send())
    assert [type(e) for e in answered] == [CommandSucceeded]  # only the modes so far
    events = session.filter_done(request.run())
    assert [type(e) for e in events] == [Subscribed, MetadataRequested]
    assert set(events[0].signal_ids) == set(signals)

    session = PublisherSession(state)
    session.defer_filters = True
    client.start()
    client.subscribe(SubscriptionSettings(filter_expression=ALL))
    session.receive(client.data_to_send())
    for _ in range(65):
        client.request_metadata()
    with pytest.raises(ProtocolError, match="behind a filter"):
        session.receive(client.data_to_send())


@pytest.mark.timeout(60)
def test_draft_hostile_query_fails_alone_while_data_keeps_flowing():
    from gridbind.sttp.draft import Publisher as DraftPublisher
    from gridbind.sttp.draft import Subscriber as DraftSubscriber
    from gridbind.sttp.draft.synthetic import SyntheticPmu
    from gridbind.sttp.draft.transport import CommandError

    pmu = SyntheticPmu(400, rate=50)
    arrivals: list[float] = []

    async def run() -> None:
        publisher = DraftPublisher(port=0, metadata=pmu.metadata())
        await publisher.start()
        healthy = DraftSubscriber(
            port=publisher.port, on_measurements=lambda batch: arrivals.append(time.monotonic())
        )
        hostile = DraftSubscriber(port=publisher.port)
        try:
            await healthy.start()
            await healthy.subscribe()
            await hostile.start()
            stop = asyncio.Event()

            async def pump() -> None:
                for frame in pmu.frames(100_000):
                    if stop.is_set():
                        return
                    publisher.publish(frame)
                    await asyncio.sleep(0.02)

            pumping = asyncio.get_running_loop().create_task(pump())
            await asyncio.sleep(0.3)
            windows = []
            start = time.monotonic()
            with pytest.raises(CommandError, match="bad metadata query"):
                await hostile.request_metadata(f"FILTER DataPoint WHERE {_HEAVY}", timeout=20)
            windows.append((start, time.monotonic()))
            start = time.monotonic()
            with pytest.raises(CommandError, match="bad subscription query"):
                await hostile.subscribe(
                    query=f"SELECT PointID FROM DataPoint WHERE {_HEAVY}", timeout=20
                )
            windows.append((start, time.monotonic()))
            await asyncio.sleep(0.2)
            stop.set()
            await pumping
            _assert_kept_flowing(arrivals, windows)
            assert (await hostile.request_metadata("SELECT PointTag FROM DataPoint")).rows
        finally:
            await hostile.stop()
            await healthy.stop()
            await publisher.stop()

    asyncio.run(run())


def _pump(pub, sub) -> None:
    """Move bytes between two draft sessions until both are quiet."""
    for _ in range(100):
        a = pub.data_to_send()
        if a:
            sub.receive_data(a, 0.0)
        b = sub.data_to_send()
        if b:
            pub.receive_data(b, 0.0)
        if not a and not b:
            return
    raise AssertionError("sessions did not settle")


def _draft_pair():
    from gridbind.sttp.draft.session import Catalog, PublisherSession, SubscriberSession
    from gridbind.sttp.draft.synthetic import SyntheticPmu

    pmu = SyntheticPmu(400)
    pub = PublisherSession(Catalog(pmu.metadata()))
    sub = SubscriberSession()
    _pump(pub, sub)
    assert pub.negotiated is not None
    return pub, sub, pmu


def test_draft_commands_behind_a_deferred_query_wait_in_order():
    from gridbind.generated.sttp import draft_0_8 as wire
    from gridbind.sttp.draft.events import (
        FilterRequested,
        MetadataReceived,
        SubscriptionChanged,
    )

    pub, sub, pmu = _draft_pair()
    pub.defer_filters = True
    sub.get_metadata("SELECT PointTag FROM DataPoint WHERE [Signal Type] = 'FREQ'", 0.0)
    everything = wire.SubscribeItem(
        sub_command=wire.SubscribeSubCommand.ByQuery,
        mode=wire.SubscriptionMode.Replace,
        body="SELECT PointID FROM DataPoint",
    )
    sub.subscribe([everything], 0.0)
    events = pub.receive_data(sub.data_to_send(), 0.0)
    assert [type(e) for e in events] == [FilterRequested]
    assert pub.data_to_send() == b""  # nothing answered while the query runs
    events = pub.filter_done(events[0].run(), 0.0)
    assert [type(e) for e in events] == [FilterRequested]  # the subscription's own query
    answers = sub.receive_data(pub.data_to_send(), 0.0)
    assert [type(e) for e in answers] == [MetadataReceived]
    events = pub.filter_done(events[0].run(), 0.0)
    assert any(isinstance(e, SubscriptionChanged) for e in events)
    assert set(pub._points) == set(pmu.ids)


def test_draft_subscription_recipe_shares_one_budget():
    from gridbind.generated.sttp import draft_0_8 as wire
    from gridbind.sttp.draft.events import CommandFailed

    pub, sub, _pmu = _draft_pair()
    # Each query alone (600 thousand steps) is within the budget; fifteen together are not.
    in_list = ", ".join(f"'x{i}'" for i in range(1500))
    query = f"SELECT PointID FROM DataPoint WHERE PointTag IN ({in_list})"
    item = wire.SubscribeItem(
        sub_command=wire.SubscribeSubCommand.ByQuery,
        mode=wire.SubscriptionMode.Append,
        body=query,
    )
    items = [item] * 15
    sub.subscribe(items, 0.0)
    start = time.monotonic()
    pub.receive_data(sub.data_to_send(), 0.0)
    # With a budget per query the fifteen would all run (about 10 s) and succeed.
    assert time.monotonic() - start < 5.0
    [refusal] = [e for e in sub.receive_data(pub.data_to_send(), 0.0) if type(e) is CommandFailed]
    assert "bad subscription query" in refusal.reason and "budget" in refusal.details


def test_draft_heavy_subscription_is_rechecked_off_loop_after_a_metadata_change():
    from gridbind.generated.sttp import draft_0_8 as wire
    from gridbind.sttp.draft.events import FilterRequested

    pub, sub, _pmu = _draft_pair()
    pub.defer_filters = True
    in_list = ", ".join(f"'x{i}'" for i in range(2000))  # over a million steps
    heavy = wire.SubscribeItem(
        sub_command=wire.SubscribeSubCommand.ByQuery,
        mode=wire.SubscriptionMode.Replace,
        body=f"SELECT PointID FROM DataPoint WHERE PointTag IN ({in_list})",
    )
    sub.subscribe([heavy], 0.0)
    [request] = pub.receive_data(sub.data_to_send(), 0.0)
    pub.filter_done(request.run(), 0.0)
    start = time.monotonic()
    events = pub.access_changed()  # e.g. the publisher's metadata changed
    assert time.monotonic() - start < 0.3  # only the quick on-loop budget was spent
    assert [type(e) for e in events] == [FilterRequested]
    assert pub.access_changed() == []  # a second change waits for the first
    events = pub.filter_done(events[0].run(), 0.0)
    assert [type(e) for e in events] == [FilterRequested]  # ... then runs once more
    pub.filter_done(events[0].run(), 0.0)
    assert pub._parked is None

    light, sub_light, _pmu = _draft_pair()
    light.defer_filters = True
    everything = wire.SubscribeItem(
        sub_command=wire.SubscribeSubCommand.ByQuery,
        mode=wire.SubscriptionMode.Replace,
        body="SELECT PointID FROM DataPoint",
    )
    sub_light.subscribe([everything], 0.0)
    [request] = light.receive_data(sub_light.data_to_send(), 0.0)
    light.filter_done(request.run(), 0.0)
    assert not any(isinstance(e, FilterRequested) for e in light.access_changed())  # at once


def test_draft_heavy_subscription_spends_the_quick_budget_only_once():
    from gridbind.generated.sttp import draft_0_8 as wire
    from gridbind.sttp.draft.events import FilterRequested

    in_list = ", ".join(f"'x{i}'" for i in range(2000))  # over a million steps
    heavy = wire.SubscribeItem(
        sub_command=wire.SubscribeSubCommand.ByQuery,
        mode=wire.SubscriptionMode.Replace,
        body=f"SELECT PointID FROM DataPoint WHERE PointTag IN ({in_list})",
    )
    publishers = []
    for _ in range(4):
        pub, sub, _pmu = _draft_pair()
        pub.defer_filters = True
        sub.subscribe([heavy], 0.0)
        [request] = pub.receive_data(sub.data_to_send(), 0.0)
        pub.filter_done(request.run(), 0.0)
        [request] = pub.access_changed()  # the first change learns that the recipe is heavy
        pub.filter_done(request.run(), 0.0)
        publishers.append(pub)
    start = time.monotonic()
    for pub in publishers:  # one metadata change: every session's recheck
        assert [type(e) for e in pub.access_changed()] == [FilterRequested]
    # four quick budgets would be 4 x 50 ms on the event loop
    assert time.monotonic() - start < 0.1
