"""The session contract of both STTP profiles (gridbind.sttp.api), through the factories only.

Each scenario is written once against PublisherAPI / SubscriberAPI and run over both profiles;
only the constructor options (each profile's metadata) and the reading of profile-specific
results (a confirmation, the metadata) differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import logging
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import gridbind.sttp as sttp
from gridbind.sttp import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ConnectionAPI,
    Measurement,
    PublisherAPI,
    SubscriberAPI,
    TlsConfig,
)
from gridbind.sttp.measurement import ticks_now

PROFILES = ["ieee2664", "draft-0.8"]
SIGNALS = 12


@dataclass
class Source:
    """One profile's publisher options and the synthetic frames it publishes."""

    publisher: dict[str, Any]
    subscriber: dict[str, Any]
    ids: list[uuid.UUID]
    frames: Iterator[list[Measurement]]


def source(profile: str) -> Source:
    if profile == "ieee2664":
        from gridbind.sttp.ieee2664 import PmuSource, synthetic_pmu_metadata

        metadata, ids = synthetic_pmu_metadata(SIGNALS)
        pmu = PmuSource(ids, start_ticks=ticks_now())
        # the deployed API subscribes by itself after start(); the scenario does it explicitly
        options = {"auto_subscribe": False, "request_metadata": False, "auto_reconnect": False}
        return Source({"metadata": metadata}, options, ids, iter(pmu.next_frame, None))
    from gridbind.sttp.draft.synthetic import SyntheticPmu

    draft_pmu = SyntheticPmu(SIGNALS, start=ticks_now())
    publisher = {"points": draft_pmu.value_types(), "metadata": draft_pmu.metadata()}
    frames = (draft_pmu.frame(k) for k in range(10**6))
    return Source(publisher, {}, list(draft_pmu.ids), frames)


def listed_signals(profile: str, metadata: object) -> set[uuid.UUID]:
    """The signal ids a profile's metadata answer lists."""
    if profile == "ieee2664":
        from gridbind.sttp.ieee2664 import DataSet

        assert isinstance(metadata, DataSet)
        return {row["SignalID"] for row in metadata["MeasurementDetail"].rows}
    from gridbind.sttp.draft import QueryResult

    assert isinstance(metadata, QueryResult)
    return {row["PointID"] for row in metadata.rows}


async def receive(batches: Any, count: int) -> list[Measurement]:
    out: list[Measurement] = []
    async for batch in batches:
        out.extend(batch)
        if len(out) >= count:
            break
    return out


async def one_by_one(subscriber: SubscriberAPI, count: int) -> list[Measurement]:
    out: list[Measurement] = []
    async for measurement in subscriber:
        out.append(measurement)
        if len(out) >= count:
            break
    return out


def test_defaults_are_shared():
    assert (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 7165)
    for profile in PROFILES:
        publisher = sttp.Publisher(profile)
        subscriber = sttp.Subscriber(profile)
        assert (publisher.host, publisher.port) == (DEFAULT_HOST, DEFAULT_PORT)
        assert (subscriber.host, subscriber.port) == (DEFAULT_HOST, DEFAULT_PORT)
        assert isinstance(publisher, PublisherAPI) and isinstance(subscriber, SubscriberAPI)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("profile", PROFILES)
