"""The AES-256 SecureDataChannel cipher of the draft profile (TLS lives in
:mod:`gridbind.sttp.tls`, shared by both profiles).

UDP payload encryption (decision; the seed only says "AES ... key size of 256 ... key and
initialization vector"): AES-256-CBC with PKCS#7 padding, one datagram at a time, with a random
16-byte block prepended to each plaintext so equal frames never encrypt equally under the fixed
IV. Datagrams that do not decrypt are dropped.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gridbind.sttp.errors import DecodeError, InvalidArgument

__all__ = ["DatagramCipher"]


class DatagramCipher:
    """AES-256-CBC for one UDP data channel (key 32 bytes, IV 16 bytes)."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        if len(key) != 32 or len(iv) != 16:
            raise InvalidArgument("AES-256 needs a 32-byte key and a 16-byte IV")
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
            raise DecodeError("datagram is not AES-CBC ciphertext")
        decryptor = self._cipher.decryptor()
        plain = decryptor.update(datagram) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            data = unpadder.update(plain) + unpadder.finalize()
        except ValueError:
            raise DecodeError("datagram does not decrypt (wrong key or corrupted)") from None
        return data[16:]
