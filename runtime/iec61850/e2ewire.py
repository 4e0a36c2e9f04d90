"""The per-message E2E envelopes on the wire, written (and read) without the generic codec.

An encrypted association sends every PDU in the same eight-element envelope; only ``time``,
``seq``, ``iv`` and ``encrypted-applData`` change from one message to the next. Encoding and
validating that envelope generically, and parsing and validating it generically on receipt, cost
as much as the rest of the per-message E2E work together, so:

- :func:`write`: the envelope's constant parts are encoded and validated by the gate once per
  assoID (a probe envelope, so a bad assoID fails there as it would in the whole); per message
  the four values are checked against their schema forms (``E2ETime``'s pattern, the range of
  ``xs:unsignedInt``, non-empty ``hexBinary``) and written between those parts. Output is
  schema-valid by construction and byte for byte the gate's encoding of the same object.
- :func:`read`: an ``xml.etree`` element of exactly that shape (no attributes, no stray text,
  each value in the canonical form the writer produces) becomes the typed envelope directly.
  Anything else is ``None``: the caller then takes the generic validating path, which accepts
  or refuses it as before. The reader accepts only a subset of what the schema accepts, with the
  same typed value.

Anything outside that shape (CBC's ``auth``, a ``rekey``, ...) goes the generic way on both
sides.

:func:`write_clear` does the same for an authenticated association's ``ClearTransfer``: its
constant parts per (assoID, ICV algorithm, nonce or not) from a validated probe, the ``MMSpdu``
encoded and validated on its own (the schema's ``applData`` holds the global ``MMSpdu`` element
by reference, so the check is the same) and written under the envelope's ``mms`` prefix, and
the ICV (and GMAC nonce) as upper-case hex: again the gate's bytes, byte for byte. A received
``ClearTransfer`` is decoded generically: its ``MMSpdu`` needs the full schema check anyway.
"""

from __future__ import annotations

import binascii
import re
import xml.etree.ElementTree as ET
from typing import Any

from lxml import etree

from gridbind.generated.iec61850_8_2 import e2e_4 as _e2e
from gridbind.generated.iec61850_8_2 import scsm_8_2 as _scsm

from . import codec as _codec
from . import fastxer as _fastxer

__all__ = ["write", "write_clear", "read"]

_NS = "{" + _e2e.__NAMESPACE__ + "}"
_ROOT = _NS + "EncrTransfer"
_TBP, _TOKEN2, _DATA = _NS + "tbp", _NS + "token2", _NS + "encrypted-applData"
_FIELDS = (_NS + "assoID", _NS + "time", _NS + "seq", _NS + "iv")

_TIME = re.compile(r"[0-9]{14},[0-9]{3}Z").fullmatch
_ASSO = re.compile(r"[0-9]{1,10}(?::[0-9]{1,10})?").fullmatch
_SEQ = re.compile(r"0|[1-9][0-9]{0,9}").fullmatch
_UINT_MAX = 0xFFFFFFFF

# Probe values: each appears exactly once in the probe's encoding (checked when it is cut).
_P_TIME = "99999999999999,999Z"
_P_SEQ = 4294967295
_P_IV = b"\xab" * 7
_P_DATA = b"\xcd" * 9

#: assoID -> the five constant parts around time, seq, iv and ciphertext. Bounded: assoIDs of
#: received associations come from peers.
_PARTS: dict[str, tuple[bytes, ...] | None] = {}
_PARTS_MAX = 1024


def _token_in_form(token2: _e2e.ClearToken2) -> bool:
    """assoID, time and seq are of the types and forms the writers splice in unchanged."""
    time, seq = token2.time, token2.seq
    return (
        type(token2.asso_id) is str
        and type(time) is str
        and _TIME(time) is not None
        and type(seq) is int
        and 0 <= seq <= _UINT_MAX
    )


def write(obj: Any, gate: _codec.Codec) -> bytes | None:
    """The gate's encoding of an AES-GCM ``EncrTransfer`` (no ``auth``, no ``rekey``), or None
    when ``obj`` is anything else or a value is not in the form the writer checks (the caller
    then encodes it generically)."""
    if type(obj) is not _e2e.EncrTransfer or obj.auth is not None:
        return None
    tbp = obj.tbp
    if type(tbp) is not _e2e.EncrTbp:
        return None
    token2, data = tbp.token2, tbp.encrypted_appl_data
    if type(token2) is not _e2e.ClearToken2 or token2.rekey is not None:
        return None
    iv = token2.iv
    if (
        not _token_in_form(token2)
        or type(iv) is not bytes
        or not iv
        or type(data) is not bytes
        or not data
    ):
        return None
    asso_id, time, seq = token2.asso_id, token2.time, token2.seq
    try:  # not `in` then `[]`: a clear() in between would raise
        parts = _PARTS[asso_id]
    except KeyError:
        parts = _cut(asso_id, gate)
    if parts is None:
        return None
    return b"".join(
        (
            parts[0],
            time.encode(),
            parts[1],
            str(seq).encode(),
            parts[2],
            binascii.hexlify(iv).upper(),
            parts[3],
            binascii.hexlify(data).upper(),
            parts[4],
        )
    )