def test_one_scenario_over_both_profiles(profile):
    src = source(profile)
    chosen = src.ids[:3]

    async def run() -> None:
        publisher = sttp.Publisher(profile, port=0, **src.publisher)
        assert isinstance(publisher, PublisherAPI)
        async with publisher:
            assert publisher.port != 0
            subscriber = sttp.Subscriber(profile, port=publisher.port, **src.subscriber)
            assert isinstance(subscriber, SubscriberAPI)
            async with subscriber:
                await subscriber.subscribe(chosen)
                await subscriber.wait_subscribed(5)
                await publisher.wait_subscribed(1, timeout=5)
                (connection,) = publisher.connections
                assert isinstance(connection, ConnectionAPI)
                assert connection.peer is not None and connection.peer[0] == "127.0.0.1"

                # only the subscribed points arrive, in batches and one at a time
                frame = next(src.frames)
                assert publisher.publish(frame) == len(chosen)
                await publisher.drain()
                got = await asyncio.wait_for(receive(subscriber.batches(), len(chosen)), 5)
                assert sorted(m.signal_id for m in got) == sorted(chosen)
                assert {m.timestamp for m in got} == {frame[0].timestamp}
                frame = next(src.frames)
                publisher.publish(frame)
                got = await asyncio.wait_for(one_by_one(subscriber, len(chosen)), 5)
                assert sorted(m.signal_id for m in got) == sorted(chosen)
                sent = {m.signal_id: m.value for m in frame}
                assert all(m.value == pytest.approx(sent[m.signal_id], rel=1e-6) for m in got)

                metadata = await subscriber.request_metadata(timeout=5)
                assert listed_signals(profile, metadata) == set(src.ids)

                # subscribe() without points: what the options select, by default everything
                await subscriber.subscribe()
                await publisher.wait_subscribed(1, timeout=5)
                assert publisher.publish(next(src.frames)) == SIGNALS
                got = await asyncio.wait_for(receive(subscriber.batches(), SIGNALS), 5)
                assert {m.signal_id for m in got} == set(src.ids)

                await subscriber.unsubscribe(timeout=5)
                assert publisher.publish(next(src.frames)) == 0  # nobody selects anything
                assert len(publisher.connections) == 1  # the connection stays up
            # stop() ended the iteration and closed the connection
            assert await asyncio.wait_for(receive(subscriber.batches(), 1), 5) == []
            await asyncio.wait_for(_until(lambda: not publisher.connections), 5)

    asyncio.run(run())


async def _until(predicate: Any) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("profile", PROFILES)
def test_reverse_connection_over_both_profiles(profile):
    """The publisher dials a listening subscriber (``listen=True``, ``connect(host, port)``)."""
    src = source(profile)

    async def run() -> None:
        subscriber = sttp.Subscriber(profile, port=0, listen=True, **src.subscriber)
        publisher = sttp.Publisher(profile, port=0, **src.publisher)
        async with subscriber:
            assert subscriber.port != 0
            await publisher.connect("127.0.0.1", subscriber.port)
            try:
                await _until_started(subscriber)
                await subscriber.subscribe(src.ids[:2])
                await publisher.wait_subscribed(1, timeout=5)
                publisher.publish(next(src.frames))
                got = await asyncio.wait_for(receive(subscriber.batches(), 2), 5)
                assert sorted(m.signal_id for m in got) == sorted(src.ids[:2])
            finally:
                await publisher.stop()

    asyncio.run(run())


async def _until_started(subscriber: SubscriberAPI) -> None:
    """Until the dialled-in session is up (draft: negotiated; ieee2664: connected)."""
    ready = getattr(subscriber, "wait_negotiated", None)
    if ready is not None:
        await ready(5)
    else:
        await asyncio.wait_for(_until(lambda: subscriber.connected), 5)  # type: ignore[attr-defined]


# -- one TLS configuration type for both profiles


@dataclass
class Pki:
    ca: Path
    publisher: tuple[Path, Path]
    subscriber: tuple[Path, Path]
    stranger_ca: Path
    crl: Path  # the test CA's revocation list, revoking the subscriber's certificate


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(folder: Path, stem: str, cn: str, issuer: Any, ca: bool = False) -> Any:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer[0].subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{stem}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    folder = tmp_path_factory.mktemp("api-pki")
    ca = _certificate(folder, "ca", "api test CA", None, ca=True)
    _certificate(folder, "stranger", "another CA", None, ca=True)
    _certificate(folder, "publisher", "publisher", ca)
    revoked, _ = _certificate(folder, "subscriber", "operator-1", ca)
    now = datetime.datetime.now(datetime.UTC)
    entry = (
        x509.RevokedCertificateBuilder()
        .serial_number(revoked.serial_number)
        .revocation_date(now - datetime.timedelta(minutes=1))
        .build()
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca[0].subject)
        .last_update(now - datetime.timedelta(minutes=5))
        .next_update(now + datetime.timedelta(hours=2))
        .add_revoked_certificate(entry)
        .sign(ca[1], hashes.SHA256())
    )
    (folder / "ca.crl").write_bytes(crl.public_bytes(serialization.Encoding.PEM))

    def pair(stem: str) -> tuple[Path, Path]:
        return folder / f"{stem}.pem", folder / f"{stem}.key"

    return Pki(
        folder / "ca.pem",
        pair("publisher"),
        pair("subscriber"),
        folder / "stranger.pem",
        folder / "ca.crl",
    )


