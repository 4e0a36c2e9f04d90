"""IEEE C37.118.2-2011 synchrophasor frames and their bridge to STTP.

- :mod:`.frames`, :mod:`.layout`, :mod:`.framing`: sans-IO frames (header, CFG-1/2/3 with
  continuation, data in every FORMAT, commands), CRC-CCITT checked, bounded.
- :mod:`.mapping`: configuration -> STTP metadata (openPDC conventions), data -> measurements,
  STAT <-> STTP quality flags, SOC/FRACSEC <-> ticks.
- :mod:`.client` (PDC client: TCP, UDP data), :mod:`.server` (PMU / PDC emulation).
- :mod:`.bridge`: C37.118 in, STTP out; STTP in, C37.118 out.
"""

from __future__ import annotations

from gridbind.c37118.errors import C37118Error, ConfigurationError, FrameError

__all__ = ["C37118Error", "ConfigurationError", "FrameError"]
