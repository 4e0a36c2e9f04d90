"""IEC 62351-4 E2E security wired into the 8-2 runtime (IedServer / Client), in memory.

The service suite of test_services runs unchanged over authenticated and encrypted associations;
then every attack of a hostile operator (the memory network's ``tap`` sees and alters each
stanza): altered, replayed, reordered and stale messages, untrusted, wrong-JID and wrongly signed
certificates, and E2E on/off mismatches. Each ends in the specified abort or reject with its
diagnostic, and nothing of a refused envelope reaches the services.
"""

from __future__ import annotations

import asyncio
import copy
import re
import xml.etree.ElementTree as ET

import pytest
import test_services as ts
from cryptography.hazmat.primitives.serialization import Encoding

from gridbind.iec61850.client import (
    AssociationAborted,
    ClientError,
    RequestRejected,
    ServiceFailed,
)
from gridbind.iec61850.e2e import (
    DtDiag,
    E2EConfig,
    E2EPolicy,
    HandshakeDiag,
    HandshakeRejected,
    Mode,
)
from gridbind.iec61850.e2e_certs import make_ca, make_e2e_certificate

from iec_testkit import memory_served, run, until

E2E_NS = "{http://www.iec.ch/62351/2018/E2E_4}"
DOMAIN = "memory.test"
VALUE = "FDR1LD0/GGIO1.Ind1.d"


@pytest.fixture(scope="module")
def pki():
    ca = make_ca()
    issued = {who: make_e2e_certificate(ca, f"{who}@{DOMAIN}") for who in ("ied", "ops0", "ops1")}
    other_ca = make_ca("someone else's CA")
    issued["untrusted"] = make_e2e_certificate(other_ca, f"ops0@{DOMAIN}")
    issued["mallory"] = make_e2e_certificate(ca, f"mallory@{DOMAIN}")
    issued["ops0-other-key"] = make_e2e_certificate(ca, f"ops0@{DOMAIN}")
    return ca, issued


def config(pki, who: str, mode: Mode = Mode.ENCRYPTED, **kw) -> E2EConfig:
    ca, issued = pki
    leaf = issued[who]
    return E2EConfig(
        mode,
        certificate=leaf.certificate,
        private_key=leaf.key,
        trust_anchors=(ca.certificate,),
        cert_path=tuple(leaf.chain),
        **kw,
    )


def served(pki, server_mode=Mode.ENCRYPTED, client_mode=Mode.ENCRYPTED, client="ops0", **kw):
    server_e2e = kw.pop("server_e2e", None) or config(pki, "ied", server_mode)
    return memory_served(
        server_kw={"e2e": server_e2e},
        client_kw=lambda i: {"e2e": config(pki, client if i == 0 else f"ops{i}", client_mode)},
        **kw,
    )


# ---- every service, unchanged -------------------------------------------------------------

