"""Draft-0.8 BeginFragment / NextFragment: splitting, assembly with compression, and errors."""

from __future__ import annotations

import os
import random
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridbind.generated.sttp.draft_0_8 import (
    BeginFragment,
    CommandCode,
    CompressionMode,
    NextFragment,
)
from gridbind.sttp.draft.compression import MAX_INFLATED, deflate
from gridbind.sttp.draft.fragments import Assembler, Fragmenter, FragmentError, Packet
from gridbind.sttp.tssc import SEED, TsscDecoder, TsscEncoder

METADATA = CommandCode.GetMetadataResponse


def metadata_like(size: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    words = [b"PMU", b"Substation", b"FREQ", b"VPHM", b"<row>", b"</row>", b"2026-11-22"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" " + str(rng.randrange(10_000)).encode()
    return bytes(out[:size])


def assemble(frames: list[bytes], assembler: Assembler | None = None) -> list[Packet]:
    assembler = assembler or Assembler()
    packets = [p for f in frames if (p := assembler.feed_frame(f)) is not None]
    assembler.close()
    return packets


def test_small_uncompressed_payload_is_not_fragmented() -> None:
    frames = Fragmenter().frames(METADATA, b"hello")
    assert frames == [bytes([0x81, 0, 8]) + b"hello"]
    assert assemble(frames) == [Packet(METADATA, b"hello")]


def test_layout_matches_the_seed() -> None:
    """BeginFragment: int32 totalFragmentSize, int32 totalRawSize, commandCode, compressionMode,
    first fragment (frame length - 13); NextFragment: fragment (frame length - 3)."""
    payload = bytes(range(200))
    frames = Fragmenter(max_packet_size=100).frames(METADATA, payload)
    assert frames[0][:3] == bytes([0x01, 0, 100])
    assert struct.unpack(">iiBB", frames[0][3:13]) == (200, 200, 0x81, 0)
    assert frames[0][13:] == payload[:87]
    assert frames[1] == bytes([0x02, 0, 100]) + payload[87:184]
    assert frames[2] == bytes([0x02, 0, 19]) + payload[184:]
    assert all(len(f) <= 100 for f in frames)


@pytest.mark.parametrize("size", [0, 1, 86, 87, 88, 16384, 16385, 65532, 65533, 200_000])
@pytest.mark.parametrize("mode", [CompressionMode.Uncompressed, CompressionMode.Deflate])
def test_round_trip(size: int, mode: CompressionMode) -> None:
    """Deflate applies up to the seed's 16384-byte inflate limit; larger packets travel
    uncompressed (compressionMode none) and still round-trip."""
    payload = metadata_like(size)
    sent_mode = mode if size <= MAX_INFLATED else CompressionMode.Uncompressed
    for max_packet in (100, 65535):
        frames = Fragmenter(max_packet).frames(METADATA, payload, mode)
        assert all(len(f) <= max_packet for f in frames)
        if len(frames) > 1 or sent_mode is CompressionMode.Deflate:
            begin = BeginFragment.parse(frames[0][3:])
            assert begin.compression_mode is sent_mode and begin.total_raw_size == size
        (packet,) = assemble(frames)
        assert (packet.command_code, packet.payload) == (METADATA, payload)
        assert packet.compression is sent_mode
        if sent_mode is CompressionMode.Deflate:
            assert packet.fragmented  # only BeginFragment carries the compression mode


def test_deflate_of_a_large_packet_sends_it_uncompressed() -> None:
    payload = metadata_like(200_000)
    frag = Fragmenter(1500)
    assert frag.frames(METADATA, payload, CompressionMode.Deflate) == frag.frames(METADATA, payload)


def test_deflate_makes_fewer_fragments() -> None:
    payload = metadata_like(MAX_INFLATED)
    plain = Fragmenter(1500).frames(METADATA, payload)
    packed = Fragmenter(1500).frames(METADATA, payload, CompressionMode.Deflate)
    assert len(packed) < len(plain) / 2
    begin = BeginFragment.parse(packed[0][3:])
    assert begin.total_raw_size == len(payload)
    stream = begin.first_fragment + b"".join(f[3:] for f in packed[1:])
    assert len(stream) == begin.total_fragment_size
    assert zlib.decompress(stream, -15) == payload  # one raw RFC 1951 stream over the fragments


def test_tssc_payload_passes_through_with_its_mode() -> None:
    enc = TsscEncoder(SEED, max_block_size=60_000)
    block = enc.encode(list(range(1024)), [7] * 1024, [0] * 1024, [1.5] * 1024)[0]
    frames = Fragmenter(1000).frames(
        CommandCode.SendDataPointsCustom, block.data, CompressionMode.Tssc, raw_size=1024 * 16
    )
    assert len(frames) > 2
    (packet,) = assemble(frames)
    assert packet.compression is CompressionMode.Tssc and packet.raw_size == 1024 * 16
    assert len(TsscDecoder(SEED).decode(packet.payload)) == 1024
    with pytest.raises(ValueError, match="raw_size"):
        Fragmenter().split(CommandCode.SendDataPointsCustom, b"x", CompressionMode.Tssc)
    with pytest.raises(FragmentError, match="16385 raw bytes exceeds the 16384-byte limit"):
        Fragmenter().split(
            CommandCode.SendDataPointsCustom, b"x", CompressionMode.Tssc, raw_size=16385
        )


def test_other_commands_pass_through_between_packets() -> None:
    frag = Fragmenter(100)
    frames = frag.frames(METADATA, metadata_like(500)) + frag.frames(0xFF, b"")
    frames += frag.frames(CommandCode.GetMetadata, metadata_like(300), CompressionMode.Deflate)
    packets = assemble(frames)
    assert [p.command_code for p in packets] == [METADATA, 0xFF, CommandCode.GetMetadata]


def begin(total: int, raw: int, first: bytes, mode: int = 0, code: int = 0x81) -> bytes:
    return struct.pack(">iiBB", total, raw, code, mode) + first


def test_interleaving_is_refused() -> None:
    asm = Assembler()
    assert asm.feed(CommandCode.BeginFragment, begin(10, 10, b"abc")) is None
    assert asm.busy
    with pytest.raises(FragmentError, match="interleaved"):
        asm.feed(0xFF, b"")
    assert not asm.busy
    asm.feed(CommandCode.BeginFragment, begin(10, 10, b"abc"))
    with pytest.raises(FragmentError, match="another fragmented packet"):
        asm.feed(CommandCode.BeginFragment, begin(10, 10, b"abc"))


def test_out_of_order_next_fragment_is_refused() -> None:
    with pytest.raises(FragmentError, match="out of order"):
        Assembler().feed(CommandCode.NextFragment, b"abc")


def test_overlong_fragments_are_refused() -> None:
    asm = Assembler()
    with pytest.raises(FragmentError, match="overlong"):
        asm.feed(CommandCode.BeginFragment, begin(2, 2, b"abc"))
    asm.feed(CommandCode.BeginFragment, begin(5, 5, b"abc"))
    with pytest.raises(FragmentError, match="overlong"):
        asm.feed(CommandCode.NextFragment, b"def")


def test_truncated_sequence_is_reported_on_close() -> None:
    frames = Fragmenter(100).frames(METADATA, metadata_like(1000))
    asm = Assembler()
    for f in frames[:-1]:
        assert asm.feed_frame(f) is None
    with pytest.raises(FragmentError, match="truncated"):
        asm.close()


def test_bad_declarations_are_refused() -> None:
    asm = Assembler(max_size=1000)
    with pytest.raises(FragmentError, match="exceeds the 1000-byte limit"):
        asm.feed(CommandCode.BeginFragment, begin(10, 2**31 - 1, b"", mode=1))
    with pytest.raises(FragmentError, match="different raw and fragment sizes"):
        asm.feed(CommandCode.BeginFragment, begin(10, 20, b""))
    with pytest.raises(FragmentError, match="cannot contain a fragment"):
        asm.feed(CommandCode.BeginFragment, begin(1, 1, b"", code=0x02))
    with pytest.raises(FragmentError, match="bad BeginFragment"):
        asm.feed(CommandCode.BeginFragment, begin(1, 1, b"x", mode=9))
    with pytest.raises(FragmentError, match="bad BeginFragment"):
        asm.feed(CommandCode.BeginFragment, b"\x00\x00")
    with pytest.raises(FragmentError, match="bad BeginFragment"):
        asm.feed(CommandCode.BeginFragment, begin(-1, -1, b""))
    asm.feed(CommandCode.BeginFragment, begin(10, 10, b"abc"))
    with pytest.raises(FragmentError, match="empty NextFragment"):
        asm.feed(CommandCode.NextFragment, b"")
    with pytest.raises(FragmentError, match="bad command frame"):
        asm.feed_frame(b"\x02\x00\x09abc")


def test_deflate_size_mismatch_and_bombs_are_refused() -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = comp.compress(bytes(10_000_000)) + comp.flush()
    asm = Assembler()
    with pytest.raises(FragmentError, match="does not inflate"):
        asm.feed(CommandCode.BeginFragment, begin(len(bomb), 1000, bomb, mode=1))
    short = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = short.compress(b"x" * 10) + short.flush()
    with pytest.raises(FragmentError, match="inflates to 10 bytes"):
        asm.feed(CommandCode.BeginFragment, begin(len(data), 11, data, mode=1))
    with pytest.raises(FragmentError, match="does not inflate"):
        asm.feed(CommandCode.BeginFragment, begin(3, 3, b"\xff\xff\xff", mode=1))


@pytest.mark.parametrize("mode", [CompressionMode.Deflate, CompressionMode.Tssc])
def test_compressed_raw_size_above_the_inflate_limit_is_refused(mode: CompressionMode) -> None:
    """A hostile BeginFragment declaring a compressed packet of more than 16384 raw bytes is
    refused before any fragment is stored, even under a much larger assembler max_size."""
    asm = Assembler()
    assert asm.max_size > MAX_INFLATED
    with pytest.raises(FragmentError, match="16385 raw bytes, above the 16384-byte"):
        asm.feed(CommandCode.BeginFragment, begin(100, 16385, b"x" * 10, mode=mode))
    assert not asm.busy
    asm.feed(CommandCode.BeginFragment, begin(100, 16384, b"x" * 10, mode=mode))
    assert asm.busy  # the limit itself is allowed
    # uncompressed packets are bounded by max_size only
    asm = Assembler()
    asm.feed(CommandCode.BeginFragment, begin(20_000, 20_000, b"x" * 10))
    assert asm.busy


def test_deflate_inflating_past_its_declaration_is_refused() -> None:
    data = deflate(b"x" * 2000)
    asm = Assembler()
    with pytest.raises(FragmentError, match="inflates to 2000 bytes, more than the 1000"):
        asm.feed(CommandCode.BeginFragment, begin(len(data), 1000, data, mode=1))
    assert not asm.busy
    # past the seed's limit itself: refused without inflating more than 16384 bytes
    over = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = over.compress(b"y" * (MAX_INFLATED + 1)) + over.flush()
    with pytest.raises(FragmentError, match="inflates past the 16384-byte limit"):
        asm.feed(CommandCode.BeginFragment, begin(len(data), MAX_INFLATED, data, mode=1))
    # split across fragments, the check applies to the reassembled stream
    frames = Fragmenter(20).frames(METADATA, b"x" * 2000, CompressionMode.Deflate)
    assert len(frames) > 1
    frames[0] = frames[0][:7] + struct.pack(">i", 1000) + frames[0][11:]  # totalRawSize
    with pytest.raises(FragmentError, match="more than the 1000"):
        assemble(frames)


def test_swapped_deflate_fragments_fail_with_a_clear_error() -> None:
    """NextFragment has no offset, so swapping two of them is invisible to the framing; for a
    DEFLATE packet the swap is caught when the reassembled stream is inflated."""
    payload = metadata_like(MAX_INFLATED)
    frames = Fragmenter(200).frames(METADATA, payload, CompressionMode.Deflate)
    assert len(frames) > 4
    swapped = [frames[0], frames[2], frames[1], *frames[3:]]
    assert len(swapped[1]) == len(swapped[2])  # same sizes: the totals still add up
    with pytest.raises(FragmentError, match="fragmented packet (does not inflate|inflates to)"):
        assemble(swapped)
    asm = Assembler()  # the error dropped the partial packet; the assembler is reusable
    assert [p.payload for p in assemble(frames, asm)] == [payload]


def test_swapped_fragments_of_stored_deflate_blocks_go_unnoticed() -> None:
    """The limit of that check (documented in the module): incompressible data is sent in
    stored DEFLATE blocks, whose bytes are copied verbatim, so swapped equal-size fragments
    inside one block inflate to the right size with permuted content. Only the command's own
    validation can catch that (as for uncompressed packets)."""
    payload = random.Random(7).randbytes(4000)
    frames = Fragmenter(200).frames(METADATA, payload, CompressionMode.Deflate)
    swapped = [frames[0], frames[2], frames[1], *frames[3:]]
    (packet,) = assemble(swapped)
    assert len(packet.payload) == len(payload) and packet.payload != payload


def test_generated_payload_classes_are_used() -> None:
    (code, body), *_ = Fragmenter(100).split(METADATA, bytes(300))
    assert code == CommandCode.BeginFragment
    parsed = BeginFragment.parse(body)
    assert (parsed.total_fragment_size, parsed.command_code) == (300, 0x81)
    assert NextFragment.parse(b"xyz").fragment == b"xyz"


@settings(max_examples=200, deadline=None)
@given(
    commands=st.lists(
        st.tuples(st.sampled_from([0x01, 0x02, 0x06, 0xFF]), st.binary(max_size=40)), max_size=12
    )
)
def test_fuzz_assembler_raises_only_fragment_errors(commands: list[tuple[int, bytes]]) -> None:
    asm = Assembler(max_size=4096)
    for code, payload in commands:
        try:
            packet = asm.feed(code, payload)
        except FragmentError:
            continue
        if packet is not None:
            assert len(packet.payload) <= 4096


def test_random_payloads_all_modes() -> None:
    rng = random.Random(4)
    frag, asm = Fragmenter(1400), Assembler()
    for _ in range(30):
        payload = os.urandom(rng.randrange(0, 20_000))
        mode = rng.choice([CompressionMode.Uncompressed, CompressionMode.Deflate])
        packets = [p for f in frag.frames(METADATA, payload, mode) if (p := asm.feed_frame(f))]
        assert [p.payload for p in packets] == [payload]
    asm.close()
