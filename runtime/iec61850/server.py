"""An IED server of IEC 61850-8-2: an SCL-built model served with the ACSI services.

:class:`IedServer` is the thin asyncio shell around the sans-IO
:class:`~gridbind.iec61850.server_protocol.ServerProtocol` (Annex D checks, association state,
paging, size limits, the obtainFile pull): it feeds the protocol every stanza its transport
received, decoded to the generated typed classes by the strict codec gate, with the time, and
carries out what comes back (replies, stanza errors, messages, and the requests of an obtainFile
pull, whose answers go back to the protocol). The transport is the slixmpp adapter
(:class:`~gridbind.iec61850.xmpp.IecXmpp`, from ``settings``) or any other with its shape, e.g.
an endpoint of the in-memory :class:`~gridbind.iec61850.memory.MemoryNetwork`.

Usage::

    model = load_scl("feeder.scd")
    server = IedServer(model, XmppSettings(jid=model.jid, password=..., ca_file=..., host=...,
                       port=...), files_root="/srv/ied-files")
    await server.start()
    model.update("FDR1MEAS/MMXU1.TotW.mag.f", 1234.5)
    server.send_information_report(association, mms.information_report(...))

Controls (:mod:`.control`): ``IedServer(..., control_handlers=ControlHandlers(on_operate=...),
operate_timeout=10.0)``; the select timeouts, time-activated operates and the bound on the
application run on one timer at the protocol core's ``next_deadline()``.

Outgoing bound (:mod:`.outbox`): while the transport's backlog (over XMPP: the IED's one
stream, for every peer) is above ``outbox.high_water`` or the transport is not connected, what
the server sends in an association waits in that association's bounded queue
(``outbox=OutboxLimits(max_pdus=..., max_bytes=..., policy=...)``), drained in turn as the
transport gets room; an association past its bound loses its oldest unbuffered reports or is
aborted, the others keeping their own queues.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from gridbind.generated.iec61850_8_2 import e2e_4 as e2e
from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850.errors import InvalidArgument

from . import codec as _codec
from .association import (
    CONFIRMED_SERVICES,
    Association,
    AssociationCore,
    AssociationEnded,
    AssociationStarted,
    InitiateParams,
)
from .control.service import Abandon, ControlHandlers, ControlService, Execute
from .e2e.layer import E2EEnvelopes
from .envelope import ClearContext, EnvelopeFactory
from .envelope import association_id as _association_id
from .files import FileStore
from .logs.lcb import LogEngine
from .logs.store import DEFAULT_MAX_ENTRIES, LogStore
from .model import ServerModel, Timestamp
from .outbox import Outbox, OutboxLimits
from .protocol import Call, ErrorReply, Outgoing, Reply, Send, Transport
from .reporting import ReportEngine
from .reporting.rcb import DEFAULT_BUFFER_ENTRIES, SentReport
from .server_protocol import ServerProtocol
from .services.acsi import ServerServices
from .sntp import ClockSource, SntpPoller
from .stanza import payload_bytes
from .xmpp import IecXmpp, XmppSettings

__all__ = ["IedServer", "SERVER_SERVICES"]

log = logging.getLogger(__name__)

#: What waits in the outbox: the outgoing item, and its payload encoded (None: encoded when sent).
_Held = tuple[Reply | ErrorReply | Send, bytes | None]

#: How often (s) the server looks for room in the transport while items wait in the outbox.
DRAIN_INTERVAL = 0.02

#: Services this server implements (the file services only with a file store, readJournal
#: only when the IED has logs).
SERVER_SERVICES = frozenset(CONFIRMED_SERVICES) - {"status", "identify"}
_FILE_SERVICES = frozenset(
    {"fileOpen", "fileRead", "fileClose", "fileDelete", "fileDirectory", "obtainFile"}
)


class IedServer:
    """Serve ``model`` as the XMPP entity of ``settings`` (resource ``IEC``), or on
    ``transport``."""

    def __init__(
        self,
        model: ServerModel,
        settings: XmppSettings | None = None,
        *,
        transport: Transport | None = None,
        files_root: str | Path | None = None,
        max_pdu_size: int = 65000,
        max_outstanding: int = 16,
        nesting_level: int = 10,
        max_associations: int = 64,
        max_associations_per_peer: int = 8,
        services: frozenset[str] = SERVER_SERVICES,
        envelopes: EnvelopeFactory = ClearContext,
        allow_file_overwrite: bool = False,
        control_handlers: ControlHandlers | None = None,
        operate_timeout: float = 10.0,
        max_activation_delay: float = 24 * 3600.0,
        report_buffer_entries: int = DEFAULT_BUFFER_ENTRIES,
        log_store: str | Path | LogStore = ":memory:",
        log_entries: int = DEFAULT_MAX_ENTRIES,
        e2e: Any = None,
        clock: ClockSource | None = None,
        sntp: list[tuple[str, int]] | None = None,
        sntp_interval_s: float = 64.0,
        outbox: OutboxLimits | None = None,
    ) -> None:
        if e2e is not None:  # an E2EConfig / E2EPolicy: IEC 62351-4 per peer
            envelopes = E2EEnvelopes(e2e)
        #: The IED's time source (``sntp``: polled SNTP servers (host, port) feed it); every
        #: time stamp the server stamps carries its time and TimeQuality.
        self.clock = clock or (ClockSource() if sntp else None)
        self.sntp = (
            SntpPoller(self.clock, list(sntp), interval_s=sntp_interval_s)
            if sntp and self.clock is not None
            else None
        )
        if self.clock is not None:
            model.clock = self.clock.timestamp
        self.model = model
        #: The control services; ``controls.handlers`` is the application's say (checks, operate).
        self.controls = ControlService(
            model,
            control_handlers,
            operate_timeout=operate_timeout,
            max_activation_delay=max_activation_delay,
        )
        self._executions: dict[int, asyncio.Task] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.files = (
            FileStore(files_root, allow_overwrite=allow_file_overwrite)
            if files_root is not None
            else None
        )
        if self.files is None or not model.limits.file_handling:  # (SCL Services FileHandling)
            services = services - _FILE_SERVICES
        # Logs: a persistent store (a sqlite file) survives a restart of the server.
        if isinstance(log_store, LogStore):
            store, self._own_store = log_store, False
        else:
            store, self._own_store = LogStore(log_store, log_entries), True
        # reports and logs: deadlines on the monotonic clock, entry times on the IED's clock
        self.logs = LogEngine(
            model, store, time.monotonic(), prune=self._own_store, wall_clock=self.timestamp
        )
        if not self.logs.logs:
            services = services - {"readJournal"}
        # The gate bounds what peers send; answers to our own obtainFile reads carry file
        # chunks of at most one PDU.
        self._codec = _codec.Codec(_codec.Limits(max_bytes=max(max_pdu_size * 2, 1 << 16)))
        self.protocol = ServerProtocol(
            ServerServices(model, self.files),
            InitiateParams(
                max_pdu_size=max_pdu_size,
                max_outstanding_calling=max_outstanding,
                max_outstanding_called=max_outstanding,
                nesting_level=nesting_level,
                services=frozenset(services),
            ),
            self._measure,
            # SCL Services DynAssociation max lowers the server's own bound
            max_associations=min(max_associations, model.limits.max_associations or (1 << 31)),
            max_associations_per_peer=max_associations_per_peer,
            envelopes=envelopes,
            controls=self.controls,
        )
        if transport is None:
            if settings is None:
                raise InvalidArgument("IedServer needs XMPP settings or a transport")
            transport = IecXmpp(settings)
        self.transport: Any = transport
        transport.set_handlers(
            self._on_inbound,
            on_peer_unavailable=self._peer_unavailable,
            on_link_lost=self._link_lost,
            gate=self._codec,
        )
        self._tasks: set[asyncio.Task] = set()
        #: What waits for a transport without room, per association (see the module docstring).
        self.outbox = Outbox(outbox)
        self.core.lingering = self._lingering
        self._draining: asyncio.TimerHandle | None = None
        # The report whose segments are being delivered, and what became of it so far.
        self._segments: tuple[SentReport, str] | None = None
        #: Reports: the sans-IO engine, fed with model changes; one timer for its deadlines.
        self.reports = ReportEngine(
            model, self._measure, buffer_entries=report_buffer_entries, wall_clock=self.timestamp
        )
        self.protocol.services.reports = self.reports
        self.protocol.services.logs = self.logs
        model.add_change_listener(self._on_change)
        self._pump_scheduled = False
        self._closing = False
        #: Called with every AssociationStarted/AssociationEnded event (tests, applications).
        self.on_event: Callable[[Any], None] | None = None

    # ---------------------------------------------------------------- properties
    @property
    def xmpp(self) -> Any:
        """The transport (named for the XMPP adapter it usually is)."""
        return self.transport

    @property
    def core(self) -> AssociationCore:
        return self.protocol.core

    @property
    def services(self) -> ServerServices:
        return self.protocol.services

    @property
    def jid(self) -> str:
        return self.transport.full_jid

    @property
    def associations(self) -> list[Association]:
        """The open associations (for :meth:`send_information_report`)."""
        return list(self.core.associations.values())

    def timestamp(self) -> Timestamp:
        """Now on the IED's clock, with its TimeQuality: the one source of every time the
        server stamps (``model.clock``: the ClockSource's when the server has one).

        Data ``t`` (application updates, reflected controls, control tracking), report
        TimeOfEntry, log entry times, and the wall time given to the protocol core (envelopes,
        the operTm of time-activated operates) all come from it. (TimeOfEntry and log entry
        times travel as 8-1 binary-time, which has no TimeQuality octet; the quality reaches
        the client in the ``t`` of the values reported or logged.)"""
        return self.model.clock()

    def wall_time(self) -> float:
        """POSIX seconds of :meth:`timestamp`."""
        return self.model.clock().to_float()

    def _measure(self, pdu: m.Mmspdu) -> int:
        return len(self._codec.encode(pdu))

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if self.sntp is not None:
            self.sntp.start()
        await self.transport.start()
        self._pump()  # arm the timer of LCBs the SCL enables

    async def close(self) -> None:
        self._closing = True
        self.protocol.link_lost("server closing")
        self._flush_events()
        if self._timer is not None:
            self._timer.cancel()
        if self._draining is not None:
            self._draining.cancel()
        for task in list(self._tasks) + list(self._executions.values()):
            task.cancel()
        if self.sntp is not None:
            await self.sntp.stop()
        await self.transport.close()
        self.logs.flush()  # the entries of the last changes
        if self._own_store:
            self.logs.store.close()

    async def __aenter__(self) -> IedServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- server-initiated
    def send_information_report(self, association: Association, report: m.Mmspdu) -> None:
        """Send an unconfirmed PDU (informationReport) to the client of ``association``."""
        self._emit(self.protocol.information_report(association, report, self.wall_time()))

    # ---------------------------------------------------------------- reports
    def _on_change(self, attr: Any, old: Any, new: Any) -> None:
        now = time.monotonic()
        self.reports.notify(attr, old, new, now)
        self.logs.notify(attr, old, new, now)
        if not self._pump_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a model updated before serving): next pump
                return
            self._pump_scheduled = True
            # after the application's update returns (its q and t are stored by then)
            loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._pump_scheduled = False
        if self._closing:
            return
        now = time.monotonic()
        self.reports.poll(now)
        self.logs.poll(now)
        wall = self.wall_time()
        for assoc, pdu, sent in self.reports.take_tagged():
            if assoc.open:
                self._emit(self.protocol.information_report(assoc, pdu, wall), sent)
        self._arm()

    # ---------------------------------------------------------------- plumbing
    def _on_inbound(self, item: Any) -> None:
        try:
            self._emit(self.protocol.receive(item, self.wall_time(), time.monotonic()))
        finally:
            self._flush_events()
            self._pump()

    def _emit(self, out: list[Outgoing], report: SentReport | None = None) -> None:
        # What the protocol sealed leaves in its order before any synchronous operate runs: an
        # operate's own output (CommandTermination...) is sealed later, and E2E receivers
        # refuse a message sealed before one they already have (out of sequence).
        executes = []
        for o in out:
            if isinstance(o, Execute):
                executes.append(o)
            elif isinstance(o, (Reply, ErrorReply, Send)):
                self._deliver(o, report if isinstance(o, Send) else None)
            elif isinstance(o, Call):
                task = asyncio.get_running_loop().create_task(self._call(o))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif isinstance(o, Abandon):
                running = self._executions.pop(o.token, None)
                if running is not None:
                    running.cancel()
        for o in executes:
            self._execute(o)
        self._arm()

    # ---------------------------------------------------------------- outgoing bound
    def _transmit(self, o: Reply | ErrorReply | Send) -> None:
        if isinstance(o, Reply):
            self.transport.reply(o.request, o.payload)
        elif isinstance(o, ErrorReply):
            self.transport.reply_error(o.request, o.condition, o.text, o.etype)
        else:
            self.transport.send_message(o.to, o.payload)

    def _room(self, peer: str) -> bool:
        # No stream (down, resuming within the XEP-0198 window, no session yet): nothing is
        # handed over, or it would pile up unbounded in the XMPP library's own queue and be
        # replayed into the next session; it waits in the bounded per-association queues.
        if not getattr(self.transport, "connected", True):
            return False
        backlog = getattr(self.transport, "backlog", None)
        return backlog is None or backlog(peer) < self.outbox.limits.high_water

    def _deliver(self, o: Reply | ErrorReply | Send, report: SentReport | None) -> None:
        """To the transport now, or into the association's bounded queue (in order)."""
        # A report travels whole or not at all: once one of its segments has left, the others
        # are not droppable; once it was dropped, its later segments are dropped too.
        if report is None:
            fate = None
        elif self._segments is not None and self._segments[0] is report:
            fate = self._segments[1]
            if fate == "dropped":
                return
        else:
            fate = "new"
            self._segments = (report, fate)
        if not self.outbox and self._room(o.to if isinstance(o, Send) else o.request.sender):
            self._sent(o, report)  # (the usual case: nothing waits, the transport has room)
            return
        if isinstance(o, Send):
            peer, assoc_id = o.to, _association_id(o.payload)
        else:
            peer = o.request.sender
            assoc_id = o.request.association
            if isinstance(o, Reply):
                assoc_id = _association_id(o.payload) or assoc_id
        if assoc_id is None:  # outside any association: one answer per request, not held
            self._transmit(o)
            return
        key = (peer, assoc_id)
        if not self.outbox.holds(key):
            if self._room(peer):
                self._sent(o, report)
                return
            if self.core.get(peer, assoc_id) is None:
                # Gone (aborted for its queue earlier in this batch, ...): no queue is made for
                # it again. The last answer of an ended one (conclude) still leaves.
                if isinstance(o, Send):
                    if report is not None:
                        self.reports.undelivered(report)
                        self._segments = (report, "dropped")
                else:
                    self._transmit(o)
                return
        # Under E2E every sealed PDU carries its place in the association's sequence
        # (ClearToken2): dropping one leaves a gap the client's E2E layer refuses (it aborts
        # the association). Only reports in the clear context may be lost one by one; for an
        # E2E association the bound ends in the clean 8-2 abort instead.
        droppable = (
            report is not None
            and not report.buffered
            and isinstance(o, Send)
            and isinstance(o.payload, e2e.AssociationContext)
            and fate != "sent"
        )
        held, size = self._prepare(o)
        verdict = self.outbox.put(key, held, size, report, droppable)
        if verdict.dropped:
            reports = {id(q.report): q.report for q in verdict.dropped}
            for dropped in reports.values():
                self.reports.undelivered(dropped)
                if self._segments is not None and self._segments[0] is dropped:
                    self._segments = (dropped, "dropped")
            log.warning(
                "association %s with %s does not keep up: %d unbuffered report(s) dropped",
                assoc_id, peer, len(reports),
            )  # fmt: skip
        if verdict.abort:
            if report is not None:  # (this one was not queued either)
                self.reports.undelivered(report)
                self._segments = (report, "dropped")
            self._abort_held(
                key, "its outgoing queue passed its bound (the IED's XMPP stream is backed up)"
            )
        self._arm_drain()

    def _sent(self, o: Reply | ErrorReply | Send, report: SentReport | None) -> None:
        if report is not None:
            self._segments = (report, "sent")
        self._transmit(o)

    def _prepare(self, o: Reply | ErrorReply | Send) -> tuple[_Held, int]:
        """What waits for ``o``, and its octets. Its payload is encoded once, here: the bytes
        are measured and, when the transport takes encoded payloads (``send_encoded``,
        ``reply_encoded``), are what it sends."""
        if isinstance(o, ErrorReply):
            return (o, None), 256 + len(o.text)
        if o.payload is None:  # an empty iq result
            return (o, None), 64
        try:
            data = payload_bytes(o.payload, self._codec)  # (what the transport would send)
        except Exception:  # noqa: BLE001 - a payload the transport will refuse anyway
            return (o, None), 256
        if not hasattr(self.transport, "send_encoded"):
            return (o, None), len(data)
        return (o, data), len(data)

    def _transmit_held(self, held: _Held) -> None:
        o, data = held
        if data is None:
            self._transmit(o)
        elif isinstance(o, Reply):
            self.transport.reply_encoded(o.request, data)
        elif isinstance(o, Send):
            self.transport.send_encoded(o.to, data)

    def _abort_held(self, key: tuple[str, str], reason: str) -> None:
        """Abort the association of ``key``: what waited is dropped, BRCB entries undelivered."""
        for q in self.outbox.discard(key):
            if q.report is not None:
                self.reports.undelivered(q.report)
        assoc = self.core.get(*key)
        if assoc is not None:
            log.warning("aborting association %s with %s: %s", key[1], key[0], reason)
            self.core.abort(assoc, reason)
            self._flush_events()  # (from any path: its URCBs are free, its BRCBs buffer now)

    def _concluded_held(self, key: tuple[str, str]) -> None:
        """A concluded association's queue keeps its answers (the conclude's is the last); its
        reports go (BRCB entries undelivered), like its control reports."""
        dropped = self.outbox.prune(key, lambda q: isinstance(q.item[0], (Reply, ErrorReply)))
        for q in dropped:
            if q.report is not None:
                self.reports.undelivered(q.report)
        if dropped:
            log.info("association %s with %s concluded: %d held item(s) dropped",
                     key[1], key[0], len(dropped))  # fmt: skip

    def _lingering(self, account: str) -> int:
        """Queues of ended associations of ``account`` (they count against its bound)."""
        return sum(
            1
            for peer, assoc_id in cast(list[tuple[str, str]], self.outbox.keys())
            if peer.split("/", 1)[0] == account and self.core.get(peer, assoc_id) is None
        )

    def _drain(self) -> None:
        """Hand waiting items to the transport while it has room, the queues in turn."""
        moved = True
        while moved and self.outbox:
            moved = False
            for key in self.outbox.keys():
                peer, _ = cast(tuple[str, str], key)
                if self._room(peer):
                    q = self.outbox.pop(key)
                    if q is None:
                        continue
                    moved = True
                    try:
                        self._transmit_held(q.item)
                    except Exception:  # noqa: BLE001 - one item the transport refused
                        log.exception("sending a held item to %s failed", peer)

    def _arm_drain(self) -> None:
        if self._draining is None and self.outbox and not self._closing:
            self._draining = asyncio.get_running_loop().call_later(DRAIN_INTERVAL, self._drained)

    def _drained(self) -> None:
        self._draining = None
        try:
            self._drain()
        finally:
            self._arm_drain()

    # ---------------------------------------------------------------- controls
    def _execute(self, o: Execute) -> None:
        """Ask the application (``on_operate``, sync or async) and hand its verdict back."""
        handler = self.controls.handlers.on_operate
        try:
            verdict: Any = True if handler is None else handler(o.action)
        except Exception as exc:  # noqa: BLE001 - a failing handler is a failed operation
            log.exception("on_operate of %s failed", o.action.ref)
            verdict = exc
        if inspect.isawaitable(verdict):
            task = asyncio.get_running_loop().create_task(self._verdict(o.token, verdict))
            token = o.token
            self._executions[token] = task
            task.add_done_callback(lambda _t: self._executions.pop(token, None))
            return
        self._emit(
            self.protocol.control_executed(o.token, verdict, self.wall_time(), time.monotonic())
        )

    async def _verdict(self, token: int, pending: Any) -> None:
        try:
            verdict = await pending
        except Exception as exc:  # noqa: BLE001 - a failing handler is a failed operation
            log.warning("on_operate failed: %r", exc)
            verdict = exc
        self._emit(
            self.protocol.control_executed(token, verdict, self.wall_time(), time.monotonic())
        )

    def _arm(self) -> None:
        """(Re)arm the one timer at the next deadline of the protocol (controls), the reports
        (BufTm, IntgPd, ResvTms) and the logs (IntgPd)."""
        if self._closing:
            return
        # every deadline is on the monotonic clock: a step of the wall clock moves none
        deadlines = (
            self.protocol.next_deadline(),
            self.reports.next_deadline(),
            self.logs.next_deadline(),
        )
        due = min((t for t in deadlines if t is not None), default=None)
        delay = None if due is None else due - time.monotonic()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if delay is not None:
            delay = max(0.0, delay)
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self._emit(self.protocol.timer(self.wall_time(), time.monotonic()))
        finally:
            self._flush_events()
            self._pump()  # reports and logs due now (and the timer re-armed)

    async def _call(self, call: Call) -> None:
        try:
            answer: Any = await self.transport.request(call.to, call.iq_type, call.payload)
        except Exception as exc:  # noqa: BLE001 - the protocol judges every failure
            answer = exc
        try:
            self._emit(self.protocol.answer(call.token, answer, self.wall_time()))
        finally:
            self._flush_events()

    def _flush_events(self) -> None:
        for event in self.protocol.take_events():
            if isinstance(event, AssociationStarted):
                self.transport.track_peer(event.association.peer)
            elif isinstance(event, AssociationEnded):
                if event.how == "concluded":  # its answers still leave, nothing else
                    self._concluded_held(event.association.key)
                else:
                    self._abort_held(event.association.key, event.reason)
                self.reports.association_ended(event.association, time.monotonic())
                if not self.core.of_peer(event.association.peer):
                    self.transport.untrack_peer(event.association.peer)
                log.info(
                    "association %s with %s %s %s",
                    event.association.id,
                    event.association.peer,
                    event.how,
                    event.reason,
                )
            if self.on_event is not None:
                self.on_event(event)

    def _peer_unavailable(self, jid: str) -> None:
        self.protocol.peer_unavailable(jid)
        self._flush_events()

    def _link_lost(self) -> None:
        # Every association aborts, with the reason (e.g. a stream error "conflict") in the log.
        reason = self.transport.lost_reason or "XMPP link lost"
        self.protocol.link_lost(reason)
        self._flush_events()
        for key in self.outbox.keys():  # (of associations already ended): nothing may leave
            self._abort_held(cast(tuple[str, str], key), reason)
