"""The C37.118 test peers: pyc37's PMU and PDC (confined to 127.0.0.1), an sttpapi subscriber,
and small helpers. pyc37's known defects (see runtime/c37118/PEERS.md) are worked around here,
never copied into gridbind."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import socket
import struct
import threading
import time

PYC37 = (
    importlib.util.find_spec("pyc37") is not None and importlib.util.find_spec("psutil") is not None
)
STTPAPI = importlib.util.find_spec("sttp") is not None
ALL = "FILTER ActiveMeasurements WHERE SignalType <> 'NONE'"


def f32(value: float) -> float:
    """``value`` rounded to float32."""
    return struct.unpack(">f", struct.pack(">f", value))[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _quiet(*names: str) -> None:
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(logging.CRITICAL)
        logger.propagate = False


class Pyc37Pmu:
    """pyc37's PMU on 127.0.0.1 serving ``cfg2`` (a pyc37 ConfigFrame2).

    pyc37 forks one process per PDC connection; that process paces data at its ``select`` time-out
    (about 10 frames/s whatever DATA_RATE says) and keeps the configuration of the moment it
    connected, so a configuration change reaches it only in-band (``send(new ConfigFrame2)``).
    """

    def __init__(self, cfg2, idcode: int, rate: int) -> None:
        from pyc37.pmu import Pmu

        _quiet("pyc37.pmu")
        self.port = free_port()
        self.pmu = Pmu(
            pmu_id=idcode, data_rate=rate, port=self.port, ip="127.0.0.1", set_timestamp=False
        )
        self.pmu.logger.handlers.clear()
        self.pmu.set_configuration(cfg2)
        self.pmu.set_header("gridbind c37118 test PMU")
        self.pmu.run()

    def wait_client(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.pmu.client_buffers:
            if time.monotonic() > deadline:
                raise TimeoutError("no PDC connected to the pyc37 PMU")
            time.sleep(0.02)

    def send(self, frame) -> None:
        self.pmu.send(frame)

    def stop(self) -> None:
        self.pmu.stop()


class Pyc37Pdc:
    """pyc37's PDC reading ``count`` data frames in a thread.

    Its ``get`` reads ``buffer_size`` bytes before it knows FRAMESIZE and drops whatever belongs
    to the next frame; a 4-byte buffer keeps it from swallowing frames of a busy stream.
    """

    def __init__(self, port: int, idcode: int) -> None:
        from pyc37.pdc import Pdc

        _quiet("pyc37.pdc")
        self.pdc = Pdc(pdc_id=idcode, pmu_ip="127.0.0.1", pmu_port=port, buffer_size=4)
        self.pdc.logger.handlers.clear()
        self.frames: list = []
        self.config = None
        self.header = None

    def connect(self) -> None:
        self.pdc.run()
        self.pdc.pmu_socket.settimeout(10)
        self.header = self.pdc.get_header()
        self.config = self.pdc.get_config("cfg2")
        self.pdc.start()

    def read(self, count: int) -> None:
        while len(self.frames) < count:
            frame = self.pdc.get()
            if frame is not None:
                self.frames.append(frame)

    def close(self) -> None:
        try:
            self.pdc.stop()
        finally:
            self.pdc.quit()


class SttpapiSubscriber:
    """sttpapi's subscriber collecting measurements from its threads."""

    def __init__(self, filter_expression: str = ALL) -> None:
        from sttp.config import Config
        from sttp.settings import Settings
        from sttp.subscriber import Subscriber

        self.received: list = []
        self.errors: list[str] = []
        self.subscribed = threading.Event()
        self.peer = Subscriber()
        self.peer.statusmessage_logger = lambda message: None
        self.peer.errormessage_logger = self.errors.append
        self.peer.set_newmeasurements_receiver(self.received.extend)
        self.peer.set_subscriptionupdated_receiver(lambda cache: self.subscribed.set())
        self.config = Config(autoreconnect=False)
        self.filter_expression = filter_expression
        self.peer.subscribe(filter_expression, Settings())

    def follow_changes(self) -> None:
        """On CONFIGURATION_CHANGED fetch the metadata and subscribe again (sttpapi leaves that
        to the application)."""
        from sttp.settings import Settings

        def changed() -> None:
            self.peer.request_metadata()
            self.peer.subscribe(self.filter_expression, Settings())

        self.peer.configurationchanged_receiver = changed

    async def connect(self, port: int) -> None:
        err = await asyncio.to_thread(self.peer.connect, f"127.0.0.1:{port}", self.config)
        assert err is None, err
        assert await asyncio.to_thread(self.subscribed.wait, 15), self.errors

    def record(self, signal_id):
        return self.peer.metadatacache.find_measurement_signalid(signal_id)

    def close(self) -> None:
        self.peer.disconnect()
        self.peer.dispose()


async def wait_until(predicate, timeout: float, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(step)
