"""The sttpapi interop peer, confined to 127.0.0.1, and conversions to and from it."""

from __future__ import annotations

import importlib.util
import socket
import threading
import uuid
from collections.abc import Sequence

from gridbind.sttp.ieee2664.metadata import DataSet
from gridbind.sttp.measurement import Measurement

AVAILABLE = importlib.util.find_spec("sttp") is not None


def loopback_publisher():
    """An sttpapi DataPublisher whose listener binds 127.0.0.1 on a free port (not 0.0.0.0)."""
    import numpy as np
    from sttp.transport.datapublisher import DataPublisher

    class LoopbackDataPublisher(DataPublisher):
        """``start`` as the original, but bound to the loopback interface only."""

        def start(self, port: int = 0, ipv6: bool = False) -> None:  # noqa: ARG002 - IPv4 only
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", port))
            server.listen(10)
            server.settimeout(0.5)
            self._server_socket = server
            self._port = np.uint16(server.getsockname()[1])
            self._ipv6 = False
            self._started, self._stopped, self._shuttingdown = True, False, False
            self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
            self._accept_thread.start()

        def _accept_loop(self) -> None:
            # The original loop spins on accept errors once the socket is closed; this one exits.
            while self._started and not self._shuttingdown:
                try:
                    client, address = self._server_socket.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                from sttp.transport.subscriberconnection import SubscriberConnection

                client.settimeout(None)
                connection = SubscriberConnection(self, client, address)
                with self._subscriber_connections_lock:
                    self._subscriber_connections.add(connection)
                connection.start()

    return LoopbackDataPublisher()


def sttpapi_dataset(metadata: DataSet):
    """Our metadata as sttpapi's DataSet (through the XML both sides speak)."""
    from sttp.data.dataset import DataSet as SttpDataSet

    dataset, err = SttpDataSet.from_xml(metadata.to_xml())
    assert err is None, err
    return dataset


def to_sttpapi(measurements: Sequence[Measurement]) -> list:
    """sttpapi measurements, avoiding its known input defects (uint32 flags, int timestamps)."""
    import numpy as np
    from sttp.transport.measurement import Measurement as SttpMeasurement

    return [
        SttpMeasurement(m.signal_id, np.float64(m.value), int(m.timestamp), np.uint32(m.flags))
        for m in measurements
    ]


def from_sttpapi(measurements: Sequence) -> list[tuple[uuid.UUID, float, int, int]]:
    """Comparable tuples of sttpapi measurements."""
    return [(m.signalid, float(m.value), int(m.timestamp), int(m.flags)) for m in measurements]


def key(measurements: Sequence[Measurement]) -> list[tuple[uuid.UUID, float, int, int]]:
    """Comparable tuples of our measurements."""
    return [(m.signal_id, m.value, m.timestamp, m.flags) for m in measurements]


# ------------------------------------------------------------------------- metadata comparison


def _plain(value):
    """A comparable Python value of one cell (numpy scalars, aware/naive UTC times)."""
    import datetime as dt

    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()  # numpy scalar
    return value


def sttpapi_tables(dataset) -> dict[str, tuple[list[tuple[str, str]], list[tuple]]]:
    """``{table: ([(column, xsd type)], [row tuples])}`` of an sttpapi DataSet."""
    from sttp.data.dataset import DataSet as SttpDataSet
    from sttp.data.datatype import DataType

    out = {}
    for name in dataset.tablenames():
        table = dataset.table(name)
        columns = []
        for index in range(table.columncount):
            column = table.column(index)
            if column.datatype == DataType.GUID:
                xsd = "guid"
            else:
                xsd = SttpDataSet._datatype_to_xsd(column.datatype).split(":")[-1]
            columns.append((column.name, xsd))
        rows = [
            tuple(_plain(table.row(r)[c]) for c in range(table.columncount))
            for r in range(table.rowcount)
        ]
        out[table.name] = (columns, rows)
    return out


def our_tables(dataset: DataSet) -> dict[str, tuple[list[tuple[str, str]], list[tuple]]]:
    """The same view of one of our DataSets (or a single DataTable as a one-table dict)."""
    tables = dataset.tables if isinstance(dataset, DataSet) else [dataset]
    return {
        table.name: (
            [(column.name, column.type) for column in table.columns],
            [tuple(_plain(row[column.name]) for column in table.columns) for row in table.rows],
        )
        for table in tables
    }


# ------------------------------------------------------------------------------ paced streams


def pace(frames: Sequence, publish, rate: float = 30.0) -> float:
    """Call ``publish(frame)`` for each frame at ``rate`` frames/s of wall-clock time (blocking;
    for sttpapi's synchronous publisher in a thread); returns the seconds it took."""
    import time

    start = time.monotonic()
    for number, frame in enumerate(frames):
        delay = start + number / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        publish(frame)
    return time.monotonic() - start


async def pace_async(frames: Sequence, publish, rate: float = 30.0, drain=None) -> float:
    """:func:`pace` on an asyncio loop; ``await drain()`` after each frame when given."""
    import asyncio
    import time

    start = time.monotonic()
    for number, frame in enumerate(frames):
        delay = start + number / rate - time.monotonic()
        await asyncio.sleep(max(delay, 0))
        publish(frame)
        if drain is not None:
            await drain()
    return time.monotonic() - start


def stream_frames(signals: Sequence[uuid.UUID], seconds: float, rate: float = 30.0, **options):
    """``(frames, measurements)`` of a synthetic PMU stream spanning ``seconds`` at ``rate``:
    one frame more than rate x seconds, so a paced run takes at least ``seconds``."""
    from gridbind.sttp.ieee2664 import PmuSource
    from gridbind.sttp.measurement import ticks_now

    source = PmuSource(signals, rate=rate, start_ticks=ticks_now(), **options)
    frames = list(source.frames(int(rate * seconds) + 1))
    return frames, [m for frame in frames for m in frame]


def fix_cipher_key_parser(datasubscriber) -> None:
    """Work around sttpapi's UPDATE_CIPHER_KEYS reader (its defect, not the protocol's).

    It slices each key and IV as ``data[index:length]`` instead of ``data[index:index+length]``,
    so a 32-byte key comes out as 27 bytes, AES refuses it and the subscriber disconnects at the
    first encrypted datagram. This reads the same layout (active index byte, then length-prefixed
    even key, even IV, odd key, odd IV) correctly and installs the pairs as sttpapi would.
    """
    import struct

    def handle(data: bytes) -> None:
        position, parts = 1, []
        for _ in range(4):
            (length,) = struct.unpack_from(">i", data, position)
            position += 4
            parts.append(bytes(data[position : position + length]))
            position += length
        datasubscriber._key_ivs = [[parts[0], parts[1]], [parts[2], parts[3]]]
        datasubscriber.cipher_updates = getattr(datasubscriber, "cipher_updates", 0) + 1

    datasubscriber._handle_update_cipherkeys = handle
