"""Hand-written pieces referenced by ``specs/sttp/ieee2664.yaml`` (``type: codec``).

The spec language can make a field conditional on bits being set but not on bits being clear;
a compact measurement's timestamp is a uint32 offset when BaseTimeOffset (0x40) is set and a
uint64 tick count when it is clear, so the choice lives here as one construct.
"""

from __future__ import annotations

import construct as c

#: Timestamp of a compact measurement (includeTime, tick resolution), chosen by the flags byte.
COMPACT_TIME = c.IfThenElse(lambda ctx: int(ctx.flags) & 0x40, c.Int32ub, c.Int64ub)
