"""The two bridges: C37.118 in -> STTP out (:class:`C37118ToSttp`) and STTP in -> C37.118 out
(:class:`SttpToC37118`). Both are thin: the protocol work is in the sans-IO modules.

Configuration changes: when the PMU's configuration changes, :class:`C37118ToSttp` replaces the
publisher's metadata (IEEE 2664 subscribers get CONFIGURATION_CHANGED, fetch the metadata and
subscribe again) and holds the measurements of the frames that follow until every subscriber that
was subscribed has subscribed again, then publishes them in order: a subscriber loses no frame
after a change. The hold ends after ``hold_seconds`` or ``max_hold_measurements`` at the latest.
Metadata is re-announced at most once per ``min_change_interval`` seconds: a device flapping its
configuration gets its latest one announced when the interval is over. These decisions are the
sans-IO :class:`~gridbind.c37118.hold.HoldCore`'s; the bridge only runs its one timer.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from gridbind.c37118.client import (
    ConfigurationChanged,
    DataReceived,
    FrameRejected,
    PdcClient,
    config_signature,
)
from gridbind.c37118.errors import C37118Error, ConfigurationError
from gridbind.c37118.frames import ConfigFrame
from gridbind.c37118.hold import HoldCore
from gridbind.c37118.mapping import StreamMapping
from gridbind.c37118.outbound import (
    FrameAssembler,
    OutboundPlan,
    metadata_from_data_points,
)
from gridbind.c37118.server import PmuServer
from gridbind.sttp.measurement import TICKS_PER_SECOND, UNIX_EPOCH_TICKS, Measurement

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Rates:
    """A snapshot of the counters a bridge reports (the CLI prints their rates), made by
    ``rates()`` from where each is counted: the client's :class:`ClientStats`, the assembler,
    the server, and the bridge's own frames and measurements."""

    frames: int = 0
    measurements: int = 0
    frames_lost: int = 0
    rejected: int = 0
    config_changes: int = 0


