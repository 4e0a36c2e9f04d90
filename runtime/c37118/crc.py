"""CRC-CCITT as C37.118.2-2011 (Annex B) specifies it: polynomial 0x1021, initial value 0xFFFF,
no reflection, no final XOR.

``binascii.crc_hqx`` is exactly that register (the BinHex CRC) with a caller-chosen initial
value, computed in C; the tests check it against an independent bitwise shift register.
"""

from __future__ import annotations

from binascii import crc_hqx

INITIAL = 0xFFFF


def crc_ccitt(data: bytes | bytearray | memoryview) -> int:
    """The CHK word of ``data`` (everything of a frame before its last two bytes)."""
    return crc_hqx(data, INITIAL)
