"""IEC 62351-4 E2E engine: handshake, authenticated and encrypted transfer, every failure.

Every envelope crosses the "wire" as bytes (codec.encode -> codec.decode), as over XMPP.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gridbind.generated.iec61850_8_2 as m
from gridbind.generated.iec61850_8_2 import e2e_4 as e
from gridbind.iec61850 import codec
from gridbind.iec61850.e2e import (
    ApplicationRejected,
    ConfigError,
    DtDiag,
    E2EConfig,
    E2EPolicy,
    EnvelopeLayer,
    HandshakeDiag,
    HandshakeError,
    HandshakeRejected,
    Initiator,
    Mode,
    PeerAborted,
    ReleaseError,
    Responder,
    SessionState,
    TransferError,
    crypto,
)
from gridbind.iec61850.e2e.tokens import canonical_part, format_time, parse_time
from gridbind.iec61850.e2e_certs import main as certs_main
from gridbind.iec61850.e2e_certs import make_ca, make_e2e_certificate, write_pem

CLIENT = "client1@example.test/IEC"
IED = "ied1@example.test/IEC"
SECRET = "TopSecretSetpoint4711"
T0 = time.time()


# ---- PDUs, built with the generated classes -----------------------------------------------


def initiate_request() -> m.Mmspdu:
    return m.Mmspdu(
        choice=m.InitiateRequestPdu(
            local_detail_calling=65000,
            proposed_max_serv_outstanding_calling=5,
            proposed_max_serv_outstanding_called=5,
            proposed_data_structure_nesting_level=10,
            init_request_detail=m.InitiateRequestPdu.InitRequestDetail(
                proposed_version_number=1,
                proposed_parameter_cbb="11110001000",
                services_supported_calling="1" * 85,
            ),
        )
    )


def initiate_response() -> m.Mmspdu:
    return m.Mmspdu(
        choice=m.InitiateResponsePdu(
            local_detail_called=65000,
            negotiated_max_serv_outstanding_calling=5,
            negotiated_max_serv_outstanding_called=5,
            negotiated_data_structure_nesting_level=10,
            init_response_detail=m.InitiateResponsePdu.InitResponseDetail(
                negotiated_version_number=1,
                negotiated_parameter_cbb="11110001000",
                services_supported_called="10" * 42 + "1",
            ),
        )
    )


def initiate_error() -> m.Mmspdu:
    return m.Mmspdu(
        choice=m.Mmspdu.InitiateErrorPdu(
            error_class=m.ServiceError.ErrorClass(
                choice=m.InitiateError(choice=m.InitiateError.MaxSegmentInsufficient())
            )
        )
    )


def _name(item: str) -> m.ObjectName:
    return m.ObjectName(choice=m.ObjectName.DomainSpecific(domain_id="IED1LD0", item_id=item))


def _vars(*items: str) -> m.VariableAccessSpecification:
    return m.VariableAccessSpecification(
        choice=m.VariableDefs(
            sequence=[
                m.VariableDefs.Sequence(
                    variable_specification=m.VariableSpecification(name=_name(i))
                )
                for i in items
            ]
        )
    )


def read_request(invoke: int = 1) -> m.Mmspdu:
    return m.Mmspdu(
        choice=m.ConfirmedRequestPdu(
            invoke_id=invoke,
            service=m.ConfirmedServiceRequest(
                choice=m.ReadRequest(variable_access_specification=_vars("XCBR1$ST$Pos$stVal"))
            ),
        )
    )


def write_secret(invoke: int = 2) -> m.Mmspdu:
    return m.Mmspdu(
        choice=m.ConfirmedRequestPdu(
            invoke_id=invoke,
            service=m.ConfirmedServiceRequest(
                choice=m.WriteRequest(
                    variable_access_specification=_vars("GGIO1$SP$SPCSO1$d"),
                    list_of_data=m.ListOfData(
                        data=[m.Data(choice=m.Data.VisibleString(value=SECRET))]
                    ),
                )
            ),
        )
    )


def read_response(invoke: int = 1) -> m.Mmspdu:
    return m.Mmspdu(
        choice=m.ConfirmedResponsePdu(
            invoke_id=invoke,
            service=m.ConfirmedServiceResponse(
                choice=m.ReadResponse(
                    list_of_access_result=m.ListOfAccessResult(
                        access_result=[
                            m.AccessResult(choice=m.Data(choice=m.Data.BitString(value="10")))
                        ]
                    )
                )
            ),
        )
    )


def wire(envelope):
    """What the peer decodes after the envelope crossed the network as bytes."""
    return codec.decode(codec.encode(envelope))


# ---- PKI and configurations ---------------------------------------------------------------


@pytest.fixture(scope="module")
def pki():
    ca = make_ca()
    other_ca = make_ca("someone else's CA")
    return {
        "ca": ca,
        "client": make_e2e_certificate(ca, "client1@example.test"),
        "ied": make_e2e_certificate(ca, "ied1@example.test"),
        "untrusted": make_e2e_certificate(other_ca, "client1@example.test"),
        "wrong_jid": make_e2e_certificate(ca, "mallory@example.test"),
        "no_key_agreement": make_e2e_certificate(ca, "client1@example.test", key_agreement=False),
        "expired": make_e2e_certificate(
            ca,
            "client1@example.test",
            not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=10),
            not_after=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
        ),
    }


def cfg(pki, who: str, mode: Mode = Mode.AUTHENTICATED, **kw) -> E2EConfig:
    issued = pki[who]
    return E2EConfig(
        mode,
        certificate=issued.certificate,
        private_key=issued.key,
        trust_anchors=(pki["ca"].certificate,),
        cert_path=tuple(issued.chain),
        **kw,
    )


def handshake(client_cfg: E2EConfig, ied_cfg: E2EConfig, now: float = T0, asso: str = "7"):
    hs = Initiator(client_cfg, IED, asso, initiate_request(), now)
    offer = Responder(ied_cfg).receive(CLIENT, wire(hs.request), now)
    assert offer is not None and offer.initiate_request == initiate_request()
    ied, acc = offer.accept(initiate_response(), now)
    client = hs.complete(wire(acc), now)
    return client, ied


def responder_refuses(envelope, ied_cfg, diag: HandshakeDiag, peer: str = CLIENT, now=T0):
    with pytest.raises(HandshakeError) as err:
        Responder(ied_cfg).receive(peer, wire(envelope), now)
    assert err.value.diag is diag, err.value
    reply = wire(err.value.reply)
    assert isinstance(reply, e.HandshakeSecReject) and reply.diag == diag
    return reply


def aborts(session, envelope, diag: DtDiag, now=T0):
    with pytest.raises(TransferError) as err:
        session.open(envelope, now)
    assert err.value.diag is diag, err.value
    reply = wire(err.value.reply)
    assert isinstance(reply, e.DtSecAbort) and reply.diag == diag
    assert session.state is SessionState.ABORTED
    with pytest.raises(TransferError):
        session.open(envelope, now)  # nothing more is accepted
    return reply


# ---- the good paths -----------------------------------------------------------------------


def test_handshake_then_authenticated_transfer_both_ways(pki, caplog):
    caplog.set_level(logging.INFO, logger="gridbind.iec61850.security")
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"))
    assert isinstance(client, EnvelopeLayer) and isinstance(ied, EnvelopeLayer)
    assert client.asso_id == ied.asso_id and client.asso_id.startswith("7:")
    assert client.initiate_pdu == initiate_response() and ied.initiate_pdu == initiate_request()
    for i, pdu in enumerate([read_request(1), write_secret(2), read_request(3)]):
        env = client.seal(pdu, T0 + i)
        assert isinstance(env, e.ClearTransfer) and env.tbp.token2.seq == 0
        assert ied.open(wire(env), T0 + i) == pdu
        answer = ied.seal(read_response(i), T0 + i)
        assert client.open(wire(answer), T0 + i) == read_response(i)
    # Same millisecond: seq counts up.
    a, b = client.seal(read_request(8), T0 + 5), client.seal(read_request(9), T0 + 5)
    assert (a.tbp.token2.seq, b.tbp.token2.seq) == (0, 1)
    assert ied.open(wire(a), T0 + 5) == read_request(8)
    assert ied.open(wire(b), T0 + 5) == read_request(9)
    assert any("established" in r.getMessage() for r in caplog.records)
    assert all(r.name == "gridbind.iec61850.security" for r in caplog.records)


@pytest.mark.parametrize(
    "cipher,group",
    [
        ("aes-128-gcm", "ecdh-secp256r1"),
        ("aes-256-gcm", "modp-group14"),
        ("aes-128-cbc", "ecdh-secp256r1"),
        ("aes-256-cbc", "ecdh-secp256r1"),
    ],
)
def test_encrypted_transfer_hides_the_payload(pki, cipher, group):
    opts = {"cipher": cipher, "dh_group": group}
    client, ied = handshake(
        cfg(pki, "client", Mode.ENCRYPTED, **opts), cfg(pki, "ied", Mode.ENCRYPTED, **opts)
    )
    env = client.seal(write_secret(), T0)
    assert isinstance(env, e.EncrTransfer)
    assert (env.auth is None) == cipher.endswith("gcm")
    data = codec.encode(env)
    plaintext = codec.encode(write_secret())
    for needle in (SECRET.encode(), SECRET.encode().hex().encode(), b"GGIO1", b"MMSpdu"):
        assert needle.lower() not in data.lower()
    assert plaintext not in data
    assert ied.open(codec.decode(data), T0) == write_secret()
    assert client.open(wire(ied.seal(read_response(), T0 + 1)), T0 + 1) == read_response()


@pytest.mark.parametrize(
    "mode,icv", [(Mode.AUTHENTICATED, "aes-128-gcm"), (Mode.ENCRYPTED, "aes-256-gcm")]
)
def test_gmac_icv_with_the_authenticator_nonce(pki, mode, icv):
    opts = {"icv": icv, "cipher": "aes-128-cbc"}
    client, ied = handshake(cfg(pki, "client", mode, **opts), cfg(pki, "ied", mode, **opts))
    env = client.seal(write_secret(), T0)
    assert len(env.auth.nonce) == 12 and len(env.auth.icv) == 16
    assert isinstance(
        env.auth.algorithm.choice, (e.IcvAlgorithm.Aes128Gcm, e.IcvAlgorithm.Aes256Gcm)
    )
    assert ied.open(wire(env), T0) == write_secret()
    env = client.seal(read_request(), T0 + 1)
    env.auth.nonce = bytes(12)  # the nonce is an input of the GMAC: altering it is detected
    aborts(ied, wire(env), DtDiag.INVALID_ICV, T0 + 1)
    hs = _request(pki, mode=mode, cipher="aes-128-cbc")  # HMAC-SHA256 offered, GMAC wanted
    responder_refuses(
        hs.request, cfg(pki, "ied", mode, **opts), HandshakeDiag.NO_COMMON_ENCRYPTION_MODE
    )


def test_rsa_e2e_certificates(pki):
    ca = pki["ca"]
    rsa_pki = dict(pki)
    rsa_pki["client"] = make_e2e_certificate(ca, "client1@example.test", key_kind="rsa2048")
    client, ied = handshake(cfg(rsa_pki, "client"), cfg(pki, "ied"))
    assert ied.open(wire(client.seal(read_request(), T0)), T0) == read_request()


def test_intermediate_ca_goes_in_cert_path(pki):
    inter = make_ca("intermediate", issuer=pki["ca"])
    leaf = make_e2e_certificate(inter, "client1@example.test")
    assert leaf.chain == [inter.certificate]
    hs = Initiator(cfg({**pki, "client": leaf}, "client"), IED, "3", initiate_request(), T0)
    assert wire(hs.request).tbs.token1.cert_path is not None
    assert Responder(cfg(pki, "ied")).receive(CLIENT, wire(hs.request), T0) is not None
    leaf.chain = []  # without the intermediate the path cannot be built
    hs = Initiator(cfg({**pki, "client": leaf}, "client"), IED, "4", initiate_request(), T0)
    responder_refuses(hs.request, cfg(pki, "ied"), HandshakeDiag.UNTRUSTED_CERTIFICATE)


@pytest.mark.parametrize(
    "mode,cipher",
    [
        (Mode.AUTHENTICATED, "aes-128-gcm"),
        (Mode.ENCRYPTED, "aes-128-gcm"),
        (Mode.ENCRYPTED, "aes-256-cbc"),
    ],
)
def test_rekey_renews_keys_and_is_signed(pki, mode, cipher):
    client, ied = handshake(
        cfg(pki, "client", mode, cipher=cipher, rekey_interval_s=900),
        cfg(pki, "ied", mode, cipher=cipher),
    )
    old = (client._send.enc, client._send.icv, client._send.ctl)
    env = client.seal(read_request(), T0 + 1000)
    assert env.tbp.token2.rekey is not None
    assert (client._send.enc, client._send.icv, client._send.ctl) != old
    assert ied.open(wire(env), T0 + 1000) == read_request()
    assert ied.open(wire(client.seal(read_request(2), T0 + 1001)), T0 + 1001) == read_request(2)
    # The other direction keeps its own keys (each sender renews its own).
    assert client.open(wire(ied.seal(read_response(), T0 + 1002)), T0 + 1002) == read_response()
    # A rekey whose signature is not the peer's: invalid-rekey.
    env = client.seal(read_request(3), T0 + 2000)
    env.tbp.token2.rekey.sign = (
        bytes([env.tbp.token2.rekey.sign[0] ^ 1]) + env.tbp.token2.rekey.sign[1:]
    )
    aborts(ied, wire(env), DtDiag.INVALID_REKEY, T0 + 2000)


def test_keys_older_than_24_hours_abort(pki):
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"))
    late = T0 + 25 * 3600
    client._send.since = late  # a sender that never renewed its keys
    aborts(ied, wire(client.seal(read_request(), late)), DtDiag.REKEY_OVERDUE, late)


def test_rekey_interval_must_be_15_min_to_24_h(pki):
    for bad in (14 * 60, 24 * 3600 + 1):
        with pytest.raises(ConfigError, match="rekey interval"):
            cfg(pki, "client", rekey_interval_s=bad)
    cfg(pki, "client", rekey_interval_s=15 * 60)
    cfg(pki, "client", rekey_interval_s=24 * 3600)


def test_release_is_authenticated(pki):
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"))
    req = client.release_request(T0)
    rsp = ied.answer_release(wire(req), T0)
    client.confirm_release(wire(rsp), T0)
    assert client.state is ied.state is SessionState.RELEASED
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"), asso="8")
    req = client.release_request(T0)
    req.token3.time = format_time(T0 + 1)  # altered after the ICV was computed
    with pytest.raises(ReleaseError, match="ICV"):
        ied.answer_release(wire(req), T0)


def test_application_reject(pki):
    hs = Initiator(cfg(pki, "client"), IED, "7", initiate_request(), T0)
    offer = Responder(cfg(pki, "ied")).receive(CLIENT, wire(hs.request), T0)
    with pytest.raises(ApplicationRejected) as err:
        hs.complete(wire(offer.reject(initiate_error(), T0)), T0)
    assert err.value.pdu == initiate_error()


# ---- data-transfer failures: DtSecAbort with the diagnostic, no payload ------------------


def _tamper(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


def test_altered_tbp_is_an_invalid_icv(pki):
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"))
    data = codec.encode(client.seal(write_secret(), T0))
    data = _tamper(data, SECRET.encode(), b"TopSecretSetpoint4712")
    aborts(ied, codec.decode(data), DtDiag.INVALID_ICV)


@pytest.mark.parametrize(
    "cipher,diag", [("aes-128-gcm", DtDiag.DECRYPTION_FAILED), ("aes-128-cbc", DtDiag.INVALID_ICV)]
)
def test_altered_ciphertext(pki, cipher, diag):
    client, ied = handshake(
        cfg(pki, "client", Mode.ENCRYPTED, cipher=cipher),
        cfg(pki, "ied", Mode.ENCRYPTED, cipher=cipher),
    )
    env = client.seal(write_secret(), T0)
    ct = env.tbp.encrypted_appl_data
    env.tbp.encrypted_appl_data = ct[:5] + bytes([ct[5] ^ 0x40]) + ct[6:]
    aborts(ied, wire(env), diag)


def test_altered_token2_under_gcm(pki):
    client, ied = handshake(cfg(pki, "client", Mode.ENCRYPTED), cfg(pki, "ied", Mode.ENCRYPTED))
    env = client.seal(write_secret(), T0)
    env.tbp.token2.seq = 1  # the AAD no longer matches
    aborts(ied, wire(env), DtDiag.DECRYPTION_FAILED)


@pytest.mark.parametrize("mode", [Mode.AUTHENTICATED, Mode.ENCRYPTED])
def test_replayed_message(pki, mode):
    client, ied = handshake(cfg(pki, "client", mode), cfg(pki, "ied", mode))
    data = codec.encode(client.seal(read_request(), T0))
    assert ied.open(codec.decode(data), T0) == read_request()
    aborts(ied, codec.decode(data), DtDiag.REPLAY, T0 + 1)


def test_message_out_of_sequence(pki):
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"))
    client.seal(read_request(1), T0)
    second = client.seal(read_request(2), T0)
    aborts(ied, wire(second), DtDiag.OUT_OF_SEQUENCE)  # seq 1 before seq 0
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"), asso="9")
    older, newer = client.seal(read_request(1), T0), client.seal(read_request(2), T0 + 1)
    assert ied.open(wire(newer), T0 + 1) == read_request(2)
    aborts(ied, wire(older), DtDiag.OUT_OF_SEQUENCE, T0 + 1)


@pytest.mark.parametrize("offset", [601.0, -601.0])
def test_time_outside_the_window(pki, offset):
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"))
    aborts(ied, wire(client.seal(read_request(), T0 + offset)), DtDiag.TIME_OUT_OF_WINDOW, T0)


def test_e2e_off_envelope_on_a_secured_association(pki):
    _, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"))
    plain = e.AssociationContext(asso_id=ied.asso_id, appl_data=e.ApplData(mmspdu=read_request()))
    aborts(ied, wire(plain), DtDiag.E2E_MISMATCH)


def test_envelope_of_another_association(pki):
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"))
    env = client.seal(read_request(), T0)
    env.tbp.token2.asso_id = "99:1"
    aborts(ied, wire(env), DtDiag.INVALID_ASSO_ID)


def test_clear_transfer_on_an_encrypted_association(pki):
    clear_client, _ = handshake(cfg(pki, "client"), cfg(pki, "ied"))
    _, ied = handshake(
        cfg(pki, "client", Mode.ENCRYPTED), cfg(pki, "ied", Mode.ENCRYPTED), asso="5"
    )
    aborts(ied, wire(clear_client.seal(read_request(), T0)), DtDiag.WRONG_ENVELOPE)


def test_peer_abort_is_reported(pki):
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"))
    with pytest.raises(TransferError) as err:
        ied.open(wire(client.seal(read_request(), T0 + 700)), T0)
    with pytest.raises(PeerAborted) as peer:
        client.open(wire(err.value.reply), T0)
    assert peer.value.diag == DtDiag.TIME_OUT_OF_WINDOW and client.state is SessionState.ABORTED
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"), asso="6")
    with pytest.raises(PeerAborted, match="ApplAbort"):
        ied.open(wire(client.abort(T0)), T0)


# ---- handshake failures: HandshakeSecReject / HandshakeSecAbort with the diagnostic ---------


def _request(pki, who="client", asso="7", now=T0, **kw):
    return Initiator(cfg(pki, who, **kw), IED, asso, initiate_request(), now)


def test_untrusted_certificate(pki):
    hs = _request(pki, "untrusted")
    reply = responder_refuses(hs.request, cfg(pki, "ied"), HandshakeDiag.UNTRUSTED_CERTIFICATE)
    with pytest.raises(HandshakeRejected) as err:
        hs.complete(reply, T0)
    assert err.value.diag == HandshakeDiag.UNTRUSTED_CERTIFICATE


def test_certificate_of_another_jid(pki):
    hs = _request(pki, "wrong_jid")
    responder_refuses(hs.request, cfg(pki, "ied"), HandshakeDiag.PEER_IDENTITY_MISMATCH)
    # The right certificate from a peer that is not the one connected is refused too.
    hs = _request(pki, "client")
    responder_refuses(
        hs.request,
        cfg(pki, "ied"),
        HandshakeDiag.PEER_IDENTITY_MISMATCH,
        "mallory@example.test/IEC",
    )


def test_signature_by_the_wrong_key(pki):
    hs = _request(pki)
    hs.request.sign = crypto.sign(pki["ied"].key, canonical_part(hs.request, "tbs"))
    responder_refuses(hs.request, cfg(pki, "ied"), HandshakeDiag.INVALID_SIGNATURE)


def test_altered_handshake_content(pki):
    hs = _request(pki)
    hs.request.tbs.appl_data.mmspdu.choice.local_detail_calling = 1  # after signing
    responder_refuses(hs.request, cfg(pki, "ied"), HandshakeDiag.INVALID_SIGNATURE)


def test_protected_protocol_must_be_8_2(pki):
    hs = _request(pki)
    hs.request.pp = e.ProtectedProtocol(choice=e.ProtectedProtocol.Iec6185081())
    responder_refuses(hs.request, cfg(pki, "ied"), HandshakeDiag.UNSUPPORTED_PROTOCOL)


def test_wrong_key_usage(pki):
    hs = _request(pki, "no_key_agreement")
    responder_refuses(hs.request, cfg(pki, "ied"), HandshakeDiag.INVALID_KEY_USAGE)


def test_expired_certificate(pki):
    hs = _request(pki, "expired")
    responder_refuses(hs.request, cfg(pki, "ied"), HandshakeDiag.CERTIFICATE_NOT_VALID_NOW)


def test_handshake_time_outside_the_window(pki):
    hs = _request(pki, now=T0 - 601)
    responder_refuses(hs.request, cfg(pki, "ied"), HandshakeDiag.TIME_OUT_OF_WINDOW)


def test_replayed_handshake_request(pki):
    hs = _request(pki)
    responder = Responder(cfg(pki, "ied"))
    assert responder.receive(CLIENT, wire(hs.request), T0) is not None
    with pytest.raises(HandshakeError) as err:
        responder.receive(CLIENT, wire(hs.request), T0 + 1)
    assert err.value.diag is HandshakeDiag.REPLAYED_HANDSHAKE


def test_modes_must_agree(pki):
    hs = _request(pki, mode=Mode.AUTHENTICATED)
    responder_refuses(
        hs.request, cfg(pki, "ied", Mode.ENCRYPTED), HandshakeDiag.NO_COMMON_ENCRYPTION_MODE
    )
    hs = _request(pki, mode=Mode.ENCRYPTED, cipher="aes-256-gcm")
    responder_refuses(
        hs.request, cfg(pki, "ied", Mode.ENCRYPTED), HandshakeDiag.NO_COMMON_ENCRYPTION_MODE
    )
    hs = _request(pki, dh_group="modp-group14")
    responder_refuses(hs.request, cfg(pki, "ied"), HandshakeDiag.UNSUPPORTED_DH_GROUP)


def test_e2e_on_off_mismatch_fails_the_association(pki):
    off = E2EConfig(Mode.OFF)
    # Initiator on, responder off.
    hs = _request(pki)
    reply = responder_refuses(hs.request, off, HandshakeDiag.E2E_MISMATCH)
    with pytest.raises(HandshakeRejected) as err:
        hs.complete(reply, T0)
    assert err.value.diag == HandshakeDiag.E2E_MISMATCH
    # Initiator off (plain initiate), responder on.
    plain = e.AssociationContext(
        pp=e.ProtectedProtocol(choice=e.ProtectedProtocol.Iec6185082()),
        asso_id="7",
        appl_data=e.ApplData(mmspdu=initiate_request()),
    )
    responder_refuses(plain, cfg(pki, "ied"), HandshakeDiag.E2E_MISMATCH)
    # Both off: the plain path applies (no E2E offer).
    assert Responder(off).receive(CLIENT, wire(plain), T0) is None
    # Per peer: E2E off for this client only.
    policy = E2EPolicy(cfg(pki, "ied"), {"client1@example.test": off})
    assert Responder(policy).receive(CLIENT, wire(plain), T0) is None
    # Initiator on, answered with E2E off: HandshakeSecAbort.
    hs = _request(pki, asso="8")
    answer = e.AssociationContext(asso_id="8", appl_data=e.ApplData(mmspdu=initiate_response()))
    with pytest.raises(HandshakeError) as err:
        hs.complete(wire(answer), T0)
    assert err.value.diag is HandshakeDiag.E2E_MISMATCH
    assert isinstance(wire(err.value.reply), e.HandshakeSecAbort)


def test_initiator_checks_the_acceptance(pki):
    hs = _request(pki)
    offer = Responder(cfg(pki, "ied")).receive(CLIENT, wire(hs.request), T0)
    ied, acc = offer.accept(initiate_response(), T0)
    acc.tbs.token1.time = format_time(T0 + 1)  # altered in transit
    with pytest.raises(HandshakeError) as err:
        hs.complete(wire(acc), T0)
    assert err.value.diag is HandshakeDiag.INVALID_SIGNATURE
    abort = wire(err.value.reply)
    assert isinstance(abort, e.HandshakeSecAbort)
    with pytest.raises(PeerAborted):
        ied.open(abort, T0)
    # An acceptance from a certificate of the wrong JID.
    hs = _request(pki, asso="9")
    offer = Responder(cfg(pki, "wrong_jid")).receive(CLIENT, wire(hs.request), T0)
    _, acc = offer.accept(initiate_response(), T0)
    with pytest.raises(HandshakeError) as err:
        hs.complete(wire(acc), T0)
    assert err.value.diag is HandshakeDiag.PEER_IDENTITY_MISMATCH


def test_initiate_pdu_must_be_in_applData(pki):
    config = cfg(pki, "client")
    hs = Initiator(config, IED, "7", read_request(), T0)
    responder_refuses(hs.request, cfg(pki, "ied"), HandshakeDiag.INVALID_APPLICATION_DATA)


def test_config_refuses_a_key_of_another_certificate(pki):
    with pytest.raises(ConfigError, match="does not belong"):
        E2EConfig(
            Mode.AUTHENTICATED,
            certificate=pki["client"].certificate,
            private_key=pki["ied"].key,
            trust_anchors=(pki["ca"].certificate,),
        )


def test_config_from_pem_files(pki, tmp_path):
    inter = make_ca("intermediate", issuer=pki["ca"])
    leaf = make_e2e_certificate(inter, "client1@example.test")
    paths = write_pem(leaf, tmp_path, "client1")
    anchors = tmp_path / "trust.pem"
    anchors.write_bytes(pki["ca"].certificate.public_bytes(Encoding.PEM))
    assert oct(paths["key"].stat().st_mode & 0o777) == "0o600"
    config = E2EConfig.load(
        "encrypted", certificate=paths["certificate"], key=paths["key"], trust_anchors=anchors
    )
    assert config.mode is Mode.ENCRYPTED and config.cert_path == (inter.certificate,)
    assert Responder(cfg(pki, "ied", Mode.ENCRYPTED)).receive(
        CLIENT, wire(Initiator(config, IED, "1", initiate_request(), T0).request), T0
    )
    assert E2EConfig.load("off").mode is Mode.OFF
    with pytest.raises(ConfigError, match="needs --e2e-cert"):
        E2EConfig.load("authenticated", certificate=paths["certificate"])
    with pytest.raises(ConfigError, match="cannot read"):
        E2EConfig.load(
            "authenticated", certificate=tmp_path / "nope", key=paths["key"], trust_anchors=anchors
        )
    with pytest.raises(ConfigError, match="cipher"):
        cfg(pki, "client", Mode.ENCRYPTED, cipher="rot13")
    with pytest.raises(ConfigError, match="ICV"):
        cfg(pki, "client", icv="crc32")


def test_certificate_command_makes_a_working_pair(tmp_path, capsys):
    assert certs_main(["--out", str(tmp_path), "client1@example.test", "ied1@example.test"]) == 0
    assert "trust anchor" in capsys.readouterr().out

    def load(stem: str, mode: Mode = Mode.AUTHENTICATED) -> E2EConfig:
        return E2EConfig.load(
            mode,
            certificate=tmp_path / f"{stem}.crt",
            key=tmp_path / f"{stem}.key",
            trust_anchors=tmp_path / "ca.crt",
        )

    client, ied = handshake(load("client1"), load("ied1"))
    assert ied.open(wire(client.seal(read_request(), T0)), T0) == read_request()


# ---- building blocks ------------------------------------------------------------------------


def test_time_format():
    assert format_time(0.5) == "19700101000000,500Z"
    assert parse_time("20261203151617,089Z") == pytest.approx(
        dt.datetime(2026, 12, 3, 15, 16, 17, 89000, tzinfo=dt.UTC).timestamp()
    )
    for bad in ("2026-12-03T15:16:17Z", "20261203151617.089Z", "20261303151617,089Z"):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_modp_group14_prime_follows_rfc3526():
    def arctan_inv(x: int, digits: int) -> int:
        scale, total, n, sign = 10**digits, 0, 0, 1
        term = scale // x
        while term:
            total += sign * (term // (2 * n + 1))
            term //= x * x
            n, sign = n + 1, -sign
        return total

    digits = 700
    pi = 4 * (4 * arctan_inv(5, digits) - arctan_inv(239, digits))
    p = 2**2048 - 2**1984 - 1 + 2**64 * ((pi * 2**1918) // 10**digits + 124476)
    assert p == crypto.MODP14_P


def test_modp_small_subgroup_values_refused():
    pair = crypto.DhKeyPair.generate("modp-group14")
    for bad in (1, crypto.MODP14_P - 1, 0):
        with pytest.raises(crypto.DhError):
            pair.exchange(bad.to_bytes(256, "big"))


def test_canonical_part_ignores_prefixes_and_whitespace(pki):
    client, _ = handshake(cfg(pki, "client"), cfg(pki, "ied"))
    env = client.seal(read_request(), T0)
    data = codec.encode(env).decode()
    # A server that re-serialises with other prefixes and whitespace changes nothing.
    redone = data.replace("mms:", "x:").replace("xmlns:mms=", "xmlns:x=").replace("><", ">\n <")
    assert canonical_part(codec.decode(redone.encode()), "tbp") == canonical_part(env, "tbp")


# ---- hostile input ------------------------------------------------------------------------


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    mode=st.sampled_from([Mode.AUTHENTICATED, Mode.ENCRYPTED]),
    position=st.floats(0, 1),
    action=st.sampled_from(["flip", "delete", "insert", "hexdigit"]),
    byte=st.integers(0, 255),
)
def test_open_of_mutated_envelopes_raises_only_e2e_errors(pki, mode, position, action, byte):
    client, ied = handshake(cfg(pki, "client", mode), cfg(pki, "ied", mode))
    data = bytearray(codec.encode(client.seal(write_secret(), T0)))
    i = int(position * (len(data) - 1))
    if action == "flip":
        data[i] ^= 1 << (byte % 8)
    elif action == "delete":
        del data[i]
    elif action == "insert":
        data.insert(i, byte)
    else:
        data[i] = ord("0123456789ABCDEF"[byte % 16])
    try:
        envelope = codec.decode(bytes(data))
    except codec.CodecError:
        return  # refused by the codec, before the E2E layer
    try:
        pdu = ied.open(envelope, T0)
    except (TransferError, PeerAborted):
        assert ied.state is SessionState.ABORTED
        return
    assert pdu == write_secret()  # only a mutation that kept the value (e.g. hex case)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(position=st.floats(0, 1), byte=st.integers(0, 255))
def test_responder_on_mutated_handshake_requests_raises_only_handshake_errors(pki, position, byte):
    data = bytearray(codec.encode(_request(pki).request))
    data[int(position * (len(data) - 1))] = byte
    try:
        envelope = codec.decode(bytes(data))
    except codec.CodecError:
        return
    try:
        offer = Responder(cfg(pki, "ied")).receive(CLIENT, envelope, T0)
    except HandshakeError as exc:
        assert isinstance(exc.reply, e.HandshakeSecReject)
        return
    assert offer is not None and offer.initiate_request == initiate_request()


# ---- forged certificates: mutations of the DER inside pkCert -------------------------------

EC_PUBLIC_KEY_OID = bytes.fromhex("06072a8648ce3d0201")  # id-ecPublicKey


def _with_pk_cert(hs, der: bytes, key) -> None:
    """Put ``der`` in the request's pkCert and sign again, so the certificate is what fails."""
    hs.request.tbs.token1.pk_cert = der
    hs.request.sign = crypto.sign(key, canonical_part(hs.request, "tbs"))


