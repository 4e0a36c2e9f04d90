"""The sans-IO protocol cores on their own: typed stanzas and ``now`` in, typed items out, no
transport and no event loop. The two cores are also wired to each other directly."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import codec, mms
from gridbind.iec61850 import mmsdata as d
from gridbind.iec61850.association import (
    AssociationEnded,
    AssociationError,
    AssociationStarted,
    InitiateParams,
)
from gridbind.iec61850.client_protocol import (
    ClientError,
    ClientProtocol,
    ReportReceived,
    RequestRejected,
    ServiceFailed,
)
from gridbind.iec61850.envelope import ClearContext
from gridbind.iec61850.files import FileStore
from gridbind.iec61850.protocol import Call, ErrorReply, Reply, Send
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server_protocol import ServerProtocol
from gridbind.iec61850.services.acsi import ServerServices
from gridbind.iec61850.stanza import Received, StanzaError, decode_payload, unwrap

FEEDER = Path(__file__).parent / "data" / "feeder.scd"
CLIENT = "ops@x/IEC"
SERVER = "ied@x/IEC"
GATE = codec.default_codec()


class Recording(ClearContext):
    """ClearContext that records the times it was used at (the envelope seam gets ``now``)."""

    used: list[tuple[str, str, float]] = []

    def seal(self, pdu, now):
        Recording.used.append(("seal", self.asso_id, now))
        return super().seal(pdu, now)

    def open(self, envelope, now):
        Recording.used.append(("open", self.asso_id, now))
        return super().open(envelope, now)


def server(tmp_path, **local) -> ServerProtocol:
    services = ServerServices(load_scl(FEEDER), FileStore(tmp_path))
    params = InitiateParams(**{"max_outstanding_calling": 2, "max_outstanding_called": 2, **local})
    return ServerProtocol(services, params, lambda pdu: len(GATE.encode(pdu)), envelopes=Recording)


def received(payload, kind="iq", stype="get", sender=CLIENT, sid="1") -> Received:
    """``payload`` as a transport delivers it: through the stanza element and the gate."""
    from xml.etree import ElementTree as ET

    stanza = ET.Element("{jabber:client}" + kind)
    stanza.append(GATE.to_etree(payload))
    return decode_payload(unwrap(stanza), GATE, Received(kind, stype, sender, sid))


def sealed(assoc_id: str, pdu: m.Mmspdu) -> object:
    return ClearContext(CLIENT, assoc_id).seal(pdu, 0.0)


def opened(item) -> m.Mmspdu:
    payload = item.payload
    return payload if isinstance(payload, m.Mmspdu) else payload.appl_data.mmspdu


def associate(proto: ServerProtocol, assoc_id: str = "1", now: float = 100.0):
    (out,) = proto.receive(
        received(sealed(assoc_id, mms.initiate_request(InitiateParams())), stype="set"), now
    )
    assert isinstance(out, Reply) and isinstance(opened(out).choice, m.InitiateResponsePdu)
    (event,) = proto.take_events()
    assert isinstance(event, AssociationStarted)
    return event.association


def request(assoc_id, invoke_id, service, stype="get"):
    return received(sealed(assoc_id, mms.confirmed_request(invoke_id, service)), stype=stype)


def test_server_core_answers_and_refuses(tmp_path) -> None:
    proto = server(tmp_path, max_pdu_size=2048)
    Recording.used.clear()
    assoc = associate(proto, "1", now=100.0)
    assert ("open", "1", 100.0) in Recording.used and ("seal", "1", 100.0) in Recording.used
    name = mms.dom("FDR1LD0", "GGIO1$ST$Ind1$stVal")
    (out,) = proto.receive(request("1", 1, mms.read(name)), 101.0)
    assert isinstance(out, Reply) and out.request.id == "1"
    body = opened(out).choice
    assert body.invoke_id == 1 and body.service.choice.list_of_access_result.access_result == [
        m.AccessResult(choice=d.boolean(True))
    ]
    assert ("seal", "1", 101.0) in Recording.used  # time comes in as an argument
    # Table D.1: read travels in iq get
    (out,) = proto.receive(request("1", 2, mms.read(name), "set"), 102.0)
    assert isinstance(out, ErrorReply) and out.condition == "bad-request"
    # outside any association / unknown association
    bare = received(mms.confirmed_request(3, mms.read(name)))
    (out,) = proto.receive(bare, 102.0)
    assert (out.condition, out.etype) == ("not-authorized", "cancel")
    (out,) = proto.receive(request("9", 3, mms.read(name)), 102.0)
    assert out.condition == "item-not-found"
    # conclude travels in iq set
    conclude = sealed("1", m.Mmspdu(choice=m.Mmspdu.ConcludeRequestPdu()))
    (out,) = proto.receive(received(conclude), 103.0)
    assert out.condition == "bad-request" and "Annex D" in out.text
    # a PDU larger than negotiated: rejectPDU in a message, bad-request on the iq
    item = request("1", 4, mms.read(name))
    item.size = 5000
    reject, error = proto.receive(item, 104.0)
    assert isinstance(reject, Send) and reject.to == CLIENT
    assert mms.reject_reason(opened(reject).choice) == "pdu-error:invalid-pdu"
    assert opened(reject).choice.original_invoke_id == 4
    assert isinstance(error, ErrorReply) and error.condition == "bad-request"
    # a payload the gate refused, in a known association: reject (with the invokeID) + error
    refused = Received("iq", "get", CLIENT, "5", association="1", invoke_id=77)
    refused.error = codec.SchemaViolation("bad")
    reject, error = proto.receive(refused, 105.0)
    assert opened(reject).choice.original_invoke_id == 77 and error.condition == "bad-request"
    # a response that is not a request
    (out,) = proto.receive(received(sealed("1", mms.reject(1, "pdu-error:invalid-pdu"))), 106.0)
    assert out.condition == "bad-request"
    # paging: name lists are cut to the negotiated PDU size, moreFollows set
    names = mms.get_name_list("namedVariable", "domainSpecific", "FDR1LD0")
    (out,) = proto.receive(request("1", 6, names), 107.0)
    page = opened(out)
    assert len(GATE.encode(page)) <= 2048 and page.choice.service.choice.more_follows is True
    # conclude; afterwards the association is gone
    (out,) = proto.receive(received(conclude, stype="set"), 108.0)
    assert isinstance(opened(out).choice, m.Mmspdu.ConcludeResponsePdu)
    (event,) = proto.take_events()
    assert isinstance(event, AssociationEnded) and event.association is assoc
    assert proto.core.associations == {}


def _answer(call: Call, response) -> Received:
    """The client's answer to a server Call (what it sends back in iq result)."""
    request = call.payload.appl_data.mmspdu.choice
    pdu = mms.confirmed_response(request.invoke_id, m.ConfirmedServiceResponse(choice=response))
    return received(sealed(call.payload.asso_id, pdu), stype="result")


