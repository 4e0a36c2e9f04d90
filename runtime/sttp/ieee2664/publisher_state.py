"""What every connection of one IEEE 2664 publisher shares: its policy and its metadata."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from gridbind.sttp.ieee2664.metadata import DataSet, DataTable, active_measurements
from gridbind.sttp.ieee2664.wire import gzip_bytes


@dataclass
class PublisherConfig:
    """Publisher policy shared by every connection."""

    node_id: uuid.UUID = field(default_factory=uuid.uuid4)
    allow_metadata_refresh: bool = True
    allow_nan_filter: bool = True
    force_nan_filter: bool = False
    use_base_time_offsets: bool = True
    allow_payload_compression: bool = True
    encrypt_udp: bool = False  # cipher keys for UDP data (deployed peers do it over TLS only)
    #: seconds after a key rotation to switch to the new keys when the subscriber never sends
    #: CONFIRM_UPDATE_CIPHER_KEYS (sttpapi's subscriber does not); None: wait for confirmation
    cipher_confirm_timeout: float | None = 2.0
    supports_temporal: bool = False


class PublisherState:
    """What all connections of one publisher share: metadata and its selection view.

    ``metadata`` is a :class:`DataSet`, or the XML data set itself (bytes or text) as another
    serializer wrote it, e.g. relayed from an upstream publisher: that XML is parsed for the
    selection view and served verbatim (byte for byte) on unfiltered METADATA_REFRESH.
    """

    def __init__(
        self, metadata: DataSet | bytes | str, config: PublisherConfig | None = None
    ) -> None:
        self.config = config or PublisherConfig()
        self._xml: bytes | None = None
        self._gzip: bytes | None = None
        if isinstance(metadata, (bytes, str)):
            if isinstance(metadata, str):
                # Text has no encoding of its own: serve it as UTF-8, with a declaration saying so.
                text = metadata.lstrip("\ufeff")
                if text.startswith("<?xml"):
                    text = text[text.index("?>") + 2 :].lstrip()
                xml = ('<?xml version="1.0" encoding="utf-8"?>\n' + text).encode("utf-8")
            else:
                xml = bytes(metadata)
            metadata = DataSet.from_xml(xml)
            self._xml, self._gzip = xml, gzip_bytes(xml)
        self.metadata = metadata
        self.active: DataTable = active_measurements(metadata, self.config.node_id)
        #: signals whose MeasurementDetail row is disabled: never delivered, even when a
        #: subscriber names their id directly (as the deployed publishers behave)
        self.disabled: frozenset[uuid.UUID] = frozenset(
            row["SignalID"]
            for row in (metadata.table("MeasurementDetail") or DataTable("", [])).rows
            if isinstance(row.get("SignalID"), uuid.UUID)
            and (row.get("Enabled") is False or row.get("Enabled") == 0)
        )

    def metadata_xml(self, compressed: bool) -> bytes:
        """The metadata XML (cached), GZip-compressed when asked."""
        if self._xml is None:
            self._xml = self.metadata.to_xml()
            self._gzip = gzip_bytes(self._xml)
        assert self._gzip is not None
        return self._gzip if compressed else self._xml
