"""Codes and bit fields of IEEE C37.118.2-2011, named once for the whole package.

There is no generated C37.118 module yet (the codegen pipeline covers IEC 61850-8-2 and STTP), so
this module is the single place these numbers are written; every other module imports them.
"""

from __future__ import annotations

import enum

SYNC_BYTE = 0xAA
#: SYNC version nibble: 1 is C37.118-2005, 2 is C37.118.2-2011 (CFG-3 needs 2).
VERSION_2005 = 1
VERSION_2011 = 2
#: SYNC, FRAMESIZE, IDCODE, SOC, FRACSEC: the 14 bytes every frame starts with.
HEADER_SIZE = 14
CHK_SIZE = 2
MIN_FRAME = HEADER_SIZE + CHK_SIZE
MAX_FRAME = 0xFFFF
#: Largest extended-frame payload of a command frame (C37.118.2-2011, 6.4).
MAX_EXTENDED = 65518


class FrameType(enum.IntEnum):
    """Bits 6-4 of the second SYNC byte."""

    DATA = 0
    HEADER = 1
    CFG1 = 2
    CFG2 = 3
    COMMAND = 4
    CFG3 = 5


class Command(enum.IntEnum):
    """CMD word of a command frame."""

    DATA_OFF = 1
    DATA_ON = 2
    SEND_HEADER = 3
    SEND_CFG1 = 4
    SEND_CFG2 = 5
    SEND_CFG3 = 6
    EXTENDED = 8


class Format(enum.IntFlag):
    """FORMAT word bits of one PMU block (bits 15-4 unused)."""

    POLAR = 0x1
    PHASOR_FLOAT = 0x2
    ANALOG_FLOAT = 0x4
    FREQ_FLOAT = 0x8


class Stat(enum.IntFlag):
    """STAT word of a PMU data block (bits 15-14 data error, 8-6 PMU time quality, 5-4 unlocked
    time and 3-0 trigger reason are fields; the masks name them)."""

    DATA_ERROR_MASK = 0xC000
    SYNC_LOST = 0x2000
    SORTED_BY_ARRIVAL = 0x1000
    TRIGGER = 0x0800
    CONFIG_CHANGE = 0x0400
    DATA_MODIFIED = 0x0200
    TIME_QUALITY_MASK = 0x01C0
    UNLOCKED_MASK = 0x0030
    TRIGGER_REASON_MASK = 0x000F


#: STAT data error codes (bits 15-14).
DATA_GOOD, DATA_PMU_ERROR, DATA_TEST_MODE, DATA_INVALID = 0, 1, 2, 3
#: PMU time quality codes (STAT bits 8-6): 7 means > 10 ms or unknown.
PMU_TQ_WORST = 7

#: FRACSEC: bits 31-24 are the time quality byte, 23-0 the fraction of the second.
FRACSEC_MASK = 0x00FFFFFF
LEAP_DIRECTION = 0x40
LEAP_OCCURRED = 0x20
LEAP_PENDING = 0x10
#: Message time quality code (bits 27-24): 0 locked, 1-11 within 10^(n-10) s, 15 clock failure.
CLOCK_FAILURE = 0xF
TIME_WITHIN_1S = 0xA

#: PHSCALE component codes (CFG-3, bits 2-0 of the third byte).
COMPONENT_ZERO, COMPONENT_POSITIVE, COMPONENT_NEGATIVE = 0, 1, 2
COMPONENT_A, COMPONENT_B, COMPONENT_C = 4, 5, 6

#: Integer phasor / analog / frequency value that marks "data not available".
INT_MISSING = -32768
