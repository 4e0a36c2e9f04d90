"""Sans-IO peer liveness of an 8-2 client: XEP-0199 pings of the peers it is associated with.

Abort has no PDU in 8-2: the client learns that an IED is gone from the IED's presence turning
``unavailable``. That presence does not always come: a frozen IED keeps its XMPP session, a
session that vanished without a goodbye hibernates for the XEP-0198 window, and an XMPP cluster
node that crashes may take the IED's session with it before its ``unavailable`` reaches the other
nodes. So, while associations with a peer are idle, the client pings the peer's full JID::

    live = PeerLiveness(interval=30.0, timeout=10.0)
    live.watch(peer, now)              # an association with peer exists
    live.heard(peer, now)              # any stanza from peer: it is alive, idle time restarts
    pings = live.due(now)              # Ping(peer, token) to send now
    live.answered(ping, None, now)     # result: alive; or an exception -> unreachable reason
    lost = live.expired(now)           # [(peer, reason)]: pings unanswered past their deadline
    live.next_deadline()               # when due()/expired() must run next

``now`` is any monotonic clock in seconds, the same for every call. Intervals are jittered (by
``jitter``, a fraction of the interval) so that many clients do not ping in step.

How an answer is judged (XEP-0199 sections 4.4 and 6, RFC 6120 sections 8.3 and 10.5.3):

- an ``iq result``: the peer answered, it is alive;
- a stanza error whose ``by`` names the peer: the peer itself refused the ping (it is alive);
- a stanza error with a routing condition (``recipient-unavailable``, ``item-not-found``,
  ``remote-server-not-found``, ``remote-server-timeout``, ``gone``, ``redirect``,
  ``jid-malformed``) and no ``by`` of the peer: the XMPP server answered for a full JID it
  cannot deliver to, so the peer is unreachable. The ``from`` of such an error is the peer's JID
  either way (RFC 6120 8.3.1 swaps the addresses), so it cannot tell who answered;
- ``service-unavailable`` with no ``by`` is ambiguous: a server answers it for an
  unavailable resource (RFC 6120 10.5.3.2), but an entity that does not do XEP-0199 answers it
  too (XEP-0199 4.2, RFC 6120 8.4), e.g. a third-party IED. So it is confirmed by a *probe*
  (:attr:`Ping.probe`): the shell sends an 8-2 request in an association with the peer (one
  getNameList page), which a live IED must answer with 8-2 content (a result or an 8-2 error)
  while a server answers for a gone resource ``service-unavailable`` again. Only that, or no
  answer within ``timeout``, makes the peer unreachable (DECISIONS.md 43);
- any other stanza error (``feature-not-implemented``, ``not-allowed``, ...): an answer from a
  live entity;
- no answer within ``timeout``: unreachable.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from gridbind.iec61850.errors import InvalidArgument

from .stanza import LinkLost, RequestTimeout, StanzaError

__all__ = [
    "Ping",
    "PeerLiveness",
    "ROUTING_CONDITIONS",
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_PING_TIMEOUT",
    "unreachable_reason",
    "ambiguous",
]

#: Seconds of idleness after which an associated peer is pinged (None: no pings).
DEFAULT_PING_INTERVAL = 30.0
#: Seconds a ping may go unanswered before the peer's associations abort.
DEFAULT_PING_TIMEOUT = 10.0

#: Stanza error conditions an XMPP server returns for an address it cannot deliver to.
ROUTING_CONDITIONS = frozenset(
    {
        "service-unavailable",
        "recipient-unavailable",
        "item-not-found",
        "remote-server-not-found",
        "remote-server-timeout",
        "gone",
        "redirect",
        "jid-malformed",
    }
)


@dataclass(frozen=True, slots=True)
class Ping:
    """Send an XEP-0199 ping to ``peer`` (``probe``: an 8-2 request in an association with it
    instead, see the module doc); report its outcome with this object (the outcome of a probe:
    None for any 8-2 answer, result or error; the transport's exception otherwise)."""

    peer: str
    token: int
    probe: bool = False


@dataclass(slots=True)
class _Peer:
    due: float  # when the next ping is due (idle since due - interval)
    ping: Ping | None = None  # the ping in flight
    deadline: float = 0.0  # ... and when it counts as unanswered
    confirm: bool = False  # a ping was answered service-unavailable: a probe is due now


def _by_peer(peer: str, error: StanzaError) -> bool:
    return bool(error.by) and error.by in (peer, peer.split("/", 1)[0])


def ambiguous(peer: str, error: BaseException) -> bool:
    """Whether ``error`` (of a ping of ``peer``) may come from the XMPP server for a gone
    resource or from a live peer that does not do XEP-0199: ``service-unavailable`` naming no
    generator (``by``). It is confirmed by a probe (see the module doc)."""
    return (
        isinstance(error, StanzaError) and error.condition == "service-unavailable" and not error.by
    )


def unreachable_reason(peer: str, error: BaseException, what: str = "the ping") -> str | None:
    """Why ``error`` (the failure of a ping of ``peer``, or of ``what``) shows the peer
    unreachable; None when it is an answer of a live peer (or says nothing about the peer).
    (For a ping, an :func:`ambiguous` error is confirmed by a probe before it counts.)"""
    if isinstance(error, StanzaError):
        if _by_peer(peer, error):
            return None  # the peer refused the ping itself: it is there
        if error.condition in ROUTING_CONDITIONS:
            detail = f" ({error.text})" if error.text else ""
            return f"peer unreachable: the XMPP server answered {what} {error.condition}{detail}"
        return None
    if isinstance(error, RequestTimeout):
        return "peer unreachable: no answer to an XEP-0199 ping"
    return None


class PeerLiveness:
    """Ping schedule and verdicts for the peers of one client (see the module doc)."""

    def __init__(
        self,
        interval: float | None = DEFAULT_PING_INTERVAL,
        timeout: float = DEFAULT_PING_TIMEOUT,
        *,
        jitter: float = 0.2,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if interval is not None and interval <= 0:
            raise InvalidArgument(f"ping interval must be positive or None, not {interval}")
        if timeout <= 0:
            raise InvalidArgument(f"ping timeout must be positive, not {timeout}")
        if not 0 <= jitter < 1:
            raise InvalidArgument(f"ping jitter must be in [0, 1), not {jitter}")
        self.interval = interval
        self.timeout = timeout
        self.jitter = jitter
        self._rand = rand
        self._peers: dict[str, _Peer] = {}
        self._tokens = 0

    @property
    def enabled(self) -> bool:
        return self.interval is not None

    def _idle_period(self) -> float:
        assert self.interval is not None
        return self.interval * (1.0 - self.jitter / 2 + self.jitter * self._rand())

    @property
    def peers(self) -> list[str]:
        """The peers watched."""
        return list(self._peers)

    def watch(self, peer: str, now: float) -> None:
        """Start watching ``peer`` (no effect when watched already or pings are off)."""
        if self.interval is not None and peer not in self._peers:
            self._peers[peer] = _Peer(due=now + self._idle_period())

    def forget(self, peer: str) -> None:
        """Stop watching ``peer`` (its last association ended); a ping in flight is ignored."""
        self._peers.pop(peer, None)

    def heard(self, peer: str, now: float) -> None:
        """A stanza from ``peer`` arrived: it is alive; the idle time starts again."""
        state = self._peers.get(peer)
        if state is not None:
            state.ping = None
            state.confirm = False
            state.due = now + self._idle_period()

    def postpone(self, now: float) -> None:
        """Our own link is down: nothing can be judged; pings in flight are forgotten and every
        peer is pinged one idle period after the link is back."""
        for state in self._peers.values():
            state.ping = None
            state.confirm = False
            state.due = now + self._idle_period()

    def due(self, now: float) -> list[Ping]:
        """The pings to send now (one per idle peer at a time)."""
        out = []
        for peer, state in self._peers.items():
            if state.ping is None and now >= state.due:
                self._tokens += 1
                state.ping = Ping(peer, self._tokens, probe=state.confirm)
                state.confirm = False
                state.deadline = now + self.timeout
                out.append(state.ping)
        return out

    def answered(self, ping: Ping, error: BaseException | None, now: float) -> str | None:
        """Judge the outcome of ``ping`` (``error`` None: an iq result); returns the reason the
        peer is unreachable (and stops watching it), None when it is alive or the outcome is
        stale (the peer was heard from meanwhile, or is no longer watched)."""
        state = self._peers.get(ping.peer)
        if state is None or state.ping != ping:
            return None
        if isinstance(error, LinkLost):
            self.postpone(now)  # our link, not the peer: judge again once it is back
            return None
        if error is not None and not ping.probe and ambiguous(ping.peer, error):
            state.ping = None
            state.confirm = True  # gone, or an IED without XEP-0199: ask it in 8-2
            state.due = now
            return None
        what = "a ping and an 8-2 request" if ping.probe else "the ping"
        reason = unreachable_reason(ping.peer, error, what) if error is not None else None
        if reason is not None:
            del self._peers[ping.peer]
            return reason
        state.ping = None
        state.due = now + self._idle_period()
        return None

    def expired(self, now: float) -> list[tuple[str, str]]:
        """Peers whose ping went unanswered past its deadline (no longer watched), with why."""
        lost = [
            (
                peer,
                f"peer unreachable: no answer to an {what} within {self.timeout:g} s",
            )
            for peer, state in self._peers.items()
            if state.ping is not None and now >= state.deadline
            for what in ("8-2 request" if state.ping.probe else "XEP-0199 ping",)
        ]
        for peer, _ in lost:
            del self._peers[peer]
        return lost

    def next_deadline(self) -> float | None:
        """When :meth:`due` or :meth:`expired` has something to do next (None: nothing)."""
        times = [s.deadline if s.ping is not None else s.due for s in self._peers.values()]
        return min(times, default=None)
