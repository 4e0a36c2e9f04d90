"""Data transfer of an established E2E association: the per-association envelope layer.

:class:`E2ESession` is what the 8-2 protocol core plugs in per association:

- ``seal(pdu, now)`` -> ``ClearTransfer`` (authenticated) or ``EncrTransfer`` (encrypted);
- ``open(envelope, now)`` -> the ``Mmspdu`` inside, or :class:`TransferError` carrying the
  ``DtSecAbort`` to send (and :class:`PeerAborted` when the peer aborted).

Rules (DECISIONS.md 35-39):

- ClearTransfer: ``auth`` = the agreed ICV over the canonical content of ``tbp``
  (:func:`~gridbind.iec61850.e2e.tokens.canonical_part`; the per-message parts are written by
  :mod:`~gridbind.iec61850.e2e.canonical`, byte for byte the same): HMAC-SHA256 (``nonce`` absent) or
  GMAC (AES-GCM tag of empty plaintext with the content as AAD; 12-octet ``nonce``).
- EncrTransfer with AES-GCM: ``token2.iv`` is the 12-octet nonce, the AAD is the canonical content
  of ``token2``, the 16-octet tag ends ``encrypted-applData``; no ``auth``. With AES-CBC:
  ``token2.iv`` is the 16-octet IV, ``auth`` = the agreed ICV over the canonical content of
  ``tbp`` (encrypt-then-MAC). The plaintext is the codec's encoding of the ``MMSpdu``.
- ClearToken2: ``time`` is the sender's clock (milliseconds; never going backwards), ``seq`` is 0
  at a new time value and +1 per message with the same value. The receiver checks, after the
  ICV: the token time within the window of its clock, then a (time, seq) already seen among the
  last :data:`REPLAY_MEMORY` -> replay; anything not exactly following the last accepted
  (seq+1 at the same time, 0 at a later time) -> out of sequence.
- Check order: envelope kind, assoID, rekey signature, ICV/decryption, time, replay/sequence,
  key age, application data. The first failure aborts the association: the session is
  unusable afterwards and nothing of the failed envelope is returned.
- Rekeying: the sender renews its sending keys at its configured interval (15 min..24 h) by
  putting ``rekey {dhKey, sign}`` into the token2 of the next message: a fresh ephemeral DH value
  combined with the *peer's* handshake DH value, HKDF-salted with the previous key chain of that
  direction, signed with the E2E key over :func:`rekey_signed_bytes`. Each direction is renewed
  independently (no reply needed, no race). A receiver aborts (``rekey-overdue``) when keys are
  older than 24 h plus the window.
- Release and abort PDUs carry ClearToken3 (assoID, time, seq from the same sequence) and an
  HMAC-SHA256 authenticator over the canonical content of ``token3`` with the per-direction
  control key (DECISIONS.md 38).
"""

from __future__ import annotations

import functools
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn

from cryptography import x509

from gridbind.generated.iec61850_8_2 import Mmspdu
from gridbind.generated.iec61850_8_2 import e2e_4 as e
from gridbind.iec61850 import codec
from gridbind.iec61850.e2e import crypto
from gridbind.iec61850.e2e.canonical import TransferCanon
from gridbind.iec61850.e2e.config import REKEY_MAX_S, E2EConfig, Mode
from gridbind.iec61850.e2e.diagnostics import (
    DtDiag,
    E2EError,
    PeerAborted,
    ReleaseError,
    TransferError,
)
from gridbind.iec61850.e2e.tokens import (
    SECURITY_LOG,
    Now,
    alternative,
    alternative_name,
    canonical_part,
    format_time,
    parse_time,
    to_posix,
)
from gridbind.iec61850.envelope import EnvelopeLayer

__all__ = [
    "REPLAY_MEMORY",
    "DirectionKeys",
    "E2ESession",
    "EnvelopeLayer",
    "SessionState",
    "rekey_signed_bytes",
]

#: How many accepted (time, seq) pairs a receiver remembers for replay detection.
REPLAY_MEMORY = 256

I2R = b"initiator-to-responder"
R2I = b"responder-to-initiator"


class SessionState(StrEnum):
    ESTABLISHED = "established"
    RELEASING = "releasing"
    RELEASED = "released"
    ABORTED = "aborted"