def test_obtain_file_pull_outstanding_limit_and_duplicates(tmp_path) -> None:
    proto = server(tmp_path)
    associate(proto)
    (call,) = proto.receive(request("1", 1, mms.obtain_file("src", "up/a.bin")), 1.0)
    assert isinstance(call, Call) and call.to == CLIENT and call.iq_type == "set"
    assert isinstance(call.payload.appl_data.mmspdu.choice.service.choice, m.FileOpenRequest)
    # while it is outstanding: the same invokeID again is refused ...
    reject, _ = proto.receive(request("1", 1, mms.file_directory()), 2.0)
    assert mms.reject_reason(opened(reject).choice) == "confirmed-requestPDU:invalid-invokeID"
    # ... a second pull in the same association is refused at once (one pull per association)
    (busy,) = proto.receive(request("1", 2, mms.obtain_file("src2", "up/b.bin")), 2.0)
    error = opened(busy).choice
    assert isinstance(error, m.ConfirmedErrorPdu) and error.invoke_id == 2
    assert mms.error_parts(error.service_error)[:2] == ("resource", "capability-unavailable")
    # conclude while requests are outstanding: conclude-ErrorPDU
    conclude = sealed("1", m.Mmspdu(choice=m.Mmspdu.ConcludeRequestPdu()))
    (out,) = proto.receive(received(conclude, stype="set"), 2.0)
    assert isinstance(opened(out).choice, m.Mmspdu.ConcludeErrorPdu)
    # the first pull: open, read (two pieces), close, then the obtainFile answer
    attrs = mms.field_class(m.FileOpenResponse, "file_attributes")(size_of_file=6)
    (call,) = proto.answer(
        call.token, _answer(call, m.FileOpenResponse(frsm_id=4, file_attributes=attrs)), 3.0
    )
    (call,) = proto.answer(
        call.token, _answer(call, m.FileReadResponse(file_data=b"abc", more_follows=True)), 3.0
    )
    (call,) = proto.answer(
        call.token, _answer(call, m.FileReadResponse(file_data=b"def", more_follows=False)), 3.0
    )
    assert isinstance(call.payload.appl_data.mmspdu.choice.service.choice,
                      m.ConfirmedServiceRequest.FileClose)  # fmt: skip
    (done,) = proto.answer(call.token, _answer(call, m.ConfirmedServiceResponse.FileClose()), 4.0)
    assert isinstance(done, Reply) and opened(done).choice.invoke_id == 1
    assert isinstance(opened(done).choice.service.choice, m.ConfirmedServiceResponse.ObtainFile)
    assert (tmp_path / "up" / "a.bin").read_bytes() == b"abcdef"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no spool left
    # the next pull: the requester fails the open; the obtainFile gets a file error
    (call2,) = proto.receive(request("1", 2, mms.obtain_file("src2", "up/b.bin")), 5.0)
    (failed,) = proto.answer(call2.token, StanzaError("bad-request", "no"), 5.0)
    error = opened(failed).choice
    assert isinstance(error, m.ConfirmedErrorPdu) and error.invoke_id == 2
    assert mms.error_parts(error.service_error)[0] == "file"
    assert not (tmp_path / "up" / "b.bin").exists()
    assert proto.answer(call2.token, StanzaError("bad-request"), 5.0) == []  # token used up