SUITE = [
    ts.test_directories_and_values,
    ts.test_set_data_values_policy_hooks_types,
    ts.test_data_sets,
    ts.test_setting_groups_and_control_blocks,
    ts.test_files,
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", [Mode.AUTHENTICATED, Mode.ENCRYPTED], ids=lambda m: m.value)
@pytest.mark.parametrize("case", SUITE, ids=lambda f: f.__name__.removeprefix("test_"))
def test_service_suite_over_e2e(pki, mode, case, monkeypatch, tmp_path) -> None:
    plain = ts.served
    envelopes = []

    def e2e_served(tmp=None, *, server_kw=None, client_kw=None, clients=1):
        kw = dict(client_kw or {})
        return plain(
            tmp,
            server_kw={**(server_kw or {}), "e2e": config(pki, "ied", mode)},
            client_kw=lambda i: {**kw, "e2e": config(pki, f"ops{i}", mode)},
            clients=clients,
        )

    monkeypatch.setattr(ts, "served", e2e_served)
    original_serve = ts.IedServer.__init__

    def spy_init(self, *args, **kwargs):  # every server of the suite records its envelopes
        original_serve(self, *args, **kwargs)
        transport = self.transport
        network = transport.network

        def tap(sender, to, stanza):
            envelopes.extend(child.tag for child in stanza)
            return stanza

        network.tap = tap

    monkeypatch.setattr(ts.IedServer, "__init__", spy_init)
    if "tmp_path" in case.__code__.co_varnames[: case.__code__.co_argcount]:
        case(tmp_path)
    else:
        case()
    kinds = {tag.removeprefix(E2E_NS) for tag in envelopes if tag.startswith(E2E_NS)}
    data = "EncrTransfer" if mode is Mode.ENCRYPTED else "ClearTransfer"
    # (ReleaseReq/Rsp follow a conclude: test_directories_and_values concludes)
    assert {"HandshakeReq", "HandshakeAcc", data} <= kinds
    assert "AssociationContext" not in kinds and not any(t.endswith("}MMSpdu") for t in envelopes)


#: (A CommandTermination follows its operate response at once: the client opens each answer
#: as it arrives, in stanza order with the messages, as the E2E sequence check needs.)
CONTROL_SUITE = [
    "test_each_control_model_positive_path",
    "test_locked_by_another_client_and_released_with_its_association",
    "test_command_termination_negative_and_async_handler_bound",
    "test_time_activated_operate_fires_at_oper_tm_and_cancel",
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", [Mode.AUTHENTICATED, Mode.ENCRYPTED], ids=lambda m: m.value)
@pytest.mark.parametrize("name", CONTROL_SUITE, ids=lambda n: str(n).removeprefix("test_"))
def test_control_suite_over_e2e(pki, mode, name, monkeypatch) -> None:
    """The control services (SBO, direct, CommandTermination, time activation) unchanged."""
    import test_controls as tc

    def e2e_served(clients=1, **server_kw):
        return memory_served(
            tc.CONTROLS,
            clients=clients,
            server_kw={**server_kw, "e2e": config(pki, "ied", mode)},
            client_kw=lambda i: {"e2e": config(pki, f"ops{i}", mode)},
        )

    monkeypatch.setattr(tc, "served", e2e_served)
    getattr(tc, name)()


REPORT_SUITE = [
    "test_integrity_period_and_general_interrogation",
    "test_buffer_time_aggregates_and_a_second_change_sends_at_once",
    "test_two_clients_use_their_own_urcb_instances_and_reservations",
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", [Mode.AUTHENTICATED, Mode.ENCRYPTED], ids=lambda m: m.value)
@pytest.mark.parametrize("name", REPORT_SUITE, ids=lambda n: n.removeprefix("test_"))
def test_report_suite_over_e2e(pki, mode, name, monkeypatch) -> None:
    """Reports interleaved with answers: each envelope opened in arrival order."""
    import test_reports as tr

    plain = tr.memory_served

    def e2e_served(*args, server_kw=None, client_kw=None, **kw):
        return plain(
            *args,
            server_kw={**(server_kw or {}), "e2e": config(pki, "ied", mode)},
            client_kw=lambda i: {**(client_kw or {}), "e2e": config(pki, f"ops{i}", mode)},
            **kw,
        )

    monkeypatch.setattr(tr, "memory_served", e2e_served)
    getattr(tr, name)()


# ---- helpers for the attacks ----------------------------------------------------------------


class Operator:
    """A hostile XMPP operator on the memory network: sees, keeps and alters stanzas."""

    def __init__(self, net) -> None:
        self.net = net
        self.seen: list[tuple[str, str, ET.Element]] = []
        self.alter = None  # (sender, to, stanza) -> stanza | None
        net.tap = self._tap

    def _tap(self, sender, to, stanza):
        self.seen.append((sender, to, copy.deepcopy(stanza)))
        return self.alter(sender, to, stanza) if self.alter is not None else stanza

    def diags(self, kind: str) -> list[int]:
        """The diag of every ``kind`` envelope that travelled."""
        out = []
        for _, _, stanza in self.seen:
            for el in stanza.iter(E2E_NS + kind):
                out.append(int(el.find(E2E_NS + "diag").text))
        return out

    def last(self, kind: str, sender: str) -> ET.Element:
        return [s for f, _, s in self.seen if f == sender and s.find(E2E_NS + kind) is not None][-1]


def _spy_services(server) -> list:
    served_requests = []
    original = server.protocol.services.serve

    def serve(assoc, request):
        served_requests.append(request)
        return original(assoc, request)

    server.protocol.services.serve = serve
    return served_requests


async def _aborted_both_sides(server, ied) -> None:
    await until(lambda: not ied.open and not server.core.associations, 5, "abort on both sides")


def _hex_flip(text: str) -> str:
    return ("0" if text[0] != "0" else "1") + text[1:]


# ---- attacks in data transfer -----------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "mode, element, diag",
    [
        (Mode.ENCRYPTED, "encrypted-applData", DtDiag.DECRYPTION_FAILED),
        (Mode.AUTHENTICATED, "MMSpdu", DtDiag.INVALID_ICV),
    ],
)
def test_message_altered_in_transit(pki, mode, element, diag) -> None:
    async def main():
        async with served(pki, mode, mode) as (server, apps, net):
            op = Operator(net)
            ied = await apps[0].associate(server.jid)
            await ied.set_data_values(VALUE, "DC", "before")
            served_requests = _spy_services(server)
            client_jid = apps[0].transport.full_jid

            def alter(sender, to, stanza):
                if sender == client_jid and stanza.tag.endswith("iq"):
                    if element == "MMSpdu":  # the written value, in clear but authenticated
                        for el in stanza.iter():
                            if el.text == "after":
                                el.text = "evil!"
                    else:
                        el = next(stanza.iter(E2E_NS + element))
                        el.text = _hex_flip(el.text)
                return stanza

            op.alter = alter
            with pytest.raises(AssociationAborted):
                await ied.set_data_values(VALUE, "DC", "after")
            await _aborted_both_sides(server, ied)
            assert op.diags("DtSecAbort") == [diag]
            assert served_requests == [] and server.model.read(VALUE, "DC") == "before"

    run(main())


@pytest.mark.timeout(10)
@pytest.mark.parametrize("mode", [Mode.AUTHENTICATED, Mode.ENCRYPTED], ids=lambda m: m.value)
def test_replayed_message(pki, mode) -> None:
    async def main():
        async with served(pki, mode, mode) as (server, apps, net):
            op = Operator(net)
            ied = await apps[0].associate(server.jid)
            client = apps[0].transport
            await ied.set_data_values(VALUE, "DC", "once")
            served_requests = _spy_services(server)
            server.model.update(VALUE, "changed meanwhile")
            kind = "EncrTransfer" if mode is Mode.ENCRYPTED else "ClearTransfer"
            replay = copy.deepcopy(op.last(kind, client.full_jid))
            net.deliver(client, server.jid, replay)
            await _aborted_both_sides(server, ied)
            assert op.diags("DtSecAbort") == [DtDiag.REPLAY]
            assert served_requests == []
            assert server.model.read(VALUE, "DC") == "changed meanwhile"

    run(main())


@pytest.mark.timeout(10)
def test_message_out_of_sequence(pki) -> None:
    async def main():
        async with served(pki) as (server, apps, net):
            op = Operator(net)
            ied = await apps[0].associate(server.jid)
            client = apps[0].transport
            served_requests = _spy_services(server)
            held = []

            def hold_first(sender, to, stanza):
                if sender == client.full_jid and not held:
                    held.append(stanza)
                    return None
                return stanza

            op.alter = hold_first
            late = asyncio.get_running_loop().create_task(ied.set_data_values(VALUE, "DC", "first"))
            await until(lambda: held, 5, "the held request")
            op.alter = None
            await ied.set_data_values(VALUE, "DC", "second")
            net.deliver(client, server.jid, held[0])
            with pytest.raises(AssociationAborted):
                await late
            await _aborted_both_sides(server, ied)
            assert op.diags("DtSecAbort") == [DtDiag.OUT_OF_SEQUENCE]
            assert server.model.read(VALUE, "DC") == "second"
            assert served_requests and all("'first'" not in repr(r) for r in served_requests)

    run(main())


@pytest.mark.timeout(10)
@pytest.mark.parametrize("mode", [Mode.AUTHENTICATED, Mode.ENCRYPTED], ids=lambda m: m.value)
def test_a_cancelled_request_among_pipelined_ones_keeps_the_association(pki, mode) -> None:
    """The answer to a request whose requester gave up is still opened, in its place in the
    sequence: the answers after it, and later requests, go on in the association."""

    async def main():
        async with served(pki, mode, mode) as (server, apps, net):
            op = Operator(net)
            ied = await apps[0].associate(server.jid)
            client = apps[0].transport
            await ied.set_data_values(VALUE, "DC", "pipelined")
            answered = lambda: net.log.count(("iq", server.jid, client.full_jid))  # noqa: E731
            before = answered()
            net.hold(client.full_jid)  # the answers wait in the network
            # one token time for all six answers: their seq count 0..5, so a gap shows
            frozen = server.wall_time()
            server.wall_time = lambda: frozen
            loop = asyncio.get_running_loop()
            reads = [loop.create_task(ied.get_data_values(VALUE, "DC")) for _ in range(6)]
            await until(lambda: answered() == before + 6, 5, "six answers on their way")
            assert reads[1].cancel()
            net.release(client.full_jid)
            got = await asyncio.gather(*reads, return_exceptions=True)
            del server.wall_time
            assert isinstance(got[1], asyncio.CancelledError)
            assert got[:1] + got[2:] == ["pipelined"] * 5
            assert await ied.get_data_values(VALUE, "DC") == "pipelined"
            await ied.set_data_values(VALUE, "DC", "still up")
            assert await ied.get_data_values(VALUE, "DC") == "still up"
            assert op.diags("DtSecAbort") == [] and server.associations

    run(main())


@pytest.mark.timeout(10)
def test_time_outside_the_window(pki) -> None:
    async def main():
        async with served(pki) as (server, apps, net):
            op = Operator(net)
            ied = await apps[0].associate(server.jid)
            served_requests = _spy_services(server)
            proto = apps[0].protocol
            honest = proto.call
            proto.call = lambda assoc, request, now: honest(assoc, request, now + 3600)
            with pytest.raises(AssociationAborted):
                await ied.get_data_values(VALUE, "DC")
            await _aborted_both_sides(server, ied)
            assert op.diags("DtSecAbort") == [DtDiag.TIME_OUT_OF_WINDOW]
            assert served_requests == []

    run(main())


@pytest.mark.timeout(10)
def test_answer_altered_aborts_the_client_side(pki) -> None:
    async def main():
        async with served(pki) as (server, apps, net):
            op = Operator(net)
            ied = await apps[0].associate(server.jid)

            def alter(sender, to, stanza):
                if sender == server.jid:
                    el = next(stanza.iter(E2E_NS + "encrypted-applData"))
                    el.text = _hex_flip(el.text)
                return stanza

            op.alter = alter
            with pytest.raises(ClientError) as err:
                await ied.get_data_values(VALUE, "DC")
            assert "decryption-failed" in str(err.value)
            await _aborted_both_sides(server, ied)  # the client's DtSecAbort ends it there
            assert op.diags("DtSecAbort") == [DtDiag.DECRYPTION_FAILED]

    run(main())


# ---- attacks on the handshake -----------------------------------------------------------------


async def _refused_association(server, client, diag: HandshakeDiag) -> None:
    served_requests = _spy_services(server)
    with pytest.raises(ClientError) as err:
        await client.associate(server.jid)
    cause = err.value.__cause__
    assert isinstance(cause, HandshakeRejected) and cause.diag == diag, err.value
    assert not server.core.associations and not client.core.associations
    assert served_requests == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "who, diag",
    [
        ("untrusted", HandshakeDiag.UNTRUSTED_CERTIFICATE),
        ("mallory", HandshakeDiag.PEER_IDENTITY_MISMATCH),
    ],
)
def test_certificate_refused_by_the_server(pki, who, diag) -> None:
    async def main():
        async with served(pki, client=who) as (server, apps, net):
            op = Operator(net)
            await _refused_association(server, apps[0], diag)
            assert op.diags("HandshakeSecReject") == [diag]

    run(main())


@pytest.mark.timeout(10)
def test_signature_by_the_wrong_key(pki) -> None:
    """The operator swaps the certificate in a HandshakeReq for another of the same JID."""
    _, issued = pki
    other = issued["ops0-other-key"].certificate.public_bytes(Encoding.DER).hex().upper()

    async def main():
        async with served(pki) as (server, apps, net):
            op = Operator(net)

            def swap(sender, to, stanza):
                for el in stanza.iter(E2E_NS + "pkCert"):
                    el.text = other
                return stanza

            op.alter = swap
            await _refused_association(server, apps[0], HandshakeDiag.INVALID_SIGNATURE)

    run(main())


@pytest.mark.timeout(10)
def test_server_certificate_refused_by_the_client(pki) -> None:
    """The client aborts an acceptance it cannot trust (HandshakeSecAbort ends it at the IED)."""

    async def main():
        async with served(pki, server_e2e=config(pki, "mallory")) as (server, apps, net):
            op = Operator(net)
            with pytest.raises(ClientError) as err:
                await apps[0].associate(server.jid)
            assert "peer-identity-mismatch" in str(err.value)
            await until(lambda: not server.core.associations, 5, "abort at the IED")
            assert op.diags("HandshakeSecAbort") == [HandshakeDiag.PEER_IDENTITY_MISMATCH]

    run(main())


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "server_mode, client_mode",
    [(Mode.ENCRYPTED, Mode.OFF), (Mode.OFF, Mode.ENCRYPTED), (Mode.AUTHENTICATED, Mode.ENCRYPTED)],
)
def test_mismatched_configuration_fails_the_association(pki, server_mode, client_mode) -> None:
    async def main():
        server_e2e = E2EConfig(Mode.OFF) if server_mode is Mode.OFF else None
        async with served(pki, server_mode, client_mode, server_e2e=server_e2e) as (
            server,
            apps,
            net,
        ):
            client = apps[0]
            if client_mode is Mode.OFF:
                client.protocol._envelopes.policy = E2EPolicy(E2EConfig(Mode.OFF))
            diag = (
                HandshakeDiag.NO_COMMON_ENCRYPTION_MODE
                if Mode.OFF not in (server_mode, client_mode)
                else HandshakeDiag.E2E_MISMATCH
            )
            await _refused_association(server, client, diag)

    run(main())