def _key_len(cipher: str) -> int:
    return 32 if "256" in cipher else 16


@dataclass
class DirectionKeys:
    """Keys of one direction: encryption (AES), ICV (HMAC), control (release/abort), chain."""

    enc: bytes | None
    icv: bytes | None
    ctl: bytes
    chain: bytes
    since: float

    @property
    def enc_key(self) -> bytes:
        """The encryption key (only an encrypted association has one)."""
        if self.enc is None:
            raise E2EError("this E2E association has no encryption key")
        return self.enc

    @property
    def icv_key(self) -> bytes:
        """The ICV key (AES-GCM associations have none: the AEAD tag protects them)."""
        if self.icv is None:
            raise E2EError("this E2E association has no ICV key")
        return self.icv

    # The per-key work of the primitives, done once per key rather than once per message.
    @functools.cached_property
    def enc_gcm(self) -> crypto.GcmKey:
        return crypto.GcmKey(self.enc_key)

    @functools.cached_property
    def icv_hmac(self) -> crypto.HmacKey:
        return crypto.HmacKey(self.icv_key)

    @functools.cached_property
    def icv_gmac(self) -> crypto.GcmKey:
        return crypto.GcmKey(self.icv_key)

    @functools.cached_property
    def ctl_hmac(self) -> crypto.HmacKey:
        return crypto.HmacKey(self.ctl)

    @classmethod
    def derive(
        cls, config: E2EConfig, secret: bytes, salt: bytes, asso_id: str, way: bytes, now: float
    ) -> DirectionKeys:
        info = b"gridbind-e2e-v1|" + asso_id.encode() + b"|" + way + b"|"
        enc = icv = None
        if config.mode is Mode.ENCRYPTED:
            enc = crypto.hkdf(secret, salt, info + b"enc", _key_len(config.cipher))
        if config.mode is Mode.AUTHENTICATED or not config.aead:
            icv_len = 32 if config.icv == "hmac-sha256" else _key_len(config.icv)
            icv = crypto.hkdf(secret, salt, info + b"icv", icv_len)
        return cls(
            enc=enc,
            icv=icv,
            ctl=crypto.hkdf(secret, salt, info + b"ctl", 32),
            chain=crypto.hkdf(secret, salt, info + b"chain", 32),
            since=now,
        )


def rekey_signed_bytes(asso_id: str, time: str, seq: int, group: str, public: bytes) -> bytes:
    """What the ``sign`` of a ClearToken2 rekey covers (binds the value to its message)."""
    return b"\x00".join(
        [b"gridbind-e2e-rekey-v1", asso_id.encode(), time.encode(), str(seq).encode()]
        + [group.encode(), public]
    )


