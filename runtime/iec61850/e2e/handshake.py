"""The E2E association handshake (sans-IO): HandshakeReq -> HandshakeAcc / rejects.

Initiator::

    hs = Initiator(config, peer_jid, "7", initiate_request_pdu, now)
    send(hs.request)                               # HandshakeReq
    session = hs.complete(answer_envelope, now)    # HandshakeAcc -> E2ESession
    # HandshakeRejected (peer's HandshakeSecReject), ApplicationRejected (initiate-ErrorPDU),
    # HandshakeError(reply=HandshakeSecAbort) when the answer fails our checks

Responder::

    responder = Responder(policy)
    offer = responder.receive(peer_jid, envelope, now)   # HandshakeError(reply=HandshakeSecReject)
    session, acc = offer.accept(initiate_response_pdu, now)   # or offer.reject(initiate_error)

Checks of a signed handshake PDU, in this order (the signature before any content): the
signature over the canonical ``tbs`` with the key of the certificate it carries; then that
certificate (:mod:`~gridbind.iec61850.e2e.trust`: trust anchors, validity, keyUsage, the peer's
JID); then version, assoID, time window, replay (responder), DH group and value, encryption mode
(must equal the local configuration: both peers agree on off / authenticated / encrypted and the
cipher), confParams (``tlsProtected`` must be true: XMPP always runs over TLS), and finally that
``applData`` is the expected initiate PDU. ``attCert`` is accepted and not evaluated.

A peer whose policy is E2E off that receives a HandshakeReq, and a peer with E2E on that
receives an E2E-off initiate (``AssociationContext``), both refuse with HandshakeSecReject
diagnostic ``e2e-mismatch``; an initiator with E2E on answered in an ``AssociationContext``
aborts with HandshakeSecAbort ``e2e-mismatch``.

Keys (RFC 5869 HKDF-SHA256): ``secret`` = the DH shared secret of the two ephemeral values;
``salt`` = SHA-256(SHA-256(tbs of HandshakeReq) || SHA-256(tbs of HandshakeAcc)) (canonical
bytes); per direction (``initiator-to-responder``, ``responder-to-initiator``), ``info`` =
``gridbind-e2e-v1|<assoID n:m>|<direction>|<use>`` with use ``enc`` (AES key; GCM or CBC),
``icv`` (HMAC-SHA256 or GMAC key; authenticated mode and CBC), ``ctl`` (release/abort ICV) and ``chain``
(salt of the next rekey).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from gridbind.generated.iec61850_8_2 import Mmspdu
from gridbind.generated.iec61850_8_2 import e2e_4 as e
from gridbind.iec61850 import codec
from gridbind.iec61850.e2e import crypto
from gridbind.iec61850.e2e.config import E2EConfig, E2EPolicy, Mode, bare_jid
from gridbind.iec61850.e2e.diagnostics import (
    ApplicationRejected,
    ConfigError,
    HandshakeDiag,
    HandshakeError,
    HandshakeRejected,
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
from gridbind.iec61850.e2e.transfer import I2R, R2I, DirectionKeys, E2ESession
from gridbind.iec61850.e2e.trust import check_certificate, load_certificate
from gridbind.iec61850.envelope import PP_8_2, names_8_2

__all__ = ["MAX_REPLAY_CACHE", "MAX_REPLAY_PER_PEER", "HandshakeOffer", "Initiator", "Responder"]

#: Bound of the responder's memory of recent HandshakeReqs (replay detection).
MAX_REPLAY_CACHE = 4096
#: Share of that memory one peer (bare JID) may hold, so one peer cannot lock out the others.
MAX_REPLAY_PER_PEER = 64


def _encr_mode(config: E2EConfig) -> e.EncrMode:
    if config.mode is Mode.ENCRYPTED and config.aead:
        return e.EncrMode(
            choice=e.EncrMode.Aea(aea_algorithm=[alternative(e.AeaAlgorithm, config.cipher)])
        )
    ciphers = []
    if config.mode is Mode.ENCRYPTED:
        ciphers = [alternative(e.EncryptionAlgorithm, config.cipher)]
    return e.EncrMode(
        choice=e.EncrMode.NonAea(
            encryption=e.EncrMode.NonAea.Encryption(encryption_algorithm=ciphers),
            icv=e.EncrMode.NonAea.Icv(icv_algorithm=[alternative(e.IcvAlgorithm, config.icv)]),
        )
    )


_Choice = tuple[Mode, str | None, str | None]  # (mode, cipher, ICV algorithm)


def _offered(mode: e.EncrMode) -> set[_Choice]:
    """The (mode, cipher, ICV) combinations an encr-mode offers."""
    choice = mode.choice
    if choice is None:
        return set()
    if isinstance(choice, e.EncrMode.Aea):
        return {(Mode.ENCRYPTED, alternative_name(a), None) for a in choice.aea_algorithm}
    icvs = [alternative_name(a) for a in choice.icv.icv_algorithm]
    ciphers = [alternative_name(a) for a in choice.encryption.encryption_algorithm]
    if not ciphers:
        return {(Mode.AUTHENTICATED, None, icv) for icv in icvs}
    return {(Mode.ENCRYPTED, c, icv) for c in ciphers for icv in icvs}


def _wanted(config: E2EConfig) -> _Choice:
    if config.mode is Mode.ENCRYPTED and config.aead:
        return (Mode.ENCRYPTED, config.cipher, None)
    return (config.mode, config.cipher if config.mode is Mode.ENCRYPTED else None, config.icv)


def _token1(config: E2EConfig, asso_id: str, dh: crypto.DhKeyPair, t: float) -> e.ClearToken1:
    assert config.certificate is not None
    from cryptography.hazmat.primitives.serialization import Encoding

    path = None
    if config.cert_path:
        path = e.ClearToken1.CertPath(
            certificate=[c.public_bytes(Encoding.DER) for c in config.cert_path]
        )
    return e.ClearToken1(
        sig_alg=alternative(e.SignatureAlgorithm, config.sig_alg),
        pk_cert=config.certificate.public_bytes(Encoding.DER),
        cert_path=path,
        version=e.ClearToken1.Version(v1=e.Null()),
        asso_id=asso_id,
        dh_key=alternative(e.DhKey, dh.group, dh.public_bytes()),
        hmac=e.HmacAlgorithm(hmac_sha256=e.Null()),
        time=format_time(t),
        encr_mode=_encr_mode(config),
        conf_params=e.ConfParams(tls_protected=True, appl_protected=True, vpn=False),
    )


def _signed_bytes(env: Any, answers: e.HandshakeReq | None) -> bytes:
    """What ``sign`` covers: the canonical tbs, and for an answer the hash of the request's tbs
    (DECISIONS.md 41), so an old answer cannot complete a new handshake."""
    tbs = canonical_part(env, "tbs")
    if answers is None:
        return tbs
    return tbs + crypto.sha256(canonical_part(answers, "tbs"))


def _signed(
    cls: type,
    config: E2EConfig,
    token1: e.ClearToken1,
    pdu: Mmspdu,
    answers: e.HandshakeReq | None = None,
    **kw: Any,
) -> Any:
    env = cls(tbs=e.HandshakeTbs(token1=token1, appl_data=e.ApplData(mmspdu=pdu)), sign=b"\0", **kw)
    env.sign = crypto.sign(config.private_key, _signed_bytes(env, answers))
    return env


def _pdu_kind(pdu: Mmspdu) -> str:
    return codec.default_codec().choice_name(pdu)


@dataclass
class _Checked:
    certificate: x509.Certificate
    sig_alg: str
    peer_dh: bytes
    secret: bytes


def _check_signed(
    config: E2EConfig,
    env: Any,
    peer: str,
    t: float,
    own_dh: crypto.DhKeyPair,
    pdu_kinds: tuple,
    answers: e.HandshakeReq | None = None,
) -> _Checked:
    """Every check of a signed handshake PDU; HandshakeError (no reply) on the first failure."""
    token1 = env.tbs.token1
    sig_alg = alternative_name(token1.sig_alg)
    public = load_certificate(token1.pk_cert).public_key()
    if not crypto.verify(public, sig_alg, env.sign, _signed_bytes(env, answers)):
        raise HandshakeError(HandshakeDiag.INVALID_SIGNATURE, "signature does not verify")
    path = token1.cert_path.certificate if token1.cert_path is not None else []
    cert = check_certificate(token1.pk_cert, path, config.trust_anchors, t, peer)
    if token1.version.v1 is None:
        raise HandshakeError(HandshakeDiag.UNSUPPORTED_VERSION, "version is not v1")
    try:
        sent = parse_time(token1.time)
    except ValueError:
        raise HandshakeError(HandshakeDiag.TIME_OUT_OF_WINDOW, "unreadable time") from None
    if abs(sent - t) > config.window_s:
        raise HandshakeError(
            HandshakeDiag.TIME_OUT_OF_WINDOW, f"token time {token1.time} is {sent - t:+.0f} s off"
        )
    group = alternative_name(token1.dh_key)
    if group != own_dh.group:
        raise HandshakeError(HandshakeDiag.UNSUPPORTED_DH_GROUP, f"{group} (want {own_dh.group})")
    try:
        secret = own_dh.exchange(token1.dh_key.choice.value)
    except crypto.DhError as exc:
        raise HandshakeError(HandshakeDiag.INVALID_DH_KEY, str(exc)) from None
    if token1.hmac.hmac_sha256 is None:
        raise HandshakeError(HandshakeDiag.UNSUPPORTED_HMAC, "HKDF needs hmac-sha256")
    if _wanted(config) not in _offered(token1.encr_mode):
        raise HandshakeError(
            HandshakeDiag.NO_COMMON_ENCRYPTION_MODE,
            f"peer offers {sorted(map(str, _offered(token1.encr_mode)))}, "
            f"local policy is {_wanted(config)}",
        )
    if not token1.conf_params.tls_protected:
        raise HandshakeError(HandshakeDiag.CONF_PARAMS_MISMATCH, "tlsProtected is false")
    kind = _pdu_kind(env.tbs.appl_data.mmspdu)
    if kind not in pdu_kinds:
        raise HandshakeError(
            HandshakeDiag.INVALID_APPLICATION_DATA, f"applData is {kind}, not {pdu_kinds[0]}"
        )
    return _Checked(cert, sig_alg, token1.dh_key.choice.value, secret)


def _session(
    config: E2EConfig,
    peer: str,
    checked: _Checked,
    own_dh: crypto.DhKeyPair,
    req: e.HandshakeReq,
    acc: e.HandshakeAcc,
    initiator: bool,
    t: float,
    pdu: Mmspdu,
) -> E2ESession:
    asso_id = acc.tbs.token1.asso_id
    salt = crypto.sha256(
        crypto.sha256(canonical_part(req, "tbs")) + crypto.sha256(canonical_part(acc, "tbs"))
    )
    i2r = DirectionKeys.derive(config, checked.secret, salt, asso_id, I2R, t)
    r2i = DirectionKeys.derive(config, checked.secret, salt, asso_id, R2I, t)
    SECURITY_LOG.info(
        "E2E association %s with %s established (%s%s, %s)",
        asso_id,
        peer,
        config.mode.value,
        f" {config.cipher}" if config.mode is Mode.ENCRYPTED else "",
        own_dh.group,
    )
    return E2ESession(
        config=config,
        peer=peer,
        peer_certificate=checked.certificate,
        peer_sig_alg=checked.sig_alg,
        initiator=initiator,
        asso_id=asso_id,
        own_dh=own_dh,
        peer_dh=checked.peer_dh,
        send=i2r if initiator else r2i,
        receive=r2i if initiator else i2r,
        initiate_pdu=pdu,
    )


def _log_failure(role: str, peer: str, exc: HandshakeError) -> None:
    SECURITY_LOG.warning("E2E handshake (%s) with %s failed: %s", role, peer, exc)


class Initiator:
    """The calling side of one handshake: ``request`` to send, then :meth:`complete`."""

    def __init__(
        self, config: E2EConfig, peer: str, asso_id: str, initiate_request: Mmspdu, now: Now
    ) -> None:
        if config.mode is Mode.OFF:
            raise ConfigError("E2E security is off for this peer: no handshake")
        if not asso_id.isdigit() or len(asso_id) > 10:
            raise ConfigError(f"initiator assoID must be 1-10 digits, not {asso_id!r}")
        self.config = config
        self.peer = peer
        self.asso_id = asso_id
        self._dh = crypto.DhKeyPair.generate(config.dh_group)
        self._done = False
        t = to_posix(now)
        self._sent_at = parse_time(format_time(t))  # as the peer sees it, at the wire precision
        self.request: e.HandshakeReq = _signed(
            e.HandshakeReq,
            config,
            _token1(config, asso_id, self._dh, t),
            initiate_request,
            pp=PP_8_2,
        )

    def _abort(self, diag: HandshakeDiag, detail: str, t: float) -> HandshakeError:
        self._done = True
        reply = e.HandshakeSecAbort(asso_id=self.asso_id, time=format_time(t), diag=int(diag))
        exc = HandshakeError(diag, detail, reply=reply)
        _log_failure("initiator", self.peer, exc)
        return exc

    def complete(self, envelope: Any, now: Now) -> E2ESession:
        """The established session, from the peer's answer (see the module doc for errors)."""
        t = to_posix(now)
        if self._done:
            raise HandshakeError(HandshakeDiag.UNEXPECTED_MESSAGE, "handshake already finished")
        if isinstance(envelope, (e.HandshakeSecReject, e.HandshakeSecAbort)):
            if envelope.asso_id.split(":")[0] != self.asso_id:
                raise HandshakeError(HandshakeDiag.INVALID_ASSO_ID, "reject of another assoID")
            self._done = True
            SECURITY_LOG.warning(
                "E2E handshake with %s refused by the peer: diag %d", self.peer, envelope.diag
            )
            raise HandshakeRejected(envelope.diag, envelope)
        if isinstance(envelope, e.AssociationContext):
            raise self._abort(HandshakeDiag.E2E_MISMATCH, "peer answered with E2E off", t)
        if isinstance(envelope, e.ApplicationReject):
            self._check(envelope, t, ("initiate-ErrorPDU",))
            self._done = True
            SECURITY_LOG.info("E2E handshake with %s: application rejected", self.peer)
            raise ApplicationRejected(envelope.tbs.appl_data.mmspdu)
        if not isinstance(envelope, e.HandshakeAcc):
            raise self._abort(HandshakeDiag.UNEXPECTED_MESSAGE, type(envelope).__name__, t)
        checked = self._check(envelope, t, ("initiate-ResponsePDU",))
        self._done = True
        return _session(
            self.config,
            self.peer,
            checked,
            self._dh,
            self.request,
            envelope,
            True,
            t,
            envelope.tbs.appl_data.mmspdu,
        )

    def _check(self, env: Any, t: float, kinds: tuple) -> _Checked:
        try:
            checked = _check_signed(
                self.config, env, self.peer, t, self._dh, kinds, answers=self.request
            )
            if parse_time(env.tbs.token1.time) < self._sent_at:
                raise HandshakeError(
                    HandshakeDiag.TIME_OUT_OF_WINDOW, "answer is timed before the request"
                )
            head, _, tail = env.tbs.token1.asso_id.partition(":")
            if head != self.asso_id or not tail:
                raise HandshakeError(
                    HandshakeDiag.INVALID_ASSO_ID,
                    f"answer assoID {env.tbs.token1.asso_id!r} is not {self.asso_id}:<n>",
                )
            if _offered(env.tbs.token1.encr_mode) != {_wanted(self.config)}:
                raise HandshakeError(
                    HandshakeDiag.NO_COMMON_ENCRYPTION_MODE, "answer must name the one mode"
                )
        except HandshakeError as exc:
            raise self._abort(exc.diag, exc.detail, t) from None
        return checked


