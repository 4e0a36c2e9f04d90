"""Sans-IO client (calling side) protocol of IEC 61850-8-2, on the generated typed classes.

:class:`ClientProtocol` makes the requests and judges the answers; the asyncio shell
(:mod:`.client`) only moves them::

    call = proto.initiate(server_jid, now)                 # Call (iq set, initiate-RequestPDU)
    assoc = proto.initiated(call, answer, now)             # answer: Received, or an exception
    call = proto.call(assoc, mms.read(...), now)           # Call (invokeID = call.token)
    response = proto.result(assoc, call, answer, now)      # ReadResponse ... or raises
    out = proto.receive(received, now)                     # a server's iq / message
    events = proto.take_events()                           # ReportReceived, AssociationEnded...
    pings = proto.tick(mono)                               # XEP-0199 pings of idle peers
    proto.ping_answered(ping, error_or_none, mono); proto.heard(peer, mono)
    proto.next_deadline()                                  # when tick() must run next

Answers are judged here: an iq error after a rejectPDU for the same invokeID becomes
:class:`RequestRejected`, a confirmed-ErrorPDU :class:`ServiceFailed`, an answer in another
association or of another service :class:`ClientError`. Server-initiated PDUs: an
informationReport in a ``message`` becomes a :class:`ReportReceived` event (reports,
CommandTermination); the fileOpen/fileRead/fileClose requests a server sends to read a file
offered for SetFile (obtainFile) are answered from the offers of that association only.

Peer liveness (:mod:`.liveness`): the peers with open associations are pinged (XEP-0199) when
idle; a peer found unreachable has its associations aborted as its ``unavailable`` presence
would. Its calls take ``mono``, a monotonic clock (the others take ``now``, wall time, which the
E2E layer needs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from gridbind.errors import RemoteError
from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850.errors import Iec61850Error

from . import mms
from .association import (
    Association,
    AssociationCore,
    AssociationEnded,
    AssociationError,
    Event,
    InitiateParams,
    RejectReason,
)
from .envelope import ClearContext, EnvelopeFactory, EnvelopeLayer
from .envelope import association_id as _association_id
from .liveness import PeerLiveness, Ping
from .protocol import Call, ErrorReply, Outgoing, Reply, Send
from .stanza import Received, StanzaError, stanza_for_pdu

__all__ = [
    "ClientProtocol",
    "ClientError",
    "ServiceFailed",
    "DataAccessFailed",
    "RequestRejected",
    "AssociationAborted",
    "ReportReceived",
    "MAX_OPEN_OFFERS",
]

#: FileAttributes, by its element (a new schema publication may rename the XSD type).
_FILE_ATTRIBUTES = mms.field_class(m.FileOpenResponse, "file_attributes")

log = logging.getLogger(__name__)

#: Files a server may hold open at once from the offers of one association.
MAX_OPEN_OFFERS = 16
#: Answers opened on arrival and not (yet) taken by their requester.
MAX_EARLY_ANSWERS = 1024


class ClientError(Iec61850Error):
    """Base class of the client's service errors."""


class ServiceFailed(ClientError, RemoteError):
    """The server answered with a confirmed-ErrorPDU (``error_class``/``code`` as in the XSD)."""

    def __init__(self, service: str, error: tuple[str, str, str]) -> None:
        cls, code, text = error
        super().__init__(f"{service}: {cls}/{code}" + (f" ({text})" if text else ""))
        self.error_class, self.code, self.text = cls, code, text


class DataAccessFailed(ClientError, RemoteError):
    """One variable of a read or write failed; ``code`` is a DataAccessError name."""

    def __init__(self, reference: str, code: str) -> None:
        super().__init__(f"{reference}: {code}")
        self.reference, self.code = reference, code


