"""The one asyncio shell both STTP profiles run their sans-IO sessions in.

A session (draft-0.8 or IEEE 2664) decides everything about the protocol; :class:`SessionShell`
only moves bytes and time, the way aioquic's ``QuicConnectionProtocol`` drives a
``QuicConnection``:

- what arrives on the TCP (or TLS) stream goes to ``session.receive_data(data, now)``;
- the events that come back go to :meth:`SessionShell.event_received` (the profile's hook),
  then everything the session queued is written (:meth:`SessionShell.flush`): its stream
  bytes, and its UDP datagrams to the peer's data channel once one was opened
  (:meth:`SessionShell.open_datagram_target`);
- one timer runs at ``session.next_deadline()`` and calls ``session.tick(now)``; it is re-armed
  after every flush;
- writing is bounded: a publisher's connection applies the slow-subscriber policy
  (:class:`SlowPeerPolicy`, :mod:`gridbind.sttp.slowpeer`), any other connection is dropped when
  more than :attr:`SessionShell.max_write_buffer` bytes stay unsent;
- a session that ends itself (``session.closed``) has its last bytes flushed, then the
  connection closes with ``session.close_reason``; a lost connection ends the session with the
  reason (:attr:`SessionShell.ended` holds it).

A subscriber's UDP data channel outlives its TCP connections (both profiles keep one port), so
it is a separate endpoint (:func:`open_datagram_inlet`) whose datagrams the profile hands to
the current connection's :meth:`SessionShell.datagram_received`.

Decisions: an exception that escapes a session or an event hook is a bug, not hostile input (the
sessions turn bad input into a close): it is logged and ends that connection alone. Bytes that
arrive before the profile started the session (a TLS peer whose address is being checked) are
held, at most :attr:`SessionShell.max_held` bytes.
"""

from gridbind.sttp.shell.contract import DatagramSink, DatagramSource, Session, SlowPeerPolicy
from gridbind.sttp.shell.inlet import open_datagram_inlet
from gridbind.sttp.shell.stream import SessionShell

__all__ = [
    "DatagramSink",
    "DatagramSource",
    "Session",
    "SessionShell",
    "SlowPeerPolicy",
    "open_datagram_inlet",
]
