"""The per-association envelope layer of IEC 61850-8-2: how an MMSpdu travels in a stanza.

The seam: an :class:`EnvelopeLayer` per association, chosen by an :data:`EnvelopeFactory` when
the association is made (``factory(peer, asso_id)``), with two methods on typed objects of
:mod:`gridbind.generated.iec61850_8_2`::

    envelope = layer.seal(pdu, now)      # Mmspdu -> the typed envelope put in the stanza
    pdu = layer.open(envelope, now)      # typed envelope -> Mmspdu, or EnvelopeError

The protocol cores (:mod:`gridbind.iec61850.protocol`) call nothing else: the transports carry
whatever typed object ``seal`` returns (the codec encodes any global element of the schema set)
and hand back whatever they received, decoded. ``now`` is there for the layers that need time
(IEC 62351-4 ClearTransfer/EncrTransfer check token lifetimes and sequence numbers); this one
does not use it.

:class:`ClearContext` is the implementation with E2E security off by configuration: the MMSpdu
travels in the bare ``AssociationContext`` of E2E_4.xsd, ``<AssociationContext><pp><iec61850-8-2/>
</pp><assoID>7</assoID><applData><MMSpdu>...</MMSpdu></applData></AssociationContext>``; ``pp``
is optional on input and must name 8-2 when present. An E2E envelope (``ClearTransfer``...) is
refused by it with a clear error, as is an AssociationContext of another association. The
IEC 62351-4 layer (``gridbind.iec61850.e2e``) plugs in as another factory with the same shape.

Requests outside any association (before an initiate) travel as a bare ``MMSpdu``:
:func:`association_id` of such a payload is None.

With IEC 62351-4 (:class:`gridbind.iec61850.e2e.E2EEnvelopes`) a layer may also have, and the
cores use when present:

- ``asso_id``: the association id after the layer opened (called side) or was answered
  (calling side) the initiate: the E2E handshake extends ``n`` to ``n:m``, and the cores key the
  association by this id;
- ``ended``: true once the layer itself ended the association (an envelope refused in data
  transfer, the peer's abort): the cores then abort the association;
- a ``reply`` attribute on the exception ``open`` raises: the envelope to send instead of a
  rejectPDU (HandshakeSecReject answers the initiate's iq; a DtSecAbort travels in a message);
- ``release_request(now)`` / ``answer_release(envelope, now)`` / ``confirm_release(envelope,
  now)``: the signed ReleaseReq/ReleaseRsp exchanged in an ``iq set`` after a conclude (the
  called side keeps a concluded association's layer while its ``awaits_release`` is true).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from gridbind.errors import RemoteError
from gridbind.generated.iec61850_8_2 import e2e_4 as e2e
from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850.errors import Iec61850Error

__all__ = [
    "EnvelopeError",
    "EnvelopeLayer",
    "EnvelopeFactory",
    "ClearContext",
    "association_id",
    "needs_association",
]


class EnvelopeError(Iec61850Error, RemoteError, ValueError):
    """The envelope cannot be opened by this association's layer (answered ``bad-request``)."""


@runtime_checkable
class EnvelopeLayer(Protocol):
    """How one association wraps its PDUs (E2E off: :class:`ClearContext`; IEC 62351-4:
    :class:`gridbind.iec61850.e2e.E2ESession`). ``open`` refuses by raising (EnvelopeError
    here; the protocol cores answer any exception of ``open`` as a refused envelope)."""

    def seal(self, pdu: m.Mmspdu, now: float) -> Any:
        """The typed envelope that carries ``pdu``."""

    def open(self, envelope: Any, now: float) -> m.Mmspdu:
        """The MMSpdu inside ``envelope``; raises :class:`EnvelopeError` when refused."""


#: ``factory(peer JID, association id)`` -> the layer of a new association.
EnvelopeFactory = Callable[[str, str], EnvelopeLayer]

#: The protected protocol (``pp``) of every 8-2 envelope; the package's one definition.
PP_8_2 = e2e.ProtectedProtocol(choice=e2e.ProtectedProtocol.Iec6185082())


def names_8_2(pp: e2e.ProtectedProtocol) -> bool:
    """Whether ``pp`` names IEC 61850-8-2."""
    return isinstance(pp.choice, type(PP_8_2.choice))


#: Where the envelopes of E2E_4.xsd carry the association id: AssociationContext (E2E off),
#: ClearTransfer/EncrTransfer (ClearToken2), HandshakeReq/HandshakeAcc (ClearToken1),
#: ReleaseReq/ReleaseRsp/DtSecAbort/ApplAbort (ClearToken3).
_ASSO_ID_PATHS = (
    ("asso_id",),
    ("tbp", "token2", "asso_id"),
    ("tbs", "token1", "asso_id"),
    ("token3", "asso_id"),
)


#: The envelopes that exist only inside an established E2E association: data transfer
#: (ClearToken2) and release/abort (ClearToken3). Only HandshakeReq (or, E2E off, an
#: AssociationContext carrying an initiate) may name an association not yet known.
_WITHIN_ASSOCIATION = (
    e2e.ClearTransfer,
    e2e.EncrTransfer,
    e2e.ReleaseReq,
    e2e.ReleaseRsp,
    e2e.ApplAbort,
    e2e.DtSecAbort,
)


def needs_association(payload: Any) -> bool:
    """Whether ``payload`` is an envelope that only an established association can carry: one
    naming an association the receiver does not know is answered ``item-not-found``, like a
    request in an unknown association with E2E off, never opened by a fresh layer."""
    return isinstance(payload, _WITHIN_ASSOCIATION)


def association_id(payload: Any) -> str | None:
    """The association id a received payload names (None for a bare MMSpdu)."""
    if isinstance(payload, m.Mmspdu):
        return None
    for path in _ASSO_ID_PATHS:
        value = payload
        for name in path:
            value = getattr(value, name, None)
        if isinstance(value, str):
            return value
    return None


class ClearContext:
    """E2E security off: the MMSpdu in the bare ``AssociationContext`` of ``asso_id``."""

    __slots__ = ("asso_id",)

    def __init__(self, peer: str, asso_id: str) -> None:
        self.asso_id = asso_id

    def seal(self, pdu: m.Mmspdu, now: float) -> e2e.AssociationContext:
        return e2e.AssociationContext(
            pp=PP_8_2, asso_id=self.asso_id, appl_data=e2e.ApplData(mmspdu=pdu)
        )

    def open(self, envelope: Any, now: float) -> m.Mmspdu:
        if not isinstance(envelope, e2e.AssociationContext):
            raise EnvelopeError(
                f"{type(envelope).__name__} is not accepted: E2E security is off "
                "(bare AssociationContext only)"
            )
        if envelope.asso_id != self.asso_id:
            raise EnvelopeError(f"assoID {envelope.asso_id!r} is not {self.asso_id!r}")
        pp = envelope.pp
        if pp is not None and not names_8_2(pp):
            raise EnvelopeError("pp names another protocol than iec61850-8-2")
        return envelope.appl_data.mmspdu
