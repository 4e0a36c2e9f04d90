"""Frames out of a byte stream (TCP) or datagrams (UDP): the sans-IO receive side.

:class:`FrameDecoder` is fed bytes and returns events. It keeps at most one incomplete frame
(FRAMESIZE is 16 bits, so never more than 64 KiB plus the bytes of one read), joins CFG-3
fragments up to ``max_cfg3`` bytes, and never raises on what a peer sent: a bad frame becomes a
:class:`FrameRejected` event and decoding goes on with the next frame (after a lost SYNC, from
the next ``0xAA`` that starts a plausible frame).
"""

from __future__ import annotations

from dataclasses import dataclass

from gridbind.c37118.constants import MIN_FRAME, SYNC_BYTE, FrameType
from gridbind.c37118.errors import C37118Error, FrameError
from gridbind.c37118.frames import (
    CommandFrame,
    ConfigFrame,
    HeaderFrame,
    Stamp,
    parse_cfg3_body,
    parse_cfg3_fragment,
    parse_command,
    parse_config,
    parse_header,
)
from gridbind.c37118.layout import DataLayout

#: Largest joined CFG-3 a decoder accepts by default (a 100-PMU CFG-3 is ~60 KB).
MAX_CFG3 = 1 << 20


@dataclass(slots=True)
class ConfigReceived:
    """A complete CFG-1, CFG-2 or CFG-3."""

    config: ConfigFrame


@dataclass(slots=True)
class HeaderReceived:
    """A header frame."""

    frame: HeaderFrame


@dataclass(slots=True)
class CommandReceived:
    """A command frame."""

    frame: CommandFrame


@dataclass(slots=True)
class DataReceived:
    """A data frame parsed with ``layout``: its stamp and flat field tuple."""

    stamp: Stamp
    values: tuple
    layout: DataLayout


@dataclass(slots=True)
class DataUnmatched:
    """A data frame the current configuration does not describe (none yet, or it changed)."""

    raw: bytes
    reason: str


@dataclass(slots=True)
class ConfigPending:
    """A CFG-3 fragment was stored; the configuration is not complete yet."""

    index: int


@dataclass(slots=True)
class FrameRejected:
    """Bytes that were not a valid frame, and why."""

    reason: str
    size: int = 0  # bytes skipped (0: refused before or after framing, e.g. a UDP sender)


Event = (
    ConfigReceived
    | ConfigPending
    | HeaderReceived
    | CommandReceived
    | DataReceived
    | DataUnmatched
    | FrameRejected
)


def _plausible(second: int) -> bool:
    return not second & 0x80 and ((second >> 4) & 0x7) in (0, 1, 2, 3, 4, 5)