@pytest.mark.timeout(10)
def test_policy_per_peer(pki) -> None:
    """One IED: E2E encrypted with ops0, off with ops1 (by configuration)."""

    async def main():
        policy = E2EPolicy(config(pki, "ied"), {f"ops1@{DOMAIN}": E2EConfig(Mode.OFF)})
        async with memory_served(
            server_kw={"e2e": policy},
            client_kw=lambda i: {"e2e": config(pki, "ops0") if i == 0 else E2EConfig(Mode.OFF)},
            clients=2,
        ) as (server, apps, net):
            op = Operator(net)
            secure, plain = [await c.associate(server.jid) for c in apps]
            assert re.fullmatch(r"\d+:\d+", secure.id) and re.fullmatch(r"\d+", plain.id)
            await secure.set_data_values(VALUE, "DC", "secret 4711")
            assert await plain.get_data_values(VALUE, "DC") == "secret 4711"
            secured = [s for f, _, s in op.seen if f == apps[0].transport.full_jid]
            assert secured and all(b"secret 4711" not in ET.tostring(s) for s in secured)
            await secure.conclude()  # conclude, then the signed ReleaseReq / ReleaseRsp
            released = [s.find(E2E_NS + "ReleaseRsp") for _, _, s in op.seen]
            assert op.last("ReleaseReq", apps[0].transport.full_jid) is not None
            assert any(r is not None for r in released) and not secure.open
            assert [a.peer for a in server.associations] == [apps[1].transport.full_jid]

    run(main())