def test_information_report_is_server_initiated(tmp_path) -> None:
    proto = server(tmp_path)
    assoc = associate(proto)
    report = mms.information_report(mms.vmd("RPT"), [m.AccessResult(choice=d.integer(7))])
    (out,) = proto.information_report(assoc, report, 9.0)
    assert isinstance(out, Send) and out.to == CLIENT and out.payload.asso_id == "1"
    with pytest.raises(ValueError):
        proto.information_report(assoc, mms.reject(1, "pdu-error:invalid-pdu"), 9.0)
    proto.link_lost("test")
    with pytest.raises(AssociationError):
        proto.information_report(assoc, report, 9.0)


# ---------------------------------------------------------------------------------- both cores
class Wire:
    """The two cores connected directly: every item goes through the stanza layer and gate."""

    def __init__(self, tmp_path) -> None:
        self.server = server(tmp_path, max_pdu_size=4096)
        self.client = ClientProtocol(InitiateParams(max_outstanding_calling=2))

    def call(self, call: Call, sender=CLIENT):
        """Deliver a client Call to the server; the answer (or the stanza error)."""
        answer = None
        for out in self.server.receive(received(call.payload, stype=call.iq_type), 1.0):
            if isinstance(out, Send):
                self.message(out)
            elif isinstance(out, ErrorReply):
                answer = StanzaError(out.condition, out.text, out.etype)
            elif isinstance(out, Reply):
                answer = received(out.payload, stype="result", sender=SERVER)
        self.server.take_events()
        return answer

    def message(self, out: Send) -> None:
        item = received(out.payload, kind="message", stype="normal", sender=SERVER)
        assert self.client.receive(item, 1.0) == []


def test_client_core_against_the_server_core(tmp_path) -> None:
    wire = Wire(tmp_path)
    client = wire.client
    call = client.initiate(SERVER, 0.0)
    assoc = client.initiated(call, wire.call(call), 0.0)
    assert assoc.params.max_pdu_size == 4096 and assoc.peer == SERVER
    client.take_events()
    # a confirmed service
    call = client.call(assoc, mms.read(mms.dom("FDR1LD0", "GGIO1$ST$IntIn1$stVal")), 1.0)
    response = client.result(assoc, call, wire.call(call), 1.0)
    assert response.list_of_access_result.access_result[0].choice == d.integer(42)
    assert not assoc.outstanding
    # a confirmed-ErrorPDU
    call = client.call(assoc, mms.get_variable_access_attributes(mms.dom("NOPE", "X")), 1.0)
    with pytest.raises(ServiceFailed) as failed:
        client.result(assoc, call, wire.call(call), 1.0)
    assert (failed.value.error_class, failed.value.code) == ("access", "object-non-existent")
    # a rejectPDU (message) then the stanza error: RequestRejected with the reason
    deep = d.boolean(True)
    for _ in range(12):
        deep = d.structure([deep])
    call = client.call(assoc, mms.write([mms.dom("FDR1LD0", "GGIO1$DC$Ind1$d")], [deep]), 1.0)
    with pytest.raises(RequestRejected) as rejected:
        client.result(assoc, call, wire.call(call), 1.0)
    assert rejected.value.reason == "confirmed-requestPDU:max-recursion-exceeded"
    # an answer in another association is no answer
    call = client.call(assoc, mms.read(mms.dom("FDR1LD0", "GGIO1$ST$IntIn1$stVal")), 1.0)
    answer = wire.call(call)
    other = ClearContext(SERVER, "2").seal(answer.payload.appl_data.mmspdu, 0.0)
    with pytest.raises(ClientError, match="association '2'"):
        client.result(assoc, call, received(other, stype="result", sender=SERVER), 1.0)
    # the server's informationReport reaches the client as an event
    (server_assoc,) = wire.server.core.associations.values()
    report = mms.information_report(mms.vmd("RPT"), [m.AccessResult(choice=d.integer(7))])
    (out,) = wire.server.information_report(server_assoc, report, 2.0)
    wire.message(out)
    (event,) = client.take_events()
    assert isinstance(event, ReportReceived) and event.association is assoc
    assert event.report == report.choice.service.information_report
    # conclude
    call = client.conclude(assoc, 3.0)
    client.concluded(assoc, wire.call(call), 3.0)
    assert not assoc.open and isinstance(client.take_events()[0], AssociationEnded)


