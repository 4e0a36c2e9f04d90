"""The synthetic PMU source of ``gridbind sttp publish --profile draft-0.8``, tests and benchmarks:
:class:`gridbind.sttp.synthetic.SyntheticPmu` (shared with the IEEE 2664 profile) with the
draft-0.8 point types and DataPoint metadata.
"""

from __future__ import annotations

import uuid

from gridbind.generated.sttp.templates import DataPointRecord
from gridbind.sttp.draft.metadata import MetadataDatabase
from gridbind.sttp.encoding import ValueType
from gridbind.sttp.synthetic import KINDS
from gridbind.sttp.synthetic import SyntheticPmu as BaseSyntheticPmu

__all__ = ["SyntheticPmu"]


class SyntheticPmu(BaseSyntheticPmu):
    """``count`` signals at ``rate`` frames per second from ``start`` ticks, in devices of six
    (frequency, dF/dt, voltage and current phasors), with draft-0.8 point types and metadata."""

    def __init__(self, count: int, rate: float = 30.0, start: int = 0, seed: int = 1) -> None:
        if count < 1 or rate <= 0:
            raise ValueError("count must be >= 1 and rate > 0")
        super().__init__(count, rate, start, seed=seed, device_size=len(KINDS))

    def value_types(self) -> dict[uuid.UUID, int]:
        """Every signal is a Single."""
        return {signal: ValueType.SINGLE for signal in self.ids}

    def metadata(self, database: MetadataDatabase | None = None) -> MetadataDatabase:
        """A DataPoint table (Appendix F template + DataType) describing the signals."""
        database = database or MetadataDatabase()
        database.define_template(DataPointRecord, extra=[("DataType", 0x01)])
        database.upsert_many(
            "DataPoint",
            [
                {
                    "PointID": signal,
                    "PointTag": f"PMU{i // 6}:{self.kind(i)}",
                    "Signal Type": self.kind(i),
                    "DataType": "SINGLE",
                    "PositionIndex": i,
                }
                for i, signal in enumerate(self.ids)
            ],
        )
        return database