class RequestRejected(ClientError, RemoteError):
    """The server rejected the request (rejectPDU); ``reason`` is ``group:reason``."""

    def __init__(self, reason: str, text: str = "") -> None:
        super().__init__(f"rejected: {reason}" + (f" ({text})" if text else ""))
        self.reason = reason


class AssociationAborted(ClientError, RemoteError):
    """The association ended (presence of the server lost, our link lost, concluded)."""


@dataclass(frozen=True)
class ReportReceived:
    """An informationReport the server sent in ``association`` (unconfirmed-PDU)."""

    association: Association
    report: m.InformationReport


@dataclass
class _State:
    """Per association: its envelope layer, invokeIDs, rejects and SetFile offers."""

    layer: EnvelopeLayer
    invoke: int = 0
    rejects: dict[int, str] = field(default_factory=dict)
    services: dict[int, str] = field(default_factory=dict)  # invokeID -> service in flight
    offered: dict[str, bytes] = field(default_factory=dict)
    open: dict[int, list] = field(default_factory=dict)  # frsmID -> [data, position]


class ClientProtocol:
    """The calling side of 8-2 for one client application (any number of associations)."""

    def __init__(
        self,
        local: InitiateParams | None = None,
        *,
        envelopes: EnvelopeFactory = ClearContext,
        liveness: PeerLiveness | None = None,
    ) -> None:
        self.core = AssociationCore(local)
        #: The ping schedule of the associated peers (default: 30 s idle, 10 s to answer).
        self.liveness = liveness if liveness is not None else PeerLiveness()
        self._envelopes = envelopes
        self._state: dict[tuple[str, str], _State] = {}
        self._pending: dict[int, tuple[str, str, EnvelopeLayer]] = {}
        self._releasing: dict[int, Any] = {}
        # Answers opened as they arrived, by (sender, stanza id), until their requester asks.
        self._early: dict[tuple[str, str], Any] = {}
        self._token = 0
        self._offer_ids = 0
        self.events: list[Any] = []

    def take_events(self) -> list[Event | ReportReceived]:
        events = self.core.take_events() + self.events
        self.events = []
        for event in events:
            if isinstance(event, AssociationEnded):
                self._state.pop(event.association.key, None)
        return events

    def peer_unavailable(self, jid: str) -> None:
        self.core.peer_unavailable(jid)

    def link_lost(self, reason: str = "XMPP link lost") -> None:
        for assoc in list(self.core.associations.values()):
            self.core.abort(assoc, reason)

    # ---------------------------------------------------------------- peer liveness
    def tick(self, mono: float, *, link_up: bool = True) -> list[Ping]:
        """Run the liveness timers at ``mono`` (monotonic seconds): abort the associations of
        peers whose ping went unanswered past its deadline; return the pings to send now.
        ``link_up`` False (our XMPP link is down or resuming): nothing is judged or sent."""
        live = self.liveness
        peers = {assoc.peer for assoc in self.core.associations.values()}
        for peer in live.peers:
            if peer not in peers:
                live.forget(peer)
        for peer in peers:
            live.watch(peer, mono)
        if not link_up:
            live.postpone(mono)
            return []
        for peer, reason in live.expired(mono):
            self._unreachable(peer, reason)
        return live.due(mono)

    def link_resumed(self, mono: float) -> None:
        """Our XMPP link came back after an outage: pings in flight are forgotten and each
        peer is pinged one idle period from ``mono`` (its deadline must not count our outage)."""
        self.liveness.postpone(mono)

    def ping_answered(self, ping: Ping, error: BaseException | None, mono: float) -> None:
        """The outcome of ``ping``: None for an iq result, else the transport's exception."""
        reason = self.liveness.answered(ping, error, mono)
        if reason is not None:
            self._unreachable(ping.peer, reason)

    def heard(self, peer: str, mono: float) -> None:
        """A stanza from ``peer`` arrived (an answer, a report...): it is alive."""
        self.liveness.heard(peer, mono)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must run next (monotonic seconds; None: no timer)."""
        return self.liveness.next_deadline()

    def _unreachable(self, peer: str, reason: str) -> None:
        for assoc in self.core.of_peer(peer):
            self.core.abort(assoc, reason)

    # ---------------------------------------------------------------- initiate / conclude
    def initiate(self, peer: str, now: float) -> Call:
        """The initiate request of a new association with ``peer``."""
        assoc_id = self.core.new_id()
        layer = self._envelopes(peer, assoc_id)
        self._token += 1
        self._pending[self._token] = (peer, assoc_id, layer)
        payload = layer.seal(mms.initiate_request(self.core.proposal()), now)
        return Call(peer, "set", payload, self._token)

    def initiated(self, call: Call, answer: Received | Exception, now: float) -> Association:
        """The association the answer to ``initiate`` makes (raises when refused)."""
        peer, assoc_id, layer = self._pending.pop(call.token)
        if isinstance(answer, Exception):
            raise answer
        try:
            body = self._open(layer, assoc_id, answer, now, initiate=True).choice
        except ClientError as exc:
            # The E2E handshake failed our checks: the peer learns why (HandshakeSecAbort).
            reply = getattr(exc.__cause__, "reply", None)
            if reply is not None:
                self.events.append(Send(peer, reply))
            raise
        # The E2E handshake extends the id to n:m: the association is keyed by the layer's id.
        assoc_id = getattr(layer, "asso_id", None) or assoc_id
        if isinstance(body, m.Mmspdu.InitiateErrorPdu):
            raise ServiceFailed("initiate", mms.error_parts(body))
        if not isinstance(body, m.InitiateResponsePdu):
            raise ClientError(f"unexpected answer {type(body).__name__} to initiate")
        try:
            assoc = self.core.established(peer, assoc_id, mms.initiate_params(body))
        except AssociationError as exc:
            raise ClientError(str(exc)) from None
        self._state[assoc.key] = _State(layer)
        return assoc

    def conclude(self, assoc: Association, now: float) -> Call:
        state = self._live(assoc)
        payload = state.layer.seal(m.Mmspdu(choice=m.Mmspdu.ConcludeRequestPdu()), now)
        return Call(assoc.peer, "set", payload, 0)

    def concluded(
        self, assoc: Association, answer: Received | Exception, now: float
    ) -> Call | None:
        """Judge the conclude's answer; returns the E2E release to send next (None: done)."""
        state = self._live(assoc)
        if isinstance(answer, Exception):
            raise answer
        body = self._open(state.layer, assoc.id, answer, now).choice
        if isinstance(body, m.Mmspdu.ConcludeErrorPdu):
            raise ServiceFailed("conclude", mms.error_parts(body))
        if not isinstance(body, m.Mmspdu.ConcludeResponsePdu):
            raise ClientError(f"unexpected answer {type(body).__name__} to conclude")
        self.core.concluded(assoc)
        release = getattr(state.layer, "release_request", None)
        payload = release(now) if release is not None else None
        if payload is None:
            return None
        self._token += 1
        self._releasing[self._token] = state.layer
        return Call(assoc.peer, "set", payload, self._token)

    def released(self, call: Call, answer: Received | Exception, now: float) -> None:
        """Check the peer's answer (ReleaseRsp) to the release ``call``."""
        layer = self._releasing.pop(call.token)
        if isinstance(answer, Exception):
            raise answer
        if answer.error is not None or answer.payload is None:
            raise ClientError(f"invalid answer to the release: {answer.error}")
        try:
            layer.confirm_release(answer.payload, now)
        except Exception as exc:  # noqa: BLE001 - a layer refuses by raising
            raise ClientError(f"release refused: {exc}") from exc

    # ---------------------------------------------------------------- confirmed services
    def _live(self, assoc: Association) -> _State:
        state = self._state.get(assoc.key)
        if state is None or not assoc.open:
            ended = assoc.end_reason
            raise AssociationAborted(
                f"association {assoc.id} with {assoc.peer} is closed"
                + (f": {ended}" if ended else "")
            )
        return state

    def check_open(self, assoc: Association) -> None:
        """Raise :class:`AssociationAborted` unless ``assoc`` is open."""
        self._live(assoc)

    def abandon(self, assoc: Association, call: Call) -> None:
        """The shell gave up waiting for ``call`` (cancelled): forget it."""
        assoc.outstanding.discard(call.token)
        state = self._state.get(assoc.key)
        if state is not None:
            state.rejects.pop(call.token, None)
            state.services.pop(call.token, None)

    @staticmethod
    def ended_reason(assoc: Association) -> str:
        return assoc.end_reason

    def call(self, assoc: Association, request: m.ConfirmedServiceRequest, now: float) -> Call:
        """A confirmed request in ``assoc``; ``call.token`` is its invokeID."""
        state = self._live(assoc)
        service = mms.service_of(request)
        if service not in assoc.peer_services:
            raise RequestRejected(RejectReason.UNRECOGNIZED_SERVICE.value, f"{service} not offered")
        iq_type = stanza_for_pdu("confirmed-RequestPDU", service)[1]
        for _ in range(len(assoc.outstanding) + 1):
            state.invoke = (state.invoke + 1) % (1 << 32)
            if state.invoke not in assoc.outstanding:
                break
        invoke_id = state.invoke
        payload = state.layer.seal(mms.confirmed_request(invoke_id, request), now)
        assoc.outstanding.add(invoke_id)
        state.services[invoke_id] = service
        return Call(assoc.peer, iq_type, payload, invoke_id)

    def result(
        self, assoc: Association, call: Call, answer: Received | Exception, now: float
    ) -> Any:
        """The typed response (``ReadResponse``...) to ``call``, or the error it deserves."""
        invoke_id = call.token
        state = self._state.get(assoc.key)
        assoc.outstanding.discard(invoke_id)
        reject = state.rejects.pop(invoke_id, None) if state is not None else None
        service = state.services.pop(invoke_id, "request") if state is not None else "request"
        if isinstance(answer, StanzaError):
            if reject is not None:
                raise RequestRejected(reject, answer.text) from None
            if not assoc.open:
                raise AssociationAborted(str(answer)) from None
            raise answer
        if isinstance(answer, Exception):
            raise answer
        if state is None:
            raise AssociationAborted(f"association {assoc.id} with {assoc.peer} has ended")
        try:
            body = self._open(state.layer, assoc.id, answer, now).choice
        except ClientError as exc:
            self._layer_failed(assoc, state, exc.__cause__)
            raise
        if isinstance(body, m.ConfirmedResponsePdu) and body.invoke_id == invoke_id:
            if mms.service_of(body.service) != service:
                raise ClientError(f"answer to {service} carries {mms.service_of(body.service)}")
            return body.service.choice
        if isinstance(body, m.ConfirmedErrorPdu) and body.invoke_id == invoke_id:
            raise ServiceFailed(service, mms.error_parts(body.service_error))
        raise ClientError(f"unexpected answer {type(body).__name__} to invokeID {invoke_id}")

    def answer_arrived(self, item: Received, now: float) -> None:
        """An answer as it arrives, before its requester resumes: an E2E association opens it
        now, in arrival order with the messages (its sequence check needs that order); the
        requester's :meth:`result` takes what came out."""
        if item.error is not None or item.payload is None:
            return
        state = self._state.get((item.sender, _association_id(item.payload) or ""))
        if state is None or getattr(state.layer, "session", None) is None:
            return
        try:
            opened: Any = state.layer.open(item.payload, now)
        except Exception as exc:  # noqa: BLE001 - a layer refuses by raising
            opened = exc
        if len(self._early) >= MAX_EARLY_ANSWERS:  # answers of abandoned requests
            self._early.pop(next(iter(self._early)))
        self._early[(item.sender, item.id)] = opened

    def _layer_failed(self, assoc: Association, state: _State, exc: BaseException | None) -> None:
        """After a refused envelope: when the layer ended the association (E2E), send its
        abort (DtSecAbort) and abort the association here."""
        if not getattr(state.layer, "ended", False):
            return
        reply = getattr(exc, "reply", None)
        if reply is not None:
            self.events.append(Send(assoc.peer, reply))
        self.core.abort(assoc, f"E2E: {exc}")

    def _open(
        self,
        layer: EnvelopeLayer,
        assoc_id: str,
        answer: Received,
        now: float,
        initiate: bool = False,
    ):
        if answer.error is not None:
            raise ClientError(f"invalid answer: {answer.error}")
        if answer.payload is None:
            raise ClientError("empty answer")
        named = _association_id(answer.payload)
        # The answer to an E2E initiate names n:m (HandshakeAcc) or n (HandshakeSecReject).
        if named != assoc_id and not (initiate and (named or "").split(":")[0] == assoc_id):
            raise ClientError(f"answer in association {named!r}, not {assoc_id!r}")
        try:
            pdu = self._early.pop((answer.sender, answer.id), None)
            if pdu is None:
                pdu = layer.open(answer.payload, now)
            elif isinstance(pdu, Exception):
                raise pdu
        except Exception as exc:  # noqa: BLE001 - a layer refuses by raising
            raise ClientError(f"invalid answer: {exc}") from exc
        if not isinstance(pdu, m.Mmspdu):
            raise ClientError("invalid answer: not an MMSpdu")
        return pdu

    # ---------------------------------------------------------------- SetFile offers
    def offer(self, assoc: Association, data: bytes) -> str:
        """Offer ``data`` to ``assoc``'s server under a fresh source name (for obtainFile)."""
        state = self._live(assoc)
        self._offer_ids += 1
        name = f"gridbind-setfile-{self._offer_ids}"
        state.offered[name] = bytes(data)
        return name

    def offers(self, assoc: Association) -> list[str]:
        """The source names ``assoc``'s server may read (offers not yet withdrawn)."""
        state = self._state.get(assoc.key)
        return list(state.offered) if state is not None else []

    def withdraw(self, assoc: Association, name: str) -> None:
        """Forget an offer (and the handles a server left open on it)."""
        state = self._state.get(assoc.key)
        if state is None:
            return
        offered = state.offered.pop(name, None)
        for frsm in [k for k, v in state.open.items() if v[0] is offered]:
            del state.open[frsm]

    # ---------------------------------------------------------------- inbound
    def receive(self, item: Received, now: float) -> list[Outgoing]:
        """A server's request (reading an offer) or message (rejectPDU, informationReport)."""
        if item.error is None:
            item.association = _association_id(item.payload)
        state = self._state.get((item.sender, item.association or ""))
        if item.kind == "message":
            self._message(item, state, now)
            return []
        if item.kind != "iq" or item.type not in ("get", "set"):
            return []
        if item.error is not None:
            out: list[Outgoing] = []
            if state is not None:
                reject = mms.reject(item.invoke_id, RejectReason.INVALID_PDU.value)
                out.append(Send(item.sender, state.layer.seal(reject, now)))
            out.append(ErrorReply(item, "bad-request", f"pdu-error:invalid-pdu: {item.error}"))
            return out
        assoc_id = _association_id(item.payload)
        if not assoc_id:
            return [ErrorReply(item, "not-authorized", "request outside an association", "cancel")]
        state = self._state.get((item.sender, assoc_id))
        if state is None:
            return [ErrorReply(item, "item-not-found", "no such association", "cancel")]
        try:
            pdu = state.layer.open(item.payload, now)
        except Exception as exc:  # noqa: BLE001 - a layer refuses by raising
            assoc = self.core.get(item.sender, assoc_id)
            if assoc is not None:
                self._layer_failed(assoc, state, exc)
            return [ErrorReply(item, "bad-request", str(exc))]
        body = pdu.choice
        if not isinstance(body, m.ConfirmedRequestPdu):
            return [ErrorReply(item, "bad-request", f"{mms.pdu_kind(pdu)} is not a request")]
        service = mms.service_of(body.service)
        if service not in ("fileOpen", "fileRead", "fileClose"):
            reject = mms.reject(body.invoke_id, RejectReason.UNRECOGNIZED_SERVICE.value)
            return [
                Send(item.sender, state.layer.seal(reject, now)),
                ErrorReply(item, "bad-request", f"{service} is not served by a client"),
            ]
        expected = stanza_for_pdu("confirmed-RequestPDU", service)[1]
        if item.type != expected:
            return [ErrorReply(item, "bad-request", f"Annex D: {service} travels in iq {expected}")]
        assoc = self.core.get(item.sender, assoc_id)
        max_pdu = assoc.params.max_pdu_size if assoc is not None else 1024
        try:
            response = self._serve_offer(state, body.service.choice, max_pdu)
            answer = mms.confirmed_response(
                body.invoke_id, m.ConfirmedServiceResponse(choice=response)
            )
        except LookupError as exc:
            answer = mms.confirmed_error(body.invoke_id, "file", str(exc.args[0]))
        return [Reply(item, state.layer.seal(answer, now))]

    @staticmethod
    def _serve_offer(state: _State, req: Any, max_pdu: int) -> Any:
        if isinstance(req, m.FileOpenRequest):
            data = state.offered.get("/".join(mms.segments(req.file_name)))
            if data is None:
                raise LookupError("file-non-existent")
            if not 0 <= req.initial_position <= len(data):
                raise LookupError("position-invalid")
            if len(state.open) >= MAX_OPEN_OFFERS:
                raise LookupError("file-busy")
            frsm = max(state.open, default=0) + 1
            state.open[frsm] = [data, req.initial_position]
            return m.FileOpenResponse(
                frsm_id=frsm, file_attributes=_FILE_ATTRIBUTES(size_of_file=len(data))
            )
        if isinstance(req, m.ConfirmedServiceRequest.FileRead):
            entry = state.open.get(req.value)
            if entry is None:
                raise LookupError("other")
            data, pos = entry
            chunk = max(64, (max_pdu - 400) // 2)  # octets are hex in XER: two characters each
            entry[1] = min(len(data), pos + chunk)
            return m.FileReadResponse(
                file_data=data[pos : pos + chunk], more_follows=pos + chunk < len(data)
            )
        if state.open.pop(req.value, None) is None:
            raise LookupError("other")
        return m.ConfirmedServiceResponse.FileClose()

    def _message(self, item: Received, state: _State | None, now: float) -> None:
        if item.error is not None:  # informationReport / rejectPDU refused by the strict gate
            log.info("message from %s refused: %s", item.sender, item.error)
            return
        if state is None:
            log.info("message from %s outside any association ignored", item.sender)
            return
        try:
            pdu = state.layer.open(item.payload, now)
        except Exception as exc:  # noqa: BLE001 - a layer refuses by raising
            log.info("message from %s refused: %s", item.sender, exc)
            assoc = self.core.get(item.sender, item.association or "")
            if assoc is not None:
                self._layer_failed(assoc, state, exc)
            return
        body = pdu.choice
        assoc = self.core.get(item.sender, item.association or "")
        if isinstance(body, m.RejectPdu) and assoc is not None:
            invoke = body.original_invoke_id
            if invoke is not None and invoke in assoc.outstanding:  # rejects of waiting requests
                state.rejects[invoke] = mms.reject_reason(body)
        elif isinstance(body, m.UnconfirmedPdu) and assoc is not None:
            report = body.service.information_report
            if report is not None:
                self.events.append(ReportReceived(assoc, report))
