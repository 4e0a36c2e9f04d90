"""The publisher end of a draft-profile connection (sans-IO): negotiation as the initiator,
subscriptions, RuntimeIDMapping, publication with characteristics, metadata answers, access
control, SecureDataChannel keys, verification receipts and BulkTransport.

Commands from the subscriber may come fragmented (BeginFragment + NextFragment, e.g. a Subscribe
by thousands of ids): they are reassembled up to :data:`MAX_COMMAND_FRAGMENTED` bytes (declared
sizes, checked at BeginFragment, so nothing larger is ever buffered); a larger one is refused
with RequestFailed (for the fragmented command, with the sizes in the reason) and the session
closes, as do malformed, interleaved, overlong or TSSC-coded fragments."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp.codecsupport import ConstraintError, WireError
from gridbind.sttp.draft.access import ANONYMOUS, AccessControl, metadata_visibility
from gridbind.sttp.draft.characteristics import (
    CharacteristicsError,
    Options,
    PointFilter,
    Policy,
)
from gridbind.sttp.draft.core import (
    _MAPPING_CHUNK,
    _MAX_RECIPE,
    _RECEIPT,
    _TYPE_NAMES,
    ALGORITHM_VERSIONS,
    CC,
    NS,
    SM,
    SSC,
    STATEFUL,
    STATELESS,
    FrameHandler,
    _coerce,
    _modes,
    _name,
    _names,
    _Session,
    _Terminate,
)
from gridbind.sttp.draft.events import (
    DataChannelSecured,
    Event,
    FilterRequested,
    NegotiationComplete,
    SubscriptionChanged,
    VerificationTimedOut,
    Verified,
)
from gridbind.sttp.draft.metadata import (
    MetadataDatabase,
    MetadataError,
    MetaTable,
    decode_result,
)
from gridbind.sttp.draft.packets import MAX_RAW_PACKET, DataEncoder, FragmentError, WirePoint
from gridbind.sttp.draft.security import DatagramCipher
from gridbind.sttp.encoding import ValueType
from gridbind.sttp.expressions import (
    Budget,
    BudgetExceeded,
    FilterExpressionError,
    Limits,
    evaluation_result,
)
from gridbind.sttp.measurement import Measurement

__all__ = ["MAX_COMMAND_FRAGMENTED", "Catalog", "PublisherSession"]

#: Largest fragmented command a publisher reassembles from a subscriber (1 MiB: a Subscribe by
#: about 65000 ids).
MAX_COMMAND_FRAGMENTED = 1 << 20


@dataclass
class _Subscribed:
    runtime_id: int
    value_type: int
    options: Options
    verify: bool
    filter: PointFilter


# On-loop budget of re-evaluating a subscription after a metadata change (more goes off-loop).
_QUICK = Limits(max_steps=50_000, max_seconds=0.05)


@dataclass
class Catalog:
    """The publisher's points: value types, metadata, access control, characteristics policy."""

    metadata: MetadataDatabase
    access: AccessControl = field(default_factory=AccessControl.allow_all)
    policy: Policy = field(default_factory=Policy)
    value_types: dict[uuid.UUID, int] = field(default_factory=dict)
    #: Column of the DataPoint table that names the point id.
    key_column: str = "PointID"

    def datapoint_table(self) -> MetaTable | None:
        """The DataPoint table, when defined."""
        try:
            return self.metadata.table("DataPoint")
        except MetadataError:
            return None

    def row(self, point: uuid.UUID) -> dict[str, Any] | None:
        """DataPoint metadata row of ``point``."""
        table = self.datapoint_table()
        return None if table is None else table.rows.get(point)

    def points(self) -> list[uuid.UUID]:
        """Every point the publisher offers."""
        table = self.datapoint_table()
        known = list(self.value_types)
        if table is not None:
            seen = set(known)
            known += [p for p in table.rows if p not in seen]
        return known

    def value_type(self, point: uuid.UUID) -> int:
        """ValueTypeCode of ``point``: declared, else its metadata ``DataType``, else Single."""
        declared = self.value_types.get(point)
        if declared is not None:
            return declared
        row = self.row(point)
        if row is not None:
            name = str(row.get("DataType") or "").upper()
            if name in _TYPE_NAMES:
                return _TYPE_NAMES[name]
        return ValueType.SINGLE

    def is_angle(self, point: uuid.UUID) -> bool:
        """Whether the metadata says ``point`` is a phase angle (for filtered down-sampling)."""
        row = self.row(point)
        if row is None:
            return False
        kind = str(row.get("Signal Type") or row.get("SignalType") or "").upper()
        return kind in ("PA", "VPHA", "IPHA")


