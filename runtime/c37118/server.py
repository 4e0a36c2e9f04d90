"""A C37.118 server: PMU / PDC emulation for PDCs that connect to it.

:class:`StreamSession` is the sans-IO core of one connection: command frames in, frames out
(TURN ON / OFF, SEND HEADER, CFG-1, CFG-2, CFG-3 in continuation frames). Commands for another
IDCODE and malformed frames are counted and ignored; the connection goes on. The configuration
bytes are built once per configuration (a request only restamps SOC / FRACSEC and the CRC); one
read answers each kind of request at most once, and once ``max_out`` bytes wait to be sent the
session ignores further commands that produce output: a PDC cannot make one read cost more than
a few configurations.

:class:`PmuServer` is the asyncio shell: it listens on TCP, sends each data frame to every
connection that turned data on (and, with ``udp_target``, as UDP datagrams while at least one
connection has data on), drops a connection that lags more than ``max_backlog`` bytes, and on
:meth:`PmuServer.set_config` sends the new CFG-2 in-band to streaming connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from gridbind.c37118.constants import CHK_SIZE, HEADER_SIZE, Command, FrameType
from gridbind.c37118.errors import ConfigurationError
from gridbind.c37118.frames import (
    ConfigFrame,
    HeaderFrame,
    Stamp,
    build_cfg3,
    build_config,
    build_header,
    seal,
)
from gridbind.c37118.framing import CommandReceived, FrameDecoder, FrameRejected
from gridbind.c37118.layout import DataLayout

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CommandHandled:
    """A command the session acted on (or ignored, with ``ignored`` saying why)."""

    command: int
    ignored: str = ""


@dataclass(slots=True)
class BadCommand:
    """Bytes from a PDC that were not a valid command frame."""

    reason: str


class StreamSession:
    """Sans-IO server side of one connection for the stream described by ``server``."""

    def __init__(self, stream: StreamState, max_out: int = 8 * 1024 * 1024) -> None:
        self.stream = stream
        self.max_out = max_out
        self.decoder = FrameDecoder(auto_layout=False)
        self.streaming = False
        self.rejected = 0
        self._out = bytearray()
        self._handlers: dict[int, Callable[[], None]] = {
            Command.DATA_OFF: self._off,
            Command.DATA_ON: self._on,
            Command.SEND_HEADER: self._header,
            Command.SEND_CFG1: self._cfg1,
            Command.SEND_CFG2: self._cfg2,
            Command.SEND_CFG3: self._cfg3,
        }

    def data_to_send(self) -> bytes:
        """Bytes to write to the connection."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive(self, data: bytes) -> list[CommandHandled | BadCommand]:
        """Act on the command frames in ``data``."""
        events: list[CommandHandled | BadCommand] = []
        answered: set[int] = set()
        for item in self.decoder.feed(data):
            if isinstance(item, CommandReceived):
                frame = item.frame
                if frame.stamp.idcode != self.stream.idcode:
                    events.append(CommandHandled(frame.command, f"IDCODE {frame.stamp.idcode}"))
                    continue
                handler = self._handlers.get(frame.command)
                if handler is None:
                    events.append(CommandHandled(frame.command, "unsupported command"))
                    continue
                if frame.command in _ANSWERS:
                    # A request repeated within one read gets one answer; a PDC that does not
                    # read its answers gets none until the backlog drains.
                    if frame.command in answered:
                        events.append(CommandHandled(frame.command, "repeated in one read"))
                        continue
                    if len(self._out) >= self.max_out:
                        events.append(CommandHandled(frame.command, "output backlog full"))
                        continue
                    answered.add(frame.command)
                try:
                    handler()
                except ConfigurationError as exc:  # e.g. a CFG-2 beyond 65535 bytes: use CFG-3
                    events.append(CommandHandled(frame.command, str(exc)))
                    continue
                events.append(CommandHandled(frame.command))
            elif isinstance(item, FrameRejected):
                self.rejected += 1
                events.append(BadCommand(item.reason))
            else:
                self.rejected += 1
                events.append(BadCommand(f"{type(item).__name__} is not a command"))
        return events

    def send(self, frame: bytes) -> None:
        """Queue a frame (data, or an in-band configuration) for this connection."""
        self._out += frame

    def _off(self) -> None:
        self.streaming = False

    def _on(self) -> None:
        self.streaming = True

    def _header(self) -> None:
        self._out += self.stream.header_frame()

    def _cfg1(self) -> None:
        self._out += self.stream.config_frame(FrameType.CFG1)

    def _cfg2(self) -> None:
        self._out += self.stream.config_frame(FrameType.CFG2)

    def _cfg3(self) -> None:
        for frame in self.stream.cfg3_frames():
            self._out += frame


#: Commands answered with frames (the ones a PDC could repeat to make the server work).
_ANSWERS = frozenset({Command.SEND_HEADER, Command.SEND_CFG1, Command.SEND_CFG2, Command.SEND_CFG3})


