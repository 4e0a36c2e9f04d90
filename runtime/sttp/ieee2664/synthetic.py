"""The synthetic PMU source with the constructor the IEEE 2664 code uses (signal ids first,
``start_ticks``); the source itself is :class:`gridbind.sttp.synthetic.SyntheticPmu`, shared with
the draft-0.8 profile."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from gridbind.sttp.synthetic import SyntheticPmu, f32

__all__ = ["PmuSource", "f32"]


class PmuSource(SyntheticPmu):
    """:class:`SyntheticPmu` over the given signal ids, starting at ``start_ticks``."""

    def __init__(
        self,
        signals: Sequence[uuid.UUID],
        rate: float = 30.0,
        start_ticks: int = 0,
        device_size: int = 10,
        flag_every: int = 997,
        jitter: int = 0,
    ) -> None:
        super().__init__(
            signals,
            rate,
            start_ticks,
            device_size=device_size,
            flag_every=flag_every,
            jitter=jitter,
        )
