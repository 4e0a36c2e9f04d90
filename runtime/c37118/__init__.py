"""IEEE C37.118.2-2011 synchrophasor frames and their bridges to and from STTP.

- :mod:`.frames`, :mod:`.layout`, :mod:`.framing`: sans-IO frames (header, CFG-1/2/3 with
  continuation, data in every FORMAT, commands), CRC-CCITT checked, bounded.
- :mod:`.mapping`: configuration -> STTP metadata (openPDC conventions), data -> measurements,
  STAT <-> STTP state flags, SOC/FRACSEC <-> ticks; :mod:`.outbound`: the way back.
- :mod:`.client` (PDC client: TCP, UDP data), :mod:`.server` (PMU / PDC emulation).
- :mod:`.bridge`: C37.118 in -> STTP out, STTP in -> C37.118 out; :mod:`.cli` the commands.

Names are imported lazily, so importing one submodule does not load the asyncio runtime or STTP.
"""

from __future__ import annotations

import importlib
from typing import Any

# Re-exported eagerly: the errors are light and callers catch them without importing a submodule.
from gridbind.c37118.errors import C37118Error as C37118Error
from gridbind.c37118.errors import ConfigurationError as ConfigurationError
from gridbind.c37118.errors import FrameError as FrameError

_EXPORTS = {
    "C37118ToSttp": "gridbind.c37118.bridge",
    "SttpToC37118": "gridbind.c37118.bridge",
    "PdcClient": "gridbind.c37118.client",
    "PdcSession": "gridbind.c37118.client",
    "PmuServer": "gridbind.c37118.server",
    "StreamSession": "gridbind.c37118.server",
    "FrameDecoder": "gridbind.c37118.framing",
    "DataLayout": "gridbind.c37118.layout",
    "StreamMapping": "gridbind.c37118.mapping",
    "OutboundPlan": "gridbind.c37118.outbound",
    "FrameAssembler": "gridbind.c37118.outbound",
}

__all__ = sorted([*_EXPORTS, "C37118Error", "ConfigurationError", "FrameError"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
