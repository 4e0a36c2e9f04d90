"""The authored 8-2 / E2E schema: generated package up to date, XER conventions, coverage."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gridbind.codegen.xsd import generate
from gridbind.iec61850 import codec

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs" / "iec61850_8_2"
GENERATED = ROOT / "generated" / "iec61850_8_2"
XS = "{http://www.w3.org/2001/XMLSchema}"


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in {".py", ".xsd"}
    }


def test_generated_package_is_what_codegen_writes(tmp_path):
    generate(SPECS, tmp_path / "out")
    assert files(tmp_path / "out") == files(GENERATED)


def test_installed_xsd_set_is_the_spec():
    assert codec.schema_dir() == GENERATED.resolve() / "xsd"
    for name in ("SCSM_8_2.xsd", "E2E_4.xsd"):
        assert (GENERATED / "xsd" / name).read_bytes() == (SPECS / name).read_bytes()


def schema(name: str) -> etree._Element:
    return etree.parse(str(SPECS / name)).getroot()


def choice_of(root: etree._Element, type_name: str) -> list[str]:
    node = root.find(f"{XS}complexType[@name='{type_name}']/{XS}choice")
    return [e.get("name") for e in node.findall(f"{XS}element")]


def test_namespaces_and_form():
    scsm, e2e = schema("SCSM_8_2.xsd"), schema("E2E_4.xsd")
    assert scsm.get("targetNamespace") == codec.SCSM_NS
    assert e2e.get("targetNamespace") == codec.E2E_NS
    assert scsm.get("elementFormDefault") == e2e.get("elementFormDefault") == "qualified"


def test_every_pdu_and_service_is_in_the_schema():
    scsm = schema("SCSM_8_2.xsd")
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
    e2e = schema("E2E_4.xsd")
    names = {e.get("name") for e in e2e.findall(f"{XS}element")}
    assert names == {
        "HandshakeReq",
        "HandshakeAcc",
        "ApplicationReject",
        "HandshakeSecReject",
        "HandshakeSecAbort",
        "DtSecAbort",
        "ApplAbort",
        "ReleaseReq",
        "ReleaseRsp",
        "ClearTransfer",
        "EncrTransfer",
        "AssociationContext",
    }
    types = {t.get("name") for t in e2e.findall(f"{XS}complexType")}
    assert {"ClearToken1", "ClearToken2", "ClearToken3", "Authenticator"} <= types
    assert {t.get("name") for t in e2e.findall(f"{XS}simpleType")} >= {
        "Signature",
        "HandshakeDiagnostics",
        "DtDiagnostics",
    }


def test_decisions_document_every_guess_area():
    text = (SPECS / "DECISIONS.md").read_text()
    for topic in ("Root element", "BOOLEAN", "named numbers", "SEQUENCE OF", "extendedGetNameList"):
        assert topic in text, topic