@pytest.mark.timeout(10)
def test_application_reject_after_a_good_handshake(pki) -> None:
    """Security accepted, association refused (the IED's limit): a signed ApplicationReject
    carrying the initiate-ErrorPDU."""

    async def main():
        async with memory_served(
            server_kw={"e2e": config(pki, "ied"), "max_associations": 1},
            client_kw=lambda i: {"e2e": config(pki, "ops0")},
        ) as (server, apps, net):
            op = Operator(net)
            first = await apps[0].associate(server.jid)
            with pytest.raises(ServiceFailed) as err:
                await apps[0].associate(server.jid)
            assert err.value.error_class == "initiate"
            assert any(s.find(E2E_NS + "ApplicationReject") is not None for _, _, s in op.seen)
            assert await first.get_data_values(VALUE, "DC") is not None  # the first goes on
            assert len(server.associations) == 1

    run(main())


@pytest.mark.parametrize(
    "asso_id, seq, iv",
    [("1:1", 0, None), ("4294967295:9999999999", 4294967295, bytes(range(12))), ("7", 3, b"")],
)
def test_fast_gcm_aad_is_the_canonical_token(asso_id, seq, iv) -> None:
    """The hand-written AAD of the hot path is byte for byte the canonical token2."""
    from gridbind.generated.iec61850_8_2 import e2e_4 as e
    from gridbind.iec61850.e2e.canonical import aad, generic_aad
    from gridbind.iec61850.e2e.tokens import format_time, parse_time

    token = e.ClearToken2(asso_id=asso_id, time=format_time(1764777600.123), seq=seq, iv=iv)
    assert aad(token) == generic_aad(token)
    assert parse_time(token.time) == pytest.approx(1764777600.123, abs=1e-6)
    for bad in ("2025120316082,1234Z", "20251203160827,12aZ", "20251332160827,123Z", "２" * 19):
        with pytest.raises(ValueError):
            parse_time(bad)


