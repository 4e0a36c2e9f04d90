"""The directly written canonical bytes of the E2E transfer parts (``e2e/canonical.py``).

They must be byte for byte the generic canonical form (DECISIONS.md 36: Exclusive C14N of the
codec's encoding of the whole envelope), for every token and PDU, and a change of any field
they cover must make the receiver abort.
"""

from __future__ import annotations

import dataclasses

import pytest
import test_e2e_security as sec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_e2e_security import T0, aborts, cfg, handshake, pki, wire  # noqa: F401 - pki fixture

import gridbind.generated.iec61850_8_2 as m
from gridbind.generated.iec61850_8_2 import e2e_4 as e
from gridbind.iec61850 import codec, mmsdata
from gridbind.iec61850.e2e import DtDiag, Mode
from gridbind.iec61850.e2e.canonical import TransferCanon, aad, generic_aad
from gridbind.iec61850.e2e.tokens import alternative, canonical_part, format_time

pytestmark = pytest.mark.timeout(120)

asso_ids = st.from_regex(r"[0-9]{1,10}(:[0-9]{1,10})?", fullmatch=True)
times = st.floats(0, 4102444800).map(format_time)  # 1970..2100
seqs = st.integers(0, 2**32 - 1)
ivs = st.one_of(st.none(), st.binary(max_size=16))
# Text C14N escapes (&, <, >, CR) and non-ASCII, in the PDU the ICV covers (XML 1.0 text:
# no surrogates, no C0 controls but TAB/LF/CR, no noncharacters such as U+FFFE).
texts = st.text(
    st.one_of(
        st.sampled_from("&<>\r\n\t\"' ]]>"),
        st.characters(blacklist_categories=("Cs", "Cc", "Cn"), max_codepoint=0x2FFFF),
    ),
    max_size=12,
)
leaves = st.one_of(
    texts.map(mmsdata.mms_string),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12).map(
        mmsdata.visible_string
    ),
    st.integers().map(mmsdata.integer),
    st.floats(width=32).map(mmsdata.float32),
    st.binary(max_size=8).map(mmsdata.octet_string),
    st.booleans().map(mmsdata.boolean),
)
values = st.recursive(
    leaves, lambda c: st.lists(c, max_size=3).map(mmsdata.structure), max_leaves=10
)


def write(data: list[m.Data]) -> m.Mmspdu:
    pdu = sec.write_secret()
    pdu.choice.service.choice.list_of_data = m.ListOfData(data=data)
    return pdu


def token(asso_id: str, time: str, seq: int, iv: bytes | None) -> e.ClearToken2:
    return e.ClearToken2(asso_id=asso_id, time=time, seq=seq, iv=iv)


@settings(max_examples=100, deadline=None)
@given(asso_ids, times, seqs, ivs)
def test_aad_is_the_canonical_token2(asso_id, time, seq, iv) -> None:
    t = token(asso_id, time, seq, iv)
    assert aad(t) == generic_aad(t)
    assert TransferCanon(asso_id).aad(t) == generic_aad(t)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(asso_ids, times, seqs, ivs, st.lists(values, min_size=1, max_size=4))
def test_clear_tbp_is_the_canonical_tbp(asso_id, time, seq, iv, data) -> None:
    env = e.ClearTransfer(
        tbp=e.ClearTbp(
            token2=token(asso_id, time, seq, iv), appl_data=e.ApplData(mmspdu=write(data))
        ),
        auth=e.Authenticator(algorithm=alternative(e.IcvAlgorithm, "hmac-sha256"), icv=b"\x01"),
    )
    assert TransferCanon(asso_id).clear_tbp(env) == canonical_part(env, "tbp")


@settings(max_examples=80, deadline=None)
@given(asso_ids, times, seqs, ivs, st.binary(max_size=64))
def test_encr_tbp_is_the_canonical_tbp(asso_id, time, seq, iv, ciphertext) -> None:
    env = e.EncrTransfer(
        tbp=e.EncrTbp(token2=token(asso_id, time, seq, iv), encrypted_appl_data=ciphertext)
    )
    assert TransferCanon(asso_id).encr_tbp(env) == canonical_part(env, "tbp")


