"""Counters an IEEE 2664 session core keeps (both roles)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Statistics:
    """Counters of one session (bytes are whole packets on the wire, headers included)."""

    measurements: int = 0
    data_packets: int = 0
    data_bytes: int = 0  # bytes of DATA_PACKET responses (TCP size prefix / UDP datagram)
    command_bytes: int = 0  # every other byte of the command channel
    dropped_packets: int = 0  # data packets that could not be decoded (no cache, TSSC gap, UDP)
    metadata_bytes: int = 0