@pytest.mark.timeout(10)
def test_pdu_size_of_an_encrypted_request_is_its_own(pki) -> None:
    """The negotiated PDU size bounds the MMSpdu inside EncrTransfer, not the envelope's hex."""

    async def main():
        async with memory_served(
            server_kw={"e2e": config(pki, "ied"), "max_pdu_size": 1024},
            client_kw=lambda i: {"e2e": config(pki, "ops0")},
        ) as (server, apps, net):
            op = Operator(net)
            ied = await apps[0].associate(server.jid)
            text = "x" * 255  # a ~750-octet write: its envelope is twice as long
            await ied.set_data_values(VALUE, "DC", text)
            assert server.model.read(VALUE, "DC") == text
            sent = op.last("EncrTransfer", apps[0].transport.full_jid)
            assert len(ET.tostring(sent)) > 1024
            with pytest.raises(RequestRejected) as err:  # too big inside: rejected as ever
                await ied.create_data_set("@big", [("FDR1LD0/GGIO1.Ind1.stVal", "ST")] * 40)
            assert err.value.reason == "pdu-error:invalid-pdu"
            assert await ied.get_data_values(VALUE, "DC") == text  # the association goes on

    run(main())


@pytest.mark.timeout(10)
def test_reports_travel_sealed_and_an_altered_one_aborts(pki) -> None:
    from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
    from gridbind.iec61850 import mms
    from gridbind.iec61850 import mmsdata as d

    async def main():
        async with served(pki) as (server, apps, net):
            op = Operator(net)
            ied = await apps[0].associate(server.jid)
            (assoc,) = server.associations

            def report(n: int):
                return mms.information_report(mms.vmd("RPT"), [m.AccessResult(choice=d.integer(n))])

            server.send_information_report(assoc, report(1))
            stream = ied.reports()
            first = await asyncio.wait_for(stream.__anext__(), 5)
            assert first.list_of_access_result.access_result[0].choice == d.integer(1)

            def alter(sender, to, stanza):
                if sender == server.jid:
                    el = next(stanza.iter(E2E_NS + "encrypted-applData"))
                    el.text = _hex_flip(el.text)
                return stanza

            op.alter = alter
            server.send_information_report(assoc, report(2))
            await _aborted_both_sides(server, ied)  # the client's DtSecAbort ends it at the IED
            assert op.diags("DtSecAbort") == [DtDiag.DECRYPTION_FAILED]
            assert [r async for r in stream] == []  # nothing of the altered report arrived

    run(main())
