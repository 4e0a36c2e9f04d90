"""Python values <-> MMS Data helpers: layouts, limits, and round trips through the codec."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import codec
from gridbind.iec61850 import mmsdata as d

pytestmark = pytest.mark.timeout(60)


def through_codec(value: m.Data) -> m.Data:
    """Send one Data through a write request on the wire and back."""
    pdu = m.Mmspdu(
        choice=m.ConfirmedRequestPdu(
            invoke_id=1,
            service=m.ConfirmedServiceRequest(
                choice=m.WriteRequest(
                    variable_access_specification=m.VariableAccessSpecification(
                        choice=m.ObjectName(choice=m.ObjectName.VmdSpecific(value="X"))
                    ),
                    list_of_data=m.ListOfData(data=[value]),
                )
            ),
        )
    )
    back = codec.decode_pdu(codec.encode(pdu))
    return back.choice.service.choice.list_of_data.data[0]


def test_float32_layout_is_exponent_width_then_ieee754_big_endian():
    assert d.floating_point_octets(1.5) == b"\x08" + struct.pack(">f", 1.5)
    assert d.floating_point_octets(1.5, 64) == b"\x0b" + struct.pack(">d", 1.5)
    data = d.float32(123.25)
    assert data.choice.value.hex() == "0842f68000"
    assert d.as_float(through_codec(data)) == 123.25


def test_float_errors():
    with pytest.raises(d.MmsDataError):
        d.float32(1e39)
    with pytest.raises(d.MmsDataError):
        d.floating_point_value(b"\x0b" + struct.pack(">f", 1.0))  # width says 64, length 32
    with pytest.raises(d.MmsDataError):
        d.floating_point_value(b"")
    with pytest.raises(d.MmsDataError):
        d.floating_point_octets(1.0, 16)


@settings(max_examples=100, deadline=None)
@given(st.floats(width=32, allow_nan=False))
def test_float32_round_trip(value):
    assert d.as_float(d.float32(value)) == value


@settings(max_examples=100, deadline=None)
@given(st.floats())
def test_float64_round_trip(value):
    back = d.as_float(d.float64(value))
    assert back == value or (math.isnan(back) and math.isnan(value))


def test_simple_types_through_codec():
    assert d.as_bool(through_codec(d.boolean(True))) is True
    assert d.as_int(through_codec(d.integer(-(2**63)))) == -(2**63)
    assert d.as_int(through_codec(d.integer(2**100))) == 2**100
    assert d.as_int(through_codec(d.unsigned(2**32 - 1))) == 2**32 - 1
    assert d.as_octets(through_codec(d.octet_string(b"\x00\xff"))) == b"\x00\xff"
    assert d.as_str(through_codec(d.visible_string("Pos ok"))) == "Pos ok"
    assert d.as_str(through_codec(d.mms_string("Überlast ⚡"))) == "Überlast ⚡"
    assert d.as_bits(through_codec(d.bit_string([True, False, True]))) == "101"
    nested = d.structure([d.integer(1), d.array([d.boolean(False), d.boolean(True)])])
    assert d.to_python(through_codec(nested)) == [1, (False, True)]
    assert [d.as_int(x) for x in d.as_items(d.array([d.integer(2)]))] == [2]


def test_constructor_errors():
    with pytest.raises(d.MmsDataError):
        d.unsigned(-1)
    with pytest.raises(d.MmsDataError):
        d.integer(True)
    with pytest.raises(d.MmsDataError):
        d.integer(1.5)
    with pytest.raises(d.MmsDataError):
        d.bit_string("")
    with pytest.raises(d.MmsDataError):
        d.bit_string("012")
    with pytest.raises(d.MmsDataError):
        d.visible_string("é")


def test_readers_check_the_alternative():
    with pytest.raises(d.MmsDataError, match="expected boolean"):
        d.as_bool(d.integer(1))
    with pytest.raises(d.MmsDataError, match="expected integer"):
        d.as_int(d.boolean(True))
    with pytest.raises(d.MmsDataError):
        d.as_float(d.octet_string(b"\x08\x00\x00\x00\x00"))
    with pytest.raises(d.MmsDataError):
        d.as_bits("0101")  # not Data


def test_quality_is_13_bits_in_the_7_2_order():
    assert d.Quality().to_bits() == "0000000000000"
    q = d.Quality(
        validity=d.Validity.QUESTIONABLE,
        old_data=True,
        source=d.Source.SUBSTITUTED,
        operator_blocked=True,
    )
    assert q.to_bits() == "11" + "00000100" + "101"
    assert d.Quality.from_bits(q.to_bits()) == q
    assert d.Quality.from_bits(through_codec(q.to_data())) == q
    assert d.Quality(validity=d.Validity.INVALID).to_bits().startswith("01")
    with pytest.raises(d.MmsDataError):
        d.Quality.from_bits("0" * 12)
    with pytest.raises(d.MmsDataError):
        d.Quality.from_bits("0" * 12 + "2")


@settings(max_examples=100, deadline=None)
@given(st.text(st.sampled_from("01"), min_size=13, max_size=13))
def test_quality_round_trip(bits):
    assert d.Quality.from_bits(bits).to_bits() == bits


@pytest.mark.parametrize(
    "flags,width",
    [(d.TriggerConditions, 6), (d.OptFlds, 10), (d.ReasonForInclusion, 7), (d.CheckConditions, 2)],
)
def test_flag_sets(flags, width):
    assert flags.width() == width
    members = list(flags)
    value = members[0] | members[-1]
    bits = value.to_bits()
    assert len(bits) == width and bits[0] == "1" and bits[-1] == "1" and bits.count("1") == 2
    assert flags.from_bits(bits) == value
    assert flags.from_bits(through_codec(d.bit_string(value))) == value
    with pytest.raises(d.MmsDataError):
        flags.from_bits("1" * (width + 1))


def test_opt_flds_positions():
    value = d.OptFlds.SEQUENCE_NUMBER | d.OptFlds.DATA_SET_NAME | d.OptFlds.SEGMENTATION
    assert value.to_bits() == "0100100001"
    assert d.TriggerConditions.from_bits("011001") == (
        d.TriggerConditions.DATA_CHANGE
        | d.TriggerConditions.QUALITY_CHANGE
        | d.TriggerConditions.GENERAL_INTERROGATION
    )


# Bit positions (bit 0 = leftmost XER character) in the IEC 61850-8-1 order that mmsdata documents
# on its members; the mapping notes (section 5) only say these are bit strings.
REASON_FOR_INCLUSION_BITS = [
    (d.ReasonForInclusion.RESERVED, 0),
    (d.ReasonForInclusion.DATA_CHANGE, 1),
    (d.ReasonForInclusion.QUALITY_CHANGE, 2),
    (d.ReasonForInclusion.DATA_UPDATE, 3),
    (d.ReasonForInclusion.INTEGRITY, 4),
    (d.ReasonForInclusion.GENERAL_INTERROGATION, 5),
    (d.ReasonForInclusion.APPLICATION_TRIGGER, 6),
]
CHECK_CONDITIONS_BITS = [
    (d.CheckConditions.SYNCHROCHECK, 0),
    (d.CheckConditions.INTERLOCK_CHECK, 1),
]


@pytest.mark.parametrize(
    "flags,table",
    [
        (d.ReasonForInclusion, REASON_FOR_INCLUSION_BITS),
        (d.CheckConditions, CHECK_CONDITIONS_BITS),
    ],
    ids=["ReasonForInclusion", "CheckConditions"],
)
def test_full_bit_position_table(flags, table):
    # Every member is in the table, in bit order, and nothing else is.
    assert [member for member, _ in table] == list(flags)
    assert [bit for _, bit in table] == list(range(flags.width()))
    for member, bit in table:
        bits = member.to_bits()
        assert bits == "0" * bit + "1" + "0" * (flags.width() - bit - 1), member
        assert flags.from_bits(bits) is member
        assert flags.from_bits(through_codec(d.bit_string(member))) is member
    everything = flags(0)
    for member, _ in table:
        everything |= member
    assert everything.to_bits() == "1" * flags.width()
    assert flags.from_bits("0" * flags.width()) == flags(0)


def test_reason_code_of_a_report():
    # data-change + general-interrogation: bits 1 and 5 of 7.
    value = d.ReasonForInclusion.DATA_CHANGE | d.ReasonForInclusion.GENERAL_INTERROGATION
    assert value.to_bits() == "0100010"
    assert d.CheckConditions.from_bits("01") == d.CheckConditions.INTERLOCK_CHECK


def test_utc_time_layout_and_time_quality():
    when = datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)
    quality = d.TimeQuality(clock_not_synchronized=True, accuracy=10)
    data = d.utc_time(when, quality)
    octets = data.choice.value
    assert octets[:4] == int(when.timestamp()).to_bytes(4, "big")
    assert octets[4:7] == bytes([0x80, 0, 0])  # half a second = 2**23 / 2**24
    assert octets[7] == 0x20 | 10
    stamp = d.as_timestamp(through_codec(data))
    assert stamp.to_datetime() == when and stamp.quality == quality
    assert d.TimeQuality.from_octet(0xFF) != d.TimeQuality()  # flags all set, accuracy 31
    with pytest.raises(d.MmsDataError):
        d.TimeQuality(accuracy=25)
    with pytest.raises(d.MmsDataError):
        d.Timestamp(seconds=-1)
    with pytest.raises(d.MmsDataError):
        d.Timestamp.from_octets(b"\x00" * 7)


@settings(max_examples=100, deadline=None)
@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2105, 1, 1)))
def test_utc_time_round_trip_within_fraction_precision(when):
    stamp = d.Timestamp.from_datetime(when)
    assert d.Timestamp.from_octets(stamp.to_octets()) == stamp
    assert abs(stamp.to_datetime() - when.replace(tzinfo=UTC)) <= timedelta(microseconds=1)


def test_binary_time():
    when = datetime(2024, 5, 1, 0, 1, 0, tzinfo=UTC)
    data = d.binary_time(when)
    assert data.choice.value == (60000).to_bytes(4, "big") + (
        (when - datetime(1984, 1, 1, tzinfo=UTC)).days
    ).to_bytes(2, "big")
    assert d.as_binary_time(through_codec(data)) == when
    assert d.as_binary_time(d.binary_time(when, with_date=False)) == timedelta(minutes=1)
    with pytest.raises(d.MmsDataError):
        d.binary_time(datetime(1983, 12, 31, tzinfo=UTC))
    with pytest.raises(d.MmsDataError):
        d.as_binary_time(m.Data(choice=m.Data.BinaryTime(value=(86_400_000).to_bytes(4, "big"))))