def tls(pair: tuple[Path, Path], ca: Path, **options: Any) -> TlsConfig:
    return TlsConfig(certfile=str(pair[0]), keyfile=str(pair[1]), cafile=str(ca), **options)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("profile", PROFILES)
def test_mutual_tls_with_one_config_type(profile, pki):
    """Both sides validate each other against the test CA, with the same TlsConfig objects."""
    src = source(profile)

    async def run() -> None:
        publisher = sttp.Publisher(profile, port=0, tls=tls(pki.publisher, pki.ca), **src.publisher)
        async with publisher:
            subscriber = sttp.Subscriber(
                profile, port=publisher.port, tls=tls(pki.subscriber, pki.ca), **src.subscriber
            )
            async with subscriber:
                await subscriber.subscribe()
                await publisher.wait_subscribed(1, timeout=5)
                (connection,) = publisher.connections
                transport = connection.transport  # type: ignore[attr-defined]
                ssl_object = transport.get_extra_info("ssl_object")
                assert ssl_object is not None and ssl_object.version() == "TLSv1.3"
                assert dict(x[0] for x in ssl_object.getpeercert()["subject"]) == {
                    "commonName": "operator-1"
                }
                publisher.publish(next(src.frames))
                got = await asyncio.wait_for(receive(subscriber.batches(), SIGNALS), 5)
                assert {m.signal_id for m in got} == set(src.ids)

    asyncio.run(run())


@pytest.mark.timeout(30)
@pytest.mark.parametrize("profile", PROFILES)
def test_untrusted_publisher_is_refused_by_both_profiles(profile, pki):
    src = source(profile)

    async def run() -> None:
        publisher = sttp.Publisher(profile, port=0, tls=tls(pki.publisher, pki.ca), **src.publisher)
        async with publisher:
            subscriber = sttp.Subscriber(
                profile,
                port=publisher.port,
                tls=tls(pki.subscriber, pki.stranger_ca),  # does not trust the test CA
                **src.subscriber,
            )
            with pytest.raises((ssl.SSLError, ConnectionError), match="CERTIFICATE_VERIFY"):
                await subscriber.start()
            await subscriber.stop()
            assert not publisher.connections

    asyncio.run(run())


@pytest.mark.timeout(30)
@pytest.mark.parametrize("profile", PROFILES)
def test_subscriber_without_client_certificate_is_refused_when_required(profile, pki):
    """``cafile`` on the publisher requires client certificates (``require_client_cert``)."""
    src = source(profile)

    async def run() -> None:
        publisher = sttp.Publisher(profile, port=0, tls=tls(pki.publisher, pki.ca), **src.publisher)
        async with publisher:
            anonymous = TlsConfig(cafile=str(pki.ca))
            subscriber = sttp.Subscriber(
                profile, port=publisher.port, tls=anonymous, **src.subscriber
            )
            with pytest.raises((ssl.SSLError, ConnectionError, OSError, TimeoutError)):
                await asyncio.wait_for(_started_and_used(subscriber), 5)
            await subscriber.stop()
            await asyncio.wait_for(_until(lambda: not publisher.connections), 5)

    asyncio.run(run())


async def _started_and_used(subscriber: SubscriberAPI) -> None:
    # TLS 1.3 clients learn of a refused client certificate only on their first read
    await subscriber.start()
    await subscriber.subscribe(timeout=2)


# -- the command line builds the same TlsConfig for both profiles


