"""The installed 8-2 / E2E schema set (read through gridbind.iec61850.schemaset): XER
conventions and coverage. That it is what codegen makes of specs/ is tests/codegen's concern."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gridbind.iec61850 import codec, schemaset

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
XS = "{http://www.w3.org/2001/XMLSchema}"


def test_codec_compiles_the_installed_set():
    assert codec.schema_dir() == schemaset.SCHEMA_DIR
    assert set(schemaset.entry_points()) >= {codec.SCSM_NS, codec.E2E_NS}


class _Set:
    """The schema documents of one namespace, searched as one (a set may split a namespace)."""

    def __init__(self, namespace: str) -> None:
        self.docs = schemaset.documents(namespace)
        assert self.docs, namespace

    def get(self, key: str) -> str | None:
        return self.docs[0].get(key)

    def find(self, path: str) -> etree._Element | None:
        return next((f for d in self.docs if (f := d.find(path)) is not None), None)

    def findall(self, path: str) -> list[etree._Element]:
        return [f for d in self.docs for f in d.findall(path)]


def schema(namespace: str) -> _Set:
    return _Set(namespace)


def choice_of(root: _Set, type_name: str) -> list[str]:
    node = root.find(f"{XS}complexType[@name='{type_name}']/{XS}choice")
    return [e.get("name") for e in node.findall(f"{XS}element")]


def test_namespaces_and_form():
    scsm, e2e = schema(codec.SCSM_NS), schema(codec.E2E_NS)
    assert scsm.get("targetNamespace") == codec.SCSM_NS
    assert e2e.get("targetNamespace") == codec.E2E_NS
    assert scsm.get("elementFormDefault") == e2e.get("elementFormDefault") == "qualified"


def test_every_pdu_and_service_is_in_the_schema():
    scsm = schema(codec.SCSM_NS)
    assert choice_of(scsm, "MMSpdu") == [
        "confirmed-RequestPDU",
        "confirmed-ResponsePDU",
        "confirmed-ErrorPDU",
        "unconfirmed-PDU",
        "rejectPDU",
        "cancel-RequestPDU",
        "cancel-ResponsePDU",
        "cancel-ErrorPDU",
        "initiate-RequestPDU",
        "initiate-ResponsePDU",
        "initiate-ErrorPDU",
        "conclude-RequestPDU",
        "conclude-ResponsePDU",
        "conclude-ErrorPDU",
    ]
    services = {
        "getNameList",
        "extendedGetNameList",
        "read",
        "write",
        "getVariableAccessAttributes",
        "defineNamedVariableList",
        "getNamedVariableListAttributes",
        "deleteNamedVariableList",
        "readJournal",
        "fileOpen",
        "fileRead",
        "fileClose",
        "fileDirectory",
        "fileDelete",
        "obtainFile",
    }
    assert set(choice_of(scsm, "ConfirmedServiceRequest")) == services
    assert set(choice_of(scsm, "ConfirmedServiceResponse")) == services
    assert choice_of(scsm, "UnconfirmedService") == ["informationReport"]
    assert "utc-time" in choice_of(scsm, "Data") and "mMSString" in choice_of(scsm, "Data")


def test_e2e_envelope_elements():
    e2e = schema(codec.E2E_NS)
    from gridbind.codegen.decisions import E2E_ELEMENTS

    names = {e.get("name") for e in e2e.findall(f"{XS}element")}
    # the ones the runtime relies on (one list, shared with the DECISIONS probe); an official
    # set may add more
    assert E2E_ELEMENTS <= names
    types = {t.get("name") for t in e2e.findall(f"{XS}complexType")}
    assert {"ClearToken1", "ClearToken2", "ClearToken3", "Authenticator"} <= types
    assert {t.get("name") for t in e2e.findall(f"{XS}simpleType")} >= {
        "Signature",
        "HandshakeDiagnostics",
        "DtDiagnostics",
    }


def test_decisions_document_every_guess_area():
    text = (ROOT / "specs" / "iec61850_8_2" / "DECISIONS.md").read_text()
    for topic in ("Root element", "BOOLEAN", "named numbers", "SEQUENCE OF", "extendedGetNameList"):
        assert topic in text, topic
