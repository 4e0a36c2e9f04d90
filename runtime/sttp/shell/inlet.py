"""A subscriber's UDP data channel: one socket that outlives its TCP connections."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

__all__ = ["open_datagram_inlet"]

log = logging.getLogger("gridbind.sttp.shell")


class _Inlet(asyncio.DatagramProtocol):
    def __init__(self, deliver: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.deliver = deliver

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.deliver(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.warning("UDP data channel error: %s", exc)


async def open_datagram_inlet(
    host: str,
    port: int,
    deliver: Callable[[bytes, tuple[str, int]], None],
    *,
    receive_buffer: int = 0,
) -> asyncio.DatagramTransport:
    """A subscriber's UDP data channel on ``host:port`` (0: any free port); every datagram
    goes to ``deliver(data, (host, port))``. ``receive_buffer`` asks for SO_RCVBUF bytes."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Inlet(deliver), local_addr=(host, port)
    )
    sock = transport.get_extra_info("socket")
    if receive_buffer and sock is not None:
        # Loopback and LAN losses are receive-buffer overflows while this process is busy;
        # the kernel caps the request at net.core.rmem_max.
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        except OSError as exc:
            log.debug("SO_RCVBUF %d refused: %s", receive_buffer, exc)
    return transport