@dataclass
class HandshakeOffer:
    """A HandshakeReq that passed every security check; the application decides next."""

    config: E2EConfig
    peer: str
    request: e.HandshakeReq
    checked: _Checked
    dh: crypto.DhKeyPair
    responder_part: str

    @property
    def initiate_request(self) -> Mmspdu:
        """The initiate-RequestPDU for the application."""
        return self.request.tbs.appl_data.mmspdu

    @property
    def asso_id(self) -> str:
        """The assoID of the association if accepted (``n:m``)."""
        return f"{self.request.tbs.token1.asso_id}:{self.responder_part}"

    def accept(self, initiate_response: Mmspdu, now: Now) -> tuple[E2ESession, e.HandshakeAcc]:
        """Accept with the application's initiate-ResponsePDU: the session and the HandshakeAcc."""
        t = to_posix(now)
        acc = _signed(
            e.HandshakeAcc,
            self.config,
            _token1(self.config, self.asso_id, self.dh, t),
            initiate_response,
            answers=self.request,
        )
        session = _session(
            self.config,
            self.peer,
            self.checked,
            self.dh,
            self.request,
            acc,
            False,
            t,
            self.initiate_request,
        )
        return session, acc

    def reject(self, initiate_error: Mmspdu, now: Now) -> e.ApplicationReject:
        """Refuse at application level: a signed ApplicationReject with the initiate-ErrorPDU."""
        t = to_posix(now)
        SECURITY_LOG.info("E2E handshake from %s: application rejected locally", self.peer)
        return _signed(
            e.ApplicationReject,
            self.config,
            _token1(self.config, self.asso_id, self.dh, t),
            initiate_error,
            answers=self.request,
        )


