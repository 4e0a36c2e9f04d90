"""The directly written and read ``EncrTransfer`` envelope (``e2ewire.py``) against the codec.

The writer must produce exactly the gate's (validated) encoding, or leave the envelope to it; the
reader must accept only what the validating path accepts, with the same value and size, and leave
everything else (mutated, oversized, other forms) to that path, which then decides as before.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_e2e_canonical import values
from test_e2e_canonical import write as write_pdu

import gridbind.generated.iec61850_8_2 as m
from gridbind.generated.iec61850_8_2 import e2e_4 as e
from gridbind.iec61850 import codec, e2ewire
from gridbind.iec61850.codec import Codec, Limits
from gridbind.iec61850.e2e.tokens import alternative, format_time
from gridbind.iec61850.stanza import Received, decode_payload, payload_bytes, to_bytes, unwrap

pytestmark = pytest.mark.timeout(120)

GATE = codec.default_codec()
NS = e.__NAMESPACE__

asso_ids = st.from_regex(r"[0-9]{1,10}(:[0-9]{1,10})?", fullmatch=True)
times = st.floats(0, 4102444800).map(format_time)
seqs = st.integers(0, 2**32 - 1)
octets = st.binary(min_size=1, max_size=48)


def envelope(asso_id: str, time: str, seq: int, iv: bytes | None, data: bytes) -> e.EncrTransfer:
    return e.EncrTransfer(
        tbp=e.EncrTbp(
            token2=e.ClearToken2(asso_id=asso_id, time=time, seq=seq, iv=iv),
            encrypted_appl_data=data,
        )
    )


def generic(obj: e.EncrTransfer) -> bytes | type[Exception]:
    try:
        return GATE.encode(obj)
    except codec.CodecError as exc:
        return type(exc)


# ------------------------------------------------------------------------------ the writer
@settings(max_examples=150, deadline=None)
@given(asso_ids, times, seqs, octets, octets)
def test_writer_bytes_are_the_codec_s(asso_id, time, seq, iv, data) -> None:
    env = envelope(asso_id, time, seq, iv, data)
    written = e2ewire.write(env, GATE)
    assert written is not None  # every valid value of this shape takes the direct way
    assert written == GATE.encode(env)
    assert payload_bytes(env, GATE) == written


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(asso_ids, st.text(max_size=12)),
    st.one_of(times, st.text(max_size=22)),
    st.one_of(seqs, st.integers(-(2**33), 2**33)),
    st.one_of(st.none(), st.binary(max_size=20)),
    st.binary(max_size=20),
)
@example("x1", "20260101000000,000Z", 0, b"\x01", b"\x02")  # assoID refused by the schema
@example("1", "20260101000000,000Z", 2**32, b"\x01", b"\x02")  # seq out of range
@example("1", "2026010100000,000Z", 0, b"\x01", b"\x02")  # time form
@example("1", "20260101000000,000Z", 0, b"", b"\x02")  # empty iv
def test_writer_never_writes_what_the_codec_would_not(asso_id, time, seq, iv, data) -> None:
    env = envelope(asso_id, time, seq, iv, data)
    expected = generic(env)
    written = e2ewire.write(env, GATE)
    if written is not None:
        assert written == expected
    try:
        via_stanza: bytes | type[Exception] = payload_bytes(env, GATE)
    except codec.CodecError as exc:
        via_stanza = type(exc)
    assert via_stanza == expected


def test_writer_leaves_other_shapes_to_the_codec() -> None:
    env = envelope("1:2", "20260101000000,000Z", 3, b"\x01" * 16, b"\x02" * 16)
    env.auth = e.Authenticator(algorithm=alternative(e.IcvAlgorithm, "hmac-sha256"), icv=b"\x01")
    assert e2ewire.write(env, GATE) is None
    assert payload_bytes(env, GATE) == GATE.encode(env)
    env.auth = None
    env.tbp.token2.rekey = e.ClearToken2.Rekey(
        dh_key=alternative(e.DhKey, "ecdh-secp256r1", b"\x04" + b"\x05" * 64), sign=b"\x06" * 64
    )
    assert e2ewire.write(env, GATE) is None
    assert payload_bytes(env, GATE) == GATE.encode(env)


# ------------------------------------------------------------------------------ the reader
def received(payload: bytes, gate: Codec = GATE) -> Received | None:
    """The payload as the XMPP transport hands it to the gate (None: not well-formed XML)."""
    try:
        iq = ET.fromstring(b'<iq xmlns="jabber:client" type="get">' + payload + b"</iq>")
    except ET.ParseError:
        return None
    found = unwrap(iq)
    if found is None:
        return None
    return decode_payload(found, gate, Received("iq", "get", "peer@x/IEC", "1"))


def validating(payload: bytes, gate: Codec = GATE) -> tuple[object, int] | type[Exception]:
    """What the generic validating path makes of the stanza's payload element."""
    iq = ET.fromstring(b'<iq xmlns="jabber:client" type="get">' + payload + b"</iq>")
    found = unwrap(iq)
    assert found is not None
    if found.problem is not None:
        return codec.SchemaViolation
    data = to_bytes(found.element)
    try:
        return gate.decode(data), len(data)
    except codec.CodecError as exc:
        return type(exc)