def test_certificate_with_an_unknown_key_algorithm_is_malformed(pki):
    der = pki["client"].certificate.public_bytes(Encoding.DER)
    assert der.count(EC_PUBLIC_KEY_OID) == 1
    forged = der.replace(EC_PUBLIC_KEY_OID, EC_PUBLIC_KEY_OID[:-1] + b"\x09")
    hs = _request(pki)
    _with_pk_cert(hs, forged, pki["client"].key)
    responder_refuses(hs.request, cfg(pki, "ied"), HandshakeDiag.MALFORMED_CERTIFICATE)
    # The same forgery in the acceptance: the initiator refuses it with the same diagnostic.
    hs = _request(pki)
    offer = Responder(cfg(pki, "ied")).receive(CLIENT, wire(hs.request), T0)
    _, acc = offer.accept(initiate_response(), T0)
    acc.tbs.token1.pk_cert = forged
    acc.sign = crypto.sign(pki["ied"].key, canonical_part(acc, "tbs"))
    with pytest.raises(HandshakeError) as err:
        hs.complete(wire(acc), T0)
    assert err.value.diag is HandshakeDiag.MALFORMED_CERTIFICATE


def test_forged_intermediate_in_cert_path_is_malformed(pki):
    der = pki["ca"].certificate.public_bytes(Encoding.DER)
    forged = der.replace(EC_PUBLIC_KEY_OID, EC_PUBLIC_KEY_OID[:-1] + b"\x09")
    hs = _request(pki)
    hs.request.tbs.token1.cert_path = e.ClearToken1.CertPath(certificate=[forged])
    hs.request.sign = crypto.sign(pki["client"].key, canonical_part(hs.request, "tbs"))
    responder_refuses(hs.request, cfg(pki, "ied"), HandshakeDiag.MALFORMED_CERTIFICATE)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    position=st.floats(0, 1),
    action=st.sampled_from(["set", "delete", "insert"]),
    byte=st.integers(0, 255),
)
def test_responder_on_mutated_certificate_der_raises_only_handshake_errors(
    pki, position, action, byte
):
    der = bytearray(pki["client"].certificate.public_bytes(Encoding.DER))
    i = int(position * (len(der) - 1))
    if action == "set":
        der[i] = byte
    elif action == "delete":
        del der[i]
    else:
        der.insert(i, byte)
    hs = _request(pki)
    _with_pk_cert(hs, bytes(der), pki["client"].key)
    try:
        offer = Responder(cfg(pki, "ied")).receive(CLIENT, wire(hs.request), T0)
    except HandshakeError as exc:
        assert isinstance(exc.reply, e.HandshakeSecReject)
        return
    assert offer is not None  # a mutation that left a valid certificate (e.g. in the signature)