class C37118ToSttp:
    """PMU / PDC stream (C37.118 over TCP, data optionally over UDP) -> STTP publisher.

    Args:
        pmu_host, pmu_port, idcode: the C37.118 device and stream to read.
        sttp_host, sttp_port: where the STTP publisher listens (port 0: any free port).
        profile: ``ieee2664`` (deployed wire) or ``draft-0.8``.
        company, source, node_id: metadata conventions (see :class:`StreamMapping`).
        prefer_cfg3: ask the device for CFG-3 (falls back to CFG-2 when it has none).
        udp_port: also read data frames from this local UDP port (sent by the PMU's host).
        udp_host: the local address of that UDP port (``0.0.0.0``: every interface).
        compression: let IEEE 2664 subscribers use TSSC.
    """

    def __init__(
        self,
        pmu_host: str,
        pmu_port: int,
        idcode: int,
        *,
        sttp_host: str = "127.0.0.1",
        sttp_port: int = 7165,
        profile: str = "ieee2664",
        company: str = "GB",
        source: str = "PPA",
        node_id: uuid.UUID | None = None,
        prefer_cfg3: bool = False,
        udp_port: int | None = None,
        udp_host: str = "127.0.0.1",
        compression: bool = True,
        hold_seconds: float = 3.0,
        max_hold_measurements: int = 500_000,
        min_change_interval: float = 1.0,
        data_timeout: float = 10.0,
    ) -> None:
        if profile not in ("ieee2664", "draft-0.8"):
            raise ConfigurationError(f"unknown STTP profile {profile!r}")
        self.profile = profile
        self.company, self.source = company, source
        self.node_id = node_id or uuid.uuid5(uuid.NAMESPACE_DNS, f"{pmu_host}:{pmu_port}/{idcode}")
        self.sttp_host, self.sttp_port = sttp_host, sttp_port
        self.compression = compression
        self.hold = HoldCore(hold_seconds, max_hold_measurements, min_change_interval)
        self.client = PdcClient(
            pmu_host,
            pmu_port,
            idcode,
            on_event=self._on_event,
            prefer_cfg3=prefer_cfg3,
            udp_port=udp_port,
            udp_host=udp_host,
            data_timeout=data_timeout,
        )
        #: data frames mapped and measurements published
        self.frames = 0
        self.measurements = 0
        self.mapping: StreamMapping | None = None
        self.publisher: Any = None
        self._mappings: dict[int, StreamMapping] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._configured = asyncio.Event()
        self._database: Any = None
        #: how many times metadata was defined (configuration changes may be coalesced)
        self.definitions = 0

    # -- lifecycle
    async def start(self) -> None:
        """Start the STTP publisher, then the C37.118 client."""
        if self.profile == "ieee2664":
            from gridbind.sttp.ieee2664 import Publisher, PublisherConfig

            self.publisher = Publisher(
                None,
                host=self.sttp_host,
                port=self.sttp_port,
                config=PublisherConfig(allow_payload_compression=self.compression),
                on_event=self._on_publisher_event,
            )
        else:
            from gridbind.generated.sttp.templates import DataPointRecord
            from gridbind.sttp.draft import MetadataDatabase, Publisher

            self._database = MetadataDatabase()
            self._database.define_template(DataPointRecord, extra=[("DataType", 0x01)])
            self.publisher = Publisher(
                host=self.sttp_host, port=self.sttp_port, metadata=self._database
            )
        await self.publisher.start()
        await self.client.start()

    async def stop(self) -> None:
        """Stop the client (data off), then the publisher."""
        await self.client.stop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.publisher is not None:
            await self.publisher.stop()

    async def wait_configured(self, timeout: float = 10.0) -> StreamMapping:
        """Wait for the first configuration; returns its mapping."""
        await asyncio.wait_for(self._configured.wait(), timeout)
        assert self.mapping is not None
        return self.mapping

    @property
    def port(self) -> int:
        """The STTP publisher's port."""
        return int(self.publisher.port)

    def rates(self) -> Rates:
        """The counters now (loss, rejections and changes are the client's)."""
        stats = self.client.stats
        return Rates(
            self.frames, self.measurements, stats.frames_lost, stats.rejected, stats.config_changes
        )

    # -- C37.118 side
    def _on_event(self, event: Any) -> None:
        try:
            if isinstance(event, DataReceived):
                self._data(event)
            elif isinstance(event, ConfigurationChanged):
                self._configure(event.config)
            elif isinstance(event, FrameRejected):
                pass  # counted by the client; the stream goes on
        except C37118Error as exc:
            log.error("dropping a frame: %s", exc)

    def _configure(self, config: ConfigFrame) -> None:
        mapping = StreamMapping(
            config, company=self.company, source=self.source, node_id=self.node_id
        )
        first = self.mapping is None
        self.mapping = mapping
        self._mappings[id(config)] = mapping
        if len(self._mappings) > 4:
            del self._mappings[next(iter(self._mappings))]
        log.info(
            "configuration %s: %d PMUs, %d signals",
            "received" if first else "changed",
            len(config.pmus),
            len(mapping.signals),
        )
        if self.hold.configuration_changed(self._now()):
            self._define(mapping)
        self._arm()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _arm(self) -> None:
        """One timer, at the hold core's next deadline."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.hold.next_deadline()
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        announce, batches = self.hold.handle_timer(self._now())
        self._publish(batches)
        if announce and self.mapping is not None:
            self._define(self.mapping)
        self._arm()

    def _publish(self, batches: list[list[Measurement]]) -> None:
        for batch in batches:
            self.publisher.publish(batch)
            self.measurements += len(batch)

    def _define(self, mapping: StreamMapping) -> None:
        """Publish ``mapping``'s metadata (and hold frames until subscribers follow it)."""
        self.definitions += 1
        subscribed: set[Any] = set()
        if self.profile == "ieee2664":
            # they subscribed to the old (or the empty) metadata: hold until they follow
            subscribed = {
                c for c in self.publisher.connections if c.session and c.session.subscribed
            }
            self.publisher.define_metadata(mapping.metadata())
        else:
            from gridbind.sttp.encoding import ValueType

            rows = mapping.data_point_rows()
            current = {row["PointID"] for row in rows}
            for row in self._database.rows("DataPoint"):
                if row["PointID"] not in current:  # a signal the new configuration dropped
                    self._database.delete("DataPoint", row["PointID"])
            self._database.upsert_many("DataPoint", rows)
            self.publisher.define_points(
                {signal.signal_id: ValueType.SINGLE for signal in mapping.signals}
            )
        self._publish(self.hold.defined(self._now(), subscribed))
        self._configured.set()

    def _data(self, event: DataReceived) -> None:
        mapping = self._mappings.get(id(event.layout.config))
        if mapping is None:
            return
        measurements = mapping.measurements(event.stamp, event.values)
        self.frames += 1
        self._publish(self.hold.data(measurements))

    def _on_publisher_event(self, connection: Any, event: Any) -> None:
        from gridbind.sttp.ieee2664.events import Subscribed

        if isinstance(event, Subscribed):
            self._publish(self.hold.subscribed(connection))
            self._arm()