class StreamState:
    """The stream a server offers: its configuration, header and clock for frame stamps."""

    def __init__(
        self,
        config: ConfigFrame,
        header: str = "",
        clock: Callable[[], tuple[int, int]] | None = None,
        max_frame: int = 0xFFFF,
    ) -> None:
        self.header = header
        self.clock = clock or (lambda: (0, 0))
        self.max_frame = max_frame
        self.set_config(config)

    def set_config(self, config: ConfigFrame) -> None:
        """Offer ``config`` from now on (its IDCODE is the stream's)."""
        self.config = config
        self.idcode = config.stamp.idcode
        self.layout = DataLayout(config)
        # Frame bodies (header and CRC stripped) built on first request, once per configuration.
        self._bodies: dict[FrameType, list[bytes] | ConfigurationError] = {}

    def _cached(self, kind: FrameType) -> list[bytes]:
        bodies = self._bodies.get(kind)
        if bodies is None:
            try:
                if kind == FrameType.CFG3:
                    frames = build_cfg3(
                        replace(self.config, stamp=Stamp(self.idcode), kind=kind), self.max_frame
                    )
                else:
                    frames = [
                        build_config(replace(self.config, stamp=Stamp(self.idcode), kind=kind))
                    ]
                bodies = [frame[HEADER_SIZE:-CHK_SIZE] for frame in frames]
            except ConfigurationError as exc:
                bodies = exc
            self._bodies[kind] = bodies
        if isinstance(bodies, ConfigurationError):
            raise ConfigurationError(str(bodies))
        return bodies

    def _stamp(self) -> Stamp:
        soc, fracsec = self.clock()
        return Stamp(self.idcode, soc, fracsec)

    def config_frame(self, kind: FrameType) -> bytes:
        """The configuration as a CFG-1 or CFG-2 frame, stamped now."""
        (body,) = self._cached(kind)
        return seal(kind, self.config.version, self._stamp(), body)

    def cfg3_frames(self) -> list[bytes]:
        """The configuration as CFG-3 (continuation) frames, stamped now."""
        stamp = self._stamp()
        return [
            seal(FrameType.CFG3, self.config.version, stamp, body)
            for body in self._cached(FrameType.CFG3)
        ]

    def header_frame(self) -> bytes:
        """The header frame, stamped now."""
        return build_header(HeaderFrame(self._stamp(), self.header))


class _Connection(asyncio.Protocol):
    def __init__(self, server: PmuServer) -> None:
        self.server = server
        self.session = StreamSession(server.state, server.max_backlog)
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        if len(self.server.connections) >= self.server.max_connections:
            log.warning(
                "refusing PDC %s: %d connections already", self.peer, len(self.server.connections)
            )
            transport.close()
            return
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        for event in self.session.receive(data):
            if isinstance(event, BadCommand):
                self.server.rejected += 1
                log.warning("bad frame from %s: %s", self.peer, event.reason)
            elif event.ignored:
                log.info("command %s from %s ignored: %s", event.command, self.peer, event.ignored)
            if self.server.on_event is not None:
                self.server.on_event(self, event)
        self.flush()

    def flush(self) -> None:
        data = self.session.data_to_send()
        transport = self.transport
        if not data or transport is None or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self.server.max_backlog:
            log.warning("PDC %s is too slow; disconnecting", self.peer)
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)


class PmuServer:
    """Asyncio C37.118 server for one stream (``config.stamp.idcode``).

    ``clock`` returns ``(SOC, FRACSEC)`` for configuration and header frames (default: 0);
    ``udp_target`` sends data frames to ``(host, port)`` over UDP *instead of* TCP (commands and
    configuration stay on TCP), while at least one connection has data turned on;
    ``max_frame`` bounds CFG-3 frames (larger configurations go in continuation frames);
    connections beyond ``max_connections`` are closed at once.
    """

    def __init__(
        self,
        config: ConfigFrame,
        *,
        host: str = "127.0.0.1",
        port: int = 4712,
        header: str = "",
        clock: Callable[[], tuple[int, int]] | None = None,
        udp_target: tuple[str, int] | None = None,
        max_backlog: int = 8 * 1024 * 1024,
        max_frame: int = 0xFFFF,
        max_connections: int = 64,
        on_event: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        self.state = StreamState(config, header, clock, max_frame)
        self.host, self._port = host, port
        self.udp_target = udp_target
        self.max_backlog = max_backlog
        self.max_connections = max_connections
        self.on_event = on_event
        self.connections: set[_Connection] = set()
        self.rejected = 0
        self.frames_sent = 0
        self._server: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None

    @property
    def port(self) -> int:
        """The listening port (the real one when 0 was asked for)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def layout(self) -> DataLayout:
        """The data layout of the current configuration."""
        return self.state.layout

    async def start(self) -> None:
        """Listen for PDCs (and open the UDP data socket, if any)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.host, self._port)
        if self.udp_target is not None:
            self._udp, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=self.udp_target
            )

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    async def __aenter__(self) -> PmuServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def streaming(self) -> int:
        """How many connections have data turned on."""
        return sum(1 for connection in self.connections if connection.session.streaming)

    def send_data(self, frame: bytes) -> int:
        """Send one data frame to every streaming connection (or the UDP target); returns how
        many copies went out."""
        streaming = [c for c in list(self.connections) if c.session.streaming]
        if self._udp is not None:
            if not streaming:
                return 0
            self._udp.sendto(frame)
            self.frames_sent += 1
            return 1
        for connection in streaming:
            connection.session.send(frame)
            connection.flush()
        self.frames_sent += 1 if streaming else 0
        return len(streaming)

    def set_config(self, config: ConfigFrame) -> None:
        """Serve a new configuration; streaming connections get it in-band at once (CFG-2, or
        CFG-3 when it does not fit one CFG-2 frame)."""
        self.state.set_config(config)
        try:
            frames = [self.state.config_frame(FrameType.CFG2)]
        except ConfigurationError:  # too big for one CFG-2 frame: CFG-3 continuation frames
            frames = self.state.cfg3_frames()
        for connection in list(self.connections):
            if connection.session.streaming:
                for frame in frames:
                    connection.session.send(frame)
                connection.flush()
