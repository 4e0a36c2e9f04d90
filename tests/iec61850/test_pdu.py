"""pdu.py: every PDU form round-trips, every encoding is valid against the project's 8-2 XSD, and
malformed or hostile payloads become PduError (never another exception)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from lxml import etree

from gridbind.iec61850 import schemaset
from gridbind.iec61850.association import InitiateParams
from gridbind.iec61850.codec import SCSM_NS
from gridbind.iec61850.model import Timestamp
from gridbind.iec61850.pdu import PduError, decode, encode
from gridbind.iec61850.xmpp import PAYLOAD_NS


def schema() -> etree.XMLSchema:
    return schemaset.xml_schema(SCSM_NS)


def valid(el: ET.Element) -> None:
    doc = etree.fromstring(ET.tostring(el))
    if not schema().validate(doc):
        raise AssertionError(str(schema().error_log))


D = ("domain-specific", "FDR1LD0", "GGIO1$ST$Ind1$stVal")
DATA = (
    "structure",
    [
        ("boolean", True),
        ("integer", -5),
        ("unsigned", 7),
        ("floating-point", 1.5, 32),
        ("floating-point", 2.25, 64),
        ("bit-string", "0100000000000"),
        ("octet-string", b"\x01\xff"),
        ("visible-string", "abc"),
        ("mMSString", "Grüße"),
        ("utc-time", Timestamp(1_700_000_000, 123, 10)),
        ("array", [("integer", 1), ("integer", 2)]),
    ],
)
TD = (
    "structure",
    [
        ("mag", ("structure", [("f", ("floating-point", 32))])),
        ("q", ("bit-string", 13)),
        ("t", ("utc-time",)),
        ("d", ("visible-string", -255)),
        ("e", ("binary-time", True)),
        ("arr", ("array", 3, ("integer", 8))),
        ("b", ("boolean",)),
    ],
)
ERR = ("access", "object-non-existent", "no such thing")

PDUS = [
    ("confirmed-RequestPDU", 1, "getNameList", ("domain", "vmdSpecific", None, None)),
    ("confirmed-RequestPDU", 2, "getNameList", ("namedVariable", "domainSpecific", "LD", "A$B")),
    (
        "confirmed-RequestPDU",
        3,
        "extendedGetNameList",
        ("namedVariableList", "aaSpecific", None, None),
    ),
    ("confirmed-RequestPDU", 4, "read", ("listOfVariable", [D, ("aa-specific", "x")])),
    ("confirmed-RequestPDU", 5, "read", ("variableListName", ("domain-specific", "LD", "LLN0$DS"))),
    (
        "confirmed-RequestPDU",
        18,
        "read",
        ("listOfVariable", [("domain-specific", "LD", "LN$CF$DO$arr", 2)]),
    ),
    ("confirmed-RequestPDU", 6, "write", (("listOfVariable", [D]), [DATA])),
    ("confirmed-RequestPDU", 7, "getVariableAccessAttributes", D),
    ("confirmed-RequestPDU", 8, "defineNamedVariableList", (("aa-specific", "ds"), [D, D])),
    (
        "confirmed-RequestPDU",
        9,
        "getNamedVariableListAttributes",
        ("domain-specific", "LD", "LLN0$DS"),
    ),
    (
        "confirmed-RequestPDU",
        10,
        "deleteNamedVariableList",
        ("specific", [("aa-specific", "ds")], None),
    ),
    ("confirmed-RequestPDU", 11, "fileOpen", (["COMTRADE", "f.cfg"], 0)),
    ("confirmed-RequestPDU", 12, "fileRead", 3),
    ("confirmed-RequestPDU", 13, "fileClose", 3),
    ("confirmed-RequestPDU", 14, "fileDelete", ["a.txt"]),
    ("confirmed-RequestPDU", 15, "fileDirectory", (None, None)),
    ("confirmed-RequestPDU", 16, "fileDirectory", (["a"], ["a", "b"])),
    ("confirmed-RequestPDU", 17, "obtainFile", (["local.bin"], ["remote.bin"])),
    ("confirmed-ResponsePDU", 1, "getNameList", (["A", "B$C"], True)),
    ("confirmed-ResponsePDU", 2, "read", [("success", DATA), ("failure", "object-non-existent")]),
    ("confirmed-ResponsePDU", 3, "write", [None, "type-inconsistent"]),
    ("confirmed-ResponsePDU", 4, "getVariableAccessAttributes", (False, TD)),
    ("confirmed-ResponsePDU", 5, "defineNamedVariableList", None),
    ("confirmed-ResponsePDU", 6, "getNamedVariableListAttributes", (True, [D])),
    ("confirmed-ResponsePDU", 7, "deleteNamedVariableList", (1, 0)),
    ("confirmed-ResponsePDU", 8, "fileOpen", (4, 100, "20261122080000Z")),
    ("confirmed-ResponsePDU", 9, "fileRead", (b"\x00\x01", False)),
    ("confirmed-ResponsePDU", 10, "fileClose", None),
    (
        "confirmed-ResponsePDU",
        11,
        "fileDirectory",
        ([(["a", "b.txt"], 5, "20261122080000Z")], True),
    ),
    ("confirmed-ResponsePDU", 12, "obtainFile", None),
    ("confirmed-ErrorPDU", 5, ERR),
    ("confirmed-ErrorPDU", 6, ("file", "file-non-existent", "")),
    ("initiate-RequestPDU", InitiateParams(max_pdu_size=9000, services=frozenset({"read"}))),
    ("initiate-ResponsePDU", InitiateParams()),
    ("initiate-ErrorPDU", ("initiate", "other", "refused")),
    ("conclude-RequestPDU",),
    ("conclude-ResponsePDU",),
    ("conclude-ErrorPDU", ("conclude", "further-communication-required", "")),
    ("cancel-RequestPDU", 9),
    ("cancel-ErrorPDU", 9, ("cancel", "cancel-not-possible", "")),
    ("rejectPDU", 5, "confirmed-requestPDU:unrecognized-service"),
    ("rejectPDU", None, "pdu-error:invalid-pdu"),
    ("informationReport", ("listOfVariable", [("vmd-specific", "RPT")]), [("success", DATA)]),
]


@pytest.mark.parametrize("pdu", PDUS, ids=[f"{p[0]}-{p[2] if len(p) > 3 else ''}" for p in PDUS])
def test_roundtrip_and_schema(pdu) -> None:
    el = encode(pdu)
    valid(el)
    again = decode(ET.fromstring(ET.tostring(el)))
    if pdu[0].startswith("initiate-") and pdu[0] != "initiate-ErrorPDU":
        assert again[1] == pdu[1]
    else:
        assert again == pdu


def raw(xml: str) -> ET.Element:
    return ET.fromstring(f'<MMSpdu xmlns="{PAYLOAD_NS}">{xml}</MMSpdu>')


@pytest.mark.parametrize(
    "xml,reason",
    [
        ("", "pdu-error:invalid-pdu"),
        ("<confirmed-RequestPDU/>", "pdu-error:invalid-pdu"),
        ("<bogus/>", "pdu-error:unknown-pdu-type"),
        (
            "<confirmed-RequestPDU><invokeID>x</invokeID></confirmed-RequestPDU>",
            "pdu-error:invalid-pdu",
        ),
        (
            "<confirmed-RequestPDU><invokeID>3</invokeID><service><status/></service>"
            "</confirmed-RequestPDU>",
            "confirmed-requestPDU:unrecognized-service",
        ),
        (
            "<confirmed-RequestPDU><invokeID>3</invokeID><service><read><variableAccessSpecification>"
            "<listOfVariable><SEQUENCE><variableSpecification><name><vmd-specific>A</vmd-specific>"
            "</name></variableSpecification><alternateAccess><CHOICE><named><componentName>x"
            "</componentName></named></CHOICE></alternateAccess></SEQUENCE></listOfVariable>"
            "</variableAccessSpecification></read></service></confirmed-RequestPDU>",
            "confirmed-requestPDU:unrecognized-modifier",
        ),
        (
            "<confirmed-RequestPDU><invokeID>99999999999</invokeID></confirmed-RequestPDU>",
            "confirmed-requestPDU:value-out-of-range",
        ),
    ],
)
def test_malformed(xml, reason) -> None:
    with pytest.raises(PduError) as err:
        decode(raw(xml))
    assert err.value.reason == reason


def test_invoke_id_kept_for_reject_and_depth_limit() -> None:
    nested = "<Data><structure>" * 40 + "</structure></Data>" * 40
    xml = (
        "<confirmed-RequestPDU><invokeID>12</invokeID><service><write>"
        "<variableAccessSpecification><listOfVariable/></variableAccessSpecification>"
        f"<listOfData>{nested}</listOfData></write></service></confirmed-RequestPDU>"
    )
    with pytest.raises(PduError) as err:
        decode(raw(xml))
    assert err.value.invoke_id == 12
    assert err.value.reason == "confirmed-requestPDU:max-recursion-exceeded"
    with pytest.raises(PduError):
        decode(ET.fromstring("<other/>"))
