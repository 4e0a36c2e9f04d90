"""Every mapped service: request, positive and negative response, E2E envelopes.

Each sample is hand-written XER (the wire form the mapping notes describe). A sample must be valid
against the XSD set (checked with an independent ``lxml.etree.XMLSchema`` of the installed set),
decode through the strict codec into typed classes, and encode back to the identical bytes; the
fast and the xsdata paths must agree.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from lxml import etree

from gridbind.generated.iec61850_8_2 import ClearTransfer, Mmspdu
from gridbind.iec61850 import codec, schemaset

pytestmark = pytest.mark.timeout(60)

NS = codec.SCSM_NS
E2E = codec.E2E_NS

DOM = "<domain-specific><domainId>IED1LD0</domainId><itemId>{}</itemId></domain-specific>"
VAR = "<SEQUENCE><variableSpecification><name>" + DOM + "</name></variableSpecification></SEQUENCE>"
FILE = "<GraphicString>COMTRADE</GraphicString><GraphicString>fault1.cfg</GraphicString>"
UTC = "664A3B40800000" + "0A"


def pdu(inner: str) -> str:
    return f'<MMSpdu xmlns="{NS}">{inner}</MMSpdu>'


def req(service: str, invoke: int = 7) -> str:
    return pdu(
        f"<confirmed-RequestPDU><invokeID>{invoke}</invokeID><service>{service}</service>"
        "</confirmed-RequestPDU>"
    )


def rsp(service: str, invoke: int = 7) -> str:
    return pdu(
        f"<confirmed-ResponsePDU><invokeID>{invoke}</invokeID><service>{service}</service>"
        "</confirmed-ResponsePDU>"
    )


def err(error_class: str, extra: str = "", invoke: int = 7) -> str:
    return pdu(
        f"<confirmed-ErrorPDU><invokeID>{invoke}</invokeID><serviceError><errorClass>"
        f"{error_class}</errorClass>{extra}</serviceError></confirmed-ErrorPDU>"
    )


READ_VAS = (
    "<variableAccessSpecification><listOfVariable>"
    + VAR.format("LLN0$ST$Beh$stVal")
    + VAR.format("XCBR1$ST$Pos")
    + "</listOfVariable></variableAccessSpecification>"
)
DATA_POS = (
    "<structure><Data><bit-string>10</bit-string></Data><Data><bit-string>0000000000000"
    f"</bit-string></Data><Data><utc-time>{UTC}</utc-time></Data></structure>"
)
TYPE_POS = (
    "<typeDescription><structure><components>"
    "<SEQUENCE><componentName>stVal</componentName><componentType><typeDescription>"
    "<bit-string>2</bit-string></typeDescription></componentType></SEQUENCE>"
    "<SEQUENCE><componentName>q</componentName><componentType><typeDescription>"
    "<bit-string>-13</bit-string></typeDescription></componentType></SEQUENCE>"
    "<SEQUENCE><componentName>t</componentName><componentType><typeDescription><utc-time/>"
    "</typeDescription></componentType></SEQUENCE>"
    "<SEQUENCE><componentName>mag</componentName><componentType><typeDescription>"
    "<floating-point><format-width>32</format-width><exponent-width>8</exponent-width>"
    "</floating-point></typeDescription></componentType></SEQUENCE>"
    "</components></structure></typeDescription>"
)
NO_OBJECT = "<access><object-non-existent/></access>"

#: service -> (request, positive response, negative response)
SERVICES: dict[str, tuple[str, str, str]] = {
    "getNameList": (
        req(
            "<getNameList><objectClass><basicObjectClass><domain/></basicObjectClass>"
            "</objectClass><objectScope><vmdSpecific/></objectScope></getNameList>"
        ),
        rsp(
            "<getNameList><listOfIdentifier><Identifier>IED1LD0</Identifier>"
            "<Identifier>IED1PROT</Identifier></listOfIdentifier>"
            "<moreFollows>false</moreFollows></getNameList>"
        ),
        err("<service><object-constraint-conflict/></service>"),
    ),
    "extendedGetNameList": (
        req(
            "<extendedGetNameList><objectClass><basicObjectClass><namedVariable/>"
            "</basicObjectClass></objectClass><objectScope><domainSpecific>IED1LD0"
            "</domainSpecific></objectScope><continueAfter>LLN0$ST$Beh</continueAfter>"
            "</extendedGetNameList>"
        ),
        rsp(
            "<extendedGetNameList><listOfIdentifier><Identifier>LLN0$ST$Beh$stVal</Identifier>"
            "</listOfIdentifier><moreFollows>true</moreFollows></extendedGetNameList>"
        ),
        err("<access><object-access-denied/></access>"),
    ),
    "read": (
        req(f"<read><specificationWithResult>false</specificationWithResult>{READ_VAS}</read>"),
        rsp(
            "<read><listOfAccessResult><AccessResult><success><integer>1</integer></success>"
            f"</AccessResult><AccessResult><success>{DATA_POS}</success></AccessResult>"
            "<AccessResult><failure><object-non-existent/></failure></AccessResult>"
            "</listOfAccessResult></read>"
        ),
        err(NO_OBJECT),
    ),
    "write": (
        req(
            "<write><variableAccessSpecification><listOfVariable>"
            + VAR.format("CSWI1$CO$Pos$Oper")
            + "</listOfVariable></variableAccessSpecification><listOfData><Data><structure>"
            "<Data><boolean>true</boolean></Data><Data><structure><Data><integer>3</integer>"
            "</Data><Data><octet-string>6F70</octet-string></Data></structure></Data>"
            "<Data><unsigned>12</unsigned></Data><Data><utc-time>" + UTC + "</utc-time></Data>"
            "<Data><boolean>false</boolean></Data><Data><bit-string>00</bit-string></Data>"
            "</structure></Data></listOfData></write>"
        ),
        rsp("<write><CHOICE><success/></CHOICE></write>"),
        rsp("<write><CHOICE><failure><object-access-denied/></failure></CHOICE></write>"),
    ),
    "getVariableAccessAttributes": (
        req(
            "<getVariableAccessAttributes><name>"
            + DOM.format("XCBR1$ST$Pos")
            + "</name></getVariableAccessAttributes>"
        ),
        rsp(
            "<getVariableAccessAttributes><mmsDeletable>false</mmsDeletable>"
            + TYPE_POS
            + "</getVariableAccessAttributes>"
        ),
        err(NO_OBJECT),
    ),
    "defineNamedVariableList": (
        req(
            "<defineNamedVariableList><variableListName>"
            + DOM.format("LLN0$DS1")
            + "</variableListName><listOfVariable>"
            + VAR.format("XCBR1$ST$Pos")
            + VAR.format("MMXU1$MX$TotW")
            + "</listOfVariable></defineNamedVariableList>"
        ),
        rsp("<defineNamedVariableList/>"),
        err("<definition><object-exists/></definition>"),
    ),
    "getNamedVariableListAttributes": (
        req(
            "<getNamedVariableListAttributes>"
            + DOM.format("LLN0$DS1")
            + "</getNamedVariableListAttributes>"
        ),
        rsp(
            "<getNamedVariableListAttributes><mmsDeletable>true</mmsDeletable><listOfVariable>"
            + VAR.format("XCBR1$ST$Pos")
            + "</listOfVariable></getNamedVariableListAttributes>"
        ),
        err("<definition><object-undefined/></definition>"),
    ),
    "deleteNamedVariableList": (
        req(
            "<deleteNamedVariableList><scopeOfDelete><specific/></scopeOfDelete>"
            "<listOfVariableListName><ObjectName>"
            + DOM.format("LLN0$DS1")
            + "</ObjectName></listOfVariableListName></deleteNamedVariableList>"
        ),
        rsp(
            "<deleteNamedVariableList><numberMatched>1</numberMatched>"
            "<numberDeleted>1</numberDeleted></deleteNamedVariableList>"
        ),
        err(
            "<access><object-access-denied/></access>",
            "<serviceSpecificInformation><deleteNamedVariableList>0</deleteNamedVariableList>"
            "</serviceSpecificInformation>",
        ),
    ),
    "readJournal": (
        req(
            "<readJournal><journalName>"
            + DOM.format("LLN0$Log1")
            + "</journalName><rangeStartSpecification><startingTime>0000EA60375B"
            "</startingTime></rangeStartSpecification><rangeStopSpecification>"
            "<endingTime>0526D3A0375B</endingTime></rangeStopSpecification></readJournal>"
        ),
        rsp(
            "<readJournal><listOfJournalEntry><JournalEntry><entryIdentifier>0000000000000001"
            "</entryIdentifier><originatingApplication/><entryContent><occurrenceTime>"
            "0000EA60375B</occurrenceTime><entryForm><data><listOfVariables><Journal-Variable>"
            "<variableTag>XCBR1$ST$Pos$stVal</variableTag><valueSpecification><bit-string>10"
            "</bit-string></valueSpecification></Journal-Variable><Journal-Variable>"
            "<variableTag>ReasonCode</variableTag><valueSpecification><bit-string>0100000"
            "</bit-string></valueSpecification></Journal-Variable></listOfVariables></data>"
            "</entryForm></entryContent></JournalEntry></listOfJournalEntry>"
            "<moreFollows>false</moreFollows></readJournal>"
        ),
        err("<access><object-non-existent/></access>", "<additionalCode>3</additionalCode>"),
    ),
    "fileOpen": (
        req(
            f"<fileOpen><fileName>{FILE}</fileName><initialPosition>0</initialPosition></fileOpen>"
        ),
        rsp(
            "<fileOpen><frsmID>1</frsmID><fileAttributes><sizeOfFile>1024</sizeOfFile>"
            "<lastModified>20240501120000.000Z</lastModified></fileAttributes></fileOpen>"
        ),
        err("<file><file-non-existent/></file>"),
    ),
    "fileRead": (
        req("<fileRead>1</fileRead>"),
        rsp("<fileRead><fileData>48656C6C6F</fileData><moreFollows>false</moreFollows></fileRead>"),
        err("<file><position-invalid/></file>"),
    ),
    "fileClose": (
        req("<fileClose>1</fileClose>"),
        rsp("<fileClose/>"),
        err("<file><other/></file>"),
    ),
    "fileDirectory": (
        req(
            "<fileDirectory><fileSpecification><GraphicString>COMTRADE</GraphicString>"
            "</fileSpecification></fileDirectory>"
        ),
        rsp(
            "<fileDirectory><listOfDirectoryEntry><DirectoryEntry><fileName>"
            f"{FILE}</fileName><fileAttributes><sizeOfFile>1024</sizeOfFile></fileAttributes>"
            "</DirectoryEntry></listOfDirectoryEntry><moreFollows>false</moreFollows>"
            "</fileDirectory>"
        ),
        err("<file><file-access-denied/></file>"),
    ),
    "fileDelete": (
        req(f"<fileDelete>{FILE}</fileDelete>"),
        rsp("<fileDelete/>"),
        err("<file><file-busy/></file>"),
    ),
    "obtainFile": (
        req(
            "<obtainFile><sourceFile><GraphicString>/tmp/new.cfg</GraphicString></sourceFile>"
            f"<destinationFile>{FILE}</destinationFile></obtainFile>"
        ),
        rsp("<obtainFile/>"),
        err(
            "<file><duplicate-filename/></file>",
            "<serviceSpecificInformation><obtainFile><destination-file/></obtainFile>"
            "</serviceSpecificInformation>",
        ),
    ),
}

REPORT = pdu(
    "<unconfirmed-PDU><service><informationReport><variableAccessSpecification>"
    "<variableListName><vmd-specific>RPT</vmd-specific></variableListName>"
    "</variableAccessSpecification><listOfAccessResult>"
    "<AccessResult><success><visible-string>IED1LD0/LLN0$BR$brcbA01</visible-string></success>"
    "</AccessResult><AccessResult><success><bit-string>0111110010</bit-string></success>"
    "</AccessResult><AccessResult><success><unsigned>17</unsigned></success></AccessResult>"
    f"<AccessResult><success>{DATA_POS}</success></AccessResult>"
    "<AccessResult><success><floating-point>0842F60000</floating-point></success></AccessResult>"
    "<AccessResult><success><mMSString>Überlast &amp; Ä</mMSString></success></AccessResult>"
    "<AccessResult><success><binary-time>0000EA60375B</binary-time></success></AccessResult>"
    "<AccessResult><success><array><Data><integer>-5</integer></Data><Data><integer>7</integer>"
    "</Data></array></success></AccessResult>"
    "</listOfAccessResult></informationReport></service></unconfirmed-PDU>"
)
LAST_APPL_ERROR = pdu(
    "<unconfirmed-PDU><service><informationReport><variableAccessSpecification>"
    "<listOfVariable><SEQUENCE><variableSpecification><name><vmd-specific>LastApplError"
    "</vmd-specific></name></variableSpecification></SEQUENCE></listOfVariable>"
    "</variableAccessSpecification><listOfAccessResult><AccessResult><success><structure>"
    "<Data><visible-string>IED1LD0/CSWI1$CO$Pos$Oper</visible-string></Data>"
    "<Data><integer>5</integer></Data><Data><structure><Data><integer>3</integer></Data>"
    "<Data><octet-string>6F70</octet-string></Data></structure></Data>"
    "<Data><unsigned>4</unsigned></Data><Data><integer>10</integer></Data></structure>"
    "</success></AccessResult></listOfAccessResult></informationReport></service>"
    "</unconfirmed-PDU>"
)
INITIATE_REQ = pdu(
    "<initiate-RequestPDU><localDetailCalling>65000</localDetailCalling>"
    "<proposedMaxServOutstandingCalling>5</proposedMaxServOutstandingCalling>"
    "<proposedMaxServOutstandingCalled>5</proposedMaxServOutstandingCalled>"
    "<proposedDataStructureNestingLevel>10</proposedDataStructureNestingLevel>"
    "<initRequestDetail><proposedVersionNumber>1</proposedVersionNumber>"
    "<proposedParameterCBB>11110001000</proposedParameterCBB>"
    "<servicesSupportedCalling>" + "1" * 85 + "</servicesSupportedCalling></initRequestDetail>"
    "</initiate-RequestPDU>"
)
OTHER_PDUS = {
    "informationReport": REPORT,
    "informationReport-LastApplError": LAST_APPL_ERROR,
    "initiate-RequestPDU": INITIATE_REQ,
    "initiate-ResponsePDU": pdu(
        "<initiate-ResponsePDU><localDetailCalled>65000</localDetailCalled>"
        "<negotiatedMaxServOutstandingCalling>5</negotiatedMaxServOutstandingCalling>"
        "<negotiatedMaxServOutstandingCalled>5</negotiatedMaxServOutstandingCalled>"
        "<negotiatedDataStructureNestingLevel>10</negotiatedDataStructureNestingLevel>"
        "<initResponseDetail><negotiatedVersionNumber>1</negotiatedVersionNumber>"
        "<negotiatedParameterCBB>11110001000</negotiatedParameterCBB>"
        "<servicesSupportedCalled>" + "10" * 42 + "1</servicesSupportedCalled>"
        "</initResponseDetail></initiate-ResponsePDU>"
    ),
    "initiate-ErrorPDU": pdu(
        "<initiate-ErrorPDU><errorClass><initiate><max-segment-insufficient/></initiate>"
        "</errorClass></initiate-ErrorPDU>"
    ),
    "conclude-RequestPDU": pdu("<conclude-RequestPDU/>"),
    "conclude-ResponsePDU": pdu("<conclude-ResponsePDU/>"),
    "conclude-ErrorPDU": pdu(
        "<conclude-ErrorPDU><errorClass><conclude><further-communication-required/>"
        "</conclude></errorClass></conclude-ErrorPDU>"
    ),
    "cancel-RequestPDU": pdu("<cancel-RequestPDU>7</cancel-RequestPDU>"),
    "cancel-ResponsePDU": pdu("<cancel-ResponsePDU>7</cancel-ResponsePDU>"),
    "cancel-ErrorPDU": pdu(
        "<cancel-ErrorPDU><originalInvokeID>7</originalInvokeID><serviceError><errorClass>"
        "<cancel><cancel-not-possible/></cancel></errorClass></serviceError></cancel-ErrorPDU>"
    ),
    "rejectPDU": pdu(
        "<rejectPDU><originalInvokeID>7</originalInvokeID><rejectReason><confirmed-requestPDU>"
        "<unrecognized-service/></confirmed-requestPDU></rejectReason></rejectPDU>"
    ),
    "rejectPDU-no-invoke": pdu(
        "<rejectPDU><rejectReason><pdu-error><invalid-pdu/></pdu-error></rejectReason></rejectPDU>"
    ),
    # write's negative sample above is a positive response with a per-item failure; a write the
    # server refuses as a whole is answered with a confirmed-ErrorPDU (its service is not named).
    "write-confirmed-ErrorPDU": err("<access><object-access-denied/></access>", invoke=8),
    "errorPDU-others-description": err(
        "<others>12</others>",
        "<additionalCode>-1</additionalCode><additionalDescription>busy</additionalDescription>",
    ),
}

TOKEN2 = "<token2><assoID>1:2</assoID><time>20240501120000,123Z</time><seq>0</seq></token2>"
AUTH = "<auth><algorithm><hmac-sha256/></algorithm><icv>" + "AB" * 32 + "</icv></auth>"
TOKEN1 = (
    "<token1><sigAlg><ecdsa-p256-sha256/></sigAlg><pkCert>3082</pkCert><version><v1/></version>"
    "<assoID>1</assoID><dhKey><ecdh-secp256r1>04" + "11" * 64 + "</ecdh-secp256r1></dhKey>"
    "<hmac><hmac-sha256/></hmac><time>20240501120000,123Z</time><encr-mode><aea><AeaAlgorithm>"
    "<aes-128-gcm/></AeaAlgorithm></aea></encr-mode><confParams><tlsProtected>true"
    "</tlsProtected><applProtected>true</applProtected><vpn>false</vpn></confParams></token1>"
)


def e2e(name: str, inner: str) -> str:
    return f'<{name} xmlns="{E2E}" xmlns:mms="{NS}">{inner}</{name}>'


def mms_in_e2e(xml: str) -> str:
    """The same MMSpdu with the prefix the E2E documents use (``mms:``)."""
    root = etree.fromstring(xml.encode())
    body = etree.tostring(root, encoding="unicode")
    tree = etree.fromstring(body.encode())
    out = etree.Element("wrap", nsmap={"mms": NS})
    out.append(tree)
    text = etree.tostring(out, encoding="unicode")
    return text[text.index("<mms:MMSpdu") : text.rindex("</wrap>")]


ENVELOPES = {
    "ClearTransfer": e2e(
        "ClearTransfer",
        "<tbp>"
        + TOKEN2
        + "<applData>"
        + mms_in_e2e(SERVICES["read"][0])
        + "</applData></tbp>"
        + AUTH,
    ),
    "EncrTransfer": e2e(
        "EncrTransfer",
        "<tbp><token2><assoID>1:2</assoID><time>20240501120000,123Z</time><seq>4</seq>"
        "<iv>00112233445566778899AABBCCDDEEFF</iv></token2><encrypted-applData>DEADBEEF"
        "</encrypted-applData></tbp>",
    ),
    "HandshakeReq": e2e(
        "HandshakeReq",
        "<pp><iec61850-8-2/></pp><tbs>"
        + TOKEN1
        + "<applData>"
        + mms_in_e2e(INITIATE_REQ)
        + "</applData></tbs><sign>"
        + "CD" * 64
        + "</sign>",
    ),
    "HandshakeAcc": e2e(
        "HandshakeAcc",
        "<tbs>"
        + TOKEN1
        + "<applData>"
        + mms_in_e2e(OTHER_PDUS["initiate-ResponsePDU"])
        + "</applData></tbs><sign>"
        + "CD" * 64
        + "</sign>",
    ),
    "ApplicationReject": e2e(
        "ApplicationReject",
        "<tbs>"
        + TOKEN1
        + "<applData>"
        + mms_in_e2e(OTHER_PDUS["initiate-ErrorPDU"])
        + "</applData></tbs><sign>01</sign>",
    ),
    "HandshakeSecReject": e2e(
        "HandshakeSecReject",
        "<assoID>1</assoID><time>20240501120000,123Z</time><diag>7</diag>",
    ),
    "HandshakeSecAbort": e2e(
        "HandshakeSecAbort",
        "<assoID>1:2</assoID><time>20240501120000,123Z</time><diag>25</diag>",
    ),
    "DtSecAbort": e2e(
        "DtSecAbort",
        "<token3><assoID>1:2</assoID><time>20240501120000,123Z</time><seq>3</seq></token3>"
        "<diag>2</diag>",
    ),
    "ApplAbort": e2e(
        "ApplAbort", "<token3><assoID>1:2</assoID><time>20240501120000,123Z</time></token3>"
    ),
    "ReleaseReq": e2e(
        "ReleaseReq",
        "<token3><assoID>1:2</assoID><time>20240501120000,123Z</time></token3>" + AUTH,
    ),
    "ReleaseRsp": e2e(
        "ReleaseRsp",
        "<token3><assoID>1:2</assoID><time>20240501120000,123Z</time></token3>" + AUTH,
    ),
    "AssociationContext": e2e(
        "AssociationContext",
        "<pp><iec61850-8-2/></pp><assoID>3:4</assoID><applData>"
        + mms_in_e2e(SERVICES["write"][1])
        + "</applData>",
    ),
}

CASES = (
    [(f"{name}-request", xml[0]) for name, xml in SERVICES.items()]
    + [(f"{name}-positive", xml[1]) for name, xml in SERVICES.items()]
    + [(f"{name}-negative", xml[2]) for name, xml in SERVICES.items()]
    + sorted(OTHER_PDUS.items())
    + sorted(ENVELOPES.items())
)


@pytest.fixture(scope="module")
def independent_schema() -> etree.XMLSchema:
    """XMLSchema built by lxml straight from the installed files (not through the codec)."""
    return schemaset.xml_schema(codec.E2E_NS)


@pytest.fixture(scope="module")
def slow() -> codec.Codec:
    return codec.Codec(fast=False)


@pytest.mark.parametrize("name,xml", CASES, ids=[c[0] for c in CASES])
def test_sample_valid_and_round_trips(name, xml, independent_schema, slow):
    data = xml.encode()
    independent_schema.assertValid(etree.fromstring(data))
    obj = codec.decode(data)
    assert codec.encode(obj) == data
    # Both decoding paths build the same object and both encoders write the same bytes.
    assert slow.decode(data) == obj
    assert slow.encode(obj) == data
    # Elements in (lxml and xml.etree) give the same object and leave the element intact.
    element = etree.fromstring(data)
    before = etree.tostring(element)
    assert codec.decode(element) == obj
    assert etree.tostring(element) == before
    assert codec.decode(ET.fromstring(data)) == obj
    # ...and out: a fresh lxml element and an xml.etree element for slixmpp.
    independent_schema.assertValid(codec.to_element(obj))
    assert ET.tostring(codec.to_etree(obj)) == ET.tostring(ET.fromstring(data))


def test_every_mapped_service_is_sampled():
    # Issue 5 list of services (the confirmed ones; informationReport is in OTHER_PDUS).
    expected = {
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
    assert set(SERVICES) == expected
    for name, (request, positive, negative) in SERVICES.items():
        assert f"<{name}>" in request and f"<{name}" in positive, name
        assert "confirmed-ErrorPDU" in negative or "<failure>" in negative, name


def test_typed_access_after_decode():
    read = codec.decode_pdu(SERVICES["read"][1].encode())
    results = read.choice.service.choice.list_of_access_result.access_result
    assert results[0].choice.choice.value == 1
    assert results[2].choice.choice.__class__.__name__ == "ObjectNonExistent"
    envelope = codec.decode(ENVELOPES["ClearTransfer"].encode())
    assert isinstance(envelope, ClearTransfer)
    inner = envelope.tbp.appl_data.mmspdu
    assert isinstance(inner, Mmspdu)
    assert codec.encode(inner) == SERVICES["read"][0].encode()


def test_decode_pdu_refuses_envelopes():
    with pytest.raises(codec.UnknownRoot):
        codec.decode_pdu(ENVELOPES["ReleaseReq"].encode())


def test_encode_validates_outbound_pdus():
    obj = codec.decode_pdu(SERVICES["read"][0].encode())
    name = obj.choice.service.choice.variable_access_specification.choice.sequence[0]
    name.variable_specification.name.choice.item_id = "X" * 65
    with pytest.raises(codec.EncodeError, match="maxLength|length"):
        codec.encode(obj)
    # validate=False skips the check (used by tests that need an invalid document on purpose).
    assert b"X" * 65 in codec.encode(obj, validate=False)


def test_encode_refuses_non_pdu_objects():
    with pytest.raises(codec.EncodeError):
        codec.encode(object())


@pytest.mark.parametrize(
    "name,xml", CASES[: len(SERVICES) * 3], ids=[c[0] for c in CASES[: len(SERVICES) * 3]]
)
def test_pdu_names_give_the_annex_d_keys(name, xml):
    kind, service = codec.pdu_names(codec.decode_pdu(xml.encode()))
    if name.endswith("-request"):
        assert (kind, service) == ("confirmed-RequestPDU", name.rsplit("-", 1)[0])
    elif kind == "confirmed-ResponsePDU":
        assert service == name.rsplit("-", 1)[0]
    else:
        assert (kind, service) == ("confirmed-ErrorPDU", None)


def test_pdu_names_of_other_pdus():
    special = {
        "informationReport": ("unconfirmed-PDU", "informationReport"),
        "informationReport-LastApplError": ("unconfirmed-PDU", "informationReport"),
        "rejectPDU-no-invoke": ("rejectPDU", None),
        "errorPDU-others-description": ("confirmed-ErrorPDU", None),
        "write-confirmed-ErrorPDU": ("confirmed-ErrorPDU", None),
    }
    for name, xml in OTHER_PDUS.items():
        assert codec.pdu_names(codec.decode_pdu(xml.encode())) == special.get(name, (name, None))