def test_other_tokens_take_the_generic_path() -> None:
    """A rekey, another assoID or a value off the schema's form: the generic bytes."""
    rekey = e.ClearToken2.Rekey(
        dh_key=alternative(e.DhKey, "ecdh-secp256r1", b"\x04" * 65), sign=b"\x30\x01"
    )
    base = token("1:2", format_time(T0), 5, bytes(12))
    for t in (
        dataclasses.replace(base, rekey=rekey),
        dataclasses.replace(base, asso_id="3:4"),
        dataclasses.replace(base, time="x&y<z>\r"),
        dataclasses.replace(base, seq=True),
    ):
        env = e.EncrTransfer(tbp=e.EncrTbp(token2=t, encrypted_appl_data=b"\x00\xff"))
        canon = TransferCanon("1:2")
        assert canon.aad(t) == generic_aad(t)
        assert canon.encr_tbp(env) == canonical_part(env, "tbp")
        clear = e.ClearTransfer(
            tbp=e.ClearTbp(token2=t, appl_data=e.ApplData(mmspdu=sec.read_request())),
            auth=e.Authenticator(algorithm=alternative(e.IcvAlgorithm, "hmac-sha256"), icv=b"1"),
        )
        assert canon.clear_tbp(clear) == canonical_part(clear, "tbp")
    assert TransferCanon("&1").aad(base) == generic_aad(base)


_MODES = {
    "authenticated": {"mode": Mode.AUTHENTICATED},
    "gcm": {"mode": Mode.ENCRYPTED},
    "cbc": {"mode": Mode.ENCRYPTED, "cipher": "aes-128-cbc"},
    "cbc-gmac": {"mode": Mode.ENCRYPTED, "cipher": "aes-128-cbc", "icv": "aes-128-gcm"},
}


def pair(pki, kind: str, asso: str = "7"):  # noqa: F811 - the pki fixture's value
    kw = _MODES[kind]
    return handshake(cfg(pki, "client", **kw), cfg(pki, "ied", **kw), asso=asso)


@pytest.fixture(scope="module")
def sessions(pki):  # noqa: F811
    return {kind: pair(pki, kind) for kind in _MODES}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(kind=st.sampled_from(sorted(_MODES)), data=st.lists(values, min_size=1, max_size=4))
def test_seal_wire_open_round_trips(sessions, kind, data) -> None:
    client, ied = sessions[kind]
    pdu = write(data)
    opened = ied.open(wire(client.seal(pdu, T0)), T0)
    assert opened == wire_pdu(pdu)


def wire_pdu(pdu: m.Mmspdu) -> m.Mmspdu:
    """The PDU as the peer decodes it (a CR or float NaN compare as decoded values)."""
    return codec.decode(codec.encode(pdu))


def _set_time(env, _):
    t = env.tbp.token2  # one millisecond later (same window, same sequence rules)
    t.time = t.time[:17] + str((int(t.time[17]) + 1) % 10) + "Z"


def _set_seq(env, _):
    env.tbp.token2.seq += 1


def _set_iv(env, kind):
    t = env.tbp.token2  # one bit of the nonce/IV flipped, or an IV added where there is none
    t.iv = bytes(12) if t.iv is None else bytes([t.iv[0] ^ 1]) + t.iv[1:]


def _set_appl(env, kind):
    if isinstance(env, e.ClearTransfer):
        data = env.tbp.appl_data.mmspdu.choice.service.choice.list_of_data.data
        data[0] = m.Data(choice=m.Data.VisibleString(value=sec.SECRET[:-1] + "2"))
    else:
        ct = env.tbp.encrypted_appl_data
        env.tbp.encrypted_appl_data = ct[:-1] + bytes([ct[-1] ^ 1])


def _set_asso(env, _):
    env.tbp.token2.asso_id = "8:" + env.tbp.token2.asso_id.split(":")[1]


_ICV_OR_DECRYPT = {
    "authenticated": DtDiag.INVALID_ICV,
    "gcm": DtDiag.DECRYPTION_FAILED,
    "cbc": DtDiag.INVALID_ICV,
    "cbc-gmac": DtDiag.INVALID_ICV,
}


@pytest.mark.parametrize("kind", sorted(_MODES))
@pytest.mark.parametrize(
    "field,tamper",
    [("time", _set_time), ("seq", _set_seq), ("iv", _set_iv), ("applData", _set_appl)],
)
def test_each_covered_field_is_protected(pki, kind, field, tamper) -> None:  # noqa: F811
    client, ied = pair(pki, kind)
    assert ied.open(wire(client.seal(sec.write_secret(1), T0)), T0) == sec.write_secret(1)
    env = wire(client.seal(sec.write_secret(), T0))
    tamper(env, kind)
    aborts(ied, wire(env), _ICV_OR_DECRYPT[kind])


@pytest.mark.parametrize("kind", sorted(_MODES))
def test_another_asso_id_is_refused(pki, kind) -> None:  # noqa: F811
    client, ied = pair(pki, kind)
    env = wire(client.seal(sec.write_secret(), T0))
    _set_asso(env, kind)
    aborts(ied, wire(env), DtDiag.INVALID_ASSO_ID)
