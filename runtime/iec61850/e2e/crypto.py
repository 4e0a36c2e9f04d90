"""Cryptographic primitives of the E2E engine (all from ``cryptography``).

- Signatures: ``ecdsa-p256-sha256`` (ECDSA over P-256, SHA-256, DER-encoded signature) and
  ``rsa-sha256`` (RSASSA-PKCS1-v1_5, SHA-256, modulus >= 2048 bits).
- Ephemeral Diffie-Hellman: ``ecdh-secp256r1`` (public value = uncompressed X9.62 point, 65
  octets) and ``modp-group14`` (RFC 3526 2048-bit MODP group, generator 2; public value = 256
  octets big-endian; peer values checked to lie in the prime-order subgroup). ``cryptography``
  deprecates finite-field DH, so group 14 is computed with Python's ``pow`` (a 256-bit private
  exponent, RFC 3526's size for 128-bit strength; not constant-time: ECDH P-256 is the default).
- HKDF-SHA256 (RFC 5869), HMAC-SHA256, GMAC, AES-GCM (12-octet nonce, 16-octet tag appended to the
  ciphertext) and AES-CBC with PKCS#7 padding.
- :class:`HmacKey` and :class:`GcmKey`: the same HMAC-SHA256 and AES-GCM/GMAC with the per-key
  work (HMAC pads, AES key schedule) done once, for keys used on every message of an association.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gridbind.errors import RemoteError
from gridbind.iec61850.errors import Iec61850Error, InvalidArgument

__all__ = [
    "MODP14_P",
    "MAX_RSA_BITS",
    "DecryptError",
    "DhError",
    "DhKeyPair",
    "GcmKey",
    "HmacKey",
    "cbc_open",
    "cbc_seal",
    "gcm_open",
    "gmac",
    "gcm_seal",
    "hkdf",
    "hmac_equal",
    "hmac_sha256",
    "sha256",
    "sig_alg_of_key",
    "sign",
    "verify",
]

#: RFC 3526 group 14 prime (2^2048 - 2^1984 - 1 + 2^64 * (floor(2^1918 pi) + 124476)); a test
#: derives it from that formula.
MODP14_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA4836"
    "1C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804"
    "F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6"
    "955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)


#: Upper bound of RSA keys: bounds the work a peer's certificate can ask for.
MAX_RSA_BITS = 8192


class DhError(Iec61850Error, RemoteError, ValueError):
    """A peer's DH public value is malformed or outside the group."""


class DecryptError(Iec61850Error, RemoteError, ValueError):
    """Decryption failed (wrong key, altered ciphertext or tag, bad padding)."""


def sig_alg_of_key(key: Any) -> str:
    """The E2E signature algorithm name for a private or public key; ValueError if unsupported."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if isinstance(key.curve, ec.SECP256R1):
            return "ecdsa-p256-sha256"
        raise InvalidArgument(f"EC curve {key.curve.name} is not P-256")
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        if not 2048 <= key.key_size <= MAX_RSA_BITS:
            raise InvalidArgument(f"RSA key of {key.key_size} bits (2048..{MAX_RSA_BITS} accepted)")
        return "rsa-sha256"
    raise InvalidArgument(f"unsupported key type {type(key).__name__}")


def sign(key: Any, data: bytes) -> bytes:
    """Signature of ``data`` with the E2E private key."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    return key.sign(data, asym_padding.PKCS1v15(), hashes.SHA256())


def verify(public_key: Any, sig_alg: str, signature: bytes, data: bytes) -> bool:
    """True if ``signature`` is a valid ``sig_alg`` signature of ``data`` by ``public_key``."""
    try:
        if sig_alg != sig_alg_of_key(public_key):
            return False
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            public_key.verify(signature, data, asym_padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass
class DhKeyPair:
    """An ephemeral DH key pair of one of the two groups."""

    group: str
    private: Any

    @classmethod
    def generate(cls, group: str) -> DhKeyPair:
        if group == "ecdh-secp256r1":
            return cls(group, ec.generate_private_key(ec.SECP256R1()))
        if group == "modp-group14":
            return cls(group, secrets.randbits(256) | (1 << 255))
        raise InvalidArgument(f"unsupported DH group {group!r}")

    def public_bytes(self) -> bytes:
        if self.group == "ecdh-secp256r1":
            return self.private.public_key().public_bytes(
                Encoding.X962, PublicFormat.UncompressedPoint
            )
        return pow(2, self.private, MODP14_P).to_bytes(256, "big")

    def exchange(self, peer_public: bytes) -> bytes:
        """Shared secret with a peer public value of the same group; DhError if invalid."""
        if self.group == "ecdh-secp256r1":
            if len(peer_public) != 65 or peer_public[0] != 4:
                raise DhError("P-256 public value must be a 65-octet uncompressed point")
            try:
                peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), peer_public)
            except ValueError as exc:
                raise DhError(f"not a P-256 point: {exc}") from None
            return self.private.exchange(ec.ECDH(), peer)
        if len(peer_public) != 256:
            raise DhError("MODP group 14 public value must be 256 octets")
        y = int.from_bytes(peer_public, "big")
        # Small-subgroup confinement: y must be in [2, p-2] and of order q = (p-1)/2.
        if not 2 <= y <= MODP14_P - 2 or pow(y, (MODP14_P - 1) // 2, MODP14_P) != 1:
            raise DhError("MODP group 14 public value outside the prime-order subgroup")
        return pow(y, self.private, MODP14_P).to_bytes(256, "big")


def hkdf(secret: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def hmac_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def gmac(key: bytes, nonce: bytes, data: bytes) -> bytes:
    """GMAC: the 16-octet AES-GCM tag of an empty plaintext with ``data`` as AAD."""
    return AESGCM(key).encrypt(nonce, b"", data)


def gcm_seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def gcm_open(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError):
        raise DecryptError("AES-GCM authentication failed") from None


class HmacKey:
    """HMAC-SHA256 under one key, its inner and outer pads computed once."""

    __slots__ = ("_base",)

    def __init__(self, key: bytes) -> None:
        self._base = hmac.new(key, digestmod=hashlib.sha256)

    def mac(self, data: bytes) -> bytes:
        h = self._base.copy()
        h.update(data)
        return h.digest()


class GcmKey:
    """AES-GCM under one key (the key schedule done once): seal, open and GMAC."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._aead.encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except (InvalidTag, ValueError):
            raise DecryptError("AES-GCM authentication failed") from None

    def gmac(self, nonce: bytes, data: bytes) -> bytes:
        """The 16-octet AES-GCM tag of an empty plaintext with ``data`` as AAD."""
        return self._aead.encrypt(nonce, b"", data)


def cbc_seal(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def cbc_open(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    if not ciphertext or len(ciphertext) % 16:
        raise DecryptError("AES-CBC ciphertext is not a positive multiple of 16 octets")
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    data = dec.update(ciphertext) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(data) + unpadder.finalize()
    except ValueError:
        raise DecryptError("AES-CBC padding is invalid") from None
