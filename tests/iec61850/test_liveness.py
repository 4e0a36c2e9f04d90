"""Peer liveness of the 8-2 client: the sans-IO ping schedule and verdicts (:mod:`.liveness`),
the client core's use of them, and the asyncio client on the in-memory transport."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest

from gridbind.iec61850.association import AssociationEnded, InitiateParams
from gridbind.iec61850.client_protocol import AssociationAborted, ClientProtocol
from gridbind.iec61850.errors import InvalidArgument
from gridbind.iec61850.liveness import ROUTING_CONDITIONS, PeerLiveness, Ping
from gridbind.iec61850.stanza import LinkLost, RequestTimeout, StanzaError, XmppError

from iec_testkit import memory_served, run, until

IED = "ied@dso.test/IEC"
OTHER = "ied2@dso.test/IEC"


def live(interval: float | None = 10.0, timeout: float = 2.0, jitter: float = 0.0, rand=0.5):
    return PeerLiveness(interval, timeout, jitter=jitter, rand=lambda: rand)


# ---------------------------------------------------------------------------------- schedule
def test_an_idle_peer_is_pinged_after_the_interval_and_once_at_a_time() -> None:
    lv = live()
    lv.watch(IED, 100.0)
    assert lv.next_deadline() == 110.0
    assert lv.due(109.9) == []
    [ping] = lv.due(110.0)
    assert ping.peer == IED
    assert lv.next_deadline() == 112.0  # now the answer's deadline
    assert lv.due(111.0) == []  # no second ping while one is in flight
    assert lv.answered(ping, None, 110.5) is None  # an iq result: alive
    assert lv.next_deadline() == 120.5
    assert lv.expired(200.0) == []  # nothing in flight: nothing expires


def test_traffic_from_the_peer_postpones_pings_and_makes_a_ping_in_flight_stale() -> None:
    lv = live()
    lv.watch(IED, 0.0)
    lv.heard(IED, 8.0)
    assert lv.due(10.0) == []
    assert lv.next_deadline() == 18.0
    [ping] = lv.due(18.0)
    lv.heard(IED, 19.0)  # a report arrives while the ping is out
    assert lv.expired(25.0) == []  # the unanswered ping no longer counts
    assert lv.answered(ping, RequestTimeout("late"), 25.0) is None  # stale outcome ignored
    assert lv.next_deadline() == 29.0
    lv.heard("someone@else.test/IEC", 20.0)  # not watched: no effect
    assert lv.peers == [IED]


def test_an_unanswered_ping_makes_the_peer_unreachable_at_its_deadline() -> None:
    lv = live(timeout=3.0)
    lv.watch(IED, 0.0)
    lv.watch(OTHER, 5.0)
    [ping] = lv.due(10.0)
    assert lv.expired(12.9) == []
    [(peer, reason)] = lv.expired(13.0)
    assert peer == IED
    assert reason == "peer unreachable: no answer to an XEP-0199 ping within 3 s"
    assert lv.peers == [OTHER]  # no longer watched
    assert lv.answered(ping, None, 13.5) is None  # a late answer changes nothing
    assert lv.next_deadline() == 15.0


def test_jitter_spreads_the_idle_period_around_the_interval() -> None:
    low, high = live(jitter=0.2, rand=0.0), live(jitter=0.2, rand=0.999999)
    low.watch(IED, 0.0)
    high.watch(IED, 0.0)
    assert low.next_deadline() == pytest.approx(9.0)
    assert high.next_deadline() == pytest.approx(11.0, abs=1e-4)
    real = PeerLiveness(10.0, 1.0)  # the default jitter with the real random source
    for n in range(50):
        real.watch(f"ied{n}@dso.test/IEC", 0.0)
    times = {real._peers[p].due for p in real.peers}
    assert all(9.0 <= t <= 11.0 for t in times) and len(times) > 1


def test_pings_off_watch_nothing() -> None:
    lv = PeerLiveness(None)
    assert not lv.enabled
    lv.watch(IED, 0.0)
    assert lv.peers == [] and lv.due(1e9) == [] and lv.next_deadline() is None


@pytest.mark.parametrize("kw", [{"interval": 0}, {"interval": -1}, {"timeout": 0}, {"jitter": 1}])
def test_invalid_settings_are_refused(kw) -> None:
    args = {"interval": 30.0, "timeout": 10.0, **kw}
    jitter = args.pop("jitter", 0.2)
    with pytest.raises(InvalidArgument):
        PeerLiveness(args["interval"], args["timeout"], jitter=jitter)


# ---------------------------------------------------------------------------------- verdicts
def _answered(error: BaseException | None) -> tuple[PeerLiveness, str | None]:
    lv = live()
    lv.watch(IED, 0.0)
    [ping] = lv.due(10.0)
    return lv, lv.answered(ping, error, 10.1)


@pytest.mark.parametrize("condition", sorted(ROUTING_CONDITIONS - {"service-unavailable"}))
def test_a_routing_error_of_the_server_makes_the_peer_unreachable(condition) -> None:
    lv, reason = _answered(StanzaError(condition, "", "cancel"))
    assert reason == f"peer unreachable: the XMPP server answered the ping {condition}"
    assert lv.peers == []


def test_service_unavailable_without_by_is_confirmed_by_an_8_2_probe() -> None:
    """XEP-0199 4.2: an entity without ping support answers service-unavailable, as the
    server does for a gone resource; a probe the IED must answer in 8-2 decides."""
    unavailable = StanzaError("service-unavailable", "", "cancel")
    lv, reason = _answered(unavailable)
    assert reason is None and lv.peers == [IED] and lv.next_deadline() == 10.1
    [probe] = lv.due(10.1)
    assert probe.probe and probe.peer == IED
    assert lv.answered(probe, None, 10.2) is None  # an 8-2 answer: alive (no XEP-0199)
    [ping] = lv.due(20.2)
    assert not ping.probe  # the next idle period starts with a ping again
    assert lv.answered(ping, unavailable, 20.3) is None
    [probe] = lv.due(20.3)
    reason = lv.answered(probe, unavailable, 20.4)  # the server again: gone
    assert reason == (
        "peer unreachable: the XMPP server answered a ping and an 8-2 request service-unavailable"
    )
    assert lv.peers == []
    # a probe that goes unanswered
    lv, _ = _answered(unavailable)
    [probe] = lv.due(10.1)
    assert lv.expired(12.1) == [(IED, "peer unreachable: no answer to an 8-2 request within 2 s")]


def test_the_server_error_text_is_kept_in_the_reason() -> None:
    _, reason = _answered(StanzaError("remote-server-not-found", "dso.test is down", "cancel"))
    assert reason == (
        "peer unreachable: the XMPP server answered the ping remote-server-not-found "
        "(dso.test is down)"
    )


@pytest.mark.parametrize(
    "error",
    [
        StanzaError("feature-not-implemented", "", "cancel"),  # a live peer without XEP-0199
        StanzaError("not-allowed", "", "cancel"),
        StanzaError("service-unavailable", "", "cancel", by=IED),  # the peer itself said it
        StanzaError("service-unavailable", "", "cancel", by=IED.split("/")[0]),
    ],
)
def test_an_error_from_the_live_peer_keeps_it(error) -> None:
    lv, reason = _answered(error)
    assert reason is None
    assert lv.peers == [IED] and lv.next_deadline() == 20.1


def test_a_routing_error_generated_by_the_server_names_the_server_in_by() -> None:
    _, reason = _answered(StanzaError("service-unavailable", "", "cancel", by="dso.test"))
    assert reason is not None and reason.startswith("peer unreachable")


def test_a_transport_timeout_makes_the_peer_unreachable() -> None:
    _, reason = _answered(RequestTimeout("no answer"))
    assert reason == "peer unreachable: no answer to an XEP-0199 ping"


def test_losing_our_own_link_judges_nobody() -> None:
    lv, reason = _answered(LinkLost("XMPP link lost"))
    assert reason is None and lv.peers == [IED]
    assert lv.next_deadline() == 20.1  # pinged again one period later
    lv2, reason2 = _answered(XmppError("not connected"))
    assert reason2 is None and lv2.peers == [IED]


# ---------------------------------------------------------------------------------- the core
def _core(interval: float | None = 10.0, timeout: float = 2.0) -> ClientProtocol:
    proto = ClientProtocol(liveness=live(interval, timeout))
    proto.core.established(IED, "1", InitiateParams())
    proto.core.established(IED, "2", InitiateParams())
    proto.core.established(OTHER, "3", InitiateParams())
    proto.take_events()
    return proto


def test_the_core_pings_associated_peers_and_aborts_all_associations_of_a_silent_one() -> None:
    proto = _core()
    assert proto.next_deadline() is None  # nothing watched before the first tick
    assert proto.tick(0.0) == []
    assert proto.next_deadline() == 10.0
    pings = proto.tick(10.0)
    assert sorted(p.peer for p in pings) == sorted([IED, OTHER])
    answered = next(p for p in pings if p.peer == OTHER)
    proto.ping_answered(answered, None, 10.5)
    assert proto.tick(11.0) == []
    assert proto.take_events() == []
    proto.tick(12.0)  # the ping of IED is 2 s old
    ended = proto.take_events()
    assert {e.association.id for e in ended} == {"1", "2"}
    for event in ended:
        assert isinstance(event, AssociationEnded) and event.how == "aborted"
        assert event.reason == "peer unreachable: no answer to an XEP-0199 ping within 2 s"
        assert not event.association.open
    with pytest.raises(AssociationAborted, match="peer unreachable"):
        proto.check_open(ended[0].association)
    assert [a.id for a in proto.core.associations.values()] == ["3"]
    assert proto.liveness.peers == [OTHER]


def test_a_server_error_to_a_ping_aborts_at_once() -> None:
    proto = _core()
    proto.tick(0.0)
    ping = next(p for p in proto.tick(10.0) if p.peer == IED)
    proto.ping_answered(ping, StanzaError("recipient-unavailable", "", "wait"), 10.01)
    reasons = {e.reason for e in proto.take_events()}
    assert reasons == {"peer unreachable: the XMPP server answered the ping recipient-unavailable"}


def test_the_core_forgets_peers_without_associations_and_judges_nothing_while_our_link_is_down():
    proto = _core()
    proto.tick(0.0)
    proto.core.peer_unavailable(OTHER)  # presence came first
    proto.take_events()
    assert proto.tick(5.0) == []
    assert proto.liveness.peers == [IED]
    [ping] = proto.tick(10.0)
    assert proto.tick(13.0, link_up=False) == []  # resuming: the silence is ours
    assert proto.take_events() == []
    assert proto.next_deadline() == 23.0
    proto.ping_answered(ping, RequestTimeout("lost with the link"), 14.0)  # stale
    assert proto.take_events() == []
    proto.heard(IED, 20.0)
    assert proto.next_deadline() == 30.0


def test_the_core_with_pings_off_has_no_timer() -> None:
    proto = _core(interval=None)
    assert proto.tick(0.0) == [] and proto.tick(1e6) == []
    assert proto.next_deadline() is None


# ---------------------------------------------------------------------------------- asyncio
FAST = {"peer_ping_interval": 0.2, "peer_ping_timeout": 0.5}


def _is_ping(stanza: ET.Element) -> bool:
    return stanza.find("{urn:xmpp:ping}ping") is not None


def test_an_idle_association_with_a_live_ied_survives_its_pings() -> None:
    async def main():
        async with memory_served(client_kw=FAST) as (server, (client,), net):
            pings: list[tuple[str, str]] = []

            def tap(sender, to, stanza):
                if _is_ping(stanza):
                    pings.append((sender, to))
                return stanza

            net.tap = tap
            assoc = await client.associate(server.jid)
            await asyncio.sleep(1.0)
            assert assoc.open
            assert len(pings) >= 2 and set(pings) == {(client.transport.full_jid, server.jid)}
            assert await assoc.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42
            # the IED's endpoint answers pings too (and so does the client's)
            assert await server.xmpp.ping(client.transport.full_jid, 1.0) >= 0

    run(main(), 10)


def test_an_ied_that_stops_answering_pings_is_aborted_within_the_ping_timeout() -> None:
    async def main():
        async with memory_served(client_kw=FAST) as (server, (client,), net):
            assoc = await client.associate(server.jid)
            assert await assoc.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42
            # frozen IED: its session stays, no presence, pings to it vanish
            net.tap = lambda sender, to, stanza: None if _is_ping(stanza) else stanza
            # one idle period (0.2 s + 10 % jitter) and the ping timeout (0.5 s): ~0.7 s; the
            # bound leaves room for a loaded machine
            await until(lambda: not assoc.open, 5.0, "the association aborted by the pings")
            assert client.associations == []
            with pytest.raises(AssociationAborted, match="peer unreachable: no answer"):
                await assoc.get_server_directory()

    run(main(), 10)


def test_a_request_waiting_on_a_vanished_ied_fails_with_the_ping_verdict() -> None:
    async def main():
        async with memory_served(client_kw=FAST) as (server, (client,), net):
            assoc = await client.associate(server.jid)
            net.tap = lambda sender, to, stanza: None  # the IED hears nothing any more
            with pytest.raises(AssociationAborted, match="peer unreachable"):
                await asyncio.wait_for(assoc.get_server_directory(), 3.0)

    run(main(), 10)


def test_an_ied_gone_from_the_server_without_presence_is_aborted_by_the_servers_answer() -> None:
    async def main():
        async with memory_served(client_kw=FAST) as (server, (client,), net):
            assoc = await client.associate(server.jid)
            # the IED's session vanished and its unavailable presence was lost
            del net.online[server.jid]
            # the ping is answered service-unavailable by the server, and so is the 8-2 probe
            await until(lambda: not assoc.open, 2.0, "the association aborted")
            with pytest.raises(
                AssociationAborted,
                match="answered a ping and an 8-2 request service-unavailable",
            ):
                assoc.client.protocol.check_open(assoc.assoc)
            net.online[server.jid] = server.transport  # back, for a clean close

    run(main(), 10)


def test_an_ied_without_xep_0199_that_answers_8_2_stays_associated() -> None:
    """A third-party IED answering pings service-unavailable (XEP-0199 4.2) is alive: the
    8-2 probe after each such answer is answered, so the association stays."""

    async def main():
        async with memory_served(client_kw=FAST) as (server, (client,), net):
            assoc = await client.associate(server.jid)
            refused = []

            def no_ping_support(sender, to, stanza):
                if _is_ping(stanza) and to == server.jid:
                    refused.append(stanza.get("id"))
                    error = ET.Element(
                        "{jabber:client}iq",
                        {"from": to, "to": sender, "type": "error", "id": stanza.get("id")},
                    )
                    ET.SubElement(
                        ET.SubElement(error, "{jabber:client}error", {"type": "cancel"}),
                        "{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable",
                    )
                    asyncio.get_running_loop().call_soon(
                        client.transport._receive, server.jid, error
                    )
                    return None
                return stanza

            net.tap = no_ping_support
            probes = len([k for k in net.log if k[0] == "iq"])
            await asyncio.sleep(1.5)  # several idle periods (0.2 s) and ping timeouts (0.5 s)
            assert len(refused) >= 2 and assoc.open and client.associations
            assert len([k for k in net.log if k[0] == "iq"]) >= probes + 2 * len(refused)
            assert await assoc.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42

    run(main(), 10)


def test_pings_off_send_none() -> None:
    async def main():
        kw = {"peer_ping_interval": None}
        async with memory_served(client_kw=kw) as (server, (client,), net):
            seen: list[ET.Element] = []
            net.tap = lambda sender, to, stanza: seen.append(stanza) or stanza
            assoc = await client.associate(server.jid)
            await asyncio.sleep(0.5)
            assert assoc.open and not [s for s in seen if _is_ping(s)]
            assert client._timer is None

    run(main(), 10)


def test_a_ping_outcome_is_judged_once_per_ping() -> None:
    lv = live()
    lv.watch(IED, 0.0)
    [ping] = lv.due(10.0)
    assert lv.answered(Ping(IED, ping.token + 1), RequestTimeout("x"), 10.1) is None  # not ours
    assert lv.peers == [IED]


def test_the_timer_outlives_a_failure_without_spinning() -> None:
    async def main():
        async with memory_served(client_kw=FAST) as (server, (client,), net):
            original, calls = client.protocol.tick, []

            def tick(mono, **kw):
                calls.append(mono)
                if len(calls) == 2:
                    raise RuntimeError("a failing handler")
                return original(mono, **kw)

            client.protocol.tick = tick
            assoc = await client.associate(server.jid)  # wakes the timer: its 2nd tick fails
            net.tap = lambda sender, to, stanza: None if _is_ping(stanza) else stanza
            await until(lambda: not assoc.open, 4.0, "the association aborted after the failure")
            assert calls[2] - calls[1] >= 0.99  # a pause after the failure, no busy loop
            assert "peer unreachable" in assoc.assoc.end_reason

    run(main(), 10)


@pytest.mark.timeout(10)
def test_a_ping_lost_in_our_own_short_outage_does_not_abort() -> None:
    """Our link went down and resumed between two runs of the liveness timer: a ping in flight
    meanwhile says nothing of the IED; its deadline must not abort the association."""

    async def main():
        async with memory_served(client_kw=FAST) as (server, (client,), net):
            assoc = await client.associate(server.jid)
            pings = []

            def lose_pings(sender, to, stanza):
                if _is_ping(stanza):
                    pings.append(to)
                    return None  # lost in our outage
                return stanza

            net.tap = lose_pings
            await until(lambda: pings, 2.0, "a ping in flight")
            client.transport.suspend()
            await asyncio.sleep(0.02)  # shorter than the ping timeout: no timer run meanwhile
            client.transport.resume()
            net.tap = None
            await asyncio.sleep(0.9)  # past the lost ping's deadline (0.5 s)
            assert assoc.open and client.associations

    run(main(), 10)


def test_our_link_resumed_forgets_pings_in_flight_sans_io() -> None:
    proto = ClientProtocol(liveness=PeerLiveness(1.0, 0.5, jitter=0.0))
    live = proto.liveness
    live.watch("ied@x/IEC", 0.0)
    (ping,) = live.due(1.0)
    proto.link_resumed(1.2)
    assert live.expired(1.6) == [] and live.next_deadline() == pytest.approx(2.2)
    assert live.answered(ping, RequestTimeout("late"), 1.7) is None  # stale
    assert live.due(2.2)[0].peer == "ied@x/IEC"


@pytest.mark.timeout(10)
def test_closing_right_after_an_associate_does_not_hang() -> None:
    """associate() wakes the liveness timer (waiting for a ping deadline); a close() that
    comes before it ran must still stop it (Python 3.11's wait_for may swallow the cancel)."""

    async def main():
        async with memory_served() as (server, (client,), _):
            await client.associate(server.jid)
            await asyncio.sleep(0.05)  # the timer waits for the first ping's time now
            await client.associate(server.jid)
        # (leaving closes the client at once)

    run(main(), 8)