def _cut(asso_id: str, gate: _codec.Codec) -> tuple[bytes, ...] | None:
    probe = _e2e.EncrTransfer(
        tbp=_e2e.EncrTbp(
            token2=_e2e.ClearToken2(asso_id=asso_id, time=_P_TIME, seq=_P_SEQ, iv=_P_IV),
            encrypted_appl_data=_P_DATA,
        )
    )
    markers = [
        _P_TIME.encode(),
        str(_P_SEQ).encode(),
        binascii.hexlify(_P_IV).upper(),
        binascii.hexlify(_P_DATA).upper(),
    ]
    parts = _cut_probe(probe, markers, gate)
    if len(_PARTS) >= _PARTS_MAX:
        _PARTS.clear()
    _PARTS[asso_id] = parts
    return parts


_ICV_ALGS = (
    _e2e.IcvAlgorithm.HmacSha256,
    _e2e.IcvAlgorithm.Aes128Gcm,
    _e2e.IcvAlgorithm.Aes256Gcm,
)
_MMS_MAP: dict[str | None, str] = {"mms": _scsm.__NAMESPACE__}
# The MMSpdu encoded alone declares the prefix the envelope's root declares for it.
_MMS_DECL = b'<mms:MMSpdu xmlns:mms="' + _scsm.__NAMESPACE__.encode() + b'"'
_P_PDU = _scsm.Mmspdu(choice=_scsm.Mmspdu.ConcludeRequestPdu())
_P_PDU_BYTES = b"<mms:MMSpdu><mms:conclude-RequestPDU/></mms:MMSpdu>"
_P_NONCE = b"\xef" * 5
_P_ICV = b"\x9a" * 11

_ClearKey = tuple[str, type, bool]
_CLEAR_PARTS: dict[_ClearKey, tuple[bytes, ...] | None] = {}


def write_clear(obj: Any, gate: _codec.Codec) -> bytes | None:
    """The gate's encoding of a ``ClearTransfer`` (no ``iv``, no ``rekey``), or None when
    ``obj`` is anything else or a value is off the checked forms (the caller then encodes it
    generically, which reports what is wrong)."""
    if type(obj) is not _e2e.ClearTransfer:
        return None
    tbp, auth = obj.tbp, obj.auth
    if type(tbp) is not _e2e.ClearTbp or type(auth) is not _e2e.Authenticator:
        return None
    token2, appl = tbp.token2, tbp.appl_data
    if (
        type(token2) is not _e2e.ClearToken2
        or token2.rekey is not None
        or token2.iv is not None
        or type(appl) is not _e2e.ApplData
        or type(appl.mmspdu) is not _scsm.Mmspdu
    ):
        return None
    algorithm, nonce, icv = auth.algorithm, auth.nonce, auth.icv
    if (
        type(algorithm) is not _e2e.IcvAlgorithm
        or type(algorithm.choice) not in _ICV_ALGS
        or (nonce is not None and (type(nonce) is not bytes or not nonce))
        or type(icv) is not bytes
        or not icv
    ):
        return None
    if not _token_in_form(token2):
        return None
    asso_id, time, seq = token2.asso_id, token2.time, token2.seq
    key = (asso_id, type(algorithm.choice), nonce is not None)
    try:
        parts = _CLEAR_PARTS[key]
    except KeyError:
        parts = _cut_clear(key, gate)
    if parts is None:
        return None
    pdu = mms_bytes(appl.mmspdu, gate)
    if pdu is None:
        return None
    out = [parts[0], time.encode(), parts[1], str(seq).encode(), parts[2], pdu, parts[3]]
    if nonce is not None:
        out += [binascii.hexlify(nonce).upper(), parts[4]]
    out += [binascii.hexlify(icv).upper(), parts[-1]]
    return b"".join(out)


def mms_bytes(pdu: _scsm.Mmspdu, gate: _codec.Codec) -> bytes | None:
    """The MMSpdu as it appears inside the envelope, validated; None: leave it to the gate."""
    root = _fastxer.encode(pdu, _MMS_MAP)
    if root is None or not gate.schema.validate(root):
        return None
    data: bytes = etree.tostring(root, encoding="utf-8")
    if not data.startswith(_MMS_DECL):
        return None
    return b"<mms:MMSpdu" + data[len(_MMS_DECL) :]