LEAVES = st.one_of(
    st.builds(d.boolean, st.booleans()),
    st.builds(d.integer, st.integers(-(2**63), 2**63 - 1)),
    st.builds(d.visible_string, st.text(st.characters(min_codepoint=32, max_codepoint=126))),
    st.builds(d.octet_string, st.binary(max_size=16)),
)
DATA = st.recursive(LEAVES, lambda kids: st.builds(d.structure, st.lists(kids, max_size=3)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(DATA, max_size=3),
    st.sampled_from(["get", "set"]),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=6),
    st.integers(0, 400),
)
def test_every_request_gets_one_answer(tmp_path_factory, datas, stype, invoke, junk, at) -> None:
    """Whatever write a peer sends (well-formed, or damaged bytes the gate refuses), the core
    answers the iq exactly once and never raises."""
    from xml.etree import ElementTree as ET

    proto = server(tmp_path_factory.mktemp("p"))
    associate(proto)
    names = [mms.dom("FDR1LD0", "GGIO1$DC$Ind1$d")] * len(datas)
    pdu = mms.confirmed_request(invoke, mms.write(names, datas))
    data = GATE.encode(sealed("1", pdu), validate=False)
    damaged = data[:at] + junk + data[at + len(junk) :]
    try:
        element = ET.fromstring(damaged)
    except ET.ParseError:
        return  # not XML: the XMPP stream would have ended before any stanza
    stanza = ET.Element("{jabber:client}iq")
    stanza.append(element)
    found = unwrap(stanza)
    if found is None:
        return
    item = decode_payload(found, GATE, Received("iq", stype, CLIENT, "9"))
    out = proto.receive(item, 1.0)
    answers = [o for o in out if isinstance(o, (Reply, ErrorReply))]
    assert len(answers) == 1 and all(isinstance(o, (Reply, ErrorReply, Send)) for o in out)


def test_e2e_envelope_names_its_association_and_is_refused_with_e2e_off(tmp_path) -> None:
    """An IEC 62351-4 ClearTransfer carries its assoID in ClearToken2: the core finds the
    association and its layer (ClearContext, E2E off) refuses it: rejectPDU in the association
    plus bad-request, nothing served."""
    from gridbind.generated.iec61850_8_2 import e2e_4 as e2e
    from gridbind.iec61850.envelope import association_id

    icv = mms.choice_of(e2e.IcvAlgorithm, "hmac-sha256")
    proto = server(tmp_path)
    associate(proto, "1")
    pdu = mms.confirmed_request(3, mms.read(mms.dom("FDR1LD0", "GGIO1$ST$Ind1$stVal")))
    transfer = e2e.ClearTransfer(
        tbp=e2e.ClearTbp(
            token2=e2e.ClearToken2(asso_id="1", time="20260101000000,000Z", seq=1),
            appl_data=e2e.ApplData(mmspdu=pdu),
        ),
        auth=e2e.Authenticator(algorithm=icv, icv=b"\x00" * 16),
    )
    assert association_id(transfer) == "1" and association_id(pdu) is None
    item = received(transfer)  # schema-valid: through the stanza element and the gate
    assert item.error is None and item.association == "1"
    reject, error = proto.receive(item, 1.0)
    assert isinstance(reject, Send) and reject.payload.asso_id == "1"
    assert error.condition == "bad-request" and "E2E security is off" in error.text