def test_replayed_handshake_request_with_a_malleated_signature(pki):
    from cryptography.hazmat.primitives.asymmetric.utils import (
        decode_dss_signature,
        encode_dss_signature,
    )

    hs = _request(pki)
    responder = Responder(cfg(pki, "ied"))
    assert responder.receive(CLIENT, wire(hs.request), T0) is not None
    r, s = decode_dss_signature(hs.request.sign)
    order = {
        "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        "secp384r1": int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
            "581A0DB248B0A77AECEC196ACCC52973",
            16,
        ),
    }[pki["client"].key.curve.name]
    hs.request.sign = encode_dss_signature(r, order - s)  # also a valid signature
    with pytest.raises(HandshakeError) as err:
        responder.receive(CLIENT, wire(hs.request), T0 + 1)
    assert err.value.diag is HandshakeDiag.REPLAYED_HANDSHAKE


def test_one_peer_cannot_fill_the_replay_memory(pki, monkeypatch):
    from gridbind.iec61850.e2e import handshake as hs_module

    monkeypatch.setattr(hs_module, "MAX_REPLAY_PER_PEER", 3)
    responder = Responder(cfg(pki, "ied"))
    for asso in range(3):
        assert responder.receive(CLIENT, wire(_request(pki, asso=str(asso)).request), T0)
    with pytest.raises(HandshakeError) as err:
        responder.receive(CLIENT, wire(_request(pki, asso="9").request), T0)
    assert err.value.diag is HandshakeDiag.RESOURCES_EXHAUSTED
    # Another peer is still served.
    other = _request(pki, "wrong_jid")
    assert responder.receive("mallory@example.test/IEC", wire(other.request), T0)
    # Once the window has passed, the first peer's entries are forgotten.
    later = T0 + 2 * cfg(pki, "ied").window_s + 1
    assert responder.receive(CLIENT, wire(_request(pki, now=later).request), later)


