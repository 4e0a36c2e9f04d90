"""The AES-256 SecureDataChannel cipher of the draft profile (TLS lives in
:mod:`gridbind.sttp.tls`, shared by both profiles).

UDP payload protection (decision; the seed only says "AES ... key size of 256 ... key and
initialization vector"): AES-256-GCM, one datagram at a time. The draft profile has no external
peer to stay compatible with, so the authenticated mode is chosen over the earlier AES-256-CBC,
which was malleable (flipping a bit of ciphertext block 0 flipped the same bit of the frame's
first 16 bytes, undetected) and let a captured datagram be replayed. A datagram is::

    counter (8 bytes, big-endian) | nonce (12 random bytes) | ciphertext | tag (16 bytes)

The counter counts the sender's datagrams under one key (from 1) and, with the agreed 16-byte
IV, is the additional authenticated data: a datagram whose counter, nonce, ciphertext or tag was
altered does not authenticate. The receiver keeps a sliding window of :data:`REPLAY_WINDOW`
counters (as IPsec and DTLS do; UDP may reorder): a counter seen before, or older than the
window, is a replay. Datagrams that do not authenticate or are replayed are dropped (the session
counts them as ``bad_datagrams``); new keys (SecureDataChannel again) start a new cipher, so a
new counter.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gridbind.sttp.errors import DecodeError, InvalidArgument

__all__ = ["REPLAY_WINDOW", "DatagramCipher"]

_COUNTER = struct.Struct(">Q")
_NONCE = 12
_TAG = 16
_HEAD = _COUNTER.size + _NONCE
#: How far behind the newest datagram an older one may still arrive (counters).
REPLAY_WINDOW = 1024


class DatagramCipher:
    """AES-256-GCM for one UDP data channel (key 32 bytes, IV 16 bytes), with a datagram
    counter in the authenticated data and a replay window on the receiving side."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        if len(key) != 32 or len(iv) != 16:
            raise InvalidArgument("AES-256 needs a 32-byte key and a 16-byte IV")
        self._aead = AESGCM(key)
        self._iv = bytes(iv)
        self._sent = 0
        #: the newest counter received, and the counters received within the window below it
        #: (bit n: newest - n)
        self._newest = 0
        self._seen = 0
        #: datagrams refused as replays (already received, or older than the window)
        self.replayed = 0

    def encrypt(self, frame: bytes) -> bytes:
        """Encrypt and authenticate one datagram."""
        self._sent += 1
        counter = _COUNTER.pack(self._sent)
        nonce = os.urandom(_NONCE)
        return counter + nonce + self._aead.encrypt(nonce, frame, self._iv + counter)

    def decrypt(self, datagram: bytes) -> bytes:
        """Authenticate and decrypt one datagram; raises :class:`DecodeError` (a ``ValueError``)
        when it is not ours, was altered, or is a replay."""
        if len(datagram) < _HEAD + _TAG:
            raise DecodeError("datagram is too short for AES-GCM")
        counter_bytes = datagram[: _COUNTER.size]
        (counter,) = _COUNTER.unpack(counter_bytes)
        if counter == 0:
            raise DecodeError("datagram counter 0 is never sent")
        if self._is_replay(counter):
            self.replayed += 1
            raise DecodeError(f"datagram {counter} replayed (or older than the replay window)")
        nonce = datagram[_COUNTER.size : _HEAD]
        try:
            frame = self._aead.decrypt(nonce, datagram[_HEAD:], self._iv + counter_bytes)
        except InvalidTag:
            raise DecodeError("datagram does not authenticate (wrong key or altered)") from None
        self._accept(counter)  # only once authentic: a forged counter must not move the window
        return frame

    def _is_replay(self, counter: int) -> bool:
        if counter > self._newest:
            return False
        behind = self._newest - counter
        return behind >= REPLAY_WINDOW or bool(self._seen >> behind & 1)

    def _accept(self, counter: int) -> None:
        if counter > self._newest:
            shift = counter - self._newest
            self._seen = (self._seen << shift | 1) & ((1 << REPLAY_WINDOW) - 1)
            self._newest = counter
        else:
            self._seen |= 1 << (self._newest - counter)
