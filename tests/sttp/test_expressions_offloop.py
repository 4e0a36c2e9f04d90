"""The shared filter pool: bounded queue, per-peer bound, round-robin turns, running part timed."""

from __future__ import annotations

import asyncio
import time

import pytest

from gridbind.sttp.expressions import (
    Budget,
    BudgetExceeded,
    FilterBusy,
    FilterExpressionError,
    Limits,
    offloop,
    run_bounded,
)

HEAVY = Limits(max_seconds=0.3)


def _burn() -> None:
    budget = Budget(HEAVY)
    while True:
        budget.charge()


async def _request(peer: str) -> object:
    try:
        return await run_bounded(_burn, limits=HEAVY, peer=peer)
    except FilterExpressionError as exc:
        return exc


async def _workers_idle() -> None:
    """The dispatcher's own bookkeeping settles once the worker threads returned."""
    for _ in range(100):
        if not offloop._waiting and not offloop._turns and offloop._running == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the filter workers did not go idle")


@pytest.mark.timeout(20)
def test_hostile_peers_cannot_starve_an_honest_peer():
    async def run() -> None:
        hostile = [
            asyncio.ensure_future(_request(peer))
            for peer in ("10.0.0.1", "10.0.0.2")
            for _ in range(10)
        ]
        await asyncio.sleep(0.05)
        start = time.monotonic()
        answer = await run_bounded(lambda: "selected", limits=HEAVY, peer="10.0.0.3")
        waited = time.monotonic() - start
        results = await asyncio.gather(*hostile)
        assert answer == "selected"
        # Turns go round the peers with waiting work: the honest peer waits for one running
        # request (0.3 s), not for the twenty queued before it (10 rounds, 3 s, in arrival order).
        assert waited < 1.0, waited
        assert all(isinstance(r, BudgetExceeded) for r in results), results
        assert offloop._pending == 0 and offloop._per_peer == {}
        await _workers_idle()

    asyncio.run(run())


@pytest.mark.timeout(20)
def test_the_queue_is_bounded_and_only_the_running_part_is_timed(monkeypatch):
    monkeypatch.setattr(offloop, "MAX_PER_PEER", 100)
    monkeypatch.setattr(offloop, "MAX_PENDING", 16)

    async def run() -> None:
        requests = [
            asyncio.ensure_future(_request(f"10.1.0.{i}")) for i in range(offloop.MAX_PENDING + 5)
        ]
        results = await asyncio.gather(*requests)
        busy = [r for r in results if isinstance(r, FilterBusy)]
        assert len(busy) == 5
        # the last admitted ones waited 8 rounds (2.4 s) for a worker, longer than their own
        # timeout of 1.3 s: they still ran to their budget, not to a time-out
        assert all(isinstance(r, BudgetExceeded) for r in results if r not in busy), results

    asyncio.run(run())


def test_async_selection_forwards_its_arguments():
    from gridbind.sttp.expressions import select_rows_async
    from gridbind.sttp.expressions.select import Table

    table = Table("T", ["A"], [{"A": i} for i in range(5)])

    async def run() -> None:
        rows = await select_rows_async([table], "FILTER T WHERE A > 2", limits=Limits())
        assert [r["A"] for r in rows] == [3, 4]
        with pytest.raises(FilterExpressionError):
            await select_rows_async([table], "FILTER T WHERE A > 2", limits=Limits(max_steps=1))

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_concurrent_hostile_connections_are_answered_and_an_honest_one_follows(monkeypatch):
    # A small per-peer bound, so that the loopback peer's fifth request is refused as busy.
    monkeypatch.setattr(offloop, "MAX_PER_PEER", 4)
    from gridbind.sttp.ieee2664 import Publisher, SubscriptionSettings, synthetic_pmu_metadata
    from gridbind.sttp.ieee2664.events import CommandFailed, CommandSucceeded
    from gridbind.sttp.ieee2664.subscriber_session import SubscriberConfig, SubscriberSession

    heavy_list = ", ".join(f"'x{i}'" for i in range(6000))
    heavy = f"FILTER ActiveMeasurements WHERE PointTag IN ({heavy_list})"
    metadata, _signals = synthetic_pmu_metadata(400)

    async def request(port: int, text: str) -> tuple[object, float]:
        session = SubscriberSession(SubscriberConfig())
        start = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            session.start()
            session.subscribe(SubscriptionSettings(filter_expression=text))
            writer.write(session.data_to_send())
            await writer.drain()
            answers = []
            while len(answers) < 2:
                data = await asyncio.wait_for(reader.read(1 << 16), 20)
                assert data, "dropped instead of answered"
                answers += [
                    e
                    for e in session.receive(data)
                    if isinstance(e, (CommandFailed, CommandSucceeded))
                ]
            return answers[1], time.monotonic() - start
        finally:
            writer.close()

    async def run() -> None:
        async with Publisher(metadata, port=0) as publisher:
            hostile = await asyncio.gather(*(request(publisher.port, heavy) for _ in range(8)))
            assert all(isinstance(answer, CommandFailed) for answer, _ in hostile)
            busy = [a for a, _ in hostile if "busy" in a.message]
            assert len(busy) == 8 - offloop.MAX_PER_PEER
            # refused at once, not after waiting in a queue
            assert min(t for a, t in hostile if a in busy) < 1.0
            # the admitted ones ran 2 rounds of the 2 s budget on the 2 workers
            assert max(t for _, t in hostile) < 8.0
            answer, waited = await request(
                publisher.port, "FILTER ActiveMeasurements WHERE SignalType = 'FREQ'"
            )
            assert isinstance(answer, CommandSucceeded) and waited < 1.0

    asyncio.run(run())


def test_a_request_is_counted_out_even_when_its_event_loop_is_gone():
    async def abandon() -> None:
        task = asyncio.get_running_loop().create_task(
            run_bounded(time.sleep, 0.3, limits=HEAVY, peer="10.2.0.1")
        )
        await asyncio.sleep(0.05)
        assert offloop._pending == 1 and task  # the caller (and its loop) end before the job

    asyncio.run(abandon())
    deadline = time.monotonic() + 2
    while offloop._pending and time.monotonic() < deadline:
        time.sleep(0.02)
    assert offloop._pending == 0 and offloop._per_peer == {}


@pytest.mark.timeout(20)
def test_one_peer_beyond_its_bound_is_refused_as_busy(monkeypatch):
    monkeypatch.setattr(offloop, "MAX_PER_PEER", 3)

    async def run() -> None:
        requests = [asyncio.ensure_future(_request("10.2.0.1")) for _ in range(5)]
        results = await asyncio.gather(*requests)
        busy = [r for r in results if isinstance(r, FilterBusy)]
        assert len(busy) == 2
        assert all(isinstance(r, BudgetExceeded) for r in results if r not in busy)

    asyncio.run(run())


@pytest.mark.timeout(20)
def test_a_caller_that_gives_up_while_waiting_costs_no_work():
    ran: list[int] = []

    def work(i: int) -> int:
        ran.append(i)
        return i

    async def run() -> None:
        blockers = [asyncio.ensure_future(_request("10.3.0.1")) for _ in range(offloop.WORKERS)]
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(run_bounded(work, 1, limits=HEAVY, peer="10.3.0.2"))
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.gather(*blockers)
        assert await run_bounded(work, 2, limits=HEAVY, peer="10.3.0.2") == 2
        assert ran == [2]
        assert offloop._pending == 0 and offloop._per_peer == {}

    asyncio.run(run())
