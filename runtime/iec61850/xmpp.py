"""The slixmpp adapter of IEC 61850-8-2: one XMPP client per IED or client application.

This module knows XMPP (connection, TLS, SASL, roster, presence, XEP-0199, XEP-0198, Annex D stanza
types and Table D.2 stanza errors) and moves stanzas, nothing more: what an 8-2 payload looks like
inside a stanza is :mod:`gridbind.iec61850.stanza` (shared with the in-memory transport), and the
strict codec gate that decodes every received payload to the generated typed classes (and encodes
the typed payloads sent) is injected (``gate``, a :class:`~gridbind.iec61850.codec.Codec`). The
protocol cores (:mod:`~gridbind.iec61850.server_protocol`,
:mod:`~gridbind.iec61850.client_protocol`) decide what the payloads mean.

Link semantics surfaced to the cores (mapping notes section 2):

- ``on_link_lost()``: the XMPP session is gone for good (no XEP-0198 resumption, resumption refused,
  or the resumption window elapsed): every association of this JID is aborted.
- ``on_peer_unavailable(jid)``: a peer's presence turned ``unavailable``: its associations abort.
- A session resumed through XEP-0198 within the window raises neither, so associations survive.

Peers learn about each other's presence through directed presence (:meth:`IecXmpp.track_peer`),
which Prosody follows with ``unavailable`` when the sender's session ends.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher.base import MatcherBase

from gridbind.errors import RemoteError
from gridbind.iec61850.errors import InvalidArgument

from . import codec as _codec
from . import xmppwire
from .stanza import (
    ASSOC_NS,
    LATE_ANSWER_GRACE,
    PAYLOAD_NS,
    RESOURCE,
    InvalidPayload,
    LinkLost,
    Received,
    RequestTimeout,
    StanzaError,
    XmppError,
    decode_payload,
    error_text,
    is_8_2,
    payload_bytes,
    stanza_for_pdu,
    unwrap,
)

__all__ = [
    "PAYLOAD_NS",
    "ASSOC_NS",
    "RESOURCE",
    "XmppSettings",
    "XmppError",
    "XmppConnectError",
    "LinkLost",
    "StanzaError",
    "RequestTimeout",
    "Received",
    "IecXmpp",
    "stanza_for_pdu",
    "parse_address",
    "InvalidPayload",
]

log = logging.getLogger(__name__)


class XmppConnectError(XmppError, RemoteError):
    """Connecting, TLS validation or authentication failed."""


#: RFC 6120 stream error conditions after which logging in again may work (the server going
#: down, a timeout, a reset); after any other (``conflict``: our full JID logged in elsewhere,
#: ``not-authorized``: the account is gone, ``policy-violation``, ...) the endpoint stays down:
#: logging in again would, for ``conflict``, kick the other session in turn, for ever.
_RECOVERABLE_STREAM_ERRORS = frozenset(
    {
        "system-shutdown",
        "connection-timeout",
        "reset",
        "see-other-host",
        "remote-connection-failed",
        "internal-server-error",
        "resource-constraint",
    }
)


@dataclass
class XmppSettings:
    """How to reach the XMPP server and who to be.

    ``host``/``port`` given: connect there (no DNS). Left empty: DNS SRV for the JID's domain
    (``_xmpp-client._tcp``, ``_xmpps-client._tcp`` with ``direct_tls``), asking ``dns_servers``
    (``IP`` or ``IP:PORT``) when given, else the system's resolvers.
    ``ca_file`` is mandatory: TLS is always required and validated. ``client_cert`` +
    ``client_key`` with ``sasl_mechanism="EXTERNAL"`` authenticate with a certificate that
    carries the JID (id-on-xmppAddr); the JID is sent as authzid.
    """

    jid: str
    password: str = ""
    ca_file: Path | str | None = None
    host: str | None = None
    port: int | None = None
    direct_tls: bool = False
    sasl_mechanism: str | None = None
    client_cert: Path | str | None = None
    client_key: Path | str | None = None
    dns_servers: tuple[str, ...] = ()
    connect_timeout: float = 15.0
    #: XEP-0199 keepalive period in seconds (0: off). Detects a frozen server or link.
    ping_interval: float = 0.0
    #: XEP-0198 resumption; ``resume_window`` bounds how long a dropped session is retried.
    stream_management: bool = True
    resume_window: float = 30.0
    request_timeout: float = 30.0


def parse_address(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (``[::1]:5222`` for IPv6)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise InvalidArgument(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


class _PayloadMatcher(MatcherBase):
    """Matches message stanzas that carry an 8-2 payload (iq requests are taken earlier, by
    :meth:`IecXmpp._take_iq`)."""

    def __init__(self) -> None:
        super().__init__(PAYLOAD_NS)

    def match(self, stanza: Any) -> bool:
        return stanza.name == "message" and is_8_2(stanza.xml)


_IQ_TAG = "{jabber:client}iq"
#: Cached sets of the senders that may answer a request, per JID asked (bounded).
_MAX_ANSWERERS = 256


class _Waiter:
    """An iq request of ours waiting for its answer: the future, who may answer, the timer."""

    __slots__ = ("future", "answerers", "timer", "late")

    def __init__(self, future: asyncio.Future, answerers: frozenset[str]) -> None:
        self.future = future
        self.answerers = answerers
        self.timer: asyncio.TimerHandle | None = None
        #: Timed out: kept LATE_ANSWER_GRACE longer for an answer that only on_answer gets.
        self.late = False


InboundHandler = Callable[[Received], None]


def _payload_crs_escaped(data: Any) -> Any:
    if isinstance(data, str) and "\r" in data and (PAYLOAD_NS in data or ASSOC_NS in data):
        return data.replace("\r", "&#13;")
    return data


class IecXmpp:
    """A connected 8-2 XMPP endpoint (resource ``IEC``).

    ``on_inbound`` receives every iq get/set and message with an 8-2 payload as a
    :class:`~gridbind.iec61850.stanza.Received`; iq requests must be answered with :meth:`reply`
    or :meth:`reply_error` (the adapter answers ``internal-server-error`` itself when the handler
    raises, so a bad stanza never goes unanswered or crashes).

    ``gate`` (a :class:`~gridbind.iec61850.codec.Codec`, default: the process-wide one): every
    received payload, requests, messages and answers alike, is decoded by it strictly (schema
    validation in the same pass) to the typed object; a refused one arrives with
    :attr:`Received.error` set and no payload. Typed payloads sent are encoded by it.
    """

    def __init__(
        self,
        settings: XmppSettings,
        on_inbound: InboundHandler | None = None,
        *,
        on_peer_unavailable: Callable[[str], None] | None = None,
        on_link_lost: Callable[[], None] | None = None,
        on_resumed: Callable[[], None] | None = None,
        gate: _codec.Codec | None = None,
    ) -> None:
        self._gate = gate or _codec.default_codec()
        if not settings.ca_file:
            raise XmppConnectError("a CA file is required: TLS is always validated")
        if not Path(settings.ca_file).is_file():
            raise XmppConnectError(f"CA file not found: {settings.ca_file}")
        jid = JID(settings.jid)
        if not jid.user or not jid.domain:
            raise XmppConnectError(f"not a JID of an account: {settings.jid!r}")
        self.settings = settings
        self.jid = JID(f"{jid.bare}/{RESOURCE}")
        self._on_inbound = on_inbound
        self._on_peer_unavailable = on_peer_unavailable
        self._on_link_lost = on_link_lost
        #: Called when XEP-0198 resumed the session (public: a shell sets it, like on_answer).
        self.on_resumed = on_resumed
        #: Called with each decoded answer as it arrives, in stanza order with the messages
        #: (a shell that must open envelopes in arrival order, E2E, sets it).
        self.on_answer: Callable[[Received], None] | None = None
        self._client: slixmpp.ClientXMPP | None = None
        self._ready: asyncio.Future[None] | None = None
        self._closing = False
        # idle (before the first session) -> live -> resuming -> live | lost -> live ...
        self._state = "idle"
        self._resume_timer: asyncio.TimerHandle | None = None
        self._tracked: set[str] = set()
        #: iq futures waiting for their answer: failed at once when the session is lost.
        self._pending: set[asyncio.Future] = set()
        #: Our iq requests by stanza id, answered through _take_iq.
        self._waiting: dict[str, _Waiter] = {}
        self._answerers: dict[str, frozenset[str]] = {}
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4) + "-"
        #: Why the session ended for good (an unrecoverable stream error), else None.
        self._fatal: str | None = None
        #: Why the last session was lost (read by on_link_lost handlers), else None.
        self.lost_reason: str | None = None

    def set_handlers(
        self,
        on_inbound: InboundHandler,
        *,
        on_peer_unavailable: Callable[[str], None] | None = None,
        on_link_lost: Callable[[], None] | None = None,
        gate: _codec.Codec | None = None,
    ) -> None:
        """Wire the adapter to a shell (the server or client) before :meth:`start`."""
        self._on_inbound = on_inbound
        self._on_peer_unavailable = on_peer_unavailable
        self._on_link_lost = on_link_lost
        if gate is not None:
            self._gate = gate

    # ------------------------------------------------------------------ lifecycle
    def _build(self) -> slixmpp.ClientXMPP:
        s = self.settings
        ctx = ssl.create_default_context(cafile=str(s.ca_file))
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if bool(s.client_cert) != bool(s.client_key):
            raise XmppConnectError("client_cert and client_key go together: one of them is missing")
        if s.client_cert and s.client_key:
            # Loaded here, not through slixmpp's certfile/keyfile (which only logs a bad file):
            # a missing or mismatched certificate is a clear error before any connection.
            try:
                ctx.load_cert_chain(str(s.client_cert), str(s.client_key))
            except (OSError, ssl.SSLError) as exc:
                raise XmppConnectError(
                    f"client certificate {s.client_cert} / key {s.client_key} unusable: {exc}"
                ) from None
        client = slixmpp.ClientXMPP(
            str(self.jid), s.password, sasl_mech=s.sasl_mechanism, ssl_context=ctx
        )
        if (s.sasl_mechanism or "").upper() == "EXTERNAL":
            # authzid = our JID: the server must match the certificate against this account
            # (RFC 6120 6.4.6), not log us in as whatever JID the certificate carries.
            client.credentials["authzid"] = self.jid.bare
        if s.dns_servers:
            # slixmpp's per-instance hook for SRV/A lookups (its stubs type it as a plain method)
            client.configure_dns = self._configure_dns  # type: ignore[method-assign]
        client.enable_direct_tls = bool(s.direct_tls)
        client.enable_starttls = not s.direct_tls
        client.enable_plaintext = False
        keepalive: dict[str, bool | float] = {"keepalive": s.ping_interval > 0}
        if s.ping_interval > 0:
            # a ping unanswered within the interval means a frozen link: slixmpp reconnects
            keepalive.update(interval=s.ping_interval, timeout=max(1.0, s.ping_interval))
        client.register_plugin("xep_0199", keepalive)
        if s.stream_management:
            client.register_plugin("xep_0198", {"allow_resume": True})
        # iq requests and the answers to ours are taken as they arrive, before slixmpp builds
        # plugin objects and tries every handler on them (after XEP-0198's counter, added when
        # its plugin was registered above); messages go through slixmpp's handlers.
        client.add_filter("in", self._take_iq)
        client.register_handler(Callback("IEC 61850-8-2 payload", _PayloadMatcher(), self._inbound))
        # slixmpp's serialiser writes a CR in text raw, and XML end-of-line handling turns it
        # into LF at the receiver: in 8-2 payload stanzas every CR becomes a character reference
        # (markup never holds one). Stanzas reach send_raw serialised, after slixmpp's out
        # filters (XEP-0198 counts there), so the wrapper sits here and picks payload stanzas by
        # namespace; IecXmpp.send_raw keeps the unwrapped method (raw bytes as given).
        self._send_raw_unchanged = send_raw = client.send_raw
        client.send_raw = lambda data: send_raw(  # type: ignore[method-assign]
            _payload_crs_escaped(data)
        )
        # Payload stanzas carry the codec's bytes (xmppwire): the last filter, after XEP-0198's
        # counter, hands them to the send queue; a resend (filters bypassed) needs the element.
        client.add_filter("out_sync", xmppwire.serialise)
        send = client.send

        def send_stanza(data: Any, use_filters: bool = True) -> None:
            if not use_filters:
                xmppwire.materialise(data)
            send(data, use_filters)

        client.send = send_stanza  # type: ignore[method-assign]
        client.add_event_handler("session_start", self._session_start)
        client.add_event_handler("session_resumed", self._session_resumed)
        client.add_event_handler("session_end", self._session_end)
        client.add_event_handler("disconnected", self._disconnected)
        client.add_event_handler("presence_unavailable", self._presence_unavailable)
        client.add_event_handler("ssl_invalid_chain", self._ssl_invalid)
        client.add_event_handler("ssl_invalid_cert", self._ssl_invalid)
        client.add_event_handler("connection_failed", self._connection_failed)
        client.add_event_handler("failed_all_auth", self._auth_failed)
        client.add_event_handler("stream_error", self._stream_error)
        return client

    async def start(self) -> None:
        """Connect, validate TLS, authenticate, bind ``IEC``, get the roster, send presence."""
        loop = asyncio.get_running_loop()
        if self._client is not None:  # a restart after a session ended for good
            await self._teardown()
        self._ready = loop.create_future()
        self._closing = False
        self._fatal = self.lost_reason = None
        self._client = self._build()
        self._connect()
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), self.settings.connect_timeout)
        except TimeoutError:
            await self._teardown()
            raise XmppConnectError(
                f"no XMPP session within {self.settings.connect_timeout} s "
                f"({self.settings.host or 'SRV'}:{self.settings.port or ''})"
            ) from None
        except BaseException:
            await self._teardown()
            raise

    def _configure_dns(
        self, resolver: Any, domain: str | None = None, port: int | None = None
    ) -> None:
        # slixmpp's hook on each SRV/A lookup; resolver is an aiodns.DNSResolver (or None when
        # aiodns is missing, in which case slixmpp cannot do SRV at all).
        if resolver is None:
            log.warning("%s: no aiodns, dns_servers ignored (no SRV lookup)", self.jid)
            return
        resolver.nameservers = list(self.settings.dns_servers)

    def _connect(self) -> None:
        assert self._client is not None
        s = self.settings
        if s.host and s.port:
            self._client.connect(s.host, s.port)
        else:
            self._client.connect()

    async def close(self) -> None:
        """Leave cleanly (unavailable presence, stream close); does not call ``on_link_lost``."""
        self._closing = True
        await self._teardown()

    async def _teardown(self) -> None:
        self._closing = True
        self._state = "idle"
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None
        client, self._client = self._client, None
        if client is None:
            return
        client.cancel_connection_attempt()
        if client.transport is not None:
            try:
                if "xep_0198" in client.plugin:
                    # A clean goodbye: do not leave a hibernating session behind on the server.
                    client.plugin["xep_0198"].sm_id = None
                client.send_presence(ptype="unavailable")
                await asyncio.wait_for(client.disconnect(wait=1.0), 3.0)
            except (TimeoutError, Exception):  # noqa: BLE001 - leaving anyway
                client.abort()
        for fut in list(self._pending):
            if not fut.done():
                fut.set_exception(LinkLost(f"{self.jid} closed"))
        for waiter in self._waiting.values():  # those kept for a late answer
            if waiter.timer is not None:
                waiter.timer.cancel()
        self._waiting.clear()
        # slixmpp leaves its outgoing filter task running after disconnect; end it here so that
        # closing the event loop does not warn about a destroyed pending task.
        filters = getattr(client, "_run_out_filters", None)
        if filters is not None and not filters.done():
            filters.cancel()
            try:
                await filters
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - it was cancelled
                pass

    def drop_link(self, *, reconnect: bool = True) -> None:
        """Cut the TCP connection without a goodbye (a link loss; tests resumption).

        ``reconnect`` False: stay away as a crashed process would, until :meth:`close` (the XMPP
        server keeps the session for its XEP-0198 window, so peers see no presence meanwhile).
        """
        if not reconnect:
            self._closing = True  # _disconnected neither reconnects nor reports the loss
        if self._client is not None and self._client.transport is not None:
            self._client.transport.abort()

    @property
    def connected(self) -> bool:
        return self._state == "live"

    @property
    def full_jid(self) -> str:
        return str(self._client.boundjid) if self._client is not None else str(self.jid)

    # ------------------------------------------------------------------ events
    def _fail(self, exc: Exception) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(exc)

    def _ssl_invalid(self, exc: Any) -> None:
        self._fail(XmppConnectError(f"TLS certificate of the XMPP server rejected: {exc}"))

    def _connection_failed(self, exc: Any) -> None:
        if isinstance(exc, ssl.SSLError):
            self._fail(XmppConnectError(f"TLS certificate of the XMPP server rejected: {exc}"))
        elif self._ready is not None and not self._ready.done():
            self._fail(XmppConnectError(f"cannot connect to the XMPP server: {exc}"))
        elif not self._closing:
            log.info("%s: reconnect attempt failed: %s", self.jid, exc)

    def _auth_failed(self, _event: Any = None) -> None:
        self._fail(XmppConnectError(f"SASL authentication of {self.jid.bare} failed"))

    def _stream_error(self, error: Any) -> None:
        condition = (error["condition"] if error is not None else "") or "undefined-condition"
        text = error["text"] if error is not None else ""
        reason = f"stream error from the XMPP server: {condition}" + (f" ({text})" if text else "")
        if condition in _RECOVERABLE_STREAM_ERRORS:
            log.warning("%s: %s; logging in again", self.jid, reason)
        else:
            # Table D.2: an unrecoverable fault. The session is over; do not log in again.
            self._fatal = reason
            log.warning(
                "%s: %s; session ended for good, every association aborts", self.jid, reason
            )
        self._fail(XmppConnectError(reason))

    async def _session_start(self, _event: Any) -> None:
        client = self._client
        if client is None:
            return
        self._answerers.clear()
        if str(client.boundjid.resource) != RESOURCE:
            self._fail(XmppConnectError(f"server bound resource {client.boundjid.resource!r}"))
            return
        try:
            await client.get_roster(timeout=self.settings.connect_timeout)
        except (IqError, IqTimeout) as exc:
            log.warning("%s: roster fetch failed: %s", self.jid, exc)
        client.send_presence()
        for peer in self._tracked:
            client.send_presence(pto=peer)
        if self._state == "resuming":
            # Resumption refused: this is a new session, the old one (and its associations) is
            # gone.
            self._report_lost()
        self._state = "live"
        self._cancel_resume_timer()
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def _cancel_resume_timer(self) -> None:
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None

    def _report_lost(self) -> None:
        if self._state == "lost":
            return
        self._state = "lost"
        self.lost_reason = self._fatal or "XMPP link lost"
        if not self._closing and self._on_link_lost is not None:
            self._on_link_lost()
        # Requests still waiting (outside any association, or not failed by the handler) fail
        # now with the reason instead of waiting for their timeout.
        for fut in list(self._pending):
            if not fut.done():
                fut.set_exception(LinkLost(self.lost_reason))

    def _session_resumed(self, _event: Any) -> None:
        was = self._state
        self._state = "live"
        self._cancel_resume_timer()
        log.info("%s: XEP-0198 session resumed", self.jid)
        if was == "resuming" and self.on_resumed is not None:
            self.on_resumed()

    def _session_end(self, _event: Any) -> None:
        if self._state in ("live", "resuming"):
            self._report_lost()

    def _disconnected(self, _reason: Any) -> None:
        if self._closing or self._client is None:
            return
        if self._fatal is not None:
            # An unrecoverable stream error ended the session: no resumption, no new login.
            self._report_lost()
            return
        client = self._client
        sm = client.plugin["xep_0198"] if "xep_0198" in client.plugin else None
        if self._state == "live" and sm is not None and sm.sm_id:
            # Link lost with a resumable session: associations stay while we try to resume.
            self._state = "resuming"
            loop = asyncio.get_running_loop()
            self._resume_timer = loop.call_later(self.settings.resume_window, self._resume_expired)
        elif self._state == "live":
            self._report_lost()
        if self._state != "idle":
            # An IED stays reachable: reconnect (resume, or a fresh session) with slixmpp's
            # back-off until close().
            self._connect()

    def _resume_expired(self) -> None:
        self._resume_timer = None
        if self._state != "resuming":
            return
        log.warning("%s: no resumption within %s s", self.jid, self.settings.resume_window)
        self._report_lost()

    def _presence_unavailable(self, presence: Any) -> None:
        sender = str(presence["from"])
        if self._on_peer_unavailable is not None and sender != self.full_jid:
            self._on_peer_unavailable(sender)

    # ------------------------------------------------------------------ traffic
    def track_peer(self, jid: str) -> None:
        """Send directed presence to ``jid`` so that both sides learn when the other leaves."""
        if jid in self._tracked:
            return
        self._tracked.add(jid)
        if self._client is not None and self._state == "live":
            self._client.send_presence(pto=jid)

    def untrack_peer(self, jid: str) -> None:
        self._tracked.discard(jid)

    def _take_iq(self, stanza: Any) -> Any:
        """slixmpp in filter: an iq request with an 8-2 payload, or the answer to one of our
        requests, is handled here and goes no further (None); any other stanza passes on."""
        xml = stanza.xml
        if xml.tag != _IQ_TAG:
            return stanza
        itype = xml.get("type")
        if itype in ("get", "set"):
            if not is_8_2(xml):
                return stanza
            try:
                self._inbound(stanza)
            except Exception as exc:  # noqa: BLE001 - as slixmpp does for a failing handler
                try:
                    stanza.exception(exc)  # logs it and answers with an error iq
                except Exception:  # noqa: BLE001 - the stream must go on
                    log.exception("%s: iq from %s failed", self.jid, xml.get("from"))
            return None
        if itype not in ("result", "error"):
            return stanza
        waiter = self._waiting.get(xml.get("id", ""))
        # slixmpp's rule (MatchIDSender): the JID asked (full, bare or its domain), our own
        # account or domain, or the server (no from) may answer.
        if waiter is None or xml.get("from", "") not in waiter.answerers:
            return stanza
        del self._waiting[xml.get("id", "")]
        if waiter.timer is not None:
            waiter.timer.cancel()
        future = waiter.future
        try:
            if itype == "error":
                if not future.done():
                    err = stanza["error"]
                    future.set_exception(
                        StanzaError(err["condition"], err["text"], err["type"], err["by"])
                    )
            else:
                # Opened (on_answer) even when the requester gave up or timed out: E2E needs
                # every envelope of the association in order.
                item = self._answer(stanza)
                if not future.done():
                    future.set_result(item)
        except Exception as exc:  # noqa: BLE001 - a bad answer must not stop the stream
            log.exception("%s: answer from %s failed", self.jid, xml.get("from"))
            if not future.done():
                future.set_exception(InvalidPayload(f"answer unreadable: {exc}"))
        return None

    def _answer(self, stanza: Any) -> Received:
        # Decoded as it arrives, in stanza order with the messages, and handed to on_answer
        # before the requester resumes (an E2E shell opens envelopes in arrival order).
        xml = stanza.xml
        item = Received("iq", "result", str(JID(xml.get("from", ""))), xml.get("id", ""))
        item.handle = stanza
        found = unwrap(xml)
        if found is None:
            return item
        decode_payload(found, self._gate, item)
        if self.on_answer is not None:
            try:
                self.on_answer(item)
            except Exception:  # noqa: BLE001 - the requester still gets its answer
                log.exception("answer from %s: early handling failed", item.sender)
        return item

    def _inbound(self, stanza: Any) -> None:
        xml = stanza.xml
        found = unwrap(xml)
        if found is None:  # matcher guarantees it; defensive against plugin reordering
            return
        kind = stanza.name
        item = Received(
            kind=kind,
            type=xml.get("type") or ("normal" if kind == "message" else ""),
            sender=str(JID(xml.get("from", ""))),
            id=xml.get("id", ""),
            handle=stanza,
        )
        decode_payload(found, self._gate, item)
        try:
            if self._on_inbound is None:
                raise XmppError("no handler")
            self._on_inbound(item)
        except Exception as exc:  # noqa: BLE001 - a bad stanza must never take the endpoint down
            log.exception("%s: handler failed on a stanza from %s", self.jid, item.sender)
            if kind == "iq":
                self.reply_error(item, "internal-server-error", f"{type(exc).__name__}")

    def reply(self, item: Received, payload: Any) -> None:
        """Answer an iq request with ``iq type=result`` carrying ``payload`` (typed, or None)."""
        if self._client is None or item.kind != "iq":
            return
        client = self._client
        data = payload_bytes(payload, self._gate) if payload is not None else None
        client.send(xmppwire.iq(client, "result", item.sender, item.id, data))

    def reply_error(
        self, item: Received, condition: str, text: str = "", etype: str = "modify"
    ) -> None:
        """Answer an iq request with an RFC 6120 stanza error (Table D.2, recoverable faults)."""
        if self._client is None or item.kind != "iq":
            return
        reply = item.handle.reply(clear=True)
        reply["type"] = "error"
        reply["error"]["type"] = etype
        reply["error"]["condition"] = condition
        if text:
            # Error texts may quote peer input: keep only characters XML 1.0 can carry.
            reply["error"]["text"] = error_text(text)
        reply.send()

    async def request(
        self, to: str, iq_type: str, payload: Any, timeout: float | None = None
    ) -> Received:
        """Send the typed ``payload`` in an iq get/set to a full JID; return the answer.

        The answer comes decoded by the gate (or with :attr:`Received.error` set). Raises
        :class:`StanzaError` for an error answer, :class:`RequestTimeout`, :class:`LinkLost`.
        """
        if iq_type not in ("get", "set"):
            raise InvalidArgument("an 8-2 request travels in iq get or set")
        itype: Literal["get", "set"] = "get" if iq_type == "get" else "set"
        client = self._require_client()
        if self._fatal is not None:
            raise LinkLost(self._fatal)
        peer = JID(to)
        to = str(peer)  # normalised, as slixmpp writes it
        sid = f"{self._id_prefix}{next(self._ids)}"
        iq = xmppwire.iq(client, itype, to, sid, payload_bytes(payload, self._gate))
        answerers = self._answerers.get(to)
        if answerers is None:
            me = client.boundjid
            answerers = frozenset(("", me.bare, me.domain, peer.full, peer.bare, peer.domain))
            if len(self._answerers) >= _MAX_ANSWERERS:
                self._answerers.clear()
            self._answerers[to] = answerers
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), answerers)
        limit = timeout or self.settings.request_timeout
        waiter.timer = loop.call_later(limit, self._timed_out, sid, to)
        self._waiting[sid] = waiter
        self._pending.add(waiter.future)
        sent = False
        try:
            client.send(iq)
            sent = True
            return await waiter.future
        finally:
            self._pending.discard(waiter.future)
            # A requester that gave up (cancelled) or timed out leaves its waiter to the timer
            # (see _timed_out): the answer may still come and must reach on_answer.
            linger = sent and (waiter.future.cancelled() or waiter.late)
            if not linger and self._waiting.get(sid) is waiter:
                del self._waiting[sid]
                waiter.timer.cancel()

    def _timed_out(self, sid: str, to: str) -> None:
        waiter = self._waiting.get(sid)
        if waiter is None:
            return
        if waiter.late or waiter.future.done():
            # the grace after the timeout, or the time limit of a request given up, is over
            del self._waiting[sid]
            return
        waiter.late = True
        waiter.timer = asyncio.get_running_loop().call_later(
            LATE_ANSWER_GRACE, self._timed_out, sid, to
        )
        waiter.future.set_exception(RequestTimeout(f"no answer from {to} within the time limit"))

    def backlog(self, to: str) -> int:
        """Octets this stream has not written yet: the socket's write buffer, and an estimate
        (512 each) for stanzas still in slixmpp's send queue. One stream carries every peer and
        XMPP tells nothing of a recipient's own backlog: the figure is the same for every
        ``to`` (the IED's outgoing bound, :mod:`.outbox`, works on it). Without a live session
        (:attr:`connected` False) nothing may be sent whatever this says: slixmpp would queue
        it unbounded and replay it into the next session."""
        client = self._client
        transport = getattr(client, "transport", None)
        if client is None or transport is None:
            return 0
        try:
            queued = client.waiting_queue.qsize()
            return int(transport.get_write_buffer_size()) + 512 * queued
        except (AttributeError, RuntimeError):  # a transport without a write buffer
            return 0

    def send_message(self, to: str, payload: Any) -> None:
        """Send the typed ``payload`` in a ``message type='normal'`` (informationReport...)."""
        client = self._require_client()
        client.send(xmppwire.message(client, str(JID(to)), payload_bytes(payload, self._gate)))

    def send_encoded(self, to: str, data: bytes) -> None:
        """:meth:`send_message` of a payload already encoded and validated
        (:func:`~.stanza.payload_bytes`: the IED's outbox encodes what waits once, to measure
        it)."""
        client = self._require_client()
        client.send(xmppwire.message(client, str(JID(to)), data))

    def reply_encoded(self, item: Received, data: bytes) -> None:
        """:meth:`reply` with a payload already encoded and validated (see
        :meth:`send_encoded`)."""
        if self._client is None or item.kind != "iq":
            return
        client = self._client
        client.send(xmppwire.iq(client, "result", item.sender, item.id, data))

    def send_raw(self, data: str) -> None:
        """Send raw XML on the stream exactly as given (tests of hostile input only)."""
        self._require_client()
        self._send_raw_unchanged(data)

    def _require_client(self) -> slixmpp.ClientXMPP:
        if self._client is None:
            raise XmppError("not connected")
        return self._client

    async def ping(self, jid: str | None = None, timeout: float = 5.0) -> float:
        """XEP-0199 ping of ``jid`` (default: the XMPP server); returns the round trip in s."""
        client = self._require_client()
        try:
            target = JID(jid) if jid is not None else None
            return await client.plugin["xep_0199"].ping(jid=target, timeout=timeout)
        except IqError as exc:
            err = exc.iq["error"]
            raise StanzaError(err["condition"], err["text"], err["type"], err["by"]) from None
        except IqTimeout:
            raise RequestTimeout(f"no answer to a ping of {jid or 'the server'}") from None

    async def __aenter__(self) -> IecXmpp:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
