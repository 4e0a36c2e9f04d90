"""Diagnostic codes and the one exception tree of the E2E engine.

The schema gives the ranges only (``HandshakeDiagnostics`` 0..25, ``DtDiagnostics`` 0..15,
DECISIONS.md 25); the names and numbers below are the project's assignment (DECISIONS.md 35), kept
in this one place so that the official list replaces them in one edit.

Every failure the engine detects is an :class:`E2EError`. Those that end an association carry the
diagnostic and, where the protocol answers, the envelope to send (``reply``): a
``HandshakeSecReject`` from the responder, a ``HandshakeSecAbort`` from the initiator, a
``DtSecAbort`` during data transfer. No failure ever returns application data.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from gridbind.errors import LocalError, RemoteError
from gridbind.iec61850.errors import Iec61850Error

__all__ = [
    "ApplicationRejected",
    "ConfigError",
    "DtDiag",
    "E2EError",
    "HandshakeDiag",
    "HandshakeError",
    "HandshakeRejected",
    "PeerAborted",
    "ReleaseError",
    "TransferError",
]


class HandshakeDiag(IntEnum):
    """``HandshakeDiagnostics`` (0..25) of HandshakeSecReject / HandshakeSecAbort."""

    NO_REASON = 0
    UNSUPPORTED_PROTOCOL = 1  # pp is not IEC 61850-8-2
    UNSUPPORTED_VERSION = 2
    INVALID_ASSO_ID = 3
    TIME_OUT_OF_WINDOW = 4
    INVALID_SIGNATURE = 5
    UNSUPPORTED_SIGNATURE_ALGORITHM = 6
    MALFORMED_CERTIFICATE = 7
    UNTRUSTED_CERTIFICATE = 8
    CERTIFICATE_NOT_VALID_NOW = 9
    CERTIFICATE_REVOKED = 10  # reserved: no revocation source is configured
    INVALID_KEY_USAGE = 11
    PEER_IDENTITY_MISMATCH = 12  # certificate not issued to the peer's JID
    UNSUPPORTED_DH_GROUP = 13
    INVALID_DH_KEY = 14
    UNSUPPORTED_HMAC = 15
    NO_COMMON_ENCRYPTION_MODE = 16
    CONF_PARAMS_MISMATCH = 17
    E2E_MISMATCH = 18  # one peer has E2E security on, the other off
    UNEXPECTED_MESSAGE = 19
    INVALID_APPLICATION_DATA = 20  # applData is not the expected initiate PDU
    REPLAYED_HANDSHAKE = 21
    INVALID_CERTIFICATE_PATH = 22
    UNSUPPORTED_ATTRIBUTE_CERTIFICATE = 23
    RESOURCES_EXHAUSTED = 24
    PROTOCOL_ERROR = 25


class DtDiag(IntEnum):
    """``DtDiagnostics`` (0..15) of DtSecAbort."""

    NO_REASON = 0
    INVALID_ASSO_ID = 1
    TIME_OUT_OF_WINDOW = 2
    REPLAY = 3
    OUT_OF_SEQUENCE = 4
    INVALID_ICV = 5
    DECRYPTION_FAILED = 6
    WRONG_ENVELOPE = 7  # ClearTransfer where EncrTransfer was agreed, or the reverse
    UNSUPPORTED_ALGORITHM = 8
    INVALID_IV = 9
    INVALID_REKEY = 10
    REKEY_OVERDUE = 11
    INVALID_APPLICATION_DATA = 12
    E2E_MISMATCH = 13  # an E2E-off AssociationContext on a secured association
    NOT_ESTABLISHED = 14
    PROTOCOL_ERROR = 15


class E2EError(Iec61850Error):
    """Root of every error of :mod:`gridbind.iec61850.e2e`."""


class ConfigError(E2EError, LocalError):
    """Invalid local E2E configuration (certificate, key, algorithms, rekey interval)."""


class HandshakeError(E2EError, RemoteError):
    """The handshake failed here; ``reply`` (if any) is the envelope to send to the peer."""

    def __init__(self, diag: HandshakeDiag, detail: str, reply: Any = None) -> None:
        super().__init__(f"{diag.name.lower().replace('_', '-')} ({int(diag)}): {detail}")
        self.diag = diag
        self.detail = detail
        self.reply = reply


class HandshakeRejected(E2EError, RemoteError):
    """The peer refused the handshake (HandshakeSecReject or HandshakeSecAbort it sent)."""

    def __init__(self, diag: int, envelope: Any) -> None:
        name = HandshakeDiag(diag).name if diag in HandshakeDiag._value2member_map_ else "?"
        super().__init__(f"peer refused the E2E handshake: {name.lower()} ({diag})")
        self.diag = diag
        self.envelope = envelope


class ApplicationRejected(E2EError, RemoteError):
    """Security accepted, application refused: ``pdu`` is the peer's initiate-ErrorPDU."""

    def __init__(self, pdu: Any) -> None:
        super().__init__("peer accepted the E2E handshake but refused the association")
        self.pdu = pdu


class TransferError(E2EError, RemoteError):
    """A data-transfer envelope failed a check; ``reply`` is the DtSecAbort to send."""

    def __init__(self, diag: DtDiag, detail: str, reply: Any = None) -> None:
        super().__init__(f"{diag.name.lower().replace('_', '-')} ({int(diag)}): {detail}")
        self.diag = diag
        self.detail = detail
        self.reply = reply


class PeerAborted(E2EError, RemoteError):
    """The peer aborted the association (DtSecAbort, HandshakeSecAbort or ApplAbort)."""

    def __init__(self, kind: str, diag: int | None, envelope: Any) -> None:
        super().__init__(f"peer sent {kind}" + ("" if diag is None else f" (diag {diag})"))
        self.kind = kind
        self.diag = diag
        self.envelope = envelope


class ReleaseError(E2EError, RemoteError):
    """A ReleaseReq/ReleaseRsp failed its checks (wrong association, ICV, time, sequence)."""
