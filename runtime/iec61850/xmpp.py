"""The slixmpp adapter of IEC 61850-8-2: one XMPP client per IED or client application.

This module knows XMPP (connection, TLS, SASL, roster, presence, XEP-0199, XEP-0198, Annex D stanza
types and Table D.2 stanza errors) and nothing of MMS beyond the payload namespace: payloads come
in and go out as ``xml.etree`` elements of :data:`PAYLOAD_NS`; the sans-IO association core
(:mod:`gridbind.iec61850.association`) decides what they mean.

Link semantics surfaced to the core (mapping notes section 2):

- ``on_link_lost()``: the XMPP session is gone for good (no XEP-0198 resumption, resumption refused,
  or the resumption window elapsed): every association of this JID is aborted.
- ``on_peer_unavailable(jid)``: a peer's presence turned ``unavailable``: its associations abort.
- A session resumed through XEP-0198 within the window raises neither, so associations survive.

Peers learn about each other's presence through directed presence (:meth:`IecXmpp.track_peer`),
which Prosody follows with ``unavailable`` when the sender's session ends.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.stanza import Iq, Message
from slixmpp.xmlstream import ElementBase, register_stanza_plugin
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher.base import MatcherBase

from .association import valid_asso_id

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
    "Inbound",
    "IecXmpp",
    "stanza_for_pdu",
    "parse_address",
    "MmsPayload",
    "AssociationWrapper",
    "InvalidPayload",
]

log = logging.getLogger(__name__)

#: Namespace of the 8-2 payload (version 2018, revision A, release 1).
PAYLOAD_NS = "http://www.iec.ch/61850/2018/SCSM_8_2"
#: The resource every 8-2 entity binds (Annex D).
RESOURCE = "IEC"
#: With E2E security off by configuration, association-scoped PDUs travel in the bare association
#: context of IEC 62351-4, element ``AssociationContext`` of the project's E2E_4.xsd (namespace
#: of the E2E envelope): ``<AssociationContext><pp><iec61850-8-2/></pp><assoID>7</assoID>
#: <applData><MMSpdu xmlns=PAYLOAD_NS>...</MMSpdu></applData></AssociationContext>``.
ASSOC_NS = "http://www.iec.ch/62351/2018/E2E_4"
_ASSOC_TAG = "{" + ASSOC_NS + "}AssociationContext"
_MMSPDU_TAG = "{" + PAYLOAD_NS + "}MMSpdu"
#: The ProtectedProtocol alternative this adapter sends in ``pp`` and accepts (``pp`` is optional).
_PP_TAG = "{" + ASSOC_NS + "}iec61850-8-2"
_STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"

# Annex D, Table D.1: confirmed request services carried in iq get; all others in iq set.
_IQ_GET_SERVICES = frozenset(
    {
        "getNameList",
        "read",
        "getVariableAccessAttributes",
        "getNamedVariableListAttributes",
        "readJournal",
        "fileRead",
        "fileDirectory",
        "obtainFile",
        "extendedGetNameList",
    }
)
_IQ_SET_SERVICES = frozenset(
    {
        "write",
        "defineNamedVariableList",
        "deleteNamedVariableList",
        "fileOpen",
        "fileClose",
        "fileDelete",
    }
)


def stanza_for_pdu(pdu: str, service: str | None = None) -> tuple[str, str]:
    """Annex D Table D.1: ``(stanza, type)`` carrying a PDU (and, for requests, its service).

    ``pdu`` is the MMSpdu alternative (``confirmed-RequestPDU``, ``rejectPDU``, ...). Raises
    ``ValueError`` for a PDU or service that has no mapping (the caller rejects it).
    """
    if pdu == "confirmed-RequestPDU":
        if service in _IQ_GET_SERVICES:
            return ("iq", "get")
        if service in _IQ_SET_SERVICES:
            return ("iq", "set")
        raise ValueError(f"service {service!r} is not mapped to XMPP (Annex D)")
    if pdu in {
        "confirmed-ResponsePDU",
        "confirmed-ErrorPDU",
        "cancel-ResponsePDU",
        "cancel-ErrorPDU",
        "conclude-ResponsePDU",
        "conclude-ErrorPDU",
        "initiate-ResponsePDU",
        "initiate-ErrorPDU",
    }:
        return ("iq", "result")
    if pdu in {"unconfirmed-PDU", "rejectPDU"}:
        return ("message", "normal")
    if pdu == "cancel-RequestPDU":
        return ("iq", "get")
    if pdu in {"conclude-RequestPDU", "initiate-RequestPDU"}:
        return ("iq", "set")
    raise ValueError(f"PDU {pdu!r} is not mapped to XMPP (Annex D)")


class XmppError(Exception):
    """Base class of transport errors."""


class XmppConnectError(XmppError):
    """Connecting, TLS validation or authentication failed."""


class LinkLost(XmppError):
    """The XMPP session ended for good (e.g. an RFC 6120 stream error such as ``conflict``)
    while a request waited for its answer, or before it was sent."""


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


class RequestTimeout(XmppError):
    """No answer to an iq within the time limit."""


class InvalidPayload(XmppError):
    """An answer failed the strict gate (envelope or payload) or came in another association."""


class StanzaError(XmppError):
    """A peer (or the XMPP server) answered with an RFC 6120 stanza error (Table D.2)."""

    def __init__(self, condition: str, text: str = "", etype: str = "cancel") -> None:
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition = condition
        self.text = text
        self.etype = etype


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
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


@dataclass
class Inbound:
    """An 8-2 stanza received: its kind, type, sender, id and payload element."""

    kind: str  # "iq" | "message"
    type: str
    sender: str  # full JID
    id: str
    payload: ET.Element
    association: str | None = None
    _stanza: Any = field(default=None, repr=False)
    #: The ``AssociationContext`` the payload came in (None: a bare payload).
    envelope: ET.Element | None = None
    #: Why the stanza is refused (a ``codec.CodecError``): a malformed envelope, or, with a gate,
    #: a schema-invalid envelope or payload. ``payload`` is then the best guess (maybe the
    #: envelope itself) and must not be used.
    error: Exception | None = None
    #: Octets of the serialised MMSpdu (set by the gate; 0 without one).
    size: int = 0


@dataclass
class _Unwrapped:
    payload: ET.Element
    association: str | None
    envelope: ET.Element | None
    problem: str | None


def _local_of(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _is_8_2(tag: Any) -> bool:
    # A PAYLOAD_NS or E2E element is 8-2 traffic; so is an MMSpdu or AssociationContext in another
    # namespace (refused as malformed rather than left to the default "feature-not-implemented").
    if not isinstance(tag, str):
        return False
    if tag.startswith(("{" + PAYLOAD_NS + "}", "{" + ASSOC_NS + "}")):
        return True
    return _local_of(tag) in ("MMSpdu", "AssociationContext")


def _unwrap(xml: ET.Element) -> _Unwrapped | None:
    """The 8-2 content of a stanza (structure only; the schema check is the gate's), or None."""
    children = [c for c in xml if isinstance(c.tag, str)]
    ours = [c for c in children if _is_8_2(c.tag)]
    if not ours:
        return None
    first = ours[0]
    problem = None
    if len(ours) > 1:
        problem = f"{len(ours)} payloads in one stanza"
    elif _local_of(xml.tag) == "iq" and len(children) > 1:
        problem = "an iq request carries exactly one payload (RFC 6120)"
    if first.tag != _ASSOC_TAG:
        if not first.tag.startswith("{" + PAYLOAD_NS + "}"):
            problem = problem or (
                f"{_local_of(first.tag)} in namespace {first.tag[1:].split('}')[0]!r} "
                "is not accepted (E2E security is off: bare association context only)"
                if first.tag.startswith("{")
                else f"{first.tag} without namespace"
            )
        return _Unwrapped(first, None, None, problem)
    # AssociationContext: pp? assoID applData(MMSpdu), validated in full by the gate.
    asso = first.find("{" + ASSOC_NS + "}assoID")
    text = asso.text if asso is not None else None
    association = text if valid_asso_id(text) else None
    if association is None:
        problem = problem or f"assoID {text!r} is not an AssoID (n or n:n)"
    pp = first.find("{" + ASSOC_NS + "}pp")
    if pp is not None and [c.tag for c in pp if isinstance(c.tag, str)] != [_PP_TAG]:
        problem = problem or "pp names another protocol than iec61850-8-2"
    appl = first.find("{" + ASSOC_NS + "}applData")
    inner = [c for c in appl if isinstance(c.tag, str)] if appl is not None else []
    if appl is None:
        problem = problem or "AssociationContext without applData"
    elif len(inner) != 1:
        problem = problem or f"applData carries {len(inner)} elements, not one MMSpdu"
    elif inner[0].tag != _MMSPDU_TAG:
        problem = problem or f"applData carries {inner[0].tag}, not MMSpdu of {PAYLOAD_NS}"
    payload = inner[0] if len(inner) == 1 else first
    return _Unwrapped(payload, association, first, problem)


_HELPERS: tuple | None = None


def _gate_helpers() -> tuple:
    global _HELPERS
    if _HELPERS is None:
        from . import codec as _codec
        from .pdu import to_bytes, to_bytes_with_inner  # pdu imports this module: late import

        _HELPERS = (_codec, to_bytes, to_bytes_with_inner)
    return _HELPERS


def _gate_check(gate: Any, found: _Unwrapped) -> tuple[Exception | None, int]:
    """Strict codec gate of what travelled: ``(error or None, MMSpdu octets)``.

    The whole envelope is validated against the schema set (E2E_4 imports SCSM_8_2, so the
    payload inside is validated in the same pass); its root must be the element it claims to be.
    """
    _codec, to_bytes, to_bytes_with_inner = _gate_helpers()
    if found.problem is not None:
        return _codec.SchemaViolation(found.problem), 0
    try:
        if found.envelope is not None:
            # One serialisation: the envelope's octets, and the MMSpdu's own size within them.
            data, size = to_bytes_with_inner(found.envelope, found.payload)
        else:
            data = to_bytes(found.payload)
            size = len(data)
    except RecursionError:
        return _codec.LimitExceeded("elements nested too deep to serialise"), 0
    if gate is None:  # structure checked, no schema gate configured
        return None, size
    try:
        root = gate.parse_tree(data)
        expected = _ASSOC_TAG if found.envelope is not None else _MMSPDU_TAG
        if root.tag != expected:
            raise _codec.UnknownRoot(f"expected {_local_of(expected)}, got {root.tag}", "/")
    except _codec.CodecError as exc:
        return exc, size
    return None, size


class MmsPayload(ElementBase):
    """Stanza plugin ``stanza['mmspdu']``: the 8-2 payload root (``MMSpdu`` in PAYLOAD_NS)."""

    namespace = PAYLOAD_NS
    name = "MMSpdu"
    plugin_attrib = "mmspdu"
    interfaces: set[str] = set()


class AssociationWrapper(ElementBase):
    """Stanza plugin ``stanza['iec_association']``: ``AssociationContext`` of E2E_4 (E2E off)."""

    namespace = ASSOC_NS
    name = "AssociationContext"
    plugin_attrib = "iec_association"
    interfaces = {"assoID"}
    sub_interfaces = {"assoID"}


for _stanza_class in (Iq, Message):
    register_stanza_plugin(_stanza_class, MmsPayload)
    register_stanza_plugin(_stanza_class, AssociationWrapper)


def _attach(stanza: Any, payload: ET.Element, association: str | None) -> None:
    # RFC 6120 allows one child in an iq: the AssociationContext wraps the payload, the way the
    # E2E envelope (ClearTransfer) wraps it once IEC 62351-4 security is on.
    if association is None:
        stanza.xml.append(payload)
        return
    if not valid_asso_id(association):
        raise ValueError(f"association id {association!r} is not an AssoID (n or n:n)")
    wrapper = stanza["iec_association"]
    ET.SubElement(ET.SubElement(wrapper.xml, "{" + ASSOC_NS + "}pp"), _PP_TAG)
    wrapper["assoID"] = association
    ET.SubElement(wrapper.xml, "{" + ASSOC_NS + "}applData").append(payload)


def _association_of(xml: ET.Element) -> str | None:
    found = _unwrap(xml)
    return found.association if found is not None else None


def _first_payload(xml: ET.Element) -> ET.Element | None:
    found = _unwrap(xml)
    return found.payload if found is not None and found.problem is None else None


class _PayloadMatcher(MatcherBase):
    """Matches iq get/set and message stanzas that carry a payload in PAYLOAD_NS."""

    def __init__(self) -> None:
        super().__init__(PAYLOAD_NS)

    def match(self, stanza: Any) -> bool:
        name = stanza.name
        if name == "iq":
            if stanza["type"] not in ("get", "set"):
                return False
        elif name != "message":
            return False
        return any(_is_8_2(child.tag) for child in stanza.xml)


InboundHandler = Callable[[Inbound], "Awaitable[None] | None"]


class IecXmpp:
    """A connected 8-2 XMPP endpoint (resource ``IEC``).

    ``on_inbound`` receives every iq get/set and message with a payload; iq requests must be
    answered with :meth:`reply` or :meth:`reply_error` (the adapter answers ``internal-server-
    error`` itself when the handler raises, so a bad stanza never goes unanswered or crashes).

    ``gate`` (a :class:`~gridbind.iec61850.codec.Codec`): every inbound envelope or bare payload,
    requests, messages and answers alike, is validated strictly before use. A refused inbound
    stanza still reaches ``on_inbound`` with :attr:`Inbound.error` set (the handler owns the
    mapped answer); a refused answer raises :class:`InvalidPayload` from :meth:`request`. A
    malformed AssociationContext is refused even without a gate.
    """

    def __init__(
        self,
        settings: XmppSettings,
        on_inbound: InboundHandler,
        *,
        on_peer_unavailable: Callable[[str], None] | None = None,
        on_link_lost: Callable[[], None] | None = None,
        on_resumed: Callable[[], None] | None = None,
        gate: Any = None,
    ) -> None:
        self._gate = gate
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
        self._on_resumed = on_resumed
        self._client: slixmpp.ClientXMPP | None = None
        self._ready: asyncio.Future[None] | None = None
        self._closing = False
        # idle (before the first session) -> live -> resuming -> live | lost -> live ...
        self._state = "idle"
        self._resume_timer: asyncio.TimerHandle | None = None
        self._tracked: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        #: iq futures waiting for their answer: failed at once when the session is lost.
        self._pending: set[asyncio.Future] = set()
        #: Why the session ended for good (an unrecoverable stream error), else None.
        self._fatal: str | None = None
        #: Why the last session was lost (read by on_link_lost handlers), else None.
        self.lost_reason: str | None = None

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
            client.configure_dns = self._configure_dns
        client.enable_direct_tls = bool(s.direct_tls)
        client.enable_starttls = not s.direct_tls
        client.enable_plaintext = False
        keepalive = {"keepalive": s.ping_interval > 0}
        if s.ping_interval > 0:
            # a ping unanswered within the interval means a frozen link: slixmpp reconnects
            keepalive.update(interval=s.ping_interval, timeout=max(1.0, s.ping_interval))
        client.register_plugin("xep_0199", keepalive)
        if s.stream_management:
            client.register_plugin("xep_0198", {"allow_resume": True})
        client.register_handler(Callback("IEC 61850-8-2 payload", _PayloadMatcher(), self._inbound))
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
        except asyncio.TimeoutError:
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
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - leaving anyway
                client.abort()
        for task in list(self._tasks):
            task.cancel()
        for fut in list(self._pending):
            if not fut.done():
                fut.set_exception(LinkLost(f"{self.jid} closed"))
        # slixmpp leaves its outgoing filter task running after disconnect; end it here so that
        # closing the event loop does not warn about a destroyed pending task.
        filters = getattr(client, "_run_out_filters", None)
        if filters is not None and not filters.done():
            filters.cancel()
            try:
                await filters
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - it was cancelled
                pass

    def drop_link(self) -> None:
        """Cut the TCP connection without a goodbye (a link loss; tests resumption)."""
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
        if was == "resuming" and self._on_resumed is not None:
            self._on_resumed()

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

    def _inbound(self, stanza: Any) -> None:
        found = _unwrap(stanza.xml)
        if found is None:  # matcher guarantees it; defensive against plugin reordering
            return
        kind = stanza.name
        item = Inbound(
            kind=kind,
            type=stanza["type"] or ("normal" if kind == "message" else ""),
            sender=str(stanza["from"]),
            id=stanza["id"],
            payload=found.payload,
            association=found.association,
            _stanza=stanza,
            envelope=found.envelope,
        )
        if self._gate is not None or found.problem is not None:
            item.error, item.size = _gate_check(self._gate, found)
        try:
            result = self._on_inbound(item)
        except Exception as exc:  # noqa: BLE001 - a bad stanza must never take the endpoint down
            log.exception("%s: handler failed on a stanza from %s", self.jid, item.sender)
            if kind == "iq":
                self.reply_error(item, "internal-server-error", f"{type(exc).__name__}")
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(lambda t, item=item: self._task_done(t, item))

    def _task_done(self, task: asyncio.Task, item: Inbound) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s: async handler failed: %r", self.jid, exc)
            if item.kind == "iq":
                self.reply_error(item, "internal-server-error", type(exc).__name__)

    def reply(
        self, item: Inbound, payload: ET.Element | None, association: str | None = None
    ) -> None:
        """Answer an iq request with ``iq type=result`` carrying ``payload``."""
        if self._client is None or item.kind != "iq":
            return
        reply = item._stanza.reply(clear=True)
        if payload is not None:
            _attach(reply, payload, association)
        reply.send()

    def reply_error(
        self, item: Inbound, condition: str, text: str = "", etype: str = "modify"
    ) -> None:
        """Answer an iq request with an RFC 6120 stanza error (Table D.2, recoverable faults)."""
        if self._client is None or item.kind != "iq":
            return
        reply = item._stanza.reply(clear=True)
        reply["type"] = "error"
        reply["error"]["type"] = etype
        reply["error"]["condition"] = condition
        if text:
            # Error texts may quote peer input: keep only characters XML 1.0 can carry.
            reply["error"]["text"] = "".join(
                c if c >= " " or c in "\t\n" else "?" for c in text[:500]
            )
        reply.send()

    async def request(
        self,
        to: str,
        iq_type: str,
        payload: ET.Element,
        timeout: float | None = None,
        association: str | None = None,
    ) -> ET.Element | None:
        """Send ``payload`` in an iq get/set to a full JID; return the result's payload.

        Raises :class:`StanzaError` for an error answer, :class:`RequestTimeout`, and
        :class:`InvalidPayload` for an answer refused by the gate or from another association.
        """
        if iq_type not in ("get", "set"):
            raise ValueError("an 8-2 request travels in iq get or set")
        client = self._require_client()
        if self._fatal is not None:
            raise LinkLost(self._fatal)
        iq = client.make_iq(ito=to, itype=iq_type)
        _attach(iq, payload, association)
        sent = iq.send(timeout=timeout or self.settings.request_timeout)
        self._pending.add(sent)
        try:
            answer = await sent
        except IqError as exc:
            err = exc.iq["error"]
            raise StanzaError(err["condition"], err["text"], err["type"]) from None
        except IqTimeout:
            raise RequestTimeout(f"no answer from {to} within the time limit") from None
        finally:
            self._pending.discard(sent)
        found = _unwrap(answer.xml)
        if found is None:
            return None
        if found.association != association and found.problem is None:
            raise InvalidPayload(
                f"answer from {to} in association {found.association!r}, not {association!r}"
            )
        if self._gate is not None or found.problem is not None:
            error, _ = _gate_check(self._gate, found)
            if error is not None:
                raise InvalidPayload(f"answer from {to}: {error}")
        return found.payload

    def send_message(self, to: str, payload: ET.Element, association: str | None = None) -> None:
        """Send ``payload`` in a ``message type='normal'`` (informationReport, rejectPDU)."""
        client = self._require_client()
        msg = client.make_message(mto=to, mtype="normal")
        _attach(msg, payload, association)
        msg.send()

    def send_raw(self, data: str) -> None:
        """Send raw XML on the stream (tests of hostile input only)."""
        self._require_client().send_raw(data)

    def _require_client(self) -> slixmpp.ClientXMPP:
        if self._client is None:
            raise XmppError("not connected")
        return self._client

    async def ping(self, jid: str | None = None, timeout: float = 5.0) -> float:
        """XEP-0199 ping of ``jid`` (default: the XMPP server); returns the round trip in s."""
        client = self._require_client()
        try:
            return await client.plugin["xep_0199"].ping(jid=jid, timeout=timeout)
        except IqError as exc:
            raise StanzaError(exc.iq["error"]["condition"], exc.iq["error"]["text"]) from None
        except IqTimeout:
            raise RequestTimeout("ping timed out") from None

    async def __aenter__(self) -> "IecXmpp":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
