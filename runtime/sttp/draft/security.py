"""TLS contexts and the AES-256 SecureDataChannel cipher of the draft profile.

TLS: 1.3 by default (``minimum_version`` configurable; a connection below the latest version
logs a warning). Peers are validated against ``cafile``: a CA bundle for CA-issued certificates,
or the peer's own self-signed certificate(s) exchanged out of band (pinning: a self-signed
certificate that is not in the file is untrusted). Server-style sockets can require and validate
client certificates the same way, so a publisher can validate its subscribers. Relaxations
(``check_hostname=False`` for NAT'd names, ``verify=False``) are possible but logged loudly.

UDP payload encryption (decision; the seed only says "AES ... key size of 256 ... key and
initialization vector"): AES-256-CBC with PKCS#7 padding, one datagram at a time, with a random
16-byte block prepended to each plaintext so equal frames never encrypt equally under the fixed
IV. Datagrams that do not decrypt are dropped.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["DatagramCipher", "TlsConfig", "peer_identity"]

log = logging.getLogger("gridbind.sttp.draft")
LATEST_TLS = ssl.TLSVersion.TLSv1_3


@dataclass
class TlsConfig:
    """Certificates and validation policy of one side's TLS sockets."""

    certfile: str | None = None
    keyfile: str | None = None
    #: CA bundle or pinned self-signed peer certificates (PEM) that peers are validated against.
    cafile: str | None = None
    #: Validate the peer's certificate (servers then require a client certificate).
    verify: bool = True
    #: Check the peer's name against the certificate (client side).
    check_hostname: bool = True
    #: Name expected in the server's certificate (client side; defaults to the host dialled).
    server_hostname: str | None = None
    minimum_version: ssl.TLSVersion = LATEST_TLS

    def _base(self, purpose: ssl.Purpose) -> ssl.SSLContext:
        protocol = (
            ssl.PROTOCOL_TLS_SERVER
            if purpose == ssl.Purpose.CLIENT_AUTH
            else (ssl.PROTOCOL_TLS_CLIENT)
        )
        context = ssl.SSLContext(protocol)
        context.minimum_version = self.minimum_version
        if self.minimum_version < LATEST_TLS:
            log.warning(
                "TLS minimum version %s is below the latest (%s)",
                self.minimum_version.name,
                LATEST_TLS.name,
            )
        context.options |= ssl.OP_NO_COMPRESSION  # STTP compresses itself
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile)
        if self.cafile:
            context.load_verify_locations(cafile=self.cafile)
        return context

    def server_context(self) -> ssl.SSLContext:
        """Context for server-style sockets (publisher listening, or subscriber in reverse mode)."""
        if not self.certfile:
            raise ValueError("a TLS server needs certfile (and keyfile)")
        context = self._base(ssl.Purpose.CLIENT_AUTH)
        if self.verify and self.cafile:
            context.verify_mode = ssl.CERT_REQUIRED
        elif self.verify:
            context.verify_mode = ssl.CERT_NONE
        else:
            log.warning("TLS server: client certificates are NOT validated (verify=False)")
            context.verify_mode = ssl.CERT_NONE
        return context

    def client_context(self) -> ssl.SSLContext:
        """Context for client-style sockets (subscriber dialling, or publisher in reverse mode)."""
        context = self._base(ssl.Purpose.SERVER_AUTH)
        if not self.verify:
            log.warning("TLS client: the server certificate is NOT validated (verify=False)")
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif not self.check_hostname:
            log.warning("TLS client: certificate name mismatch tolerated (check_hostname=False)")
            context.check_hostname = False
            context.verify_mode = ssl.CERT_REQUIRED
        else:
            context.check_hostname = True
            context.verify_mode = ssl.CERT_REQUIRED
        return context


def peer_identity(ssl_object: ssl.SSLObject | None) -> str | None:
    """Subject common name of a validated peer certificate (``None`` without one)."""
    if ssl_object is None:
        return None
    version = ssl_object.version()
    if version and version != "TLSv1.3":
        log.warning("TLS connection uses %s, below the latest TLSv1.3", version)
    cert = ssl_object.getpeercert()
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


class DatagramCipher:
    """AES-256-CBC for one UDP data channel (key 32 bytes, IV 16 bytes)."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        if len(key) != 32 or len(iv) != 16:
            raise ValueError("AES-256 needs a 32-byte key and a 16-byte IV")
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(iv))

    def encrypt(self, frame: bytes) -> bytes:
        """Encrypt one datagram."""
        padder = padding.PKCS7(128).padder()
        plain = padder.update(os.urandom(16) + frame) + padder.finalize()
        encryptor = self._cipher.encryptor()
        return encryptor.update(plain) + encryptor.finalize()

    def decrypt(self, datagram: bytes) -> bytes:
        """Decrypt one datagram; raises ``ValueError`` when it is not ours."""
        if len(datagram) < 32 or len(datagram) % 16:
            raise ValueError("datagram is not AES-CBC ciphertext")
        decryptor = self._cipher.decryptor()
        plain = decryptor.update(datagram) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            data = unpadder.update(plain) + unpadder.finalize()
        except ValueError:
            raise ValueError("datagram does not decrypt (wrong key or corrupted)") from None
        return data[16:]
