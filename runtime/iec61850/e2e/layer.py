"""The E2E engine as the envelope layer of the 8-2 protocol cores (:mod:`gridbind.iec61850.envelope`).

:class:`E2EEnvelopes` is an :data:`~gridbind.iec61850.envelope.EnvelopeFactory` for both roles,
built from a per-peer :class:`~.config.E2EPolicy` (or one :class:`~.config.E2EConfig` for every
peer)::

    server = IedServer(model, settings, envelopes=E2EEnvelopes(policy))
    client = Client(settings, envelopes=E2EEnvelopes(policy))

Each association gets one :class:`E2ELayer`; its role follows from its first use:

- calling side: ``seal(initiate-RequestPDU)`` -> HandshakeReq (E2E on) or the bare
  AssociationContext (E2E off for that peer); ``open(answer)`` -> the initiate-ResponsePDU of
  a HandshakeAcc (the layer's ``asso_id`` is then ``n:m``), the initiate-ErrorPDU of an
  ApplicationReject, or a refusal: HandshakeRejected (the peer's HandshakeSecReject), or
  HandshakeError whose ``reply`` (HandshakeSecAbort) the core sends to the peer;
- called side: ``open(HandshakeReq)`` -> the initiate-RequestPDU once every security check
  passed (``asso_id`` becomes ``n:m``), or HandshakeError with ``reply`` = HandshakeSecReject;
  ``seal(initiate-ResponsePDU)`` -> HandshakeAcc, ``seal(initiate-ErrorPDU)`` ->
  ApplicationReject. An E2E-off request from a peer whose policy is off takes the plain path
  (:class:`~gridbind.iec61850.envelope.ClearContext`).

Afterwards ``seal``/``open`` are those of the :class:`~.transfer.E2ESession`: a refused
envelope raises TransferError whose ``reply`` is the DtSecAbort, and ``ended`` turns true (the
cores then abort the association); a DtSecAbort/ApplAbort/HandshakeSecAbort of the peer raises
PeerAborted and ends it too. :meth:`E2ELayer.release_request` / :meth:`E2ELayer.answer_release`
/ :meth:`E2ELayer.confirm_release` carry the signed ReleaseReq/ReleaseRsp after a conclude.
"""

from __future__ import annotations

from typing import Any

from gridbind.generated.iec61850_8_2 import Mmspdu
from gridbind.generated.iec61850_8_2 import e2e_4 as e
from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850.e2e.config import E2EConfig, E2EPolicy, Mode
from gridbind.iec61850.e2e.diagnostics import (
    ApplicationRejected,
    HandshakeDiag,
    HandshakeError,
    HandshakeRejected,
    ReleaseError,
)
from gridbind.iec61850.e2e.handshake import HandshakeOffer, Initiator, Responder
from gridbind.iec61850.e2e.transfer import E2ESession, SessionState
from gridbind.iec61850.envelope import ClearContext, EnvelopeError

__all__ = ["E2EEnvelopes", "E2ELayer"]

_ENDED = (SessionState.ABORTED, SessionState.RELEASED)


class E2EEnvelopes:
    """The envelope factory of an endpoint with E2E security configured per peer.

    One responder (with its memory of recent HandshakeReqs, for replay detection) serves every
    association this endpoint accepts.
    """

    def __init__(self, policy: E2EPolicy | E2EConfig) -> None:
        self.policy = policy if isinstance(policy, E2EPolicy) else E2EPolicy(policy)
        self.responder = Responder(self.policy)

    def __call__(self, peer: str, asso_id: str) -> E2ELayer:
        return E2ELayer(self, peer, asso_id)

    def mode_for(self, peer: str) -> Mode:
        return self.policy.for_peer(peer).mode


