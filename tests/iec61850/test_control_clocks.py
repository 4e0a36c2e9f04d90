"""Control deadlines run on the monotonic clock: the sans-IO server core is given two clocks
(``now``: the IED's wall clock, ``mono``: monotonic) and a step of the wall clock neither
expires nor extends a selection, nor moves a time-activated operate once it was accepted."""

from __future__ import annotations

from pathlib import Path

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import codec, mms
from gridbind.iec61850 import mmsdata as d
from gridbind.iec61850.association import AssociationStarted, InitiateParams
from gridbind.iec61850.control.service import ControlService, Execute
from gridbind.iec61850.envelope import ClearContext
from gridbind.iec61850.model import Timestamp
from gridbind.iec61850.protocol import Reply
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server_protocol import ServerProtocol
from gridbind.iec61850.services.acsi import ServerServices
from gridbind.iec61850.stanza import Received, decode_payload, unwrap

CONTROLS = Path(__file__).parent / "data" / "controls.icd"
LD = "CTL1CTRL"
CLIENT = "ops@x/IEC"
GATE = codec.default_codec()
WALL = 1_800_000_000.0  # the IED's wall clock at MONO
MONO = 5_000.0
SBO_TIMEOUT = 0.4  # CSWI3 in controls.icd


def core() -> ServerProtocol:
    model = load_scl(CONTROLS)
    return ServerProtocol(
        ServerServices(model, None),
        InitiateParams(),
        lambda pdu: len(GATE.encode(pdu)),
        controls=ControlService(model),
    )


def received(pdu: m.Mmspdu, stype: str, sid: str) -> Received:
    from xml.etree import ElementTree as ET

    stanza = ET.Element("{jabber:client}iq")
    stanza.append(GATE.to_etree(ClearContext(CLIENT, "1").seal(pdu, 0.0)))
    return decode_payload(unwrap(stanza), GATE, Received("iq", stype, CLIENT, sid))


def associate(proto: ServerProtocol) -> None:
    (out,) = proto.receive(received(mms.initiate_request(InitiateParams()), "set", "0"), WALL)
    assert isinstance(out, Reply)
    assert isinstance(proto.take_events()[0], AssociationStarted)


def oper(oper_tm: float) -> m.Data:
    return d.structure(
        [
            d.boolean(True),
            d.utc_time(Timestamp.from_float(oper_tm)),
            d.structure([d.integer(3), d.octet_string(b"me")]),
            d.unsigned(1),
            d.utc_time(Timestamp.from_float(WALL)),
            d.boolean(False),
            d.bit_string("00"),
        ]
    )


def answer_of(out: list) -> m.Mmspdu:
    (reply,) = [o for o in out if isinstance(o, Reply)]
    payload = reply.payload
    return payload if isinstance(payload, m.Mmspdu) else payload.appl_data.mmspdu


def test_a_wall_clock_step_neither_expires_nor_extends_a_selection() -> None:
    proto = core()
    associate(proto)
    select = mms.confirmed_request(1, mms.read(mms.dom(LD, "CSWI3$CO$Pos$SBO")))
    out = proto.receive(received(select, "get", "1"), WALL, MONO)
    result = answer_of(out).choice.service.choice.list_of_access_result.access_result[0]
    assert result.choice.choice.value == f"{LD}/CSWI3$CO$Pos"
    obj = proto.controls.control_object(f"{LD}/CSWI3.Pos")
    assert proto.next_deadline() == MONO + SBO_TIMEOUT  # on the monotonic clock
    # the wall clock jumps an hour ahead (an SNTP step): the selection is still there
    assert proto.timer(WALL + 3600, MONO + 0.1) == [] and obj.selected_by is not None
    # ... and an hour back: it still expires after sboTimeout of monotonic time
    proto.timer(WALL - 3600, MONO + SBO_TIMEOUT - 0.01)
    assert obj.selected_by is not None
    proto.timer(WALL - 3600, MONO + SBO_TIMEOUT)
    assert obj.selected_by is None and proto.next_deadline() is None


def test_time_activated_operate_is_converted_once_at_acceptance() -> None:
    proto = core()
    associate(proto)
    name = mms.dom(LD, "CSWI4$CO$Pos$Oper")
    write = mms.confirmed_request(1, mms.write([mms.variable(name)], [oper(WALL + 5)]))
    out = proto.receive(received(write, "set", "1"), WALL, MONO)
    assert answer_of(out).choice.service.choice.choice[0].choice == m.Null()
    # operTm (a wall time) became a monotonic deadline
    assert proto.next_deadline() == MONO + 5
    # a wall-clock step after acceptance does not move it: not earlier ...
    assert proto.timer(WALL + 10, MONO + 4.9) == []
    # ... nor later
    (execute,) = proto.timer(WALL - 10, MONO + 5)
    assert isinstance(execute, Execute) and execute.action.ref == f"{LD}/CSWI4.Pos"


def test_the_activation_delay_is_measured_on_the_wall_clock() -> None:
    """operTm is compared with the IED's wall clock, never with the monotonic reading."""
    service = ControlService(load_scl(CONTROLS), max_activation_delay=60.0)
    proto = core()
    associate(proto)
    assoc = next(iter(proto.core.associations.values()))
    key = ("domain-specific", LD, "CSWI4$CO$Pos$Oper")
    # 30 s ahead of the wall clock: accepted, activation 30 s of monotonic time later
    out = service.write(assoc, key, oper(WALL + 30), MONO, wall=WALL)
    assert len(out) == 1 and out[0].failure is None
    assert service.next_deadline() == MONO + 30