class Responder:
    """The called side: checks HandshakeReqs of any peer under a per-peer :class:`E2EPolicy`."""

    def __init__(self, policy: E2EPolicy | E2EConfig) -> None:
        self.policy = policy if isinstance(policy, E2EPolicy) else E2EPolicy(policy)
        self._ids = itertools.count(1)
        self._recent: OrderedDict[tuple[str, bytes], float] = OrderedDict()
        self._per_peer: dict[str, int] = {}

    def receive(self, peer: str, envelope: Any, now: Now) -> HandshakeOffer | None:
        """Check an association request; ``None`` when it is an E2E-off request and E2E is off
        for this peer (the plain path applies). HandshakeError (``reply`` =
        HandshakeSecReject) when it fails."""
        t = to_posix(now)
        config = self.policy.for_peer(peer)
        try:
            return self._receive(config, peer, envelope, t)
        except HandshakeError as exc:
            asso = getattr(envelope, "asso_id", None)
            if isinstance(envelope, e.HandshakeReq):
                asso = envelope.tbs.token1.asso_id
            exc.reply = e.HandshakeSecReject(
                asso_id=asso if isinstance(asso, str) and asso.isdigit() else "0",
                time=format_time(t),
                diag=int(exc.diag),
            )
            _log_failure("responder", peer, exc)
            raise

    def _receive(self, config: E2EConfig, peer: str, env: Any, t: float) -> HandshakeOffer | None:
        if isinstance(env, e.AssociationContext):
            if config.mode is Mode.OFF:
                return None
            raise HandshakeError(HandshakeDiag.E2E_MISMATCH, "E2E-off request, local policy on")
        if not isinstance(env, e.HandshakeReq):
            raise HandshakeError(HandshakeDiag.UNEXPECTED_MESSAGE, type(env).__name__)
        if config.mode is Mode.OFF:
            raise HandshakeError(HandshakeDiag.E2E_MISMATCH, "HandshakeReq, local policy is off")
        if not names_8_2(env.pp):
            raise HandshakeError(HandshakeDiag.UNSUPPORTED_PROTOCOL, alternative_name(env.pp))
        dh = crypto.DhKeyPair.generate(config.dh_group)
        checked = _check_signed(config, env, peer, t, dh, ("initiate-RequestPDU",))
        if not env.tbs.token1.asso_id.isdigit():
            raise HandshakeError(HandshakeDiag.INVALID_ASSO_ID, "request assoID must be n")
        # Keyed on the signed content, not the signature: ECDSA's (r, n - s) also verifies.
        self._remember(peer, canonical_part(env, "tbs"), t, config.window_s)
        part = str(next(self._ids) % 10**10)
        return HandshakeOffer(config, peer, env, checked, dh, part)

    def _remember(self, peer: str, tbs: bytes, t: float, window: float) -> None:
        while self._recent and next(iter(self._recent.values())) < t - 2 * window:
            (old_peer, _), _ = self._recent.popitem(last=False)
            self._per_peer[old_peer] -= 1
            if not self._per_peer[old_peer]:
                del self._per_peer[old_peer]
        who = bare_jid(peer)
        key = (who, crypto.sha256(tbs))
        if key in self._recent:
            raise HandshakeError(HandshakeDiag.REPLAYED_HANDSHAKE, "HandshakeReq seen before")
        if self._per_peer.get(who, 0) >= MAX_REPLAY_PER_PEER:
            raise HandshakeError(
                HandshakeDiag.RESOURCES_EXHAUSTED, f"too many recent handshakes from {who}"
            )
        if len(self._recent) >= MAX_REPLAY_CACHE:
            raise HandshakeError(HandshakeDiag.RESOURCES_EXHAUSTED, "too many recent handshakes")
        self._recent[key] = t
        self._per_peer[who] = self._per_peer.get(who, 0) + 1
