"""The asyncio shell both STTP profiles share, driven directly over loopback sockets with a small
fake session: the timer, back-pressure, the slow-peer policy, UDP, and why connections end."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import pytest

from gridbind.sttp.shell import SessionShell, SlowPeerPolicy, open_datagram_inlet


@dataclass
class Got:
    data: bytes


@dataclass
class Ticked:
    now: float


@dataclass
class Ended:
    reason: str


Event = Got | Ticked | Ended


class FakeSession:
    """Echoes what it receives; ``quit`` ends it (with a last ``bye``), ``later`` asks for a
    tick 0.1 s on, ``crash`` raises (a bug); datagrams are queued by the test."""

    def __init__(self, deadline: float | None = None) -> None:
        self.closed = False
        self.close_reason = ""
        self.deadline = deadline
        self.out = bytearray()
        self.datagrams: list[bytes] = []

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        if data == b"quit":
            self.out += b"bye"
            self.closed, self.close_reason = True, "the peer said quit"
        elif data == b"later":
            self.deadline = now + 0.1
        elif data == b"crash":
            raise RuntimeError("a bug")
        else:
            self.out += data
        return [Got(data)]

    def receive_datagram(self, datagram: bytes) -> list[Event]:
        return [Got(datagram)]

    def data_to_send(self) -> bytes:
        out = bytes(self.out)
        self.out.clear()
        return out

    def datagrams_to_send(self) -> list[bytes]:
        out, self.datagrams = self.datagrams, []
        return out

    def next_deadline(self) -> float | None:
        return self.deadline

    def tick(self, now: float) -> list[Event]:
        self.deadline = None
        return [Ticked(now)]

    def close(self, reason: str) -> list[Event]:
        if self.closed:
            return []
        self.closed, self.close_reason = True, reason
        return [Ended(reason)]


class FakeShell(SessionShell[Event]):
    def __init__(
        self,
        shells: list[FakeShell],
        *,
        policy: SlowPeerPolicy | None = None,
        deadline: float | None = None,
        autostart: bool = True,
    ) -> None:
        super().__init__(policy=policy)
        self.fake = FakeSession(deadline)
        self.events: list[Event] = []
        self.autostart = autostart
        self.pauses = 0
        self.resumes = 0
        self.arrived = asyncio.Event()
        shells.append(self)

    def connected(self) -> None:
        if self.autostart:
            self.start(self.fake, datagram_source=self.fake, datagram_sink=self.fake)

    def event_received(self, event: Event) -> None:
        self.events.append(event)
        self.arrived.set()

    def writing_paused(self) -> None:
        self.pauses += 1

    def writing_resumed(self) -> None:
        self.resumes += 1


async def serve(**options: object) -> tuple[asyncio.Server, int, list[FakeShell]]:
    shells: list[FakeShell] = []
    server = await asyncio.get_running_loop().create_server(
        lambda: FakeShell(shells, **options), "127.0.0.1", 0  # type: ignore[arg-type]
    )
    return server, server.sockets[0].getsockname()[1], shells


async def until(predicate, timeout: float = 3.0) -> None:
    async def wait() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)


class Stalled(asyncio.Protocol):
    """A client that reads nothing until told to, and then throws what it reads away."""

    def __init__(self) -> None:
        self.received = 0
        self.eof = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        self.received += len(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.eof.done():
            self.eof.set_result(exc)

    def resume(self, shell: FakeShell) -> None:
        """Read again, with room (the small buffers make a slow stream)."""
        assert shell.transport is not None
        self.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20
        )
        sock = shell.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        self.transport.resume_reading()


def small_send_buffer(shell: FakeShell) -> None:
    assert shell.transport is not None
    sock = shell.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


@pytest.mark.timeout(10)
def test_the_timer_fires_at_the_sessions_deadline_and_is_rearmed():
    async def run() -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + 0.3
        server, port, shells = await serve(deadline=due)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await until(lambda: shells and any(isinstance(e, Ticked) for e in shells[0].events))
            [shell] = shells
            [ticked] = [e for e in shell.events if isinstance(e, Ticked)]
            assert due <= ticked.now < due + 0.25
            # the session asks for a new deadline: the shell re-arms the one timer after the
            # flush that follows what arrived
            writer.write(b"later")
            await until(lambda: sum(isinstance(e, Ticked) for e in shell.events) == 2)
            first, second = [e.now for e in shell.events if isinstance(e, Ticked)]
            assert second - first >= 0.1
            await asyncio.sleep(0.3)  # no deadline now: no more ticks
            assert sum(isinstance(e, Ticked) for e in shell.events) == 2
        finally:
            writer.close()
            server.close()

    asyncio.run(run())


@pytest.mark.timeout(10)
def test_close_reasons_session_peer_local_abort_and_bug():
    async def run() -> dict[str, object]:
        server, port, shells = await serve()
        out: dict[str, object] = {}
        try:
            # the session ends itself: its last bytes still go out, then the connection closes
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"hello")
            assert await reader.readexactly(5) == b"hello"
            writer.write(b"quit")
            out["last"] = await reader.read()  # up to EOF
            out["session"] = await asyncio.wait_for(shells[0].ended, 2)
            out["session_events"] = [e for e in shells[0].events if isinstance(e, Ended)]
            writer.close()

            # the peer goes away: the session ends with "connection closed"
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await until(lambda: len(shells) == 2)
            writer.close()
            out["peer"] = await asyncio.wait_for(shells[1].ended, 2)
            out["peer_events"] = shells[1].events

            # this side aborts: the session ends with the reason, the peer sees the end
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await until(lambda: len(shells) == 3)
            shells[2].abort("too many requests")
            out["abort_eof"] = await asyncio.wait_for(reader.read(), 2)
            out["abort"] = await asyncio.wait_for(shells[2].ended, 2)
            out["abort_events"] = shells[2].events
            writer.close()

            # a bug in the session ends only that connection, with the reason
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await until(lambda: len(shells) == 4)
            writer.write(b"crash")
            out["bug"] = await asyncio.wait_for(shells[3].ended, 2)
            writer.close()
        finally:
            server.close()
        return out

    out = asyncio.run(run())
    assert out["last"] == b"bye"
    assert out["session"] == "the peer said quit"
    assert out["session_events"] == []  # the session ended itself: nothing more to report
    assert out["peer"] == "connection closed" and out["peer_events"] == [Ended("connection closed")]
    assert out["abort_eof"] == b"" and out["abort"] == "too many requests"
    assert out["abort_events"] == [Ended("too many requests")]
    assert "cannot handle its data" in str(out["bug"]) and "a bug" in str(out["bug"])


@pytest.mark.timeout(10)
def test_back_pressure_pauses_drops_data_and_resumes():
    async def run() -> None:
        policy = SlowPeerPolicy(high_water=16 * 1024, max_backlog=64 << 20, slow_timeout=0)
        server, port, shells = await serve(policy=policy)
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(Stalled, "127.0.0.1", port)
        try:
            await until(lambda: shells)
            [shell] = shells
            small_send_buffer(shell)
            assert shell.admits_data(3) and not shell.lagging
            shell.fake.out += b"x" * (1 << 20)
            shell.flush()
            assert shell.lagging and shell.pauses == 1
            # while it lags, data is counted as dropped, and drain() waits
            assert not shell.admits_data(5) and shell.dropped == 5
            drained = asyncio.ensure_future(shell.drain())
            await asyncio.sleep(0.2)
            assert not drained.done() and not shell.ended.done()
            client.resume(shell)
            await asyncio.wait_for(drained, 5)
            assert not shell.lagging and shell.resumes == 1 and shell.admits_data(1)
            assert shell.transport is not None and shell.transport.get_write_buffer_size() < 16384
        finally:
            client.transport.close()
            server.close()

    asyncio.run(run())


@pytest.mark.timeout(15)
def test_a_slow_peer_is_dropped_by_policy_while_another_keeps_receiving():
    async def run() -> tuple[str, int, int, int]:
        policy = SlowPeerPolicy(high_water=16 * 1024, max_backlog=64 << 20, slow_timeout=0.5)
        server, port, shells = await serve(policy=policy)
        loop = asyncio.get_running_loop()
        _, stalled = await loop.create_connection(Stalled, "127.0.0.1", port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        chunk = b"y" * 8192
        sent = 0
        try:
            await until(lambda: len(shells) == 2)
            slow, healthy = shells
            small_send_buffer(slow)
            received = 0

            async def read() -> None:
                nonlocal received
                while data := await reader.read(65536):
                    received += len(data)

            reading = asyncio.ensure_future(read())
            # a source at its own rate: every connection gets each chunk unless it lags
            for _ in range(150):
                for shell in shells:
                    if shell.lagging:
                        shell.admits_data(1)
                        continue
                    shell.fake.out += chunk
                    shell.flush()
                    if shell is healthy:
                        sent += len(chunk)
                await asyncio.sleep(0.01)
            reason = await asyncio.wait_for(slow.ended, 3)
            await until(lambda: received == sent)
            assert not healthy.ended.done()
            reading.cancel()
            return reason, slow.dropped, received, sent
        finally:
            writer.close()
            stalled.transport.close()
            server.close()

    reason, dropped, received, sent = asyncio.run(run())
    assert "subscriber too slow" in reason and "lagged for 0.5 s" in reason
    assert dropped > 0 and received == sent == 150 * 8192


@pytest.mark.timeout(10)
def test_a_connection_without_policy_is_dropped_past_its_write_bound():
    class Bounded(FakeShell):
        max_write_buffer = 64 * 1024

    async def run() -> str:
        shells: list[FakeShell] = []
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Bounded(shells), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, client = await loop.create_connection(Stalled, "127.0.0.1", port)
        try:
            await until(lambda: shells)
            small_send_buffer(shells[0])
            shells[0].fake.out += b"z" * (1 << 20)
            shells[0].flush()
            return await asyncio.wait_for(shells[0].ended, 2)
        finally:
            client.transport.close()
            server.close()

    assert "peer too slow: over 65536 bytes unsent" in asyncio.run(run())


@pytest.mark.timeout(10)
def test_datagrams_reach_the_peers_data_channel_and_its_session():
    async def run() -> tuple[list[Event], list[tuple[str, int]]]:
        server, port, shells = await serve()
        loop = asyncio.get_running_loop()
        client_shells: list[FakeShell] = []
        _, client = await loop.create_connection(
            lambda: FakeShell(client_shells), "127.0.0.1", port
        )
        sources: list[tuple[str, int]] = []

        def deliver(data: bytes, addr: tuple[str, int]) -> None:
            sources.append(addr)
            client.datagram_received(data)

        inlet = await open_datagram_inlet("127.0.0.1", 0, deliver, receive_buffer=1 << 20)
        try:
            await until(lambda: shells)
            [publisher] = shells
            publisher.fake.datagrams += [b"before the channel opened"]
            publisher.flush()  # no data channel yet: the datagram is not kept
            await publisher.open_datagram_target("127.0.0.1", inlet.get_extra_info("sockname")[1])
            publisher.fake.datagrams += [b"one", b"two"]
            publisher.flush()
            await until(lambda: len(client.events) == 2)
            return list(client.events), sources
        finally:
            inlet.close()
            client.transport.close()
            server.close()

    events, sources = asyncio.run(run())
    assert events == [Got(b"one"), Got(b"two")]
    assert {host for host, _ in sources} == {"127.0.0.1"}


@pytest.mark.timeout(10)
def test_bytes_before_the_session_starts_are_held_and_bounded():
    async def run() -> tuple[list[Event], str]:
        server, port, shells = await serve(autostart=False)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"early")
            await until(lambda: shells)
            await asyncio.sleep(0.1)
            [shell] = shells
            shell.start(shell.fake)  # e.g. after a TLS peer's address was checked
            echoed = await reader.readexactly(5)
            assert echoed == b"early"
            events = list(shell.events)
            writer.close()

            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"h" * (FakeShell.max_held + 1))
            await until(lambda: len(shells) == 2)
            reason = await asyncio.wait_for(shells[1].ended, 3)
            writer.close()
            return events, reason
        finally:
            server.close()

    events, reason = asyncio.run(run())
    assert events == [Got(b"early")]
    assert reason == "too much data before the session started"


@pytest.mark.timeout(10)
@pytest.mark.parametrize("ending", ["local close", "session ended"])
def test_no_tick_after_the_session_ended(ending):
    """The connection lingers (its unsent bytes wait for a peer that does not read): a timer
    armed before the end must not tick the ended session."""

    async def run() -> int:
        loop = asyncio.get_running_loop()
        server, port, shells = await serve(deadline=loop.time() + 0.3)
        transport, client = await loop.create_connection(Stalled, "127.0.0.1", port)
        try:
            await until(lambda: bool(shells) and shells[0].transport is not None)
            [shell] = shells
            small_send_buffer(shell)
            assert shell.transport is not None
            shell.transport.write(b"x" * (2 << 20))  # held back: the peer does not read
            if ending == "local close":
                shell.close("done")
            else:
                shell.fake.closed, shell.fake.close_reason = True, "the session ended"
                shell.flush()
            assert shell.transport.is_closing() and not shell.gone
            await asyncio.sleep(0.5)  # past the deadline
            return sum(isinstance(e, Ticked) for e in shell.events)
        finally:
            transport.abort()
            server.close()

    assert asyncio.run(run()) == 0