class PublisherSession(_Session):
    """The publisher end of one connection.

    Options: ``versions`` offered, ``stateful``/``stateless`` algorithm names offered,
    ``udp`` (whether a UDP data channel is supported), ``identity`` of the peer for access
    control, time-outs in seconds, ``max_payload`` of a frame.
    """

    role = "publisher"
    max_fragmented = MAX_COMMAND_FRAGMENTED

    def __init__(
        self,
        catalog: Catalog,
        *,
        now: float = 0.0,
        identity: str = ANONYMOUS,
        versions: Sequence[tuple[int, int]] = ((1, 0),),
        stateful: Sequence[str] = STATEFUL,
        stateless: Sequence[str] = STATELESS,
        udp: bool = True,
        tls: bool = False,
        negotiation_timeout: float = 5.0,
        response_timeout: float = 10.0,
        keepalive_interval: float | None = None,
        noop_timeout: float = 5.0,
        verification_timeout: float = 5.0,
        max_payload: int = MAX_RAW_PACKET,
    ) -> None:
        super().__init__(
            now=now,
            negotiation_timeout=negotiation_timeout,
            response_timeout=response_timeout,
            keepalive_interval=keepalive_interval,
            noop_timeout=noop_timeout,
            max_payload=max_payload,
        )
        self.catalog = catalog
        self.identity = identity
        self.tls = tls
        self.versions = [tuple(v) for v in versions]
        self.offer_stateful = list(stateful)
        self.offer_stateless = list(stateless)
        self.udp = udp
        self.verification_timeout = verification_timeout
        #: True: metadata queries and subscriptions are evaluated by the shell, off its event
        #: loop (FilterRequested); the asyncio transport sets it.
        self.defer_filters = False
        self._recheck = False
        # The recipe whose last on-loop re-evaluation exceeded the quick budget: its next ones
        # go off-loop at once, so N heavy subscriptions do not cost N quick budgets per change.
        self._heavy_recipe: object = None
        self._step = "versions"
        self._points: dict[uuid.UUID, _Subscribed] = {}
        self._by_runtime: dict[int, uuid.UUID] = {}
        self._free_ids: list[int] = []
        self._next_id = 0
        self._recipe: list[tuple[int, int, Any, Options]] = []
        self.ever_subscribed = False
        self.udp_key: tuple[bytes, bytes] | None = None
        self._tcp: DataEncoder | None = None
        self._udp: DataEncoder | None = None
        self._datagrams: list[bytes] = []
        self._cipher: DatagramCipher | None = None
        self._cipher_key: tuple[bytes, bytes] | None = None
        self._verify_pending: dict[tuple[int, int], float] = {}
        self._bulk_seq = 0
        self.published = {"tcp": 0, "udp": 0}
        #: Data points published per priority level (the seed's recommended statistics).
        self.published_by_priority = [0] * 8
        #: Values held back by exception (deadband) or down-sampling.
        self.suppressed = 0
        self._send(
            wire.NegotiateSession(
                sub_command=NS.ProtocolVersions,
                body=wire.ProtocolVersions(versions=[wire.Version(*v) for v in self.versions]),
            )
        )

    def count_subscribed(self, measurements: Iterable[Measurement]) -> int:
        """How many of ``measurements`` this peer subscribed to (for loss accounting)."""
        points = self._points
        return sum(1 for measurement in measurements if measurement.signal_id in points)

    @property
    def subscribed_points(self) -> list[uuid.UUID]:
        """Points currently subscribed by this peer."""
        return list(self._points)

    def configured(self) -> dict[str, Any]:
        """Subscribed points per characteristic (the seed's recommended statistics)."""
        by_priority = [0] * 8
        counts = {"lossy": 0, "verified": 0, "exception": 0, "downsampled": 0}
        for entry in self._points.values():
            options = entry.options
            by_priority[options.priority] += 1
            counts["lossy"] += options.lossy
            counts["verified"] += entry.verify
            counts["exception"] += options.exception
            counts["downsampled"] += bool(options.resolution)
        return {"by_priority": by_priority, **counts}

    def runtime_id(self, point: uuid.UUID) -> int | None:
        """Runtime ID assigned to ``point`` in this session."""
        entry = self._points.get(point)
        return None if entry is None else entry.runtime_id

    def datagrams_to_send(self) -> list[bytes]:
        """Datagrams for the UDP data channel (one frame each, AES-encrypted once
        SecureDataChannel agreed keys); empties the queue."""
        out, self._datagrams = self._datagrams, []
        cipher = self.cipher
        if cipher is not None:
            out = [cipher.encrypt(frame) for frame in out]
        return out

    @property
    def cipher(self) -> DatagramCipher | None:
        """The data channel's cipher (None until SecureDataChannel agreed keys)."""
        key = self.udp_key
        if key is None:
            return None
        if self._cipher is None or self._cipher_key != key:
            self._cipher, self._cipher_key = DatagramCipher(*key), key
        return self._cipher

    # negotiation
    def _succeeded(self, ok: wire.RequestSucceeded, now: float) -> list[Event]:
        if ok.command == CC.NegotiateSession and self.negotiated is None:
            return self._negotiation_reply(ok.data, now)
        if self.negotiated is None:
            raise _Terminate(CC.RequestSucceeded, "response before session negotiation completed")
        if ok.command == CC.SendDataPoints:
            return self._receipts(ok.data)
        return super()._succeeded(ok, now)

    def _failed(self, failed: wire.RequestFailed, now: float) -> list[Event]:
        events = super()._failed(failed, now)
        if self.negotiated is None and failed.command == CC.NegotiateSession and not self.closed:
            events += self._close(f"subscriber refused negotiation: {failed.reason}", True)
        return events

    def _negotiation_reply(self, data: bytes, now: float) -> list[Event]:
        if self._step == "versions":
            chosen = wire.ProtocolVersions.parse(data)
            picked = [(v.major, v.minor) for v in chosen.versions]
            if len(picked) != 1 or picked[0] not in self.versions:
                return self._terminate(CC.NegotiateSession, f"unacceptable protocol {picked}")
            self.version = picked[0]
            self._step = "modes"
            self._send(
                wire.NegotiateSession(
                    sub_command=NS.OperationalModes,
                    body=_modes(int(self.udp), self.offer_stateful, self.offer_stateless),
                )
            )
            return []
        if self._step != "modes":
            raise _Terminate(CC.NegotiateSession, "unexpected negotiation reply")
        modes = wire.OperationalModes.parse(data)
        stateful, stateless = _names(modes.stateful), _names(modes.stateless)
        offered_sf = {(n, ALGORITHM_VERSIONS[n]) for n in self.offer_stateful}
        offered_sl = {(n, ALGORITHM_VERSIONS[n]) for n in self.offer_stateless}
        if len(stateful) != 1 or stateful[0] not in offered_sf:
            return self._terminate(CC.NegotiateSession, f"unacceptable stateful mode {stateful}")
        if len(stateless) != 1 or stateless[0] not in offered_sl:
            return self._terminate(CC.NegotiateSession, f"unacceptable stateless mode {stateless}")
        if stateless[0][0] == "TSSC":
            return self._terminate(CC.NegotiateSession, "TSSC cannot be stateless")
        if modes.udp_port and not self.udp:
            return self._terminate(CC.NegotiateSession, "this publisher does not support UDP")
        self._succeed(CC.NegotiateSession)
        self._step = "done"
        events = self._negotiation_done(
            NegotiationComplete(self.version, stateful[0][0], stateless[0][0], modes.udp_port), now
        )
        self._tcp = DataEncoder(
            stateful[0][0],
            stateful=True,
            max_payload=self.max_payload,
            deflate_stream=self._deflate_out,  # data and commands share the session stream
        )
        if modes.udp_port:
            self._udp = DataEncoder(stateless[0][0], stateful=False, max_payload=self.max_payload)
        return events

    # commands (the table COMMANDS follows their handlers)
    def _metadata_schema(self, code: int, payload: bytes, now: float) -> list[Event]:
        request = wire.GetMetadataSchema.parse(payload)
        self._send(
            wire.GetMetadataSchemaResponse(
                schema=self.catalog.metadata.schema(request.include_schema)
            )
        )
        return []

    def _fragment(self, code: int, payload: bytes, now: float) -> list[Event]:
        """A fragment of a command too large for one packet: reassembled, then handled as if
        it had come whole."""
        if code == CC.BeginFragment:
            begin = wire.BeginFragment.parse(payload)
            size = max(begin.total_fragment_size, begin.total_raw_size)
            if size > self.max_fragmented:
                raise _Terminate(
                    begin.command_code,
                    f"fragmented {_name(begin.command_code)} of {size} bytes exceeds the "
                    f"{self.max_fragmented}-byte limit of a publisher for a subscriber command",
                )
        try:
            packet = self._fragments.feed(code, payload)
        except FragmentError as exc:
            raise _Terminate(code, f"bad fragment from the subscriber: {exc}") from None
        if packet is None:
            return []
        if packet.compression == wire.CompressionMode.Tssc:
            raise _Terminate(
                packet.command_code, f"TSSC-coded {_name(packet.command_code)} from a subscriber"
            )
        try:
            return _Session._frame(self, packet.command_code, packet.payload, now)
        except (WireError, ConstraintError) as exc:
            name = _name(packet.command_code)
            raise _Terminate(packet.command_code, f"malformed fragmented {name}: {exc}") from None

    def _secure_data_channel(self, code: int, payload: bytes, now: float) -> list[Event]:
        wire.SecureDataChannel.parse(payload)
        if not self.negotiated or not self.negotiated.udp_port:
            self._refuse(
                CC.SecureDataChannel,
                "data channel functions can only be secured when a lossy communications "
                "protocol (UDP) has been established",
            )
            return []
        if not self.tls:
            self._refuse(
                CC.SecureDataChannel,
                "data channel functions can only be secured when command channel functions are "
                "already secured using TLS",
            )
            return []
        if self.ever_subscribed:
            self._refuse(
                CC.SecureDataChannel,
                "data channel functions cannot be secured after a subscription has already "
                "been initiated",
            )
            return []
        key, iv = os.urandom(32), os.urandom(16)
        self.udp_key = (key, iv)
        self._succeed(CC.SecureDataChannel, "keys", wire.DataChannelKeys(key=key, iv=iv).build())
        return [DataChannelSecured(key, iv)]

    def _get_metadata(self, code: int, payload: bytes, now: float) -> list[Event]:
        request = wire.GetMetadata.parse(payload)
        catalog = self.catalog
        visibility: dict[str, Any] = {}

        def visible(table: MetaTable, row: Mapping[str, Any]) -> bool:
            # rows of other tables follow the allowed points (see access.metadata_visibility)
            check = visibility.get(table.name)
            if check is None:
                check = metadata_visibility(catalog.metadata, catalog.access, self.identity, table)
                visibility[table.name] = check
            return check(table, row)

        return self._deferred(
            lambda: self.catalog.metadata.answer(request, visible), self._metadata_answer
        )

    def _deferred(
        self, work: Callable[[], Any], finish: Callable[[Any], list[Event]]
    ) -> list[Event]:
        """Run ``work`` (a budgeted query evaluation) now, or park until the shell ran it."""

        def run() -> Any:
            result = evaluation_result(work, (MetadataError, FilterExpressionError))
            return MetadataError(str(result)) if isinstance(result, Exception) else result

        if not self.defer_filters:
            return finish(run())
        self._parked = finish
        return [FilterRequested(run)]

    def _metadata_answer(self, items: Any) -> list[Event]:
        if isinstance(items, MetadataError):
            self._refuse(CC.GetMetadata, "bad metadata query", details=str(items))
            return []
        batch: list[wire.MetadataResponseItem] = []
        size = 0
        for item in items:
            item_size = len(item.build())
            if batch and size + item_size > self.max_payload - 16:
                self._send(wire.GetMetadataResponse(items=batch))
                batch, size = [], 0
            batch.append(item)
            size += item_size
        self._send(wire.GetMetadataResponse(items=batch))
        return []

    def _subscribe(self, code: int, payload: bytes, now: float) -> list[Event]:
        request = wire.Subscribe.parse(payload)
        recipe = list(self._recipe)
        options = Options()
        named: dict[str, str] = {}
        for item in request.items:
            if item.sub_command == SSC.ConfigureOptions:
                # the codec switches the body's type on the sub-command
                pairs = {nv.name: nv.value for nv in cast(wire.SttpNamedSet, item.body).items}
                if item.mode == SM.Replace:
                    named = dict(pairs)
                elif item.mode == SM.Append:
                    named.update(pairs)
                else:
                    for name in pairs:
                        named.pop(name, None)
                try:
                    options = Options.from_named(named)
                except CharacteristicsError as exc:
                    self._refuse(CC.Subscribe, "bad subscription options", details=str(exc))
                    return []
                granted = self.catalog.policy.review(options)
                if granted != options:
                    proposed = wire.SttpNamedSet(
                        items=[
                            wire.NamedValue(name=k, value=v) for k, v in granted.to_named().items()
                        ]
                    )
                    self._refuse(
                        CC.Subscribe,
                        "requested characteristics refused; proposed values attached",
                        proposed.build(),
                    )
                    return []
                continue
            if item.mode == SM.Replace:
                recipe = []
            recipe.append((item.mode, item.sub_command, item.body, options))
        if len(recipe) > _MAX_RECIPE:
            self._refuse(CC.Subscribe, "subscription too fragmented; use Replace")
            return []
        return self._deferred(
            lambda: self._evaluate(recipe), lambda wanted: self._subscribed(recipe, wanted)
        )

    def _subscribed(self, recipe: list[tuple[int, int, Any, Options]], wanted: Any) -> list[Event]:
        if isinstance(wanted, MetadataError):
            self._refuse(CC.Subscribe, "bad subscription query", details=str(wanted))
            return []
        problem = self._problem(wanted)
        if problem:
            return self._terminate(CC.Subscribe, problem)
        self._recipe = recipe
        self.ever_subscribed = True
        events = self._apply(wanted)
        self._succeed(CC.Subscribe, f"{len(self._points)} data points subscribed")
        return events

    #: What each command a subscriber may send does on a publisher (the codes the generated
    #: MESSAGES table says a publisher sends are refused by ``_frame``; RequestSucceeded,
    #: RequestFailed and NoOp are ``SHARED``). Nothing but the negotiation answers comes
    #: before the negotiation completed (the session closes).
    COMMANDS: ClassVar[dict[int, FrameHandler]] = {
        CC.BeginFragment: _fragment,
        CC.NextFragment: _fragment,
        CC.GetMetadataSchema: _metadata_schema,
        CC.GetMetadata: _get_metadata,
        CC.Subscribe: _subscribe,
        CC.SecureDataChannel: _secure_data_channel,
    }

    def _evaluate(
        self, recipe: list[tuple[int, int, Any, Options]], limits: Limits | None = None
    ) -> dict[uuid.UUID, Options]:
        catalog = self.catalog
        wanted: dict[uuid.UUID, Options] = {}
        budget = Budget(limits or Limits())  # one filter budget for every query of the recipe
        offered = catalog.points()
        offered_set = set(offered)
        for mode, kind, body, options in recipe:
            if kind == SSC.AllDataPoints:
                selected = offered
            elif kind == SSC.DataPointByID:
                selected = [p for p in body if p in offered_set]
            else:
                selected = self._query(body, budget)
            if mode == SM.Remove:
                for point in selected:
                    wanted.pop(point, None)
            else:
                for point in selected:
                    wanted[point] = options
        assign = catalog.policy.assign
        return {
            p: assign(p, o)
            for p, o in wanted.items()
            if catalog.access.allowed(self.identity, p, catalog.row(p))
        }

    def _problem(self, wanted: dict[uuid.UUID, Options]) -> str:
        """Why the policy cannot serve ``wanted`` at all ("": it can); see
        :meth:`Policy.subscription_problem`."""
        data_channel = bool(self.negotiated and self.negotiated.udp_port)
        return self.catalog.policy.subscription_problem(wanted, data_channel)

    def _query(self, text: str, budget: Budget | None = None) -> list[uuid.UUID]:
        table = self.catalog.datapoint_table()
        if table is None:
            raise MetadataError("no DataPoint table to query")
        request = wire.GetMetadata(query=text)
        items = self.catalog.metadata.answer(request, budget=budget)
        result = decode_result(items)
        if result.table is None or result.table.name.upper() != "DATAPOINT":
            raise MetadataError("a subscription query must select from the DataPoint table")
        return [row[table.key] for row in result.rows]

    def _apply(self, wanted: dict[uuid.UUID, Options]) -> list[Event]:
        added: list[wire.DataPointKey] = []
        removed: list[wire.DataPointKey] = []
        for point in list(self._points):
            if point not in wanted:
                dropped = self._points.pop(point)
                del self._by_runtime[dropped.runtime_id]
                self._free_ids.append(dropped.runtime_id)
                removed.append(
                    wire.DataPointKey(
                        runtime_id=dropped.runtime_id,
                        point_id=point,
                        value_type=wire.ValueTypeCode(dropped.value_type),
                        flags=wire.StateFlags(0),
                    )
                )
        verified = self.catalog.policy.verified_points
        for point, options in wanted.items():
            entry = self._points.get(point)
            value_type = self.catalog.value_type(point)
            if entry is not None and entry.options == options and entry.value_type == value_type:
                continue
            if entry is None:
                if self._free_ids:
                    runtime_id = self._free_ids.pop()
                else:
                    runtime_id = self._next_id
                    self._next_id += 1
                entry = _Subscribed(
                    runtime_id,
                    value_type,
                    options,
                    point in verified,
                    self._filter(point, options),
                )
                self._points[point] = entry
                self._by_runtime[runtime_id] = point
            else:
                entry.options = options
                entry.value_type = value_type
                entry.filter = self._filter(point, options)
            added.append(
                wire.DataPointKey(
                    runtime_id=entry.runtime_id,
                    point_id=point,
                    value_type=wire.ValueTypeCode(entry.value_type),
                    flags=wire.StateFlags(options.state_flags(entry.verify)),
                )
            )
        keys = removed + added
        for start in range(0, len(keys), _MAPPING_CHUNK):
            self._send(wire.RuntimeIDMapping(points=keys[start : start + _MAPPING_CHUNK]))
        if keys:
            return [SubscriptionChanged(list(self._points))]
        return []

    def _filter(self, point: uuid.UUID, options: Options) -> PointFilter:
        if options.resolution and not options.angle and self.catalog.is_angle(point):
            from dataclasses import replace

            return PointFilter(replace(options, angle=True))
        return PointFilter(options)

    def access_changed(self) -> list[Event]:
        """Re-evaluate the subscription after metadata or access rules changed.

        A cheap recipe is re-evaluated at once; one that needs more than a small budget goes
        the deferred way (``defer_filters``), so a peer's heavy query cannot hold the event loop
        on every metadata change.
        """
        if self.negotiated is None or self.closed:
            return []
        if self._parked is not None:
            self._recheck = True  # once the evaluation under way is done
            return []
        recipe = self._recipe
        if self.defer_filters and self._heavy_recipe is recipe:
            return self._deferred(lambda: self._evaluate(recipe), self._rechecked)
        try:
            wanted: Any = self._evaluate(recipe, _QUICK if self.defer_filters else None)
        except MetadataError as exc:
            if not (self.defer_filters and isinstance(exc.__cause__, BudgetExceeded)):
                return self._rechecked(exc)
            self._heavy_recipe = recipe
            return self._deferred(lambda: self._evaluate(recipe), self._rechecked)
        return self._rechecked(wanted)

    def filter_done(self, result: Any, now: float) -> list[Event]:
        events = super().filter_done(result, now)
        if self._recheck and self._parked is None and not self.closed:
            self._recheck = False
            events += self.access_changed()
        return events

    def _rechecked(self, wanted: Any) -> list[Event]:
        if isinstance(wanted, MetadataError):
            wanted = {}
        problem = self._problem(wanted)
        if problem:  # e.g. newly allowed points the policy cannot serve to this subscriber
            return self._terminate(CC.Subscribe, problem)
        return self._apply(wanted)

    # data
    def publish(self, measurements: Iterable[Measurement], now: float = 0.0) -> int:
        """Queue the subscribed measurements; returns how many data points were queued."""
        if self.negotiated is None or self.closed or not self._points:
            return 0
        points = self._points
        tcp: list[WirePoint] = []
        udp: list[WirePoint] = []
        verified: list[WirePoint] = []
        prioritised = False
        udp_encoder = self._udp
        for m in measurements:
            entry = points.get(m.signal_id)
            if entry is None:
                continue
            if entry.filter.passthrough:
                out = [(m.timestamp, m.value, m.flags)]
            else:
                out = entry.filter.offer(m.timestamp, m.value, m.flags)
            options = entry.options
            if options.priority:
                prioritised = True
            if not out:
                self.suppressed += 1
            self.published_by_priority[options.priority] += len(out)
            for stamp, value, quality in out:
                try:
                    value = _coerce(entry.value_type, value)
                except (TypeError, ValueError, OverflowError):
                    self.stats["rejected"] = self.stats.get("rejected", 0) + 1
                    continue
                point = WirePoint(entry.runtime_id, entry.value_type, stamp, value, quality)
                if entry.verify:
                    verified.append(point)
                    self._verify_pending[(entry.runtime_id, stamp)] = (
                        now + self.verification_timeout
                    )
                # A point too big for one datagram travels reliably: datagrams carry one frame.
                elif (
                    options.lossy and udp_encoder is not None and udp_encoder.fits_one_frame(point)
                ):
                    udp.append(point)
                else:
                    tcp.append(point)
        assert self._tcp is not None
        if prioritised:
            self._send_prioritised(tcp, verified)
            udp.sort(key=lambda p: -self._priority(p))
        else:
            self._send_reliable(tcp, verified)
        if udp and self._udp is not None:
            self._datagrams.extend(self._udp.encode(udp))
        self.published["tcp"] += len(tcp) + len(verified)
        self.published["udp"] += len(udp)
        return len(tcp) + len(udp) + len(verified)

    def _priority(self, point: WirePoint) -> int:
        return self._points[self._by_runtime[point.runtime_id]].options.priority

    def _send_prioritised(self, tcp: list[WirePoint], verified: list[WirePoint]) -> None:
        """Send highest priority first. One encoding emits TSSC-coded points, then
        basic-encoded ones, then verified ones (own encoder), so levels share one encoding
        only while that keeps the order; otherwise a new one starts."""
        assert self._tcp is not None
        levels: dict[int, list[tuple[int, WirePoint]]] = {}
        for point in tcp:
            category = 0 if self._tcp.tssc_coded(point) else 1
            levels.setdefault(self._priority(point), []).append((category, point))
        for point in verified:
            levels.setdefault(self._priority(point), []).append((2, point))
        group_tcp: list[WirePoint] = []
        group_verified: list[WirePoint] = []
        highest = 0  # latest category in the current group
        for level in sorted(levels, reverse=True):
            items = levels[level]
            if min(c for c, _ in items) < highest:
                self._send_reliable(group_tcp, group_verified)
                group_tcp, group_verified, highest = [], [], 0
            for category, point in items:
                (group_verified if category == 2 else group_tcp).append(point)
                highest = max(highest, category)
        self._send_reliable(group_tcp, group_verified)

    def _send_reliable(self, tcp: list[WirePoint], verified: list[WirePoint]) -> None:
        assert self._tcp is not None
        if tcp:
            self._send_frames(self._tcp.encode(tcp))
        if verified:
            basic = DataEncoder("NONE", stateful=True, max_payload=self.max_payload)
            self._send_frames(basic.encode(verified))

    def _receipts(self, data: bytes) -> list[Event]:
        if len(data) % _RECEIPT.size:
            raise _Terminate(CC.RequestSucceeded, "malformed verification receipt")
        events: list[Event] = []
        for offset in range(0, len(data), _RECEIPT.size):
            runtime_id, stamp = _RECEIPT.unpack_from(data, offset)
            if self._verify_pending.pop((runtime_id, stamp), None) is not None:
                point = self._by_runtime.get(runtime_id)
                if point is not None:
                    events.append(Verified(point, stamp))
        return events

    def next_deadline(self) -> float | None:
        """Earliest timer including verification receipts."""
        base = super().next_deadline()
        if self._verify_pending:
            first = min(self._verify_pending.values())
            return first if base is None else min(base, first)
        return base

    def tick(self, now: float) -> list[Event]:
        """Time-outs, keep-alive and overdue verification receipts."""
        events = super().tick(now)
        expired = [k for k, t in self._verify_pending.items() if now >= t]
        for key in expired:
            del self._verify_pending[key]
            point = self._by_runtime.get(key[0])
            if point is not None:
                events.append(VerificationTimedOut(point, key[1]))
        return events

    def send_bulk(self, data: bytes, fundamental_type: int = ValueType.STTP_BUFFER) -> uuid.UUID:
        """Send a large buffer (e.g. a file) with BulkTransport; returns its transfer id."""
        if self.negotiated is None:
            raise RuntimeError("session negotiation has not completed")
        transfer = uuid.uuid4()
        BTS = wire.BulkTransportSubCommand
        self._send(
            wire.BulkTransport(
                item=wire.BulkTransportItem(
                    sub_command=BTS.BeginSend,
                    body=wire.BulkBeginSend(
                        id=transfer,
                        fundamental_type=wire.ValueTypeCode(fundamental_type),
                        length=len(data),
                    ),
                )
            )
        )
        step = self.max_payload - 64
        for offset in range(0, len(data), step):
            self._send(
                wire.BulkTransport(
                    item=wire.BulkTransportItem(
                        sub_command=BTS.SendFragment,
                        body=wire.BulkSendFragment(
                            id=transfer, offset=offset, data=data[offset : offset + step]
                        ),
                    )
                )
            )
        return transfer
