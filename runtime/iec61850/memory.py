"""An in-memory transport for IEC 61850-8-2: endpoints in one process, no XMPP server.

:class:`MemoryNetwork` routes stanzas between its :class:`MemoryEndpoint` s the way an XMPP
server routes them between sessions of resource ``IEC``, so that the server and client shells
(:class:`~gridbind.iec61850.server.IedServer`, :class:`~gridbind.iec61850.client.Client`) run
unchanged on it::

    net = MemoryNetwork()
    server = IedServer(model, transport=net.endpoint("ied@memory"))
    client = Client(transport=net.endpoint("ops@memory"))

What it keeps of XMPP: every payload is encoded by the sender's codec gate into the same stanza
element an XMPP session would carry and decoded strictly by the receiver's (the code path of
:mod:`.stanza` that the slixmpp adapter uses); iq answers (result or stanza error), timeouts,
``service-unavailable`` for a JID that is not online; XEP-0199 pings, answered by every endpoint
(an endpoint that stops answering them is a :attr:`MemoryNetwork.tap` dropping them); ordered
delivery; directed presence, so
that :meth:`MemoryEndpoint.close` and :meth:`MemoryEndpoint.drop_link` make the peers it sent
presence to see ``unavailable`` and the dropped endpoint see its link lost (abort semantics).
What it leaves out is what the Prosody tests cover: TLS, SASL, stream errors, XEP-0198, SRV.

:meth:`MemoryNetwork.hold` stalls one recipient (what is sent to it waits in the network until
:meth:`MemoryNetwork.release`); :meth:`MemoryNetwork.hold_stream` stalls what one endpoint sends,
to everyone (its own XMPP stream backed up, as the IED's over a slow link). Both are in
:meth:`MemoryEndpoint.backlog`, the signal the IED's outgoing bound works on; only the second
exists over XMPP (:meth:`.xmpp.IecXmpp.backlog` is the one stream's, the same for every peer).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from typing import Any

from . import codec as _codec
from .protocol import InboundHandler
from .stanza import (
    LATE_ANSWER_GRACE,
    RESOURCE,
    LinkLost,
    Received,
    RequestTimeout,
    StanzaError,
    XmppError,
    answer_matches,
    decode_payload,
    error_text,
    payload_element,
    unwrap,
)

__all__ = ["MemoryNetwork", "MemoryEndpoint"]

log = logging.getLogger(__name__)

_CLIENT_NS = "{jabber:client}"
_PING_TAG = "{urn:xmpp:ping}ping"


class MemoryNetwork:
    """The routing of one process-local XMPP domain."""

    def __init__(self) -> None:
        self.online: dict[str, MemoryEndpoint] = {}
        self._ids = itertools.count(1)
        #: Stanzas routed (kind, from, to), for tests that check what travelled.
        self.log: list[tuple[str, str, str]] = []
        #: ``tap(sender, to, stanza)`` sees every stanza before delivery and returns the one to
        #: deliver (altered, for tests of a hostile operator) or None to drop it.
        self.tap: Callable[[str, str, ET.Element], ET.Element | None] | None = None
        # stalled recipients: what waits for them, and its octets
        self._held: dict[str, deque[tuple[str, ET.Element]]] = {}
        self._held_octets: dict[str, int] = {}
        # stalled senders (their stream backed up): what they sent, to whom, and its octets
        self._streams: dict[str, deque[tuple[str, ET.Element]]] = {}
        self._stream_octets: dict[str, int] = {}

    def hold(self, jid: str) -> None:
        """Stall ``jid``: stanzas for it wait in the network (a client that does not read)."""
        self._held.setdefault(jid, deque())
        self._held_octets.setdefault(jid, 0)

    def release(self, jid: str) -> None:
        """Deliver what waited for ``jid``, in order, and stop holding it."""
        waiting = self._held.pop(jid, deque())
        self._held_octets.pop(jid, None)
        target = self.online.get(jid)
        if target is None:
            return
        loop = asyncio.get_running_loop()
        for sender, stanza in waiting:
            loop.call_soon(target._receive, sender, stanza)

    def held(self, jid: str) -> int:
        """Octets waiting for a stalled ``jid`` (0 when it is not stalled)."""
        return self._held_octets.get(jid, 0)

    def hold_stream(self, jid: str) -> None:
        """Stall what ``jid`` sends, to every recipient (its own stream is backed up)."""
        self._streams.setdefault(jid, deque())
        self._stream_octets.setdefault(jid, 0)

    def release_stream(self, jid: str) -> None:
        """Route what ``jid`` sent while stalled, in order, and stop stalling it."""
        waiting = self._streams.pop(jid, deque())
        self._stream_octets.pop(jid, None)
        for to, stanza in waiting:
            self._route(jid, to, stanza)

    def stream_backlog(self, jid: str) -> int:
        """Octets ``jid`` sent that wait in its stalled stream (0 when it is not stalled)."""
        return self._stream_octets.get(jid, 0)

    def endpoint(
        self,
        jid: str,
        on_inbound: InboundHandler | None = None,
        *,
        gate: _codec.Codec | None = None,
        request_timeout: float = 10.0,
    ) -> MemoryEndpoint:
        """A new endpoint for the account ``jid`` (bound to resource ``IEC`` on start)."""
        return MemoryEndpoint(self, jid, on_inbound, gate=gate, request_timeout=request_timeout)

    def next_id(self) -> str:
        return f"m{next(self._ids)}"

    def deliver(self, sender: MemoryEndpoint, to: str, stanza: ET.Element) -> bool:
        """Queue ``stanza`` for ``to``; False when nobody of that full JID is online."""
        target = self.online.get(to)
        kind = stanza.tag.removeprefix(_CLIENT_NS)
        self.log.append((kind, sender.full_jid, to))
        if target is None:
            return False
        stream = self._streams.get(sender.full_jid)
        if stream is not None:
            stream.append((to, stanza))
            self._stream_octets[sender.full_jid] += len(ET.tostring(stanza))
            return True
        self._route(sender.full_jid, to, stanza)
        return True

    def _route(self, sender: str, to: str, stanza: ET.Element) -> None:
        target = self.online.get(to)
        if target is None:
            return
        if self.tap is not None:
            tapped = self.tap(sender, to, stanza)
            if tapped is None:  # the tap dropped it
                return
            stanza = tapped
        held = self._held.get(to)
        if held is not None:
            held.append((sender, stanza))
            self._held_octets[to] += len(ET.tostring(stanza))
            return
        asyncio.get_running_loop().call_soon(target._receive, sender, stanza)


class MemoryEndpoint:
    """One 8-2 entity on a :class:`MemoryNetwork` (the :class:`~.protocol.Transport` shape)."""

    def __init__(
        self,
        network: MemoryNetwork,
        jid: str,
        on_inbound: InboundHandler | None,
        *,
        gate: _codec.Codec | None,
        request_timeout: float,
    ) -> None:
        bare = jid.split("/")[0]
        if "@" not in bare:
            raise ValueError(f"not a JID of an account: {jid!r}")
        self.network = network
        self.full_jid_value = f"{bare}/{RESOURCE}"
        self.on_inbound = on_inbound
        self.on_peer_unavailable: Callable[[str], None] | None = None
        self.on_link_lost: Callable[[], None] | None = None
        #: Called with each decoded answer as it arrives, before its requester resumes (a
        #: shell that must open envelopes in arrival order, E2E, sets it).
        self.on_answer: Callable[[Received], None] | None = None
        #: Called when a suspended link comes back (:meth:`resume`), as XEP-0198 resumption.
        self.on_resumed: Callable[[], None] | None = None
        self.request_timeout = request_timeout
        self._gate = gate or _codec.default_codec()
        self._tracked: set[str] = set()
        # iq id -> (the JID asked, the answer): only that JID may answer (a spoofed id is dropped).
        self._pending: dict[str, tuple[str, asyncio.Future]] = {}
        self._live = False
        self._suspended = False
        self.lost_reason: str | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def full_jid(self) -> str:
        return self.full_jid_value

    @property
    def connected(self) -> bool:
        return self._live and not self._suspended

    def suspend(self) -> None:
        """The link is down but the session may come back (XEP-0198 resumption window): the
        endpoint stays online and keeps its associations, but :attr:`connected` is False, so a
        sender must hold what it has (the IED's outbox does) until :meth:`resume`."""
        self._suspended = True

    def resume(self) -> None:
        """The session resumed (see :meth:`suspend`)."""
        was, self._suspended = self._suspended, False
        if was and self._live and self.on_resumed is not None:
            self.on_resumed()

    def set_handlers(
        self,
        on_inbound: InboundHandler,
        *,
        on_peer_unavailable: Callable[[str], None] | None = None,
        on_link_lost: Callable[[], None] | None = None,
        gate: _codec.Codec | None = None,
    ) -> None:
        """Wire the endpoint to a shell (the server or client) before :meth:`start`."""
        self.on_inbound = on_inbound
        self.on_peer_unavailable = on_peer_unavailable
        self.on_link_lost = on_link_lost
        if gate is not None:
            self._gate = gate

    async def start(self) -> None:
        if self.full_jid in self.network.online:
            raise XmppError(f"{self.full_jid} is already online (conflict)")
        self.network.online[self.full_jid] = self
        self._live = True
        self.lost_reason = None

    async def close(self) -> None:
        """Leave: peers that got our presence see ``unavailable``; waiting requests fail."""
        self._leave(f"{self.full_jid} closed")

    def drop_link(self, reason: str = "XMPP link lost") -> None:
        """A link loss without resumption: our associations abort, and so do the peers'."""
        if not self._live:
            return
        self.lost_reason = reason
        self._leave(reason)
        if self.on_link_lost is not None:
            self.on_link_lost()

    def _leave(self, reason: str) -> None:
        if not self._live:
            return
        self._live = False
        self.network.online.pop(self.full_jid, None)
        for _, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(LinkLost(reason))
                fut.exception()  # the waiter gets it; no "never retrieved" if it went away
        self._pending.clear()
        loop = asyncio.get_running_loop()
        for peer in self._tracked:
            target = self.network.online.get(peer)
            if target is not None:
                loop.call_soon(target._unavailable, self.full_jid)
        self._tracked.clear()

    def _unavailable(self, jid: str) -> None:
        if self._live and self.on_peer_unavailable is not None:
            self.on_peer_unavailable(jid)

    def track_peer(self, jid: str) -> None:
        """Directed presence to ``jid``: it learns when we leave."""
        self._tracked.add(jid)

    def untrack_peer(self, jid: str) -> None:
        self._tracked.discard(jid)

    # ------------------------------------------------------------------ stanzas
    def _element(self, payload: Any) -> ET.Element:
        # Tests of hostile input hand in elements as they would travel; shells hand in typed
        # payloads, encoded here exactly as the XMPP adapter encodes them.
        if isinstance(payload, ET.Element):
            return payload
        return payload_element(payload, self._gate)

    def _stanza(self, kind: str, to: str, stype: str, sid: str, *children: ET.Element):
        stanza = ET.Element(
            _CLIENT_NS + kind, {"from": self.full_jid, "to": to, "type": stype, "id": sid}
        )
        stanza.extend(children)
        return stanza

    def _require_live(self) -> None:
        if not self._live:
            raise LinkLost(self.lost_reason or f"{self.full_jid} is not connected")

    async def request(
        self, to: str, iq_type: str, payload: Any, timeout: float | None = None
    ) -> Received:
        """Send ``payload`` in an iq get/set; the answer, decoded (see the slixmpp adapter)."""
        if iq_type not in ("get", "set"):
            raise ValueError("an 8-2 request travels in iq get or set")
        self._require_live()
        sid = self.network.next_id()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._pending[sid] = (to, fut)
        stanza = self._stanza("iq", to, iq_type, sid, self._element(payload))
        limit = timeout or self.request_timeout
        deadline = loop.time() + limit
        try:
            if not self.network.deliver(self, to, stanza):
                raise StanzaError("service-unavailable", f"{to} is not available")
            return await asyncio.wait_for(fut, limit)
        except TimeoutError:
            raise RequestTimeout(f"no answer from {to} within the time limit") from None
        finally:
            if fut.cancelled() and self._pending.get(sid, ("", None))[1] is fut:
                # Given up or timed out: the answer may still come, and an E2E shell must open
                # it (on_answer), as the slixmpp adapter does; kept as long as it would be.
                later = max(deadline, loop.time()) + LATE_ANSWER_GRACE
                loop.call_at(later, self._forget, sid, fut)
            else:
                self._pending.pop(sid, None)

    def _forget(self, sid: str, fut: asyncio.Future) -> None:
        if self._pending.get(sid, ("", None))[1] is fut:
            del self._pending[sid]

    async def ping(self, jid: str, timeout: float | None = None) -> float:
        """XEP-0199 ping of ``jid``; the round trip in seconds (see the slixmpp adapter)."""
        self._require_live()
        loop = asyncio.get_running_loop()
        sid = self.network.next_id()
        fut: asyncio.Future = loop.create_future()
        self._pending[sid] = (jid, fut)
        started = loop.time()
        try:
            if not self.network.deliver(
                self, jid, self._stanza("iq", jid, "get", sid, ET.Element(_PING_TAG))
            ):
                raise StanzaError("service-unavailable", f"{jid} is not available")
            await asyncio.wait_for(fut, timeout or self.request_timeout)
        except TimeoutError:
            raise RequestTimeout(f"no answer to a ping of {jid}") from None
        finally:
            self._pending.pop(sid, None)
        return loop.time() - started

    def backlog(self, to: str) -> int:
        """Octets sent that have not left: our stalled stream's
        (:meth:`~MemoryNetwork.hold_stream`, the same for every ``to``), plus what waits for a
        stalled ``to`` (:meth:`~MemoryNetwork.hold`)."""
        return self.network.stream_backlog(self.full_jid) + self.network.held(to)

    def send_message(self, to: str, payload: Any) -> None:
        self._require_live()
        sid = self.network.next_id()
        self.network.deliver(
            self, to, self._stanza("message", to, "normal", sid, self._element(payload))
        )

    def send_encoded(self, to: str, data: bytes) -> None:
        """:meth:`send_message` of a payload the codec already encoded (``data``)."""
        self.send_message(to, ET.fromstring(data))

    def reply_encoded(self, item: Received, data: bytes) -> None:
        """:meth:`reply` with a payload the codec already encoded (``data``)."""
        self.reply(item, ET.fromstring(data))

    def reply(self, item: Received, payload: Any) -> None:
        if not self._live or item.kind != "iq":
            return
        children = [] if payload is None else [self._element(payload)]
        stanza = self._stanza("iq", item.sender, "result", item.id, *children)
        self.network.deliver(self, item.sender, stanza)

    def reply_error(
        self, item: Received, condition: str, text: str = "", etype: str = "modify"
    ) -> None:
        if not self._live or item.kind != "iq":
            return
        stanza = self._stanza("iq", item.sender, "error", item.id)
        error = ET.SubElement(stanza, _CLIENT_NS + "error", {"type": etype})
        error.append(ET.Element(f"{{urn:ietf:params:xml:ns:xmpp-stanzas}}{condition}"))
        if text:
            ET.SubElement(error, "{urn:ietf:params:xml:ns:xmpp-stanzas}text").text = error_text(
                text
            )
        self.network.deliver(self, item.sender, stanza)

    def _receive(self, sender: str, stanza: ET.Element) -> None:
        if not self._live:
            return
        kind = stanza.tag.removeprefix(_CLIENT_NS)
        stype = stanza.get("type", "")
        sid = stanza.get("id", "")
        if kind == "iq" and stype in ("result", "error"):
            self._answer(sender, sid, stype, stanza)
            return
        if kind == "iq" and stype == "get" and stanza.find(_PING_TAG) is not None:
            self.network.deliver(self, sender, self._stanza("iq", sender, "result", sid))
            return
        found = unwrap(stanza)
        if found is None:
            if kind == "iq":
                self.reply_error(
                    Received("iq", stype, sender, sid), "feature-not-implemented", "", "cancel"
                )
            return
        item = decode_payload(found, self._gate, Received(kind, stype, sender, sid))
        try:
            if self.on_inbound is None:
                raise XmppError("no handler")
            self.on_inbound(item)
        except Exception as exc:  # noqa: BLE001 - a bad stanza must never take the endpoint down
            log.exception("%s: handler failed on a stanza from %s", self.full_jid, sender)
            if kind == "iq":
                self.reply_error(item, "internal-server-error", type(exc).__name__)

    def _answer(self, sender: str, sid: str, stype: str, stanza: ET.Element) -> None:
        asked, fut = self._pending.get(sid, ("", None))
        if fut is None:
            return
        if not answer_matches(asked, sender):
            log.warning(
                "%s: dropped an answer to %s from %s (asked %s)", self.full_jid, sid, sender, asked
            )
            return
        del self._pending[sid]
        if stype == "error":
            if fut.done():
                return
            error = stanza.find(_CLIENT_NS + "error")
            condition, text = "undefined-condition", ""
            for child in error if error is not None else ():
                local = child.tag.rsplit("}", 1)[-1]
                if local == "text":
                    text = child.text or ""
                else:
                    condition = local
            etype = error.get("type", "cancel") if error is not None else "cancel"
            by = error.get("by", "") if error is not None else ""
            fut.set_exception(StanzaError(condition, text, etype, by))
            return
        item = Received("iq", "result", sender, sid)
        found = unwrap(stanza)
        if found is not None:
            item = decode_payload(found, self._gate, item)
            if self.on_answer is not None:  # also when the requester gave up (see request)
                self.on_answer(item)
        if not fut.done():
            fut.set_result(item)
