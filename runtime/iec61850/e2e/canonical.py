"""The canonical bytes of the per-message parts (the ICV input and the GCM AAD), written directly.

The bytes are *exactly* those of the generic definition (DECISIONS.md 36,
:func:`~gridbind.iec61850.e2e.tokens.canonical_part`: Exclusive C14N 1.0 of each child of the
covered part of the codec's encoding of the whole typed envelope), so a peer that computes them
the generic way interoperates; only the way there is shorter, because every message needs them:

- ``token2`` is written from its values, which the schema restricts to characters C14N writes as
  themselves (assoID ``[0-9:]``, time ``[0-9,Z]``, seq a decimal integer, iv upper-case hex
  as the codec writes ``hexBinary``); the assoID part is written once per association. A token
  whose values are off those forms, or that carries a ``rekey`` (once per 15 min..24 h), takes
  the generic path.
- ``applData`` is the C14N of the ``MMSpdu`` encoded on its own under the prefix ``mms`` (the
  fast encoder, :func:`gridbind.iec61850.fastxer.encode`) between ``<applData
  xmlns="...E2E_4">`` and ``</applData>``: exclusive C14N writes only the namespaces an element
  visibly uses, so the ``MMSpdu`` canonicalises alike inside and outside the envelope, and the
  token, authenticator and envelope elements are not encoded for nothing.
- ``encrypted-applData`` is one hex text.

The receiver still builds the bytes from the values it decoded (never from the octets received),
and every check of :mod:`~.transfer` runs on them as before. ``tests/iec61850/test_e2e_canonical.py``
compares both ways over generated tokens and PDUs and tampers each covered field.
"""

from __future__ import annotations

import re
from binascii import hexlify
from typing import Any

from lxml import etree

from gridbind.generated.iec61850_8_2 import e2e_4 as e
from gridbind.iec61850 import codec, fastxer
from gridbind.iec61850.e2e.tokens import canonical_part

__all__ = ["TransferCanon", "aad", "generic_aad"]

_XMLNS = b' xmlns="' + codec.E2E_NS.encode() + b'"'
_PLAIN_ID = re.compile(r"[0-9:]{1,21}")
_PLAIN_TIME = re.compile(r"[0-9]{14},[0-9]{3}Z")
_MMS_PREFIX: dict[str | None, str] = {"mms": codec.SCSM_NS}
_APPL_OPEN = b"<applData" + _XMLNS + b">"
_APPL_CLOSE = b"</applData>"
_ENCR_OPEN = b"<encrypted-applData" + _XMLNS + b">"
_ENCR_CLOSE = b"</encrypted-applData>"
# Between the values of token2, in the AAD form (each child with its namespace) and the tbp form.
_AAD_SEQ = b"</time><seq" + _XMLNS + b">"
_AAD_IV = b"</seq><iv" + _XMLNS + b">"


def _plain(token2: e.ClearToken2, asso_id: str) -> bool:
    """Whether ``token2`` can be written directly (see the module docstring)."""
    time = token2.time
    return (
        token2.rekey is None
        and token2.asso_id == asso_id
        and type(token2.seq) is int
        and type(time) is str
        and _PLAIN_TIME.fullmatch(time) is not None
    )


def _c14n(el: etree._Element) -> bytes:
    return etree.tostring(el, method="c14n", exclusive=True, with_comments=False)


def generic_aad(token2: e.ClearToken2) -> bytes:
    """The GCM AAD the generic way: the canonical content of ``token2``, on an envelope that
    holds only that token (a part's canonical bytes do not depend on its siblings)."""
    probe = e.EncrTransfer(tbp=e.EncrTbp(token2=token2, encrypted_appl_data=b"\x00"))
    return canonical_part(probe, "tbp", "token2")


def aad(token2: e.ClearToken2) -> bytes:
    """The GCM AAD (canonical content of ``token2``) of a token of any association."""
    asso_id = token2.asso_id
    if type(asso_id) is str and _PLAIN_ID.fullmatch(asso_id):
        return TransferCanon(asso_id).aad(token2)
    return generic_aad(token2)


class TransferCanon:
    """The canonical bytes of one association's ClearToken2-protected parts."""

    __slots__ = ("asso_id", "_aad_head", "_token_head")

    def __init__(self, asso_id: str) -> None:
        self.asso_id = asso_id
        plain = _PLAIN_ID.fullmatch(asso_id) is not None
        asso = asso_id.encode()
        # Children of token2 carry the default namespace themselves in the AAD (each is
        # canonicalised on its own) but inherit it from <token2> inside tbp.
        self._aad_head = (
            b"<assoID" + _XMLNS + b">" + asso + b"</assoID><time" + _XMLNS + b">" if plain else None
        )
        self._token_head = (
            b"<token2" + _XMLNS + b"><assoID>" + asso + b"</assoID><time>" if plain else None
        )

    def aad(self, token2: e.ClearToken2) -> bytes:
        """The AES-GCM AAD: the canonical content of ``token2``."""
        head = self._aad_head
        if head is None or not _plain(token2, self.asso_id):
            return generic_aad(token2)
        out = (
            head + token2.time.encode() + b"</time><seq" + _XMLNS + b">" + str(token2.seq).encode()
        )
        if token2.iv is None:
            return out + b"</seq>"
        return out + b"</seq><iv" + _XMLNS + b">" + token2.iv.hex().upper().encode() + b"</iv>"

    def _token2(self, token2: Any) -> bytes | None:
        """The canonical ``<token2>`` element inside ``tbp``, or None for the generic path."""
        head = self._token_head
        if head is None or token2 is None or not _plain(token2, self.asso_id):
            return None
        iv = token2.iv
        if iv is None:
            return b"%s%s</time><seq>%d</seq></token2>" % (head, token2.time.encode(), token2.seq)
        return b"%s%s</time><seq>%d</seq><iv>%s</iv></token2>" % (
            head, token2.time.encode(), token2.seq, hexlify(iv).upper()
        )  # fmt: skip

    def clear_tbp(self, env: e.ClearTransfer) -> bytes:
        """What the ICV of a ClearTransfer covers: the canonical content of its ``tbp``."""
        tbp = env.tbp
        token = self._token2(tbp.token2) if tbp is not None else None
        appl = tbp.appl_data if tbp is not None else None
        if token is not None and appl is not None and appl.mmspdu is not None:
            root = fastxer.encode(appl.mmspdu, _MMS_PREFIX)
            if root is not None:
                return token + _APPL_OPEN + _c14n(root) + _APPL_CLOSE
        return canonical_part(env, "tbp")

    def encr_tbp(self, env: e.EncrTransfer) -> bytes:
        """What the ICV of an AES-CBC EncrTransfer covers: the canonical content of its ``tbp``."""
        tbp = env.tbp
        token = self._token2(tbp.token2) if tbp is not None else None
        if token is not None and type(tbp.encrypted_appl_data) is bytes:
            hex_data = hexlify(tbp.encrypted_appl_data).upper()
            return token + _ENCR_OPEN + hex_data + _ENCR_CLOSE
        return canonical_part(env, "tbp")
