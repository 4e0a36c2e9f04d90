"""What the sans-IO protocol cores of IEC 61850-8-2 emit, and the transport they are shelled in.

The cores (:class:`~.server_protocol.ServerProtocol`, :class:`~.client_protocol.ClientProtocol`)
take a :class:`~.stanza.Received` (sender, stanza type, association id, typed payload) and
``now``, and return a list of these outgoing items, all carrying typed payloads (an ``Mmspdu``
or the envelope its association's :mod:`~.envelope` layer sealed it in):

- :class:`Reply`: ``iq result`` to a request;
- :class:`ErrorReply`: an RFC 6120 stanza error to a request (Annex D Table D.2);
- :class:`Send`: a ``message`` (rejectPDU, informationReport);
- :class:`Call`: an ``iq get/set`` request of our own, whose answer (or failure) the shell feeds
  back to the core with the item's ``token``.

:class:`Transport` is what the asyncio shells (:mod:`.server`, :mod:`.client`) need from a
transport; :class:`~.xmpp.IecXmpp` and :class:`~.memory.MemoryEndpoint` both provide it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .stanza import Received

__all__ = ["Reply", "ErrorReply", "Send", "Call", "Outgoing", "Transport", "InboundHandler"]


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer ``request`` with ``iq type=result`` carrying ``payload`` (None: empty result)."""

    request: Received
    payload: Any


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """Answer ``request`` with a stanza error."""

    request: Received
    condition: str
    text: str = ""
    etype: str = "modify"


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``payload`` to ``to`` in a ``message type=normal``."""

    to: str
    payload: Any


@dataclass(frozen=True, slots=True)
class Call:
    """Send ``payload`` to ``to`` in an ``iq`` of ``iq_type``; feed the answer back by ``token``."""

    to: str
    iq_type: str
    payload: Any
    token: int


Outgoing = Reply | ErrorReply | Send | Call

InboundHandler = Callable[[Received], None]


class Transport(Protocol):
    """A stanza mover of one 8-2 entity (full JID, resource ``IEC``)."""

    lost_reason: str | None

    @property
    def full_jid(self) -> str: ...

    @property
    def connected(self) -> bool: ...

    def set_handlers(
        self,
        on_inbound: InboundHandler,
        *,
        on_peer_unavailable: Callable[[str], None] | None = None,
        on_link_lost: Callable[[], None] | None = None,
        gate: Any = None,
    ) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def reply(self, item: Received, payload: Any) -> None: ...

    def reply_error(
        self, item: Received, condition: str, text: str = "", etype: str = "modify"
    ) -> None: ...

    def send_message(self, to: str, payload: Any) -> None: ...

    async def request(
        self, to: str, iq_type: str, payload: Any, timeout: float | None = None
    ) -> Received: ...

    async def ping(self, jid: str, timeout: float) -> float:
        """XEP-0199 ping of ``jid``: the round trip in seconds, or :class:`~.stanza.StanzaError`
        (with the error's ``by``), :class:`~.stanza.RequestTimeout`, :class:`~.stanza.LinkLost`.
        """
        ...

    def track_peer(self, jid: str) -> None: ...

    def untrack_peer(self, jid: str) -> None: ...