class SttpToC37118:
    """STTP subscription -> C37.118 server (PMU / PDC emulation) for stream ``idcode``.

    The server starts once the first metadata arrived (its configuration is made from it); with
    the IEEE 2664 profile a later metadata change becomes a new configuration, sent in-band to
    streaming PDCs. With ``profile="draft-0.8"`` the metadata is the publisher's DataPoint table
    (:func:`metadata_from_data_points`), read once after connecting.
    """

    def __init__(
        self,
        sttp_host: str,
        sttp_port: int,
        *,
        host: str = "127.0.0.1",
        port: int = 4712,
        idcode: int = 1,
        format: int = 0xF,
        time_base: int = 1_000_000,
        filter_expression: str = "FILTER ActiveMeasurements WHERE SignalType <> 'NONE'",
        udp_target: tuple[str, int] | None = None,
        lag: int = 2,
        compression: bool = True,
        profile: str = "ieee2664",
    ) -> None:
        if profile not in ("ieee2664", "draft-0.8"):
            raise ConfigurationError(f"unknown STTP profile {profile!r}")
        self.profile = profile
        self.idcode, self.format, self.time_base = idcode, format, time_base
        self.host, self.port_wanted = host, port
        self.udp_target = udp_target
        self.lag = lag
        #: frames served, measurements received, served configuration changes
        self.frames = 0
        self.measurements = 0
        self.config_changes = 0
        self.plan: OutboundPlan | None = None
        self.assembler: FrameAssembler | None = None
        self.server: PmuServer | None = None
        self._ready = asyncio.Event()
        self._cfgcnt = 0
        self._tasks: set[asyncio.Task[None]] = set()
        if profile == "ieee2664":
            from gridbind.sttp.ieee2664 import Subscriber, SubscriberConfig

            self.subscriber: Any = Subscriber(
                sttp_host,
                sttp_port,
                filter_expression=filter_expression,
                config=SubscriberConfig(compress_payload=compression),
                on_measurements=self._measurements,
                on_event=self._event,
            )
        else:
            from gridbind.sttp.draft import Subscriber as DraftSubscriber

            self.subscriber = DraftSubscriber(
                host=sttp_host, port=sttp_port, on_measurements=self._measurements
            )

    async def start(self) -> None:
        """Connect to the STTP publisher (draft-0.8: read its DataPoint table, serve, subscribe)."""
        await self.subscriber.start()
        if self.profile == "ieee2664":
            return
        result = await self.subscriber.request_metadata("DataPoint")
        plan = self._plan(metadata_from_data_points(result.rows))
        if plan is not None:
            await self._configure(plan)
        await self.subscriber.subscribe()

    async def wait_ready(self, timeout: float = 10.0) -> PmuServer:
        """Wait until the C37.118 server listens; returns it."""
        await asyncio.wait_for(self._ready.wait(), timeout)
        assert self.server is not None
        return self.server

    async def stop(self) -> None:
        """Close the subscription and the C37.118 server."""
        await self.subscriber.stop()
        if self.server is not None:
            await self.server.stop()

    def _plan(self, metadata: Any) -> OutboundPlan | None:
        try:
            return OutboundPlan(
                metadata,
                self.idcode,
                format=self.format,
                time_base=self.time_base,
                cfgcnt=self._cfgcnt,
            )
        except C37118Error as exc:
            log.error("cannot serve this metadata as C37.118: %s", exc)
            return None

    def _event(self, event: Any) -> None:
        from gridbind.sttp.ieee2664.events import MetadataReceived

        if isinstance(event, MetadataReceived):
            plan = self._plan(event.metadata)
            if plan is None:
                return
            task = asyncio.get_running_loop().create_task(self._configure(plan))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _configure(self, plan: OutboundPlan) -> None:
        old = self.plan
        if (
            old is not None
            and old.targets == plan.targets
            and config_signature(old.config) == config_signature(plan.config)
        ):
            return  # a metadata refresh that changes nothing C37.118 carries
        if self.assembler is not None and self.server is not None:
            for frame in self.assembler.flush():
                self.server.send_data(frame)
        self.plan = plan
        self.assembler = FrameAssembler(plan, self.lag)
        if self.server is None:
            self.server = PmuServer(
                plan.config,
                host=self.host,
                port=self.port_wanted,
                clock=_now_stamp(plan.time_base),
                udp_target=self.udp_target,
            )
            await self.server.start()
            self._ready.set()
        else:
            self._cfgcnt += 1  # CFGCNT counts the changes of the served configuration
            for pmu in plan.config.pmus:
                pmu.cfgcnt = self._cfgcnt & 0xFFFF
            self.config_changes += 1
            self.server.set_config(plan.config)

    def _measurements(self, batch: list[Measurement]) -> None:
        if self.assembler is None or self.server is None:
            return
        now = UNIX_EPOCH_TICKS + int(time.time() * TICKS_PER_SECOND)
        for frame in self.assembler.add(batch, now):
            self.server.send_data(frame)
            self.frames += 1
        self.measurements += len(batch)

    def rates(self) -> Rates:
        """The counters now: frames lost are timestamps that never came, rejected the bad
        commands and the frames whose time C37.118 cannot carry."""
        assembler, server = self.assembler, self.server
        lost = assembler.lost if assembler is not None else 0
        rejected = server.rejected if server is not None else 0
        rejected += assembler.unservable if assembler is not None else 0
        return Rates(self.frames, self.measurements, lost, rejected, self.config_changes)


def _now_stamp(time_base: int) -> Any:
    def clock() -> tuple[int, int]:
        now = time.time()
        whole = int(now)
        return whole, int((now - whole) * time_base) % time_base

    return clock