@pytest.mark.parametrize("profile", PROFILES)
def test_cli_tls_options_build_one_config(profile, pki):
    from gridbind.cli import build_parser
    from gridbind.sttp.cli import tls_config

    parser = build_parser()
    common = ["--profile", profile]
    plain = parser.parse_args(["sttp", "subscribe", *common])
    assert tls_config(plain) is None and (plain.host, plain.port) == (DEFAULT_HOST, DEFAULT_PORT)
    # --tls alone: TLS against the system trust store
    assert tls_config(parser.parse_args(["sttp", "subscribe", *common, "--tls"])) == TlsConfig()
    args = parser.parse_args(
        [
            "sttp",
            "publish",
            *common,
            "--tls-cert",
            str(pki.publisher[0]),
            "--tls-key",
            str(pki.publisher[1]),
            "--tls-ca",
            str(pki.ca),
            "--tls-crl",
            "ca.crl",
            "--tls-client-cert",
            "optional",
            "--tls-server-name",
            "pmu.example",
            "--tls-min",
            "1.2",
        ]
    )
    assert tls_config(args) == TlsConfig(
        certfile=str(pki.publisher[0]),
        keyfile=str(pki.publisher[1]),
        cafile=str(pki.ca),
        crlfile="ca.crl",
        require_client_cert=False,
        server_hostname="pmu.example",
        minimum_version=ssl.TLSVersion.TLSv1_2,
    )


def test_client_certificate_requirement_maps_to_the_context(pki):
    context = tls(pki.publisher, pki.ca, require_client_cert=False).server_context()
    assert context.verify_mode == ssl.CERT_OPTIONAL
    assert tls(pki.publisher, pki.ca).server_context().verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(sttp.InvalidArgument, match="require_client_cert needs cafile"):
        TlsConfig(certfile=str(pki.publisher[0]), require_client_cert=True).server_context()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("profile", PROFILES)
def test_optional_client_certificates_admit_anonymous_subscribers(profile, pki):
    src = source(profile)

    async def run() -> None:
        server = tls(pki.publisher, pki.ca, require_client_cert=False)
        async with sttp.Publisher(profile, port=0, tls=server, **src.publisher) as publisher:
            anonymous = TlsConfig(cafile=str(pki.ca))
            async with sttp.Subscriber(
                profile, port=publisher.port, tls=anonymous, **src.subscriber
            ) as subscriber:
                await subscriber.subscribe(src.ids[:1])
                await publisher.wait_subscribed(1, timeout=5)
                publisher.publish(next(src.frames))
                got = await asyncio.wait_for(receive(subscriber.batches(), 1), 5)
                assert [m.signal_id for m in got] == src.ids[:1]

    asyncio.run(run())


@pytest.mark.timeout(30)
@pytest.mark.parametrize("profile", PROFILES)
def test_revoked_subscriber_certificate_is_refused_by_both_publishers(profile, pki, caplog):
    """``crlfile`` on the server side: checked right after the handshake, refusal logged."""
    src = source(profile)

    async def run() -> None:
        server = tls(pki.publisher, pki.ca, crlfile=str(pki.crl))
        async with sttp.Publisher(profile, port=0, tls=server, **src.publisher) as publisher:
            subscriber = sttp.Subscriber(
                profile, port=publisher.port, tls=tls(pki.subscriber, pki.ca), **src.subscriber
            )
            with pytest.raises((ConnectionError, TimeoutError)):
                await asyncio.wait_for(_started_and_used(subscriber), 5)
            await subscriber.stop()
            await asyncio.wait_for(_until(lambda: not publisher.connections), 5)

    with caplog.at_level(logging.WARNING):
        asyncio.run(run())
    assert "certificate revoked" in caplog.text


@pytest.mark.timeout(30)
def test_draft_deprecated_names_warn_and_still_work():
    src = source("draft-0.8")

    async def run() -> None:
        async with sttp.Publisher("draft-0.8", port=0, **src.publisher) as publisher:
            subscriber = sttp.Subscriber("draft-0.8", port=publisher.port)
            with pytest.warns(DeprecationWarning, match="use start"):
                agreed = await subscriber.connect()
            assert agreed == subscriber.negotiated
            with pytest.warns(DeprecationWarning, match="use request_metadata"):
                result = await subscriber.get_metadata()
            assert {row["PointID"] for row in result.rows} == set(src.ids)
            with pytest.warns(DeprecationWarning, match="use batches"):
                batches = subscriber.measurements()
            with pytest.warns(DeprecationWarning, match="use stop"):
                await subscriber.close()
            assert await asyncio.wait_for(receive(batches, 1), 5) == []

    asyncio.run(run())