def test_appl_abort_must_carry_a_valid_icv(pki):
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"))
    forged = client.abort(T0)
    forged.auth.icv = bytes(len(forged.auth.icv))  # an attacker without the control key
    aborts(ied, wire(forged), DtDiag.INVALID_ICV)
    # Without an authenticator at all.
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"), asso="5")
    bare = client.abort(T0)
    bare.auth = None
    aborts(ied, wire(bare), DtDiag.INVALID_ICV)
    # A genuine ApplAbort, replayed on a later association with the same number, is refused too.
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"), asso="4")
    old = client.abort(T0)
    client, ied = handshake(cfg(pki, "client"), cfg(pki, "ied"), asso="4")
    with pytest.raises(TransferError):
        ied.open(wire(old), T0)


def test_acceptance_is_bound_to_the_request_it_answers(pki):
    # An old, validly signed HandshakeAcc for an earlier request with the same assoID number.
    old = _request(pki, asso="7", now=T0 - 60)
    offer = Responder(cfg(pki, "ied")).receive(CLIENT, wire(old.request), T0 - 60)
    _, old_acc = offer.accept(initiate_response(), T0 - 60)
    hs = _request(pki, asso="7")
    with pytest.raises(HandshakeError) as err:
        hs.complete(wire(old_acc), T0)
    assert err.value.diag is HandshakeDiag.INVALID_SIGNATURE
    # The same for an old ApplicationReject.
    old = _request(pki, asso="7", now=T0 - 60)
    offer = Responder(cfg(pki, "ied")).receive(CLIENT, wire(old.request), T0 - 60)
    old_reject = offer.reject(initiate_error(), T0 - 60)
    hs = _request(pki, asso="7")
    with pytest.raises(HandshakeError) as err:
        hs.complete(wire(old_reject), T0)
    assert err.value.diag is HandshakeDiag.INVALID_SIGNATURE


