"""The file directory lists only files an MMS FileName can carry (the documented limit): others
stay out of the listing, and the listing stays usable (README, IEC 61850-8-2 section)."""

from __future__ import annotations

import logging

from test_services_acsi import FEEDER

from gridbind.iec61850.association import AssociationCore, InitiateParams
from gridbind.iec61850.files import FileStore
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.services.acsi import ServerServices


def test_unnameable_files_are_left_out_and_logged(tmp_path, caplog) -> None:
    (tmp_path / "ok.txt").write_bytes(b"1")
    (tmp_path / "mesure-\u00e9t\u00e9.csv").write_bytes(b"2")  # not printable ASCII
    (tmp_path / ("x" * 65)).write_bytes(b"3")  # segment over 64 characters
    (tmp_path / "tab\there").write_bytes(b"4")  # control character
    svc = ServerServices(load_scl(FEEDER), FileStore(tmp_path))
    assoc = AssociationCore(InitiateParams()).accept("c@t.local/x", "1", InitiateParams())
    with caplog.at_level(logging.WARNING, logger="gridbind.iec61850.files"):
        entries, more = svc.file_directory(assoc, None, None)
    assert [e[0] for e in entries] == [["ok.txt"]] and not more
    assert sum("no valid MMS file name" in r.getMessage() for r in caplog.records) == 3