@pytest.mark.timeout(30)
@pytest.mark.parametrize("profile", PROFILES)
def test_a_refused_subscription_raises_request_refused_in_both_profiles(profile):
    src = source(profile)

    async def run() -> None:
        async with sttp.Publisher(profile, port=0, **src.publisher) as publisher:
            subscriber = sttp.Subscriber(profile, port=publisher.port, **src.subscriber)
            async with subscriber:
                with pytest.raises(sttp.RequestRefused):
                    if profile == "ieee2664":
                        from gridbind.sttp.ieee2664 import SubscriptionSettings

                        bad = SubscriptionSettings(filter_expression="FILTER X WHERE")
                        await subscriber.subscribe(settings=bad, timeout=5)
                    else:
                        await subscriber.subscribe(query="SELECT FROM WHERE", timeout=5)
                await subscriber.subscribe(src.ids[:1], timeout=5)  # the session goes on
                await publisher.wait_subscribed(1, timeout=5)

    asyncio.run(run())


def _dead_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _failure_of(call: Any, within: float = 3.0) -> BaseException | None:
    """The exception ``call`` ended with; fails the test if it did not end ``within`` s (a
    call that retries for ever must not pass as a time-out)."""
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        task.cancel()
        pytest.fail(f"still pending after {within} s")
    return task.exception()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("profile", PROFILES)
def test_failures_to_connect_raise_with_default_options(profile):
    """api.py: a failure to connect raises OSError (or TimeoutError): with DEFAULT options
    (reconnection on), start() and Publisher.connect() still report the first failure."""

    async def run() -> None:
        port = _dead_port()
        subscriber = sttp.Subscriber(profile, port=port)
        try:
            assert isinstance(await _failure_of(subscriber.start()), OSError)
        finally:
            await subscriber.stop()
        publisher = sttp.Publisher(profile, port=0)
        try:
            assert isinstance(await _failure_of(publisher.connect("127.0.0.1", port)), OSError)
        finally:
            await publisher.stop()

    asyncio.run(asyncio.wait_for(run(), 15))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("profile", PROFILES)
def test_a_refused_certificate_raises_with_default_options(profile, pki):
    src = source(profile)

    async def run() -> None:
        publisher = sttp.Publisher(profile, port=0, tls=tls(pki.publisher, pki.ca), **src.publisher)
        async with publisher:
            subscriber = sttp.Subscriber(
                profile, port=publisher.port, tls=tls(pki.subscriber, pki.stranger_ca)
            )
            try:
                error = await _failure_of(subscriber.start())
                assert isinstance(error, OSError) and "CERTIFICATE_VERIFY" in str(error)
            finally:
                await subscriber.stop()

    asyncio.run(asyncio.wait_for(run(), 15))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("profile", PROFILES)
def test_a_refused_metadata_request_raises_request_refused_in_both_profiles(profile):
    src = source(profile)
    publisher_options = dict(src.publisher)
    if profile == "ieee2664":
        from gridbind.sttp.ieee2664.publisher_state import PublisherConfig

        publisher_options["config"] = PublisherConfig(allow_metadata_refresh=False)
        request: dict[str, Any] = {}
    else:
        request = {"query": "SELECT FROM WHERE"}  # the draft publisher refuses a bad query

    async def run() -> None:
        async with sttp.Publisher(profile, port=0, **publisher_options) as publisher:
            async with sttp.Subscriber(profile, port=publisher.port, **src.subscriber) as sub:
                error = await _failure_of(sub.request_metadata(*request.values(), timeout=5))
                assert isinstance(error, sttp.RequestRefused), repr(error)

    asyncio.run(asyncio.wait_for(run(), 15))