def test_acceptance_timed_before_the_request_is_refused(pki):
    hs = _request(pki)
    offer = Responder(cfg(pki, "ied")).receive(CLIENT, wire(hs.request), T0)
    _, acc = offer.accept(initiate_response(), T0 - 30)
    with pytest.raises(HandshakeError) as err:
        hs.complete(wire(acc), T0)
    assert err.value.diag is HandshakeDiag.TIME_OUT_OF_WINDOW
    assert isinstance(wire(err.value.reply), e.HandshakeSecAbort)


# ---- trust path rules: intermediates are CAs with keyCertSign, pathLen is respected ---------


def _intermediate(issuer, *, ca=True, key_cert_sign=True, path_length=None):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec as ec_keys
    from cryptography.x509.oid import NameOID

    from gridbind.iec61850.e2e_certs import Issued

    key = ec_keys.generate_private_key(ec_keys.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd intermediate")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=key_cert_sign,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(issuer.key, hashes.SHA256())
    )
    return Issued(cert, key, [issuer.certificate, *issuer.chain])


def _path_refused(pki, inter, anchor=None):
    leaf = make_e2e_certificate(inter, "client1@example.test")
    hs = Initiator(cfg({**pki, "client": leaf}, "client"), IED, "3", initiate_request(), T0)
    ied = cfg(pki, "ied")
    if anchor is not None:
        ied = E2EConfig(
            Mode.AUTHENTICATED,
            certificate=pki["ied"].certificate,
            private_key=pki["ied"].key,
            trust_anchors=(anchor.certificate,),
        )
    return responder_refuses(hs.request, ied, HandshakeDiag.INVALID_CERTIFICATE_PATH)


def test_intermediate_without_key_cert_sign_is_refused(pki):
    _path_refused(pki, _intermediate(pki["ca"], key_cert_sign=False))


def test_intermediate_that_is_not_a_ca_is_refused(pki):
    _path_refused(pki, _intermediate(pki["ca"], ca=False))


def test_path_length_constraints_are_respected(pki):
    # An intermediate with pathLen 0 may not have another intermediate below it.
    upper = make_ca("upper", issuer=pki["ca"], path_length=0)
    lower = make_ca("lower", issuer=upper)
    _path_refused(pki, lower)
    # A trust anchor with pathLen 0 admits no intermediate at all.
    root = make_ca("strict root", path_length=0)
    _path_refused(pki, make_ca("below strict root", issuer=root), anchor=root)
    # pathLen 1 admits exactly one.
    upper = make_ca("upper 1", issuer=pki["ca"], path_length=1)
    leaf = make_e2e_certificate(make_ca("lower 1", issuer=upper), "client1@example.test")
    hs = Initiator(cfg({**pki, "client": leaf}, "client"), IED, "3", initiate_request(), T0)
    assert Responder(cfg(pki, "ied")).receive(CLIENT, wire(hs.request), T0) is not None
