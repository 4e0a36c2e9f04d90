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
                except socket.timeout:
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