@pytest.mark.timeout(30)
def test_ieee2664_tls_admission_runs_before_the_session_deadlines(pki, monkeypatch):
    """The publisher's session (its negotiation deadline) starts once the client certificate
    is admitted (a host name resolution may take seconds); what the subscriber sent
    meanwhile is held and handled then."""
    from gridbind.sttp.tls import TlsConfig

    src = source("ieee2664")

    async def slow_refusal(self: TlsConfig, ssl_object: Any, peer: Any) -> str | None:
        await asyncio.sleep(0.6)  # e.g. resolving the certificate's host names
        return None

    monkeypatch.setattr(TlsConfig, "refusal", slow_refusal)

    async def run() -> None:
        publisher = sttp.Publisher(
            "ieee2664",
            port=0,
            tls=tls(pki.publisher, pki.ca),
            negotiation_timeout=0.3,
            **src.publisher,
        )
        async with publisher:
            subscriber = sttp.Subscriber(
                "ieee2664", port=publisher.port, tls=tls(pki.subscriber, pki.ca), **src.subscriber
            )
            async with subscriber:
                await subscriber.subscribe(src.ids[:2], timeout=5)
                await publisher.wait_subscribed(1, timeout=5)

    asyncio.run(asyncio.wait_for(run(), 15))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("profile", PROFILES)
def test_an_earlier_subscriptions_refusal_does_not_fail_a_later_subscribe(profile):
    src = source(profile)

    async def run() -> None:
        async with sttp.Publisher(profile, port=0, **src.publisher) as publisher:
            async with sttp.Subscriber(profile, port=publisher.port, **src.subscriber) as sub:
                if profile == "ieee2664":
                    from gridbind.sttp.ieee2664 import SubscriptionSettings

                    bad = SubscriptionSettings(filter_expression="FILTER X WHERE")
                    refused = asyncio.ensure_future(sub.subscribe(settings=bad, timeout=1))
                else:
                    refused = asyncio.ensure_future(
                        sub.subscribe(query="SELECT FROM WHERE", timeout=1)
                    )
                await asyncio.sleep(0)  # the refused request is sent first
                await sub.subscribe(src.ids[:1], timeout=5)  # answered after the refusal
                await publisher.wait_subscribed(1, timeout=5)
                with contextlib.suppress(sttp.RequestRefused, TimeoutError):
                    await refused

    asyncio.run(asyncio.wait_for(run(), 15))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("profile", PROFILES)
def test_unsubscribe_holds_across_reconnection_and_empty_subscribe_raises(profile, caplog):
    """api.py: ``subscribe([])`` raises InvalidArgument; after ``unsubscribe()`` a
    reconnection does not subscribe again until ``subscribe()`` is called."""
    caplog.set_level(logging.CRITICAL)
    src = source(profile)
    if profile == "ieee2664":
        options = {**src.subscriber, "auto_subscribe": True, "auto_reconnect": True}
        options["retry_interval"] = 0.05
    else:
        options = {**src.subscriber, "reconnect": 0.05}

    async def reconnected(publisher: PublisherAPI, old: object) -> None:
        for _ in range(300):
            fresh = [c for c in publisher.connections if c is not old]
            session = getattr(fresh[0], "session", None) if fresh else None
            if session is not None and getattr(session, "negotiated", True):
                return
            await asyncio.sleep(0.01)
        pytest.fail("no reconnection")

    async def run() -> None:
        async with sttp.Publisher(profile, port=0, **src.publisher) as publisher:
            async with sttp.Subscriber(profile, port=publisher.port, **options) as sub:
                with pytest.raises(sttp.InvalidArgument):
                    await sub.subscribe([])
                await sub.subscribe(src.ids[:2], timeout=5)
                await publisher.wait_subscribed(1, timeout=5)
                await sub.unsubscribe(timeout=5)
                (old,) = publisher.connections
                old.close()
                await reconnected(publisher, old)
                with pytest.raises(TimeoutError):
                    await publisher.wait_subscribed(1, timeout=0.5)
                await sub.subscribe(src.ids[:2], timeout=5)
                await publisher.wait_subscribed(1, timeout=5)

    asyncio.run(asyncio.wait_for(run(), 20))
