"""Sans-IO server (called side) protocol of IEC 61850-8-2: received stanzas in, answers out.

:class:`ServerProtocol` decides everything between the transport and the ACSI services, on the
typed classes of :mod:`gridbind.generated.iec61850_8_2`, with the time as an argument::

    out = proto.receive(received, now, mono)  # -> [Reply | ErrorReply | Send | Call]
    out = proto.answer(token, answer, now)    # the answer (or failure) of one of our Calls
    out = proto.information_report(assoc, report, now)
    proto.peer_unavailable(jid); proto.link_lost(reason); proto.take_events()

Two clocks: ``now`` is the IED's wall clock (POSIX seconds: envelopes, operTm), ``mono`` a
monotonic clock on which every control deadline runs (:meth:`next_deadline`, :meth:`timer`), so
that a wall-clock step neither expires nor extends a selection; ``mono`` None takes ``now``.

It uses the association state of :class:`~.association.AssociationCore` and opens/seals every
PDU through the association's envelope layer (:mod:`.envelope`). Errors follow Annex D:

- iq of the wrong type for its PDU or service (Table D.1), a payload the strict gate refused, an
  envelope its layer refuses: ``bad-request`` stanza error (plus a rejectPDU in a message when an
  association is known);
- a request outside an association or with an unknown association id: ``not-authorized`` /
  ``item-not-found`` stanza error (an E2E data-transfer or release envelope naming an unknown
  association too: it is no handshake, so no HandshakeSecReject);
- oversized PDU, unsupported service or modifier, outstanding limit, duplicate invokeID, Data
  nested deeper than negotiated: rejectPDU in a ``message`` plus a ``bad-request`` stanza error
  on the iq (RFC 6120 needs an answer);
- a failed service: confirmed-ErrorPDU in ``iq result``; a response larger than the negotiated
  PDU size: cut to a page (``moreFollows``) for the paged services, else ``service/pdu-size``.

obtainFile (SetFile) is a pull: the server becomes the requester of fileOpen/fileRead/fileClose
in the same association (:class:`Call` items), and answers the obtainFile once the file is
stored. Nothing a peer sends raises out of :meth:`ServerProtocol.receive`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m

from . import mms
from .association import (
    Admit,
    Association,
    AssociationCore,
    AssociationEnded,
    AssociationError,
    Event,
    InitiateParams,
    NoAssociation,
    Reject,
    RejectReason,
)
from .control.service import Abandon, Answer, ControlService, Deferred, Execute, Report
from .envelope import ClearContext, EnvelopeError, EnvelopeFactory, EnvelopeLayer, needs_association
from .envelope import association_id as _association_id
from .files import FileStoreError, Spool
from .protocol import Call, ErrorReply, Outgoing, Reply, Send
from .services.acsi import RequestRefused, ServerServices, ServiceError
from .stanza import Received, StanzaError, XmppError, stanza_for_pdu

__all__ = ["ServerProtocol", "PULL_SERVICES"]

log = logging.getLogger(__name__)

#: Responses without paging that must still fit the negotiated PDU size.
_UNPAGED = frozenset({"read", "getVariableAccessAttributes", "getNamedVariableListAttributes"})
#: The services a requester must offer for obtainFile.
PULL_SERVICES = frozenset({"fileOpen", "fileRead", "fileClose"})
#: Concluded associations whose layer still awaits the peer's E2E ReleaseReq (oldest dropped).
MAX_RELEASING = 256


def data_depth(data: m.Data) -> int:
    """Nesting depth of a Data value (1 for a basic value)."""
    choice = data.choice
    if isinstance(choice, (m.Structure, m.Array)):
        return 1 + max((data_depth(d) for d in choice.data), default=0)
    return 1


@dataclass
class _Pull:
    """An obtainFile in progress: the server reads the source file from the requester."""

    request: Received
    assoc: Association
    invoke_id: int
    destination: list[str]
    source: list[str]
    limit: int
    stage: str = "open"  # -> reading -> close
    invoke: int = 0  # of the Call in flight
    frsm: int = 0
    spool: Spool | None = None  # the file as it arrives, on disk (not in memory)
    total: int = 0
    failure: ServiceError | None = None

    def discard(self) -> None:
        if self.spool is not None:
            self.spool.discard()
            self.spool = None


class ServerProtocol:
    """The called side of 8-2: associations, Annex D checks and the services of ``services``.

    ``measure(pdu)`` gives the octets of an encoded MMSpdu (the codec's encoder): responses are
    measured against the negotiated PDU size before they leave.
    """

    def __init__(
        self,
        services: ServerServices,
        local: InitiateParams,
        measure: Callable[[m.Mmspdu], int],
        *,
        max_associations: int = 64,
        max_associations_per_peer: int = 8,
        envelopes: EnvelopeFactory = ClearContext,
        controls: ControlService | None = None,
    ) -> None:
        self.services = services
        #: The control services (writes of $Oper/$SBOw/$Cancel, reads of $SBO), when served.
        self.controls = controls
        self._control_waits: dict[int, tuple[Received, Association, int]] = {}
        self.core = AssociationCore(
            local, max_associations=max_associations, max_per_peer=max_associations_per_peer
        )
        self._measure = measure
        self._envelopes = envelopes
        self._layers: dict[tuple[str, str], EnvelopeLayer] = {}
        self._releasing: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._pulls: dict[int, _Pull] = {}
        self._token = 0
        self._mono = 0.0  # the monotonic time of the call being served (controls)
        self._invoke = 0  # invokeIDs of the requests this server sends (obtainFile)
        self._handlers: dict[type, Callable[..., list[Outgoing]]] = {
            m.ConfirmedRequestPdu: self._confirmed,
            m.InitiateRequestPdu: self._initiate,
            m.Mmspdu.ConcludeRequestPdu: self._conclude,
            m.Mmspdu.CancelRequestPdu: self._cancel,
        }

    # ---------------------------------------------------------------- state
    def take_events(self) -> list[Event]:
        """Association started/ended since the last call (ended ones released their state)."""
        events = self.core.take_events()
        for event in events:
            if isinstance(event, AssociationEnded):
                self._ended(event)
        return events

    def _ended(self, event: AssociationEnded) -> None:
        assoc = event.association
        layer = self._layers.pop(assoc.key, None)
        if event.how == "concluded" and getattr(layer, "awaits_release", False):
            self._releasing[assoc.key] = layer  # the E2E ReleaseReq follows the conclude
            while len(self._releasing) > MAX_RELEASING:
                self._releasing.popitem(last=False)
        self.services.association_ended(assoc)
        if self.controls is not None:
            self.controls.association_ended(assoc)
            for token, wait in list(self._control_waits.items()):
                if wait[1] is assoc:
                    del self._control_waits[token]
        for token, pull in list(self._pulls.items()):
            if pull.assoc is assoc:
                del self._pulls[token]
                pull.discard()

    def peer_unavailable(self, jid: str) -> None:
        self.core.peer_unavailable(jid)

    def link_lost(self, reason: str = "XMPP link lost") -> None:
        for assoc in list(self.core.associations.values()):
            self.core.abort(assoc, reason)

    def _seal(self, assoc: Association, pdu: m.Mmspdu, now: float) -> Any:
        layer = self._layers.get(assoc.key)
        if layer is None:  # ended meanwhile: nothing may leave in its name
            raise EnvelopeError(f"association {assoc.id} has ended")
        return layer.seal(pdu, now)

    def _reply(self, item: Received, assoc: Association, pdu: m.Mmspdu, now: float) -> Reply:
        return Reply(item, self._seal(assoc, pdu, now))

    def information_report(
        self, assoc: Association, report: m.Mmspdu, now: float
    ) -> list[Outgoing]:
        """An unconfirmed PDU (informationReport) to the client of ``assoc``, in a message."""
        if not isinstance(report.choice, m.UnconfirmedPdu):
            raise ValueError("only unconfirmed PDUs are sent unasked")
        if not assoc.open or self.core.get(assoc.peer, assoc.id) is not assoc:
            raise AssociationError(f"association {assoc.id} with {assoc.peer} is closed")
        return [Send(assoc.peer, self._seal(assoc, report, now))]

    # ---------------------------------------------------------------- inbound
    def receive(self, item: Received, now: float, mono: float | None = None) -> list[Outgoing]:
        """Everything a received stanza leads to (never raises for peer input)."""
        self._mono = now if mono is None else mono
        if item.kind == "message":
            self._message(item, now)
            return []
        if item.kind != "iq" or item.type not in ("get", "set"):
            return []
        if item.error is not None:
            return self._refuse(
                item, RejectReason.INVALID_PDU, str(item.error), item.invoke_id, now
            )
        assoc_id = item.association = _association_id(item.payload)
        if assoc_id is None:
            pdu = item.payload
            layer = None
        else:
            key = (item.sender, assoc_id)
            if key in self._releasing:
                return self._release(item, self._releasing.pop(key), now)
            layer = self._layers.get(key)
            if layer is None:
                if needs_association(item.payload):
                    text = f"unknown association id {assoc_id!r}"
                    return [ErrorReply(item, "item-not-found", text, "cancel")]
                layer = self._envelopes(item.sender, assoc_id)
            try:
                pdu = layer.open(item.payload, now)
            except Exception as exc:  # noqa: BLE001 - a layer refuses by raising
                return self._refused(item, layer, exc, now)
            # An encrypted PDU is judged by its own size (the ciphertext less the GCM tag),
            # not by the hex of the envelope.
            sealed = getattr(getattr(item.payload, "tbp", None), "encrypted_appl_data", None)
            if isinstance(sealed, bytes):
                item.size = max(0, len(sealed) - 16)
        if not isinstance(pdu, m.Mmspdu):
            return [ErrorReply(item, "bad-request", "the payload is not an MMSpdu")]
        kind = mms.pdu_kind(pdu)
        handler = self._handlers.get(type(pdu.choice))
        if handler is None:
            return [ErrorReply(item, "bad-request", f"{kind} is not a request")]
        if kind != "confirmed-RequestPDU":
            expected = stanza_for_pdu(kind)[1]
            if item.type != expected:
                return [
                    ErrorReply(item, "bad-request", f"Annex D: {kind} travels in iq {expected}")
                ]
        try:
            return handler(item, pdu.choice, layer, now)
        except Exception:  # noqa: BLE001 - a bug must not leave the iq unanswered
            log.exception("%s from %s failed", kind, item.sender)
            return [ErrorReply(item, "internal-server-error", kind, "cancel")]

    def _layer_of(self, peer: str, assoc_id: str | None) -> tuple[Any, Association | None]:
        """The layer and association a message names; an abort of the calling side may name
        the ``n`` part of an ``n:m`` association only (HandshakeSecAbort)."""
        if not assoc_id:
            return None, None
        if (peer, assoc_id) not in self._layers and ":" not in assoc_id:
            ours = [k for k in self._layers if k[0] == peer and k[1].split(":")[0] == assoc_id]
            if len(ours) == 1:
                assoc_id = ours[0][1]
        return self._layers.get((peer, assoc_id)), self.core.get(peer, assoc_id)

    def _message(self, item: Received, now: float) -> None:
        # Clients send no unconfirmed services to a server in this profile; a rejectPDU from a
        # client means it could not use one of our answers: worth a log line, nothing more.
        # An E2E abort of the client (DtSecAbort, HandshakeSecAbort, ApplAbort) ends the
        # association through its layer.
        if item.error is not None:
            log.info("message from %s refused: %s", item.sender, item.error)
            return
        layer, assoc = self._layer_of(item.sender, _association_id(item.payload))
        try:
            pdu = layer.open(item.payload, now) if layer is not None else item.payload
        except Exception as exc:  # noqa: BLE001 - a layer refuses by raising
            log.info("message from %s refused: %s", item.sender, exc)
            if getattr(layer, "ended", False) and assoc is not None:
                self.core.abort(assoc, f"E2E: {exc}")
            return
        if isinstance(pdu, m.Mmspdu) and isinstance(pdu.choice, m.RejectPdu):
            log.warning(
                "%s rejected invokeID %s: %s",
                item.sender,
                pdu.choice.original_invoke_id,
                mms.reject_reason(pdu.choice),
            )

    def _refused(self, item: Received, layer: Any, exc: Exception, now: float) -> list[Outgoing]:
        """An envelope its layer refused: nothing of it reaches the services.

        The layer's own answer when it has one (``exc.reply``): a HandshakeSecReject answers the
        initiate's iq; a DtSecAbort travels in a message and the association aborts. Else the
        rejectPDU of Annex D.
        """
        reply = getattr(exc, "reply", None)
        assoc = self.core.get(item.sender, item.association or "")
        if getattr(layer, "ended", False):
            out: list[Outgoing] = [] if reply is None else [Send(item.sender, reply)]
            if assoc is not None:
                self.core.abort(assoc, f"E2E: {exc}")
            return out + [ErrorReply(item, "not-acceptable", str(exc), "cancel")]
        if reply is not None and assoc is None:
            return [Reply(item, reply)]
        return self._refuse(item, RejectReason.INVALID_PDU, str(exc), None, now)

    def _release(self, item: Received, layer: Any, now: float) -> list[Outgoing]:
        """The E2E ReleaseReq after a conclude: the signed ReleaseRsp."""
        try:
            return [Reply(item, layer.answer_release(item.payload, now))]
        except Exception as exc:  # noqa: BLE001 - a layer refuses by raising
            log.warning("release from %s refused: %s", item.sender, exc)
            return [ErrorReply(item, "not-acceptable", str(exc), "cancel")]

    def _refuse(
        self,
        item: Received,
        reason: RejectReason,
        text: str,
        invoke_id: int | None,
        now: float,
    ) -> list[Outgoing]:
        out: list[Outgoing] = []
        assoc = self.core.get(item.sender, item.association or "")
        if assoc is not None:
            out.append(Send(item.sender, self._seal(assoc, mms.reject(invoke_id, reason), now)))
        out.append(ErrorReply(item, "bad-request", f"{reason.value}: {text}"))
        return out

    def _initiate(
        self, item: Received, body: m.InitiateRequestPdu, layer: Any, now: float
    ) -> list[Outgoing]:
        if layer is None or item.association is None:
            return [ErrorReply(item, "bad-request", "initiate without an association id")]
        # The E2E handshake extends the id to n:m: the association is keyed by the layer's id.
        item.association = getattr(layer, "asso_id", None) or item.association
        try:
            proposed = mms.initiate_params(body)
            assoc = self.core.accept(item.sender, item.association, proposed)
        except AssociationError as exc:
            error = mms.service_error("initiate", "other", str(exc), cls=m.Mmspdu.InitiateErrorPdu)
            return [Reply(item, layer.seal(m.Mmspdu(choice=error), now))]
        self._layers[assoc.key] = layer
        return [self._reply(item, assoc, mms.initiate_response(assoc.params), now)]

    def _conclude(self, item: Received, body: Any, layer: Any, now: float) -> list[Outgoing]:
        try:
            self.core.conclude(item.sender, item.association)
        except AssociationError as exc:
            known = self.core.get(item.sender, item.association or "")
            if known is None:
                return [ErrorReply(item, "item-not-found", str(exc), "cancel")]
            error = mms.service_error(
                "conclude",
                "further-communication-required",
                str(exc),
                cls=m.Mmspdu.ConcludeErrorPdu,
            )
            return [self._reply(item, known, m.Mmspdu(choice=error), now)]
        pdu = m.Mmspdu(choice=m.Mmspdu.ConcludeResponsePdu())
        # The association has ended: its layer seals this last answer.
        return [Reply(item, layer.seal(pdu, now))]

    def _cancel(
        self, item: Received, body: m.Mmspdu.CancelRequestPdu, layer: Any, now: float
    ) -> list[Outgoing]:
        assoc = self.core.get(item.sender, item.association or "")
        if assoc is None:
            return [ErrorReply(item, "item-not-found", "unknown association", "cancel")]
        # Requests are answered as they arrive (obtainFile aside, which cannot be cancelled
        # half-stored): by the time a cancel is read there is nothing left to cancel.
        code = "invoke-id-unknown" if body.value not in assoc.outstanding else "cancel-not-possible"
        error = m.CancelErrorPdu(
            original_invoke_id=body.value, service_error=mms.service_error("cancel", code)
        )
        return [self._reply(item, assoc, m.Mmspdu(choice=error), now)]

    def _confirmed(
        self, item: Received, body: m.ConfirmedRequestPdu, layer: Any, now: float
    ) -> list[Outgoing]:
        invoke_id = body.invoke_id
        service = mms.service_of(body.service)
        try:
            expected = stanza_for_pdu("confirmed-RequestPDU", service)[1]
        except ValueError:
            expected = item.type  # unmapped: refused below as an unrecognized service
        if item.type != expected:
            return [ErrorReply(item, "bad-request", f"Annex D: {service} travels in iq {expected}")]
        verdict = self.core.admit(item.sender, item.association, invoke_id, service, item.size)
        if isinstance(verdict, NoAssociation):
            return [ErrorReply(item, verdict.condition, verdict.text, "cancel")]
        if isinstance(verdict, Admit) and isinstance(body.service.choice, m.WriteRequest):
            depth = max((data_depth(d) for d in body.service.choice.list_of_data.data), default=0)
            nesting = verdict.association.params.nesting_level
            if depth > nesting:
                self.core.done(verdict.association, invoke_id)
                verdict = Reject(
                    RejectReason.MAX_RECURSION,
                    f"Data nested {depth} deep, negotiated {nesting}",
                    verdict.association,
                )
        if isinstance(verdict, Reject):
            return self._refuse(item, verdict.reason, verdict.text, invoke_id, now)
        assoc = verdict.association
        if isinstance(body.service.choice, m.ObtainFileRequest):
            return self._start_pull(item, assoc, invoke_id, body.service.choice, now)
        if self.controls is not None:
            handled = self._control(item, assoc, invoke_id, body.service.choice, now)
            if handled is not None:
                return handled
        try:
            response = self.services.serve(assoc, body.service)
            answer = mms.confirmed_response(invoke_id, response)
        except ServiceError as exc:
            answer = mms.confirmed_error(invoke_id, exc.error_class, exc.code, exc.text)
        except RequestRefused as exc:
            self.core.done(assoc, invoke_id)
            return self._refuse(item, exc.reason, exc.text, invoke_id, now)
        except Exception as exc:  # noqa: BLE001 - a bug in one service must not take the IED down
            log.exception("service %s failed", service)
            answer = mms.confirmed_error(invoke_id, "service", "other", type(exc).__name__)
        finally:
            self.core.done(assoc, invoke_id)
        if isinstance(answer.choice, m.ConfirmedResponsePdu):
            answer = self._fit(answer, service, assoc.params.max_pdu_size)
        return [self._reply(item, assoc, answer, now)]

    # ---------------------------------------------------------------- controls
    def _control(
        self, item: Received, assoc: Association, invoke_id: int, req: Any, now: float
    ) -> list[Outgoing] | None:
        """A one-variable write of $Oper/$SBOw/$Cancel or read of $SBO (else None)."""
        assert self.controls is not None
        if not isinstance(req, (m.WriteRequest, m.ReadRequest)):
            return None
        spec = req.variable_access_specification.choice
        if not isinstance(spec, m.VariableDefs) or len(spec.sequence) != 1:
            return None
        seq = spec.sequence[0]
        if seq.alternate_access is not None or seq.variable_specification.name is None:
            return None
        key = mms.name_key(seq.variable_specification.name)
        if not self.controls.claims(key):
            return None
        if isinstance(req, m.ReadRequest):
            try:
                result, outputs = self.controls.read_sbo(assoc, key, self._mono)
            except Exception:  # noqa: BLE001 - as in _confirmed: answer, free the invokeID
                return self._control_failed(item, assoc, invoke_id, now)
            out = self._control_outputs(outputs, now)
            self.core.done(assoc, invoke_id)
            body = m.ReadResponse(
                list_of_access_result=m.ListOfAccessResult(access_result=[result])
            )
            answer = mms.confirmed_response(invoke_id, m.ConfirmedServiceResponse(choice=body))
            return out + [self._reply(item, assoc, answer, now)]
        datas = req.list_of_data.data
        if len(datas) != 1:
            return None
        try:
            outputs = self.controls.write(assoc, key, datas[0], self._mono, now)
        except Exception:  # noqa: BLE001 - as in _confirmed: answer, free the invokeID
            return self._control_failed(item, assoc, invoke_id, now)
        return self._control_outputs(outputs, now, (item, assoc, invoke_id))

    def _control_failed(
        self, item: Received, assoc: Association, invoke_id: int, now: float
    ) -> list[Outgoing]:
        log.exception("control service on %s failed", assoc.peer)
        self.core.done(assoc, invoke_id)
        answer = mms.confirmed_error(invoke_id, "service", "other", "internal error")
        return [self._reply(item, assoc, answer, now)]

    def _control_outputs(
        self, outputs: list, now: float, current: tuple[Received, Association, int] | None = None
    ) -> list[Outgoing]:
        out: list[Any] = []  # Outgoing, and the shell's Execute / Abandon
        for o in outputs:
            if isinstance(o, Report):
                if o.association.open and o.association.key in self._layers:
                    out.append(Send(o.association.peer, self._seal(o.association, o.pdu, now)))
            elif isinstance(o, Deferred):
                assert current is not None
                self._control_waits[o.token] = current
            elif isinstance(o, Answer):
                wait = current if o.token is None else self._control_waits.pop(o.token, None)
                if wait is None:  # its association ended meanwhile
                    continue
                request, assoc, invoke_id = wait
                self.core.done(assoc, invoke_id)
                choice = mms.choice_of(m.DataAccessError, o.failure) if o.failure else m.Null()
                response = m.WriteResponse(choice=[m.WriteResponse.Choice(choice=choice)])
                answer = mms.confirmed_response(
                    invoke_id, m.ConfirmedServiceResponse(choice=response)
                )
                if assoc.open:
                    out.append(self._reply(request, assoc, answer, now))
            elif isinstance(o, (Execute, Abandon)):
                out.append(o)  # for the shell: run (or stop waiting for) the application
        return out

    def control_executed(
        self, token: int, verdict: Any, now: float, mono: float | None = None
    ) -> list[Outgoing]:
        """The application's verdict on the :class:`~.control.service.Execute` ``token``."""
        if self.controls is None:
            return []
        done = self.controls.executed(token, verdict, now if mono is None else mono)
        return self._control_outputs(done, now)

    def next_deadline(self) -> float | None:
        """When :meth:`timer` must run next (on the ``mono`` clock), or None."""
        return self.controls.next_deadline() if self.controls is not None else None

    def timer(self, now: float, mono: float | None = None) -> list[Outgoing]:
        """Select timeouts, time-activated operates, executions past their time limit."""
        if self.controls is None:
            return []
        return self._control_outputs(self.controls.timer(now if mono is None else mono), now)

    # ---------------------------------------------------------------- size limits
    def _size(self, pdu: m.Mmspdu) -> int:
        return self._measure(pdu)

    def _fit(self, answer: m.Mmspdu, service: str, limit: int) -> m.Mmspdu:
        """The response cut to a page when it is paged, a pdu-size error when it cannot be."""
        pdu = answer.choice
        if not isinstance(pdu, m.ConfirmedResponsePdu):
            return answer
        invoke_id = pdu.invoke_id
        body = pdu.service.choice
        paged = _paged(body)
        if paged is None and service not in _UNPAGED:
            return answer
        if isinstance(body, m.ReadResponse) and read_bound(body) <= limit:
            return answer  # surely fits: no trial encoding on the hot path
        try:
            size = self._size(answer)
        except Exception as exc:  # noqa: BLE001 - the codec refuses what the schema cannot carry
            log.error("cannot encode the %s response: %s", service, exc)
            return mms.confirmed_error(invoke_id, "service", "other", "unencodable response")
        if paged is not None:
            holder, items = paged
            # The services estimate each entry's cost; names that grow in XER (``&amp;``) or
            # long folders can make the estimate short, so the encoded PDU has the last word.
            while size > limit and len(items) > 1:
                keep = max(1, min(len(items) - 1, len(items) * limit // size))
                del items[keep:]
                holder.more_follows = True
                size = self._size(answer)
            if size > limit:
                return mms.confirmed_error(
                    invoke_id, "service", "pdu-size", f"one entry of {size} octets"
                )
            return answer
        if size > limit:
            return mms.confirmed_error(
                invoke_id, "service", "pdu-size", f"response of {size} octets"
            )
        return answer

    # ---------------------------------------------------------------- obtainFile pull
    def _start_pull(
        self,
        item: Received,
        assoc: Association,
        invoke_id: int,
        req: m.ObtainFileRequest,
        now: float,
    ) -> list[Outgoing]:
        pull = _Pull(
            item, assoc, invoke_id, mms.segments(req.destination_file),
            mms.segments(req.source_file), 0,
        )  # fmt: skip
        try:
            # One pull per association: each holds a spool file and a file of the requester.
            if any(p.assoc is assoc for p in self._pulls.values()):
                raise ServiceError(
                    "resource", "capability-unavailable", "one obtainFile at a time per association"
                )
            # A writable store and a free, valid name (duplicate-filename) before any fetch.
            self.services.obtain_file_check(pull.destination)
            if not PULL_SERVICES <= assoc.peer_services:
                raise ServiceError("file", "other", "the requester offers no file services")
            store = self.services.file_store()
            pull.limit = store.max_file_size
            try:
                pull.spool = store.spool()
            except FileStoreError as exc:
                raise ServiceError("file", exc.code, str(exc)) from None
        except ServiceError as exc:
            return self._finish_pull(pull, exc, now)
        return [self._call(pull, mms.file_open(pull.source, 0), now)]

    def _call(self, pull: _Pull, request: m.ConfirmedServiceRequest, now: float) -> Call:
        self._token += 1
        self._invoke = self._invoke % (1 << 31) + 1
        self._pulls[self._token] = pull
        pull.invoke = self._invoke
        iq_type = stanza_for_pdu("confirmed-RequestPDU", mms.service_of(request))[1]
        payload = self._seal(pull.assoc, mms.confirmed_request(self._invoke, request), now)
        return Call(pull.assoc.peer, iq_type, payload, self._token)

    def answer(self, token: int, answer: Received | Exception, now: float) -> list[Outgoing]:
        """The answer (a received ``iq result``) or the failure of the :class:`Call` ``token``."""
        pull = self._pulls.pop(token, None)
        if pull is None:  # the association ended meanwhile
            return []
        try:
            result = self._pull_result(pull, answer, now)
        except ServiceError as exc:
            if pull.stage == "reading" and pull.failure is None:
                # Close the source before answering (best effort).
                pull.failure = exc
                pull.stage = "close"
                return [self._call(pull, mms.file_close(pull.frsm), now)]
            return self._finish_pull(pull, pull.failure or exc, now)
        return self._advance(pull, result, now)

    def _pull_result(self, pull: _Pull, answer: Received | Exception, now: float) -> Any:
        service = {"open": "fileOpen", "reading": "fileRead", "close": "fileClose"}[pull.stage]
        if isinstance(answer, Exception):
            if isinstance(answer, (StanzaError, XmppError)):
                raise ServiceError("file", "other", f"source {service}: {answer}")
            raise ServiceError("file", "other", f"source {service}: {answer!r}")
        if answer.error is not None:
            raise ServiceError("file", "other", f"source {service}: {answer.error}")
        layer = self._layers.get(pull.assoc.key)
        try:
            if layer is None:
                raise EnvelopeError("association ended")
            if _association_id(answer.payload) != pull.assoc.id:
                raise EnvelopeError("answer in another association")
            pdu = layer.open(answer.payload, now)
        except Exception as exc:  # noqa: BLE001 - a layer refuses by raising
            raise ServiceError("file", "other", f"source {service}: {exc}") from None
        body = pdu.choice
        if isinstance(body, m.ConfirmedErrorPdu):
            _, code, _ = mms.error_parts(body.service_error)
            raise ServiceError("file", "other", f"source {service}: {code}")
        if (
            not isinstance(body, m.ConfirmedResponsePdu)
            or body.invoke_id != pull.invoke
            or mms.service_of(body.service) != service
        ):
            raise ServiceError("file", "other", f"unexpected answer to {service}")
        return body.service.choice

    def _advance(self, pull: _Pull, result: Any, now: float) -> list[Outgoing]:
        if pull.stage == "open":
            pull.frsm = result.frsm_id
            pull.stage = "reading"
            if result.file_attributes.size_of_file > pull.limit:
                pull.failure = ServiceError(
                    "file",
                    "insufficient-space-in-filestore",
                    f"{result.file_attributes.size_of_file} octets",
                )
                pull.stage = "close"
                return [self._call(pull, mms.file_close(pull.frsm), now)]
            return [self._call(pull, mms.file_read(pull.frsm), now)]
        if pull.stage == "reading":
            data = result.file_data
            pull.total += len(data)
            if pull.total > pull.limit:
                pull.failure = ServiceError("file", "insufficient-space-in-filestore", "too large")
                pull.stage = "close"
                return [self._call(pull, mms.file_close(pull.frsm), now)]
            assert pull.spool is not None
            try:
                pull.spool.write(data)
            except (FileStoreError, OSError) as exc:
                code = (
                    exc.code
                    if isinstance(exc, FileStoreError)
                    else "insufficient-space-in-filestore"
                )
                pull.failure = ServiceError("file", code, str(exc))
                pull.stage = "close"
                return [self._call(pull, mms.file_close(pull.frsm), now)]
            more = True if result.more_follows is None else result.more_follows
            if more and data:
                return [self._call(pull, mms.file_read(pull.frsm), now)]
            pull.stage = "close"
            return [self._call(pull, mms.file_close(pull.frsm), now)]
        # closed
        return self._finish_pull(pull, pull.failure, now)

    def _finish_pull(self, pull: _Pull, failure: ServiceError | None, now: float):
        if failure is None and pull.spool is not None:
            try:  # checked again: another association may have taken the name meanwhile
                self.services.obtain_file_store(pull.destination, pull.spool)
            except ServiceError as exc:
                failure = exc
        pull.discard()
        if failure is None:
            answer = mms.confirmed_response(
                pull.invoke_id,
                m.ConfirmedServiceResponse(choice=m.ConfirmedServiceResponse.ObtainFile()),
            )
        else:
            log.info("obtainFile from %s failed: %s", pull.assoc.peer, failure)
            answer = mms.confirmed_error(
                pull.invoke_id, failure.error_class, failure.code, failure.text
            )
        self.core.done(pull.assoc, pull.invoke_id)
        if not pull.assoc.open:
            return []
        return [self._reply(pull.request, pull.assoc, answer, now)]


#: Octets of a read response around its AccessResults (MMSpdu with its xmlns, invokeID up to
#: 4294967295, the service elements), rounded up.
_READ_FRAME = 320
#: Per AccessResult element, and per Data element (the element and its alternative's tags).
_RESULT_TAGS = 64
_DATA_TAGS = 48


def read_bound(body: m.ReadResponse) -> int:
    """An upper bound of the XER octets of a read response (to skip measuring small ones).

    Text may grow fivefold in XER (``&amp;``) and in UTF-8 up to fourfold: 24 octets per
    character bounds both; octets are two hex digits each.
    """
    total = _READ_FRAME
    for result in body.list_of_access_result.access_result:
        total += _RESULT_TAGS
        if isinstance(result.choice, m.Data):
            total += _data_bound(result.choice)
    return total


def _data_bound(data: m.Data) -> int:
    choice = data.choice
    if isinstance(choice, (m.Structure, m.Array)):
        return _DATA_TAGS + sum(_data_bound(item) for item in choice.data)
    value = getattr(choice, "value", None)
    if isinstance(value, str):
        return _DATA_TAGS + 24 * len(value)
    if isinstance(value, bytes):
        return _DATA_TAGS + 2 * len(value)
    return _DATA_TAGS + 48  # booleans and integers (at most 40 digits and a sign)


_Paged = m.GetNameListResponse | m.FileDirectoryResponse | m.ReadJournalResponse


def _paged(body: object) -> tuple[_Paged, list[Any]] | None:
    """A paged response (name lists, directories) and its entries, else None."""
    if isinstance(body, m.GetNameListResponse):
        return body, body.list_of_identifier.identifier
    if isinstance(body, m.FileDirectoryResponse):
        return body, body.list_of_directory_entry.directory_entry
    if isinstance(body, m.ReadJournalResponse):
        return body, body.list_of_journal_entry.journal_entry
    return None