class E2ESession:
    """One established E2E association (sans-IO): ``seal`` / ``open`` plus release and abort.

    Made by the handshake (:mod:`gridbind.iec61850.e2e.handshake`), never directly.
    """

    def __init__(
        self,
        *,
        config: E2EConfig,
        peer: str,
        peer_certificate: x509.Certificate,
        peer_sig_alg: str,
        initiator: bool,
        asso_id: str,
        own_dh: crypto.DhKeyPair,
        peer_dh: bytes,
        send: DirectionKeys,
        receive: DirectionKeys,
        initiate_pdu: Mmspdu,
    ) -> None:
        self.config = config
        self.peer = peer
        self.peer_certificate = peer_certificate
        self._peer_sig_alg = peer_sig_alg
        self.initiator = initiator
        self.asso_id = asso_id
        #: The peer's initiate PDU (initiate-ResponsePDU for the initiator, -RequestPDU else).
        self.initiate_pdu = initiate_pdu
        self._own_dh = own_dh
        self._peer_dh = peer_dh
        self._send = send
        self._recv = receive
        self._send_way, self._recv_way = (I2R, R2I) if initiator else (R2I, I2R)
        self.state = SessionState.ESTABLISHED
        self._last_sent: tuple[str, int] | None = None
        self._last_sent_posix = 0.0
        self._last_recv: tuple[float, int] | None = None
        self._seen: deque[tuple[float, int]] = deque(maxlen=REPLAY_MEMORY)
        self._seen_set: set[tuple[float, int]] = set()
        self._canon = TransferCanon(asso_id)
        # Per-message constants of the (frozen) configuration.
        self._mode = config.mode
        self._aead = config.aead
        self._rekey_after = config.rekey_interval_s
        self._max_key_age = REKEY_MAX_S + config.window_s
        self._open: dict[type, Callable[[Any, float], Mmspdu]] = {
            e.ClearTransfer: self._open_clear,
            e.EncrTransfer: self._open_encr,
            e.AssociationContext: self._open_plain,
            e.DtSecAbort: self._peer_abort,
            e.HandshakeSecAbort: self._peer_abort,
            e.ApplAbort: self._peer_appl_abort,
        }

    # ---- the envelope layer ------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self.config.mode

    def seal(self, pdu: Mmspdu, now: Now) -> e.ClearTransfer | e.EncrTransfer:
        """Protect one outbound PDU (a ClearTransfer or EncrTransfer to encode and send)."""
        if self.state is not SessionState.ESTABLISHED:
            raise E2EError(f"cannot send on an E2E association that is {self.state.value}")
        t = now if type(now) is float else to_posix(now)
        token2 = self._next_token2(t)
        if self._mode is Mode.AUTHENTICATED:
            env: Any = e.ClearTransfer(
                tbp=e.ClearTbp(token2=token2, appl_data=e.ApplData(mmspdu=pdu)),
                auth=e.Authenticator(algorithm=_icv_alg(self.config.icv), icv=b"\x00"),
            )
            env.auth.nonce, env.auth.icv = self._icv(self._send, self._canon.clear_tbp(env))
            return env
        plaintext = codec.encode(pdu)
        if self._aead:
            token2.iv = iv = os.urandom(12)
            ciphertext = self._send.enc_gcm.seal(iv, plaintext, self._canon.aad(token2))
            return e.EncrTransfer(tbp=e.EncrTbp(token2=token2, encrypted_appl_data=ciphertext))
        token2.iv = os.urandom(16)
        env = e.EncrTransfer(
            tbp=e.EncrTbp(
                token2=token2,
                encrypted_appl_data=crypto.cbc_seal(self._send.enc_key, token2.iv, plaintext),
            ),
            auth=e.Authenticator(algorithm=_icv_alg(self.config.icv), icv=b"\x00"),
        )
        env.auth.nonce, env.auth.icv = self._icv(self._send, self._canon.encr_tbp(env))
        return env

    def open(self, envelope: Any, now: Now) -> Mmspdu:
        """The PDU inside an inbound envelope, after every check.

        Raises :class:`TransferError` (``reply`` = the DtSecAbort to send; the association is
        then aborted) or :class:`PeerAborted` (the peer ended it). Never returns data of an
        envelope that failed.
        """
        t = now if type(now) is float else to_posix(now)
        if self.state is not SessionState.ESTABLISHED:
            raise TransferError(
                DtDiag.NOT_ESTABLISHED, f"association is {self.state.value}", reply=None
            )
        handler = self._open.get(type(envelope))
        if handler is None:
            self._abort(t, DtDiag.PROTOCOL_ERROR, f"{type(envelope).__name__} in data transfer")
        return handler(envelope, t)

    # ---- release and abort -------------------------------------------------------------------

    def release_request(self, now: Now) -> e.ReleaseReq:
        """A ReleaseReq to send; the association stops sending data."""
        if self.state is not SessionState.ESTABLISHED:
            raise E2EError(f"cannot release an association that is {self.state.value}")
        self.state = SessionState.RELEASING
        return self._control(e.ReleaseReq, to_posix(now))

    def answer_release(self, request: e.ReleaseReq, now: Now) -> e.ReleaseRsp:
        """Check a peer's ReleaseReq and answer it (ReleaseError if it fails its checks)."""
        t = to_posix(now)
        self._check_control(request, t)
        rsp = self._control(e.ReleaseRsp, t)
        self.state = SessionState.RELEASED
        SECURITY_LOG.info(
            "E2E association %s with %s released by the peer", self.asso_id, self.peer
        )
        return rsp

    def confirm_release(self, response: e.ReleaseRsp, now: Now) -> None:
        """Check the peer's ReleaseRsp to our ReleaseReq; the association is then released."""
        if self.state is not SessionState.RELEASING:
            raise ReleaseError("no release in progress")
        self._check_control(response, to_posix(now))
        self.state = SessionState.RELEASED
        SECURITY_LOG.info("E2E association %s with %s released", self.asso_id, self.peer)

    def abort(self, now: Now) -> e.ApplAbort:
        """An authenticated ApplAbort to send; the association is aborted."""
        t = to_posix(now)
        env = self._control(e.ApplAbort, t)
        self.state = SessionState.ABORTED
        SECURITY_LOG.warning("E2E association %s with %s aborted locally", self.asso_id, self.peer)
        return env

    # ---- internals ---------------------------------------------------------------------------

    def _next_time_seq(self, t: float) -> tuple[float, str, int]:
        if t < self._last_sent_posix:  # never send a time older than the last one
            t = self._last_sent_posix
        self._last_sent_posix = t
        time = format_time(t)
        last = self._last_sent
        seq = last[1] + 1 if last is not None and last[0] == time else 0
        if seq > 0xFFFFFFFF:
            raise E2EError("more than 2^32 messages within one millisecond")
        self._last_sent = (time, seq)
        return t, time, seq

    def _next_token2(self, t: float) -> e.ClearToken2:
        t, time, seq = self._next_time_seq(t)
        token2 = e.ClearToken2(asso_id=self.asso_id, time=time, seq=seq)
        if t - self._send.since >= self._rekey_after:
            token2.rekey = self._rekey(t, time, seq)
        return token2

    def _rekey(self, t: float, time: str, seq: int) -> e.ClearToken2.Rekey:
        fresh = crypto.DhKeyPair.generate(self._own_dh.group)
        public = fresh.public_bytes()
        secret = fresh.exchange(self._peer_dh)
        self._send = DirectionKeys.derive(
            self.config, secret, self._send.chain, self.asso_id, self._send_way, t
        )
        sign = crypto.sign(
            self.config.private_key,
            rekey_signed_bytes(self.asso_id, time, seq, fresh.group, public),
        )
        SECURITY_LOG.info("E2E association %s: sending keys renewed", self.asso_id)
        return e.ClearToken2.Rekey(dh_key=alternative(e.DhKey, fresh.group, public), sign=sign)

    def _abort(self, t: float, diag: DtDiag, detail: str) -> NoReturn:
        self.state = SessionState.ABORTED
        reply = e.DtSecAbort(
            token3=e.ClearToken3(asso_id=self.asso_id, time=format_time(t)), diag=int(diag)
        )
        SECURITY_LOG.warning(
            "E2E association %s with %s aborted: %s (%d): %s",
            self.asso_id,
            self.peer,
            diag.name.lower(),
            int(diag),
            detail,
        )
        raise TransferError(diag, detail, reply=reply)

    def _receive_keys(self, token2: e.ClearToken2, t: float) -> DirectionKeys:
        """The keys this message is protected with (new ones if it carries a valid rekey)."""
        if token2.asso_id != self.asso_id:
            self._abort(t, DtDiag.INVALID_ASSO_ID, f"assoID {token2.asso_id!r}")
        if token2.rekey is None:
            return self._recv
        group = alternative_name(token2.rekey.dh_key)
        if token2.rekey.dh_key.choice is None:
            self._abort(t, DtDiag.PROTOCOL_ERROR, "rekey without a DH public value")
        public = token2.rekey.dh_key.choice.value
        signed = rekey_signed_bytes(self.asso_id, token2.time, token2.seq, group, public)
        if group != self._own_dh.group or not crypto.verify(
            self.peer_certificate.public_key(), self._peer_sig_alg, token2.rekey.sign, signed
        ):
            self._abort(t, DtDiag.INVALID_REKEY, "rekey signature or group is invalid")
        try:
            secret = self._own_dh.exchange(public)
        except crypto.DhError as exc:
            self._abort(t, DtDiag.INVALID_REKEY, str(exc))
        return DirectionKeys.derive(
            self.config, secret, self._recv.chain, self.asso_id, self._recv_way, t
        )

    def _check_token(self, time: str, seq: int | None, keys: DirectionKeys, t: float) -> tuple:
        try:
            sent = parse_time(time)
        except ValueError:
            self._abort(t, DtDiag.TIME_OUT_OF_WINDOW, f"time {time!r} is no time")
        if abs(sent - t) > self.config.window_s:
            self._abort(t, DtDiag.TIME_OUT_OF_WINDOW, f"token time {time} is {sent - t:+.0f} s off")
        seq = seq or 0
        pair = (sent, seq)
        if pair in self._seen_set:
            self._abort(t, DtDiag.REPLAY, f"time {time} seq {seq} was already received")
        last = self._last_recv
        if (
            last is not None
            and pair != (last[0], last[1] + 1)
            and not (sent > last[0] and seq == 0)
        ):
            self._abort(
                t, DtDiag.OUT_OF_SEQUENCE, f"time {time} seq {seq} after seq {last[1]} of {last[0]}"
            )
        if last is None and seq != 0:
            self._abort(t, DtDiag.OUT_OF_SEQUENCE, f"first message has seq {seq}, not 0")
        if t - keys.since > self._max_key_age:
            self._abort(t, DtDiag.REKEY_OVERDUE, "the peer did not renew its keys within 24 h")
        return pair

    def _accept(self, pair: tuple[float, int], keys: DirectionKeys) -> None:
        if keys is not self._recv:
            SECURITY_LOG.info("E2E association %s: peer renewed its keys", self.asso_id)
        self._recv = keys
        self._last_recv = pair
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(pair)
        self._seen_set.add(pair)

    def _icv(self, keys: DirectionKeys, data: bytes) -> tuple[bytes | None, bytes]:
        """``(nonce, icv)`` of ``data`` with the agreed ICV algorithm."""
        if self.config.icv == "hmac-sha256":
            return None, keys.icv_hmac.mac(data)
        nonce = os.urandom(12)
        return nonce, keys.icv_gmac.gmac(nonce, data)

    def _check_icv(self, auth: e.Authenticator, keys: DirectionKeys, data: bytes, t: float) -> None:
        if alternative_name(auth.algorithm) != self.config.icv:
            self._abort(
                t,
                DtDiag.UNSUPPORTED_ALGORITHM,
                f"ICV {alternative_name(auth.algorithm)}, agreed {self.config.icv}",
            )
        if self.config.icv == "hmac-sha256":
            if auth.nonce is not None:
                self._abort(t, DtDiag.PROTOCOL_ERROR, "HMAC-SHA256 ICV with a nonce")
            good = crypto.hmac_equal(keys.icv_hmac.mac(data), auth.icv)
        else:
            if auth.nonce is None or len(auth.nonce) != 12:
                self._abort(t, DtDiag.INVALID_IV, "GMAC nonce must be 12 octets")
            good = crypto.hmac_equal(keys.icv_gmac.gmac(auth.nonce, data), auth.icv)
        if not good:
            self._abort(t, DtDiag.INVALID_ICV, "ICV does not match tbp")

    def _open_clear(self, env: e.ClearTransfer, t: float) -> Mmspdu:
        if self._mode is not Mode.AUTHENTICATED:
            self._abort(t, DtDiag.WRONG_ENVELOPE, "ClearTransfer on an encrypted association")
        token2 = env.tbp.token2
        keys = self._receive_keys(token2, t)
        self._check_icv(env.auth, keys, self._canon.clear_tbp(env), t)
        self._accept(self._check_token(token2.time, token2.seq, keys, t), keys)
        return env.tbp.appl_data.mmspdu

    def _open_encr(self, env: e.EncrTransfer, t: float) -> Mmspdu:
        if self._mode is not Mode.ENCRYPTED:
            self._abort(t, DtDiag.WRONG_ENVELOPE, "EncrTransfer on an authenticated association")
        token2 = env.tbp.token2
        keys = self._receive_keys(token2, t)
        iv = token2.iv or b""
        try:
            if self._aead:
                if env.auth is not None:
                    self._abort(t, DtDiag.PROTOCOL_ERROR, "AES-GCM EncrTransfer with an auth")
                if len(iv) != 12:
                    self._abort(t, DtDiag.INVALID_IV, "AES-GCM nonce must be 12 octets")
                plaintext = keys.enc_gcm.open(
                    iv, env.tbp.encrypted_appl_data, self._canon.aad(token2)
                )
            else:
                if env.auth is None:
                    self._abort(t, DtDiag.UNSUPPORTED_ALGORITHM, "AES-CBC without an ICV")
                if len(iv) != 16:
                    self._abort(t, DtDiag.INVALID_IV, "AES-CBC IV must be 16 octets")
                self._check_icv(env.auth, keys, self._canon.encr_tbp(env), t)
                plaintext = crypto.cbc_open(keys.enc_key, iv, env.tbp.encrypted_appl_data)
        except crypto.DecryptError as exc:
            self._abort(t, DtDiag.DECRYPTION_FAILED, str(exc))
        pair = self._check_token(token2.time, token2.seq, keys, t)
        try:
            pdu = codec.decode_pdu(plaintext)
        except codec.CodecError as exc:
            self._abort(t, DtDiag.INVALID_APPLICATION_DATA, f"decrypted payload: {exc}")
        self._accept(pair, keys)
        return pdu

    def _open_plain(self, env: e.AssociationContext, t: float) -> Mmspdu:
        self._abort(t, DtDiag.E2E_MISMATCH, "E2E-off AssociationContext on a secured association")
        raise AssertionError("unreachable")

    def _peer_abort(self, env: Any, t: float) -> Mmspdu:
        token = getattr(env, "token3", None)
        asso_id = token.asso_id if token is not None else env.asso_id
        # The initiator's HandshakeSecAbort names its own part only (it refused our n:m).
        head = self.asso_id.split(":")[0] if isinstance(env, e.HandshakeSecAbort) else None
        if asso_id not in (self.asso_id, head):
            self._abort(t, DtDiag.INVALID_ASSO_ID, f"abort for assoID {asso_id!r}")
        self.state = SessionState.ABORTED
        diag = getattr(env, "diag", None)
        kind = type(env).__name__
        SECURITY_LOG.warning(
            "E2E association %s: peer %s sent %s (diag %s)", self.asso_id, self.peer, kind, diag
        )
        raise PeerAborted(kind, diag, env)

    def _peer_appl_abort(self, env: e.ApplAbort, t: float) -> Mmspdu:
        # Unlike DtSecAbort / HandshakeSecAbort (sent when keys may be unusable), ApplAbort is
        # protected like the release PDUs: without this check anyone could end the association.
        token3 = env.token3
        if token3.asso_id != self.asso_id:
            self._abort(t, DtDiag.INVALID_ASSO_ID, f"ApplAbort for assoID {token3.asso_id!r}")
        if env.auth is None or not crypto.hmac_equal(
            self._recv.ctl_hmac.mac(canonical_part(env, "token3")), env.auth.icv
        ):
            self._abort(t, DtDiag.INVALID_ICV, "ApplAbort ICV does not match token3")
        self._accept(self._check_token(token3.time, token3.seq, self._recv, t), self._recv)
        return self._peer_abort(env, t)

    def _control(self, cls: type, t: float) -> Any:
        _, time, seq = self._next_time_seq(t)
        env = cls(
            token3=e.ClearToken3(asso_id=self.asso_id, time=time, seq=seq),
            auth=e.Authenticator(algorithm=_icv_alg("hmac-sha256"), icv=b"\x00"),
        )
        env.auth.icv = self._send.ctl_hmac.mac(canonical_part(env, "token3"))
        return env

    def _check_control(self, env: Any, t: float) -> None:
        if self.state not in (SessionState.ESTABLISHED, SessionState.RELEASING):
            raise ReleaseError(f"association is {self.state.value}")
        token3 = env.token3
        if token3.asso_id != self.asso_id:
            raise ReleaseError(f"{type(env).__name__} for assoID {token3.asso_id!r}")
        if env.auth is None or not crypto.hmac_equal(
            self._recv.ctl_hmac.mac(canonical_part(env, "token3")), env.auth.icv
        ):
            raise ReleaseError(f"{type(env).__name__} ICV does not match token3")
        try:
            self._accept(self._check_token(token3.time, token3.seq, self._recv, t), self._recv)
        except TransferError as exc:
            raise ReleaseError(f"{type(env).__name__}: {exc}") from None


def _icv_alg(name: str) -> e.IcvAlgorithm:
    return alternative(e.IcvAlgorithm, name)
