"""E2E configuration: per peer off / authenticated / encrypted, with its own certificate and key.

The E2E certificate and key are separate from the XMPP TLS ones (IEC 62351-4: keyUsage
digitalSignature + keyAgreement); the trust anchors are the CA certificates whose E2E
certificates are accepted. One :class:`E2EConfig` describes one local identity and policy;
:class:`E2EPolicy` picks the one that applies to a peer (bare JID) with a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gridbind.generated.iec61850_8_2 import e2e_4
from gridbind.iec61850.e2e.crypto import sig_alg_of_key
from gridbind.iec61850.e2e.diagnostics import ConfigError
from gridbind.iec61850.e2e.tokens import WINDOW_S, alternative_names

__all__ = [
    "REKEY_MAX_S",
    "REKEY_MIN_S",
    "E2EConfig",
    "E2EPolicy",
    "Mode",
    "bare_jid",
    "load_certificates",
    "load_private_key",
]

#: Rekeying interval bounds (notes: every 15 min to 24 h).
REKEY_MIN_S = 15 * 60.0
REKEY_MAX_S = 24 * 3600.0


class Mode(StrEnum):
    """E2E security of an association."""

    OFF = "off"
    AUTHENTICATED = "authenticated"  # ClearTransfer + HMAC-SHA256
    ENCRYPTED = "encrypted"  # EncrTransfer (AES-GCM, or AES-CBC + HMAC-SHA256)


def bare_jid(jid: str) -> str:
    """``Local@Domain/Resource`` -> ``local@domain`` (case-folded; the comparison form)."""
    return jid.split("/", 1)[0].lower()


@dataclass(frozen=True)
class E2EConfig:
    """One E2E policy: mode, the local E2E identity, trust anchors and algorithms.

    ``cipher`` (encrypted mode): ``aes-128-gcm`` / ``aes-256-gcm`` (aea) or ``aes-128-cbc`` /
    ``aes-256-cbc`` (non-aea). ``icv`` (authenticated mode and CBC): ``hmac-sha256`` or GMAC
    ``aes-128-gcm`` / ``aes-256-gcm`` (nonce in the Authenticator). ``rekey_interval_s`` must lie
    within 15 min and 24 h. ``window_s`` is the accepted clock distance of token times (10 minutes).
    """

    mode: Mode
    certificate: x509.Certificate | None = None
    private_key: Any = None
    trust_anchors: tuple[x509.Certificate, ...] = ()
    cert_path: tuple[x509.Certificate, ...] = ()
    dh_group: str = "ecdh-secp256r1"
    cipher: str = "aes-128-gcm"
    icv: str = "hmac-sha256"
    rekey_interval_s: float = 3600.0
    window_s: float = WINDOW_S

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode(self.mode))
        object.__setattr__(self, "trust_anchors", tuple(self.trust_anchors))
        object.__setattr__(self, "cert_path", tuple(self.cert_path))
        if self.mode is Mode.OFF:
            return
        if self.certificate is None or self.private_key is None:
            raise ConfigError("E2E security on needs an E2E certificate and its private key")
        if not self.trust_anchors:
            raise ConfigError("E2E security on needs at least one trust anchor")
        try:
            sig_alg_of_key(self.private_key)
        except ValueError as exc:
            raise ConfigError(f"E2E key: {exc}") from None
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if self.certificate.public_key().public_bytes(*spki) != (
            self.private_key.public_key().public_bytes(*spki)
        ):
            raise ConfigError("the E2E private key does not belong to the E2E certificate")
        if self.dh_group not in alternative_names(e2e_4.DhKey):
            raise ConfigError(f"unknown DH group {self.dh_group!r}")
        ciphers = alternative_names(e2e_4.AeaAlgorithm) + alternative_names(
            e2e_4.EncryptionAlgorithm
        )
        if self.cipher not in ciphers:
            raise ConfigError(f"unknown cipher {self.cipher!r} (one of {', '.join(ciphers)})")
        if self.icv not in alternative_names(e2e_4.IcvAlgorithm):
            raise ConfigError(f"unknown ICV algorithm {self.icv!r}")
        if not REKEY_MIN_S <= self.rekey_interval_s <= REKEY_MAX_S:
            raise ConfigError(
                f"rekey interval {self.rekey_interval_s} s is outside 15 min..24 h"
                f" ({REKEY_MIN_S:.0f}..{REKEY_MAX_S:.0f} s)"
            )
        if not 0 < self.window_s <= WINDOW_S:
            raise ConfigError(f"time window {self.window_s} s is outside (0, {WINDOW_S:.0f}]")

    @property
    def sig_alg(self) -> str:
        """The signature algorithm the private key implies."""
        return sig_alg_of_key(self.private_key)

    @property
    def aead(self) -> bool:
        """True if encrypted mode uses AES-GCM (aea)."""
        return self.cipher in alternative_names(e2e_4.AeaAlgorithm)

    @classmethod
    def load(
        cls,
        mode: Mode | str,
        *,
        certificate: str | Path | None = None,
        key: str | Path | None = None,
        trust_anchors: str | Path | None = None,
        key_password: bytes | None = None,
        **options: Any,
    ) -> E2EConfig:
        """Build from PEM files: the E2E certificate (a chain file: leaf first, then the
        intermediates sent as certPath), its private key and a bundle of trust anchors."""
        if Mode(mode) is Mode.OFF:
            return cls(Mode.OFF)
        if certificate is None or key is None or trust_anchors is None:
            raise ConfigError("E2E security on needs --e2e-cert, --e2e-key and --e2e-ca")
        chain = load_certificates(certificate)
        return cls(
            Mode(mode),
            certificate=chain[0],
            private_key=load_private_key(key, key_password),
            trust_anchors=tuple(load_certificates(trust_anchors)),
            cert_path=tuple(chain[1:]),
            **options,
        )


def load_certificates(path: str | Path) -> list[x509.Certificate]:
    """All PEM certificates of a file (ConfigError if none or unreadable)."""
    try:
        certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read certificates from {path}: {exc}") from None
    return certs


def load_private_key(path: str | Path, password: bytes | None = None) -> Any:
    """A PEM private key (ConfigError if unreadable)."""
    try:
        return serialization.load_pem_private_key(Path(path).read_bytes(), password)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read the private key {path}: {exc}") from None


@dataclass(frozen=True)
class E2EPolicy:
    """Configuration per peer: ``peers`` (bare JID -> config) over ``default``."""

    default: E2EConfig
    peers: Mapping[str, E2EConfig] = field(default_factory=dict)

    def for_peer(self, jid: str) -> E2EConfig:
        return self.peers.get(bare_jid(jid), self.default)
