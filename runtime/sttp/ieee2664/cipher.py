"""AES-CBC protection of UDP data packets with the even/odd key pairs of IEEE 2664."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gridbind.sttp.ieee2664.wire import CipherKeys, ProtocolError


def new_key_pair(key_size: int = 32) -> tuple[bytes, bytes]:
    """A fresh random AES key (256-bit by default) and 16-byte IV."""
    return os.urandom(key_size), os.urandom(16)


def new_cipher_keys(active: int = 0) -> CipherKeys:
    """Two fresh key pairs; ``active`` says which one new packets use."""
    return CipherKeys(active, (new_key_pair(), new_key_pair()))


def encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-CBC with PKCS#7 padding."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """Inverse of :func:`encrypt`; raises :class:`ProtocolError` on bad length or padding."""
    if not data or len(data) % 16:
        raise ProtocolError(f"encrypted payload of {len(data)} bytes is not whole AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise ProtocolError("bad padding in decrypted payload (wrong cipher key?)") from None
