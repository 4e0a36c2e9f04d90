"""An IED server over XMPP: an SCL-built model served with the ACSI services of this package.

:class:`IedServer` glues the pieces: the slixmpp adapter (:mod:`.xmpp`) delivers stanzas, the
strict codec (:mod:`.codec`) gates every payload (size limit, no DOCTYPE, schema validation),
:mod:`.pdu` maps it to a neutral PDU, the sans-IO :class:`~.association.AssociationCore` admits
or refuses it, and :class:`~.services.acsi.ServerServices` answers. Errors follow Annex D:

- iq of the wrong type for its service (Table D.1), an undecodable or schema-invalid payload, a
  malformed ``AssociationContext`` (assoID off its pattern, no applData, two payloads, wrong
  namespace, an E2E-secured envelope while E2E is off): ``bad-request`` stanza error (plus a
  rejectPDU in a message when an association is known);
- a request outside an association or with an unknown association id: ``not-authorized`` /
  ``item-not-found`` stanza error;
- oversized PDU, unsupported service, outstanding limit or duplicate invokeID: rejectPDU in a
  ``message`` plus a ``bad-request`` stanza error on the iq (RFC 6120 needs an answer);
- a failed service: confirmed-ErrorPDU in ``iq result``.

Nothing a peer sends can raise out of the handler: every path ends in an answer.

Usage::

    model = load_scl("feeder.scd")
    server = IedServer(model, XmppSettings(jid=model.jid, password=..., ca_file=..., host=...,
                       port=...), files_root="/srv/ied-files")
    await server.start()
    model.update("FDR1MEAS/MMXU1.TotW.mag.f", 1234.5)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import codec as _codec
from . import pdu as _pdu
from .association import (
    CONFIRMED_SERVICES,
    Admit,
    AssociationCore,
    AssociationEnded,
    AssociationError,
    InitiateParams,
    NoAssociation,
    Reject,
    RejectReason,
)
from .files import FileStore
from .model import ServerModel
from .services.acsi import ServerServices, ServiceError
from .xmpp import PAYLOAD_NS, IecXmpp, Inbound, XmppSettings, stanza_for_pdu

__all__ = ["IedServer", "SERVER_SERVICES"]

log = logging.getLogger(__name__)

#: Services this server implements (the file services only with a file store).
SERVER_SERVICES = frozenset(CONFIRMED_SERVICES) - {
    "readJournal",
    "status",
    "identify",
}


#: Responses that can grow past the PDU size (name lists, directories, file reads page).
_UNPAGED = frozenset({"read", "getVariableAccessAttributes", "getNamedVariableListAttributes"})
#: Responses that page (``(entries, moreFollows)``): cut to the PDU size when the estimate fell short.
_PAGED = frozenset({"fileDirectory", "getNameList", "extendedGetNameList"})


def _invoke_id_of(payload: Any) -> int | None:
    """The invokeID of a request the codec refused, when it is readable (for the rejectPDU)."""
    el = payload.find(f"{{{PAYLOAD_NS}}}confirmed-RequestPDU/{{{PAYLOAD_NS}}}invokeID")
    text = (el.text or "").strip() if el is not None else ""
    return (
        int(text)
        if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) < 1 << 32
        else None
    )


def _data_depth(data: tuple) -> int:
    if data and data[0] in ("structure", "array"):
        return 1 + max((_data_depth(d) for d in data[1]), default=0)
    return 1


class IedServer:
    """Serve ``model`` as the XMPP entity of ``settings`` (resource ``IEC``)."""

    def __init__(
        self,
        model: ServerModel,
        settings: XmppSettings,
        *,
        files_root: str | Path | None = None,
        max_pdu_size: int = 65000,
        max_outstanding: int = 16,
        nesting_level: int = 10,
        max_associations: int = 64,
        services: frozenset[str] = SERVER_SERVICES,
        strict: bool = True,
        allow_file_overwrite: bool = False,
    ) -> None:
        self.model = model
        self.files = (
            FileStore(files_root, allow_overwrite=allow_file_overwrite)
            if files_root is not None
            else None
        )
        if self.files is None or not model.limits.file_handling:  # (SCL Services FileHandling)
            services = services - {
                "fileOpen",
                "fileRead",
                "fileClose",
                "fileDelete",
                "fileDirectory",
                "obtainFile",
            }
        self.core = AssociationCore(
            InitiateParams(
                max_pdu_size=max_pdu_size,
                max_outstanding_calling=max_outstanding,
                max_outstanding_called=max_outstanding,
                nesting_level=nesting_level,
                services=frozenset(services),
            ),
            # SCL Services DynAssociation max lowers the server's own bound
            max_associations=min(max_associations, model.limits.max_associations or (1 << 31)),
        )
        self.services = ServerServices(model, self.files)
        self.strict = strict
        self._codec = _codec.Codec(_codec.Limits(max_bytes=max(max_pdu_size * 2, 1 << 16)))
        # The strict gate runs in the adapter: every envelope (AssociationContext of E2E_4) with
        # its MMSpdu, requests, messages and the answers to our own obtainFile reads alike.
        self.xmpp = IecXmpp(
            settings,
            self._on_inbound,
            on_peer_unavailable=self._peer_unavailable,
            on_link_lost=self._link_lost,
            gate=self._codec if strict else None,
        )
        self._invoke = 0  # invokeIDs of the requests this server sends (obtainFile)
        #: Called with every AssociationStarted/AssociationEnded event (tests, applications).
        self.on_event: Callable[[Any], None] | None = None

    @property
    def jid(self) -> str:
        return self.xmpp.full_jid

    async def start(self) -> None:
        await self.xmpp.start()

    async def close(self) -> None:
        for assoc in list(self.core.associations.values()):
            self.core.abort(assoc, "server closing")
        self._flush_events()
        await self.xmpp.close()

    async def __aenter__(self) -> "IedServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- events
    def _flush_events(self) -> None:
        for event in self.core.take_events():
            if isinstance(event, AssociationEnded):
                self.services.association_ended(event.association)
                if not self.core.of_peer(event.association.peer):
                    self.xmpp.untrack_peer(event.association.peer)
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
        self.core.peer_unavailable(jid)
        self._flush_events()

    def _link_lost(self) -> None:
        # Every association aborts, with the reason (e.g. a stream error "conflict") in the log.
        reason = self.xmpp.lost_reason or "XMPP link lost"
        for assoc in list(self.core.associations.values()):
            self.core.abort(assoc, reason)
        self._flush_events()

    # ---------------------------------------------------------------- inbound
    def _on_inbound(self, item: Inbound) -> Any:
        if item.kind == "message":
            self._on_message(item)
            return
        if item.error is not None:  # malformed envelope, or refused by the strict gate
            self._refuse_undecodable(item, item.error)
            return
        try:
            size = item.size or len(_pdu.to_bytes(item.payload))
            message = _pdu.decode(item.payload)
        except (_codec.CodecError, _pdu.PduError) as exc:
            self._refuse_undecodable(item, exc)
            return
        except RecursionError:
            self._refuse_undecodable(item, _codec.LimitExceeded("elements nested too deep"))
            return
        kind = message[0]
        if kind in ("initiate-RequestPDU", "conclude-RequestPDU", "cancel-RequestPDU"):
            expected = stanza_for_pdu(kind)[1]
            if item.type != expected:
                self.xmpp.reply_error(
                    item, "bad-request", f"Annex D: {kind} travels in iq {expected}"
                )
                return
        try:
            if kind == "confirmed-RequestPDU":
                return self._confirmed(item, message, size)
            elif kind == "initiate-RequestPDU":
                self._initiate(item, message[1])
            elif kind == "conclude-RequestPDU":
                self._conclude(item)
            elif kind == "cancel-RequestPDU":
                self._cancel(item, message[1])
            else:
                self.xmpp.reply_error(item, "bad-request", f"{kind} is not a request")
        finally:
            self._flush_events()

    def _on_message(self, item: Inbound) -> None:
        # Clients send no unconfirmed services to a server in this profile; a rejectPDU from a
        # client means it could not use one of our answers: worth a log line, nothing more.
        if item.error is not None:
            log.info("message from %s refused: %s", item.sender, item.error)
            return
        try:
            message = _pdu.decode(item.payload)
        except _pdu.PduError as exc:
            log.info("undecodable message from %s: %s", item.sender, exc)
            return
        if message[0] == "rejectPDU":
            log.warning("%s rejected invokeID %s: %s", item.sender, message[1], message[2])

    def _refuse_undecodable(self, item: Inbound, exc: Exception) -> None:
        if isinstance(exc, _pdu.PduError):
            reason, invoke_id = exc.reason, exc.invoke_id
        else:  # the codec's gate: not well-formed, forbidden or schema-invalid
            reason, invoke_id = "pdu-error:invalid-pdu", _invoke_id_of(item.payload)
        assoc = self.core.get(item.sender, item.association or "")
        if assoc is not None:
            self.xmpp.send_message(
                item.sender, _pdu.encode(("rejectPDU", invoke_id, reason)), assoc.id
            )
        self.xmpp.reply_error(item, "bad-request", f"{reason}: {exc}")

    def _initiate(self, item: Inbound, proposed: InitiateParams) -> None:
        if not item.association:
            self.xmpp.reply_error(item, "bad-request", "initiate without an association id")
            return
        try:
            assoc = self.core.accept(item.sender, item.association, proposed)
        except AssociationError as exc:
            self.xmpp.reply(
                item,
                _pdu.encode(("initiate-ErrorPDU", ("initiate", "other", str(exc)))),
                item.association,
            )
            return
        self.xmpp.track_peer(item.sender)
        self.xmpp.reply(item, _pdu.encode(("initiate-ResponsePDU", assoc.params)), assoc.id)

    def _conclude(self, item: Inbound) -> None:
        try:
            assoc = self.core.conclude(item.sender, item.association)
        except AssociationError as exc:
            if self.core.get(item.sender, item.association or "") is None:
                self.xmpp.reply_error(item, "item-not-found", str(exc), "cancel")
                return
            self.xmpp.reply(
                item,
                _pdu.encode(
                    ("conclude-ErrorPDU", ("conclude", "further-communication-required", str(exc)))
                ),
                item.association,
            )
            return
        self.xmpp.reply(item, _pdu.encode(("conclude-ResponsePDU",)), assoc.id)

    def _cancel(self, item: Inbound, invoke_id: int) -> None:
        assoc = self.core.get(item.sender, item.association or "")
        if assoc is None:
            self.xmpp.reply_error(item, "item-not-found", "unknown association", "cancel")
            return
        # Requests are answered as they arrive: by the time a cancel is read there is nothing
        # left to cancel.
        error = (
            "cancel",
            "invoke-id-unknown" if invoke_id not in assoc.outstanding else "cancel-not-possible",
            "",
        )
        self.xmpp.reply(item, _pdu.encode(("cancel-ErrorPDU", invoke_id, error)), assoc.id)

    def _confirmed(self, item: Inbound, message: tuple, size: int) -> Any:
        _, invoke_id, service, args = message
        expected = stanza_for_pdu("confirmed-RequestPDU", service)[1]
        if item.type != expected:
            self.xmpp.reply_error(
                item, "bad-request", f"Annex D: {service} travels in iq {expected}"
            )
            return
        verdict = self.core.admit(item.sender, item.association, invoke_id, service, size)
        if isinstance(verdict, NoAssociation):
            self.xmpp.reply_error(item, verdict.condition, verdict.text, "cancel")
            return
        if isinstance(verdict, Admit) and service == "write":
            depth = max((_data_depth(d) for d in args[1]), default=0)
            if depth > verdict.association.params.nesting_level:
                self.core.done(verdict.association, invoke_id)
                verdict = Reject(
                    RejectReason.MAX_RECURSION,
                    f"Data nested {depth} deep, negotiated {verdict.association.params.nesting_level}",
                    verdict.association,
                )
        if isinstance(verdict, Reject):
            self.xmpp.send_message(
                item.sender,
                _pdu.encode(("rejectPDU", invoke_id, verdict.reason.value)),
                item.association,
            )
            self.xmpp.reply_error(item, "bad-request", f"{verdict.reason.value}: {verdict.text}")
            return
        assert isinstance(verdict, Admit)
        assoc = verdict.association
        if service == "obtainFile":
            # SetFile: the server reads the file from the requester (fileOpen/fileRead/fileClose
            # in the same association) before it answers, so this one runs as a task.
            return self._obtain_file(item, assoc, invoke_id, args)
        try:
            result = self._serve(assoc, service, args)
            answer = ("confirmed-ResponsePDU", invoke_id, service, result)
        except ServiceError as exc:
            answer = ("confirmed-ErrorPDU", invoke_id, (exc.error_class, exc.code, exc.text))
        except Exception as exc:  # noqa: BLE001 - a bug in one service must not take the IED down
            log.exception("service %s failed", service)
            answer = ("confirmed-ErrorPDU", invoke_id, ("service", "other", type(exc).__name__))
        finally:
            self.core.done(assoc, invoke_id)
        try:
            element = _pdu.encode(answer)
        except (_pdu.PduError, ValueError, OverflowError, TypeError) as exc:
            log.error("cannot encode the %s response: %s", service, exc)
            element = _pdu.encode(
                ("confirmed-ErrorPDU", invoke_id, ("service", "other", "unencodable response"))
            )
        if answer[0] == "confirmed-ResponsePDU" and service in _PAGED:
            element = self._fit_page(element, answer, assoc.params.max_pdu_size)
        if answer[0] == "confirmed-ResponsePDU" and service in _UNPAGED:
            # Services without paging must still respect the negotiated PDU size.
            size = len(_pdu.to_bytes(element))
            if size > assoc.params.max_pdu_size:
                element = _pdu.encode(
                    (
                        "confirmed-ErrorPDU",
                        invoke_id,
                        ("service", "pdu-size", f"response of {size} octets"),
                    )
                )
        self.xmpp.reply(item, element, assoc.id)

    @staticmethod
    def _fit_page(element: Any, answer: tuple, limit: int) -> Any:
        """A page of a paged list, cut until it fits the negotiated PDU size (moreFollows set).

        The services estimate the cost of each entry; names that grow in XER (``&amp;``) or
        long folders can make the estimate short, so the encoded PDU has the last word.
        """
        _, invoke_id, service, (items, more) = answer
        size = len(_pdu.to_bytes(element))
        while size > limit and len(items) > 1:
            keep = max(1, min(len(items) - 1, len(items) * limit // size))
            items, more = items[:keep], True
            element = _pdu.encode(("confirmed-ResponsePDU", invoke_id, service, (items, more)))
            size = len(_pdu.to_bytes(element))
        if size > limit:
            return _pdu.encode(
                (
                    "confirmed-ErrorPDU",
                    invoke_id,
                    ("service", "pdu-size", f"one entry of {size} octets"),
                )
            )
        return element

    async def _obtain_file(self, item: Inbound, assoc: Any, invoke_id: int, args: Any) -> None:
        source, dest = args
        try:
            self.services.obtain_file_check(dest)  # duplicate-filename before any fetch
            data = await self._pull_file(assoc, source, self.services._store().max_file_size)
            self.services.obtain_file_store(dest, data)
            answer: tuple = ("confirmed-ResponsePDU", invoke_id, "obtainFile", None)
        except ServiceError as exc:
            answer = ("confirmed-ErrorPDU", invoke_id, (exc.error_class, exc.code, exc.text))
        except Exception as exc:  # noqa: BLE001 - the peer may answer anything, or nothing
            log.info("obtainFile from %s failed: %r", assoc.peer, exc)
            answer = ("confirmed-ErrorPDU", invoke_id, ("file", "other", f"source: {exc}"))
        finally:
            self.core.done(assoc, invoke_id)
        if assoc.open:
            self.xmpp.reply(item, _pdu.encode(answer), assoc.id)

    async def _pull_file(self, assoc: Any, source: list[str], limit: int) -> bytes:
        """Read ``source`` from the association's peer (the server is the requester here)."""
        if not {"fileOpen", "fileRead", "fileClose"} <= assoc.peer_services:
            raise ServiceError("file", "other", "the requester offers no file services")

        async def call(service: str, args: Any) -> Any:
            self._invoke = self._invoke % (1 << 31) + 1
            payload = _pdu.encode(("confirmed-RequestPDU", self._invoke, service, args))
            iq_type = stanza_for_pdu("confirmed-RequestPDU", service)[1]
            answer = await self.xmpp.request(assoc.peer, iq_type, payload, association=assoc.id)
            if answer is None:
                raise ServiceError("file", "other", f"empty answer to {service}")
            message = _pdu.decode(answer)
            if message[0] == "confirmed-ErrorPDU":
                raise ServiceError("file", "other", f"source {service}: {message[2][1]}")
            if message[0] != "confirmed-ResponsePDU" or message[2] != service:
                raise ServiceError("file", "other", f"unexpected answer to {service}")
            return message[3]

        frsm, size, _ = await call("fileOpen", (source, 0))
        if size > limit:
            await call("fileClose", frsm)
            raise ServiceError("file", "insufficient-space-in-filestore", f"{size} octets")
        chunks: list[bytes] = []
        total = 0
        try:
            while True:
                data, more = await call("fileRead", frsm)
                total += len(data)
                if total > limit:
                    raise ServiceError("file", "insufficient-space-in-filestore", "too large")
                chunks.append(data)
                if not more or not data:
                    break
        finally:
            await call("fileClose", frsm)
        return b"".join(chunks)

    def _serve(self, assoc: Any, service: str, args: Any) -> Any:
        s = self.services
        if service in ("getNameList", "extendedGetNameList"):
            return s.get_name_list(assoc, *args)
        if service == "read":
            return s.read(assoc, args)
        if service == "write":
            return s.write(assoc, *args)
        if service == "getVariableAccessAttributes":
            return s.get_variable_access_attributes(assoc, args)
        if service == "defineNamedVariableList":
            s.define_named_variable_list(assoc, *args)
            return None
        if service == "getNamedVariableListAttributes":
            return s.get_named_variable_list_attributes(assoc, args)
        if service == "deleteNamedVariableList":
            scope, names, _domain = args
            return s.delete_named_variable_list(assoc, scope, names)
        if service == "fileDirectory":
            return s.file_directory(assoc, *args)
        if service == "fileOpen":
            return s.file_open(assoc, *args)
        if service == "fileRead":
            return s.file_read(assoc, args)
        if service == "fileClose":
            s.file_close(assoc, args)
            return None
        if service == "fileDelete":
            s.file_delete(assoc, args)
            return None
        raise ServiceError("service", "other", f"{service} is not implemented")