def same_as_validating(payload: bytes, gate: Codec = GATE) -> bool:
    """Checks the differential property; True when the direct reader took the envelope."""
    item = received(payload, gate)
    if item is None:
        return False
    found = unwrap(ET.fromstring(b'<iq xmlns="jabber:client">' + payload + b"</iq>"))
    assert found is not None
    fast = e2ewire.read(found.element, gate.limits.max_bytes)
    expected = validating(payload, gate)
    if fast is not None:
        assert found.problem is None
        assert expected == fast  # accepted by the schema, with the same value and size
    if isinstance(expected, tuple):
        assert item.error is None
        assert (item.payload, item.size) == expected
        assert item.association == expected[0].tbp.token2.asso_id  # type: ignore[attr-defined]
    else:
        assert item.payload is None
        assert type(item.error) is expected
    return fast is not None


@settings(max_examples=150, deadline=None)
@given(asso_ids, times, seqs, octets, octets)
def test_reader_takes_the_writer_s_envelopes(asso_id, time, seq, iv, data) -> None:
    env = envelope(asso_id, time, seq, iv, data)
    assert same_as_validating(GATE.encode(env))


_ALPHABET = list("<>/=\"' \t\n\r:,;&#!?Z0123456789abcdefABCDEFGxmlns") + [
    "é",
    "\u0660",
    "&#48;",
    "&amp;",
    "<!-- c -->",
    "<?pi x?>",
    "<iv>00</iv>",
    "<auth/>",
    ' xmlns="urn:x"',
    ' a="1"',
    "<![CDATA[AB]]>",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(asso_ids, times, seqs, octets, octets, st.data())
def test_reader_on_mutated_envelopes_matches_the_validating_path(
    asso_id, time, seq, iv, data, draw
) -> None:
    text = GATE.encode(envelope(asso_id, time, seq, iv, data)).decode()
    for _ in range(draw.draw(st.integers(1, 3))):
        at = draw.draw(st.integers(0, len(text)))
        op = draw.draw(st.sampled_from(("insert", "delete", "replace")))
        piece = draw.draw(st.sampled_from(_ALPHABET))
        if op == "insert":
            text = text[:at] + piece + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + draw.draw(st.integers(1, 4)) :]
        else:
            text = text[:at] + piece + text[at + 1 :]
    same_as_validating(text.encode())


def test_reader_leaves_other_forms_to_the_validating_path() -> None:
    head = f'<EncrTransfer xmlns="{NS}"><tbp><token2><assoID>1:2</assoID>'
    good = (
        head + "<time>20260101000000,000Z</time><seq>5</seq><iv>0A0B</iv></token2>"
        "<encrypted-applData>0C0D</encrypted-applData></tbp></EncrTransfer>"
    )
    assert same_as_validating(good.encode())
    accepted_elsewhere = [  # the schema accepts them: the generic path decodes them
        good.replace("0A0B", "0a0b"),
        good.replace("<seq>5</seq>", "<seq>05</seq>"),
        good.replace("<seq>5</seq>", "<seq> 5 </seq>"),
        good.replace("<iv>0A0B</iv>", "<iv> 0A0B\n</iv>"),
        good.replace("<tbp>", "<tbp>\n  "),
    ]
    refused = [
        good.replace("<seq>5</seq>", "<seq>4294967296</seq>"),
        good.replace("<seq>5</seq>", "<seq>-1</seq>"),
        good.replace("1:2", "1:2:3"),
        good.replace("000Z", "000"),
        good.replace("0A0B", "0A0"),
        good.replace("0A0B", "0G0B"),
        good.replace("<tbp>", '<tbp a="1">'),
        good.replace("<tbp>", "<tbp>x"),
        good.replace("</token2>", "<rekey/></token2>"),
        good.replace("</tbp>", "</tbp><auth/>"),
        good.replace("</tbp>", "</tbp><tbp/>"),
        good.replace("<iv>0A0B</iv>", ""),  # GCM needs an iv, but the schema does not
        good.replace("<iv>0A0B</iv>", "<iv/>"),
        good.replace(f'xmlns="{NS}"', 'xmlns="urn:other"'),
    ]
    for text in accepted_elsewhere + refused:
        assert not same_as_validating(text.encode()), text
    for text in accepted_elsewhere:
        item = received(text.encode())
        assert item is not None and item.error is None, text
    for text in refused[:10]:
        item = received(text.encode())
        assert item is not None and item.error is not None, text