class E2ELayer:
    """The envelope layer of one association under an :class:`E2EEnvelopes` policy."""

    def __init__(self, owner: E2EEnvelopes, peer: str, asso_id: str) -> None:
        self.peer = peer
        #: The association id: ``n`` until the handshake extends it to ``n:m``.
        self.asso_id = asso_id
        self._owner = owner
        self._config: E2EConfig = owner.policy.for_peer(peer)
        self._inner: E2ESession | ClearContext | None = None
        self._initiator: Initiator | None = None
        self._offer: HandshakeOffer | None = None

    @property
    def session(self) -> E2ESession | None:
        """The E2E session once established (None with E2E off or before the handshake)."""
        return self._inner if isinstance(self._inner, E2ESession) else None

    @property
    def mode(self) -> Mode:
        return self._config.mode

    @property
    def ended(self) -> bool:
        """True once the E2E association was aborted or released (nothing more passes)."""
        session = self.session
        return session is not None and session.state in _ENDED

    @property
    def awaits_release(self) -> bool:
        """True while an established E2E session may still be released (after a conclude)."""
        session = self.session
        return session is not None and session.state is SessionState.ESTABLISHED

    # ---------------------------------------------------------------- the envelope layer
    def seal(self, pdu: Mmspdu, now: float) -> Any:
        if self._inner is not None:
            return self._inner.seal(pdu, now)
        if self._offer is not None:  # called side: the answer to the initiate
            offer, self._offer = self._offer, None
            if isinstance(pdu.choice, m.InitiateResponsePdu):
                session, acc = offer.accept(pdu, now)
                self._inner = session
                return acc
            return offer.reject(pdu, now)
        if self._config.mode is Mode.OFF:
            self._inner = ClearContext(self.peer, self.asso_id)
            return self._inner.seal(pdu, now)
        if not isinstance(pdu.choice, m.InitiateRequestPdu) or self._initiator is not None:
            raise EnvelopeError(f"E2E association {self.asso_id} is not established")
        self._initiator = Initiator(self._config, self.peer, self.asso_id, pdu, now)
        return self._initiator.request

    def open(self, envelope: Any, now: float) -> Mmspdu:
        if self._initiator is not None:  # calling side: the answer to our HandshakeReq
            initiator, self._initiator = self._initiator, None
            try:
                session = initiator.complete(envelope, now)
            except ApplicationRejected as exc:
                return exc.pdu  # the initiate-ErrorPDU: the application's refusal
            self._inner = session
            self.asso_id = session.asso_id
            return session.initiate_pdu
        if isinstance(self._inner, ClearContext) and isinstance(
            envelope, (e.HandshakeSecReject, e.HandshakeSecAbort)
        ):
            raise HandshakeRejected(envelope.diag, envelope)  # we are off, the peer is on
        if self._inner is not None:
            return self._inner.open(envelope, now)
        if self._offer is not None:
            raise HandshakeError(HandshakeDiag.UNEXPECTED_MESSAGE, "handshake not answered yet")
        offer = self._owner.responder.receive(self.peer, envelope, now)
        if offer is None:  # E2E off for this peer, and the request is E2E off too
            self._inner = ClearContext(self.peer, self.asso_id)
            return self._inner.open(envelope, now)
        self._offer = offer
        self.asso_id = offer.asso_id
        return offer.initiate_request

    # ---------------------------------------------------------------- release
    def release_request(self, now: float) -> e.ReleaseReq | None:
        """The signed ReleaseReq that follows a conclude (None with E2E off)."""
        session = self.session
        if session is None or session.state is not SessionState.ESTABLISHED:
            return None
        return session.release_request(now)

    def answer_release(self, request: Any, now: float) -> e.ReleaseRsp:
        """The ReleaseRsp to a peer's ReleaseReq (ReleaseError when it fails its checks)."""
        session = self.session
        if session is None or not isinstance(request, e.ReleaseReq):
            raise ReleaseError(f"{type(request).__name__} is not a ReleaseReq of an association")
        return session.answer_release(request, now)

    def confirm_release(self, response: Any, now: float) -> None:
        session = self.session
        if session is None or not isinstance(response, e.ReleaseRsp):
            raise ReleaseError(f"{type(response).__name__} is not a ReleaseRsp")
        session.confirm_release(response, now)