def _cut_clear(key: _ClearKey, gate: _codec.Codec) -> tuple[bytes, ...] | None:
    asso_id, algorithm, with_nonce = key
    probe = _e2e.ClearTransfer(
        tbp=_e2e.ClearTbp(
            token2=_e2e.ClearToken2(asso_id=asso_id, time=_P_TIME, seq=_P_SEQ),
            appl_data=_e2e.ApplData(mmspdu=_P_PDU),
        ),
        auth=_e2e.Authenticator(
            nonce=_P_NONCE if with_nonce else None,
            algorithm=_e2e.IcvAlgorithm(choice=algorithm()),
            icv=_P_ICV,
        ),
    )
    markers = [_P_TIME.encode(), str(_P_SEQ).encode(), _P_PDU_BYTES]
    if with_nonce:
        markers.append(binascii.hexlify(_P_NONCE).upper())
    markers.append(binascii.hexlify(_P_ICV).upper())
    parts = _cut_probe(probe, markers, gate)
    if len(_CLEAR_PARTS) >= _PARTS_MAX:
        _CLEAR_PARTS.clear()
    _CLEAR_PARTS[key] = parts
    return parts


def _cut_probe(probe: Any, markers: list[bytes], gate: _codec.Codec) -> tuple[bytes, ...] | None:
    """The probe's encoding cut at each marker (each must occur exactly once, in order)."""
    try:
        data = gate.encode(probe)  # validated: an invalid assoID fails here, as in the whole
    except _codec.CodecError:
        return None
    parts: list[bytes] = []
    rest = data
    for marker in markers:
        if data.count(marker) != 1 or rest.count(marker) != 1:
            return None
        head, _, rest = rest.partition(marker)
        parts.append(head)
    parts.append(rest)
    return tuple(parts)


def _leaf(el: ET.Element, tag: str) -> str | None:
    # An element of exactly ``tag`` holding only text: its text, else None.
    if el.tag != tag or el.attrib or len(el) or el.tail:
        return None
    text = el.text
    return text if type(text) is str else None


def _hex(text: str) -> bytes | None:
    # Upper-case hex digit pairs only (the writer's form; a regex is ten times slower on a
    # kilobyte): unhexlify refuses odd lengths, white space and non-hex or non-ASCII text.
    if not text or text.upper() != text:
        return None
    try:
        return binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        return None


def read(element: ET.Element, max_bytes: int) -> tuple[_e2e.EncrTransfer, int] | None:
    """``(envelope, size)`` of a received ``EncrTransfer`` element of exactly the writer's shape
    and forms (``size``: its octets as :func:`~gridbind.iec61850.stanza.to_bytes` writes it),
    or None: the caller then decodes it generically (which accepts or refuses it)."""
    if element.tag != _ROOT or element.attrib or element.text or len(element) != 1:
        return None
    tbp = element[0]
    if tbp.tag != _TBP or tbp.attrib or tbp.text or tbp.tail or len(tbp) != 2:
        return None
    token2, data_el = tbp[0], tbp[1]
    if token2.tag != _TOKEN2 or token2.attrib or token2.text or token2.tail or len(token2) != 4:
        return None
    asso_id = _leaf(token2[0], _FIELDS[0])
    time = _leaf(token2[1], _FIELDS[1])
    seq = _leaf(token2[2], _FIELDS[2])
    iv = _leaf(token2[3], _FIELDS[3])
    data = _leaf(data_el, _DATA)
    if (
        asso_id is None
        or time is None
        or seq is None
        or iv is None
        or data is None
        or _ASSO(asso_id) is None
        or _TIME(time) is None
        or _SEQ(seq) is None
    ):
        return None
    seq_value = int(seq)
    iv_value, data_value = _hex(iv), _hex(data)
    if seq_value > _UINT_MAX or iv_value is None or data_value is None:
        return None
    size = _SIZE + len(asso_id) + len(time) + len(seq) + len(iv) + len(data)  # all ASCII
    if size > max_bytes:
        return None  # the generic path refuses it with its own error
    envelope = _e2e.EncrTransfer(
        tbp=_e2e.EncrTbp(
            token2=_e2e.ClearToken2(asso_id=asso_id, time=time, seq=seq_value, iv=iv_value),
            encrypted_appl_data=data_value,
        )
    )
    return envelope, size


# The serialised envelope's octets besides its five values.
_SIZE = len(
    f'<EncrTransfer xmlns="{_e2e.__NAMESPACE__}"><tbp><token2><assoID></assoID><time></time>'
    "<seq></seq><iv></iv></token2><encrypted-applData></encrypted-applData></tbp></EncrTransfer>"
)