def test_reader_leaves_an_oversized_envelope_to_the_limit_check() -> None:
    small = Codec(Limits(max_bytes=400))
    env = envelope("1:2", "20260101000000,000Z", 5, b"\x01" * 12, b"\x02" * 200)
    item = received(GATE.encode(env), small)
    assert item is not None and isinstance(item.error, codec.LimitExceeded)
    assert same_as_validating(GATE.encode(envelope("1", "20260101000000,000Z", 5, b"1", b"2")))


# ------------------------------------------------------------------------------ ClearTransfer
ICV_ALGORITHMS = st.sampled_from(("hmac-sha256", "aes-128-gcm", "aes-256-gcm"))


def clear(asso_id, time, seq, pdu, algorithm, nonce, icv) -> e.ClearTransfer:
    return e.ClearTransfer(
        tbp=e.ClearTbp(
            token2=e.ClearToken2(asso_id=asso_id, time=time, seq=seq),
            appl_data=e.ApplData(mmspdu=pdu),
        ),
        auth=e.Authenticator(
            nonce=nonce, algorithm=alternative(e.IcvAlgorithm, algorithm), icv=icv
        ),
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    asso_ids,
    times,
    seqs,
    st.lists(values, min_size=1, max_size=4),
    ICV_ALGORITHMS,
    st.one_of(st.none(), octets),
    octets,
)
def test_clear_writer_bytes_are_the_codec_s(asso_id, time, seq, data, algorithm, nonce, icv):
    env = clear(asso_id, time, seq, write_pdu(data), algorithm, nonce, icv)
    written = e2ewire.write_clear(env, GATE)
    assert written is not None
    assert written == GATE.encode(env)
    assert payload_bytes(env, GATE) == written


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(asso_ids, st.text(max_size=12)),
    st.one_of(times, st.text(max_size=22)),
    st.one_of(seqs, st.integers(-(2**33), 2**33)),
    st.lists(values, min_size=1, max_size=3),
    ICV_ALGORITHMS,
    st.one_of(st.none(), st.binary(max_size=8)),
    st.binary(max_size=8),
)
def test_clear_writer_never_writes_what_the_codec_would_not(
    asso_id, time, seq, data, algorithm, nonce, icv
) -> None:
    env = clear(asso_id, time, seq, write_pdu(data), algorithm, nonce, icv)
    expected = generic(env)
    written = e2ewire.write_clear(env, GATE)
    if written is not None:
        assert written == expected
    try:
        via_stanza: bytes | type[Exception] = payload_bytes(env, GATE)
    except codec.CodecError as exc:
        via_stanza = type(exc)
    assert via_stanza == expected


def test_clear_writer_refuses_what_the_schema_refuses() -> None:
    bad = m.Mmspdu(choice=m.Mmspdu.CancelRequestPdu(value=-1))  # invokeID is unsigned
    env = clear("1:2", "20260101000000,000Z", 0, bad, "hmac-sha256", None, b"\x01")
    assert e2ewire.write_clear(env, GATE) is None
    with pytest.raises(codec.EncodeError):
        payload_bytes(env, GATE)
    env.tbp.appl_data.mmspdu = m.Mmspdu(choice=m.Mmspdu.CancelRequestPdu(value=1))
    assert payload_bytes(env, GATE) == GATE.encode(env)
    env.tbp.token2.iv = b"\x01"  # another shape: the codec's way
    assert e2ewire.write_clear(env, GATE) is None
    assert payload_bytes(env, GATE) == GATE.encode(env)
