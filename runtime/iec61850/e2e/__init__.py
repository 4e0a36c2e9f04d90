"""IEC 62351-4 end-to-end (E2E) security of IEC 61850-8-2 associations (sans-IO).

The engine works on the generated classes of ``E2E_4.xsd``
(:mod:`gridbind.generated.iec61850_8_2.e2e_4`); bytes are the codec's business
(:mod:`gridbind.iec61850.codec`). Time comes in as ``now`` (POSIX wall-clock seconds).

- :mod:`~.config`: per-peer policy (off / authenticated / encrypted), E2E certificate and key
  (separate from the XMPP TLS ones), trust anchors, algorithms, rekey interval.
- :mod:`~.handshake`: :class:`Initiator` / :class:`Responder` (HandshakeReq, HandshakeAcc,
  ApplicationReject, HandshakeSecReject, HandshakeSecAbort).
- :mod:`~.transfer`: :class:`E2ESession`, the per-association envelope layer with
  ``seal(pdu, now) -> envelope`` and ``open(envelope, now) -> Mmspdu``, rekeying, release, abort.
- :mod:`~.layer`: :class:`E2EEnvelopes`, the envelope factory the 8-2 protocol cores use.
- :mod:`~.trust`: certificate checks; :mod:`~.crypto`: primitives; :mod:`~.tokens`: time format,
  canonical serialisation; :mod:`~.canonical`: the same canonical bytes of the per-message parts
  (token2, tbp) written directly, without encoding the whole envelope; :mod:`~.diagnostics`:
  diagnostic codes and the exception tree.

Security events are logged to ``gridbind.iec61850.security``.
"""

from gridbind.iec61850.e2e.config import E2EConfig, E2EPolicy, Mode
from gridbind.iec61850.e2e.diagnostics import (
    ApplicationRejected,
    ConfigError,
    DtDiag,
    E2EError,
    HandshakeDiag,
    HandshakeError,
    HandshakeRejected,
    PeerAborted,
    ReleaseError,
    TransferError,
)
from gridbind.iec61850.e2e.handshake import HandshakeOffer, Initiator, Responder
from gridbind.iec61850.e2e.layer import E2EEnvelopes, E2ELayer
from gridbind.iec61850.e2e.tokens import SECURITY_LOG
from gridbind.iec61850.e2e.transfer import E2ESession, EnvelopeLayer, SessionState

__all__ = [
    "SECURITY_LOG",
    "ApplicationRejected",
    "ConfigError",
    "DtDiag",
    "E2EConfig",
    "E2EEnvelopes",
    "E2ELayer",
    "E2EError",
    "E2EPolicy",
    "E2ESession",
    "EnvelopeLayer",
    "HandshakeDiag",
    "HandshakeError",
    "HandshakeOffer",
    "HandshakeRejected",
    "Initiator",
    "Mode",
    "PeerAborted",
    "ReleaseError",
    "Responder",
    "SessionState",
    "TransferError",
]