class FrameDecoder:
    """Decode C37.118 frames; ``layout`` is the data layout in force (None: none yet).

    ``auto_layout`` makes every CFG-2 / CFG-3 received the new layout (what a PDC client
    wants); a server decoding commands leaves it off.
    """

    def __init__(self, *, auto_layout: bool = True, max_cfg3: int = MAX_CFG3) -> None:
        self.layout: DataLayout | None = None
        self.auto_layout = auto_layout
        self.max_cfg3 = max_cfg3
        self._buffer = bytearray()
        self._cfg3: list[bytes] = []
        self._cfg3_size = 0
        self._cfg3_stamp: Stamp | None = None
        self._cfg3_next = 1

    def feed(self, data: bytes) -> list[Event]:
        """Events of the frames completed by ``data`` (a TCP stream chunk)."""
        return [
            item if isinstance(item, FrameRejected) else self.frame(item)
            for item in self.split(data)
        ]

    def split(self, data: bytes) -> list[bytes | FrameRejected]:
        """The whole frames (not yet checked) completed by ``data``, and the bytes skipped.

        A caller that changes :attr:`layout` between frames (a configuration arriving in the
        same read as the data that follows it) decodes each one with :meth:`frame` in turn.
        """
        buffer = self._buffer
        buffer += data
        out: list[bytes | FrameRejected] = []
        start = 0
        end = len(buffer)
        while end - start >= 4:
            if buffer[start] != SYNC_BYTE or not _plausible(buffer[start + 1]):
                found = start + 1
                while True:
                    found = buffer.find(SYNC_BYTE, found)
                    if found < 0 or found + 1 >= end or _plausible(buffer[found + 1]):
                        break
                    found += 1
                skip = (found if found >= 0 else end) - start
                out.append(FrameRejected(f"lost SYNC: skipped {skip} bytes", skip))
                start += skip
                continue
            size = (buffer[start + 2] << 8) | buffer[start + 3]
            if size < MIN_FRAME:
                out.append(FrameRejected(f"FRAMESIZE {size} is below {MIN_FRAME}", 1))
                start += 1
                continue
            if end - start < size:
                break
            out.append(bytes(buffer[start : start + size]))
            start += size
        del buffer[:start]
        return out

    def datagram(self, data: bytes) -> list[Event]:
        """Events of one UDP datagram (exactly one frame)."""
        return [self.frame(bytes(data))]

    def frame(self, raw: bytes) -> Event:
        """The event of one whole frame."""
        try:
            kind = FrameType((raw[1] >> 4) & 0x7)
            if kind == FrameType.DATA:
                layout = self.layout
                if layout is None:
                    return DataUnmatched(raw, "no configuration yet")
                if len(raw) != layout.frame_size:
                    return DataUnmatched(
                        raw, f"{len(raw)} bytes, configuration says {layout.frame_size}"
                    )
                stamp, values = layout.unpack(raw)
                return DataReceived(stamp, values, layout)
            if kind in (FrameType.CFG1, FrameType.CFG2):
                config = parse_config(raw)
                if self.auto_layout and kind == FrameType.CFG2:
                    self.layout = DataLayout(config)
                return ConfigReceived(config)
            if kind == FrameType.CFG3:
                return self._fragment(raw)
            if kind == FrameType.HEADER:
                return HeaderReceived(parse_header(raw))
            return CommandReceived(parse_command(raw))
        # a bad frame, a configuration whose data cannot fit, or (ValueError) a reserved type
        except (C37118Error, ValueError) as exc:
            return FrameRejected(str(exc), len(raw))

    def _fragment(self, raw: bytes) -> Event:
        fragment = parse_cfg3_fragment(raw)
        if fragment.index == 0:
            self._reset_cfg3()
            return self._cfg3_done(fragment.stamp, fragment.body, fragment.version)
        if fragment.index == 1:
            self._reset_cfg3()
            self._cfg3_stamp = fragment.stamp
        elif self._cfg3_stamp is None or fragment.stamp != self._cfg3_stamp:
            self._reset_cfg3()
            raise FrameError(f"CFG-3 fragment {fragment.index} without its first fragment")
        elif fragment.index != 0xFFFF and fragment.index != self._cfg3_next:
            self._reset_cfg3()
            raise FrameError(f"CFG-3 fragment {fragment.index} out of order")
        self._cfg3_size += len(fragment.body)
        if self._cfg3_size > self.max_cfg3:
            self._reset_cfg3()
            raise FrameError(f"CFG-3 exceeds {self.max_cfg3} bytes")
        self._cfg3.append(fragment.body)
        self._cfg3_next = fragment.index + 1
        if fragment.index != 0xFFFF:
            return ConfigPending(fragment.index)
        body = b"".join(self._cfg3)
        stamp = self._cfg3_stamp
        assert stamp is not None
        self._reset_cfg3()
        return self._cfg3_done(stamp, body, fragment.version)

    def _cfg3_done(self, stamp: Stamp, body: bytes, version: int) -> Event:
        config = parse_cfg3_body(stamp, body, version)
        if self.auto_layout:
            self.layout = DataLayout(config)
        return ConfigReceived(config)

    def _reset_cfg3(self) -> None:
        self._cfg3 = []
        self._cfg3_size = 0
        self._cfg3_stamp = None
        self._cfg3_next = 1
