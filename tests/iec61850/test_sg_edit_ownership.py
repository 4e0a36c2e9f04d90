"""Setting group editing belongs to one association (IEC 61850-7-2 Ed2): the association that
called SelectEditSG holds the edit buffer; others are refused; the reservation and its
unconfirmed values go on conclude, abort and (with SCL ``SGEdit resvTms``) after ``ResvTms``.
Service level, time passed in as ``now``: no sockets, no sleeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridbind.iec61850 import mmsdata as d
from gridbind.iec61850.association import AssociationCore, InitiateParams
from gridbind.iec61850.model import DataAccessError
from gridbind.iec61850.scl import SclError, load_scl
from gridbind.iec61850.services.acsi import ServerServices

from iec_testkit import outcome

FEEDER = Path(__file__).parent / "data" / "feeder.scd"
BUSY = DataAccessError.TEMPORARILY_UNAVAILABLE


def dom(ld, item):
    return ("domain-specific", ld, item)


SE = dom("FDR1PROT", "IPTOC1$SE$OpDlTmms$setVal")
SG = dom("FDR1PROT", "IPTOC1$SG$OpDlTmms$setVal")


def sgcb(attr):
    return dom("FDR1PROT", f"LLN0$SP$SGCB${attr}")


def scl_with_resv(resv: str = ' resvTms="5"') -> bytes:
    text = FEEDER.read_text()
    text = text.replace("<SGEdit/>", '<SGEdit resvTms="true"/>', 1)
    text = text.replace('numOfSGs="3" actSG="1"', f'numOfSGs="3" actSG="1"{resv}', 1)
    return text.encode()


def setup(scl: bytes | Path = FEEDER):
    core = AssociationCore(InitiateParams(max_pdu_size=8192))
    svc = ServerServices(load_scl(scl))
    a = core.accept("a@test.local/IEC", "1", InitiateParams())
    # Same association id from another client: the owner is the (peer, id) pair, not the id.
    b = core.accept("b@test.local/IEC", "1", InitiateParams())
    return core, svc, a, b


def write(svc, assoc, name, data, now=0.0):
    return svc.write_variables(assoc, [name], [data], now=now)[0]


def read(svc, assoc, name, now=0.0):
    return outcome(svc.read_variables(assoc, [name], now=now)[0])


def test_edit_buffer_belongs_to_the_selecting_association() -> None:
    _, svc, a, b = setup()
    assert write(svc, a, sgcb("EditSG"), d.unsigned(2)) is None
    assert write(svc, a, SE, d.integer(25)) is None
    # a sees its unconfirmed value; b sees the stored value of the group being edited
    assert read(svc, a, SE) == ("success", d.integer(25))
    assert read(svc, b, SE) == ("success", d.integer(20))
    # b can neither write, confirm nor take over the reservation
    assert write(svc, b, SE, d.integer(99)) == BUSY
    assert write(svc, b, sgcb("CnfEdit"), d.boolean(True)) == BUSY
    assert write(svc, b, sgcb("EditSG"), d.unsigned(3)) == BUSY
    assert write(svc, b, sgcb("EditSG"), d.unsigned(0)) == BUSY
    # the refusal says why
    with pytest.raises(Exception, match="reserved for editing by another association"):
        svc.model.check_write(
            svc.model.find("FDR1PROT/IPTOC1.OpDlTmms.setVal", "SE"), "SE", 1, editor=b.key
        )
    # SelectActiveSG is not part of the edit reservation
    assert write(svc, b, sgcb("ActSG"), d.unsigned(1)) is None
    assert write(svc, a, sgcb("CnfEdit"), d.boolean(True)) is None
    assert read(svc, b, SE) == ("success", d.integer(25))
    # a ends editing: b may now select
    assert write(svc, a, sgcb("EditSG"), d.unsigned(0)) is None
    assert write(svc, b, sgcb("EditSG"), d.unsigned(3)) is None
    assert write(svc, a, SE, d.integer(1)) == BUSY


@pytest.mark.parametrize("how", ["conclude", "abort"])
def test_association_end_drops_reservation_and_unconfirmed_values(how) -> None:
    core, svc, a, b = setup()
    assert write(svc, a, sgcb("EditSG"), d.unsigned(2)) is None
    assert write(svc, a, SE, d.integer(26)) is None
    if how == "conclude":
        core.conclude(a.peer, a.id)
    else:
        core.peer_unavailable(a.peer)
    for event in core.take_events():  # what the server does with every AssociationEnded
        svc.association_ended(event.association)
    assert svc.model.read("FDR1PROT/LLN0.SGCB.EditSG", "SP") == 0
    assert write(svc, b, sgcb("EditSG"), d.unsigned(2)) is None
    assert read(svc, b, SE) == ("success", d.integer(20))  # a's 26 never confirmed
    assert write(svc, b, sgcb("CnfEdit"), d.boolean(True)) is None
    assert svc.model.read("FDR1PROT/IPTOC1.OpDlTmms.setVal", "SE") == 20


def test_resv_tms_reservation_expires_at_its_deadline() -> None:
    _, svc, a, b = setup(scl_with_resv())
    assert svc.model.read("FDR1PROT/LLN0.SGCB.ResvTms", "SP") == 5
    assert svc.next_deadline() is None
    assert write(svc, a, sgcb("EditSG"), d.unsigned(2), now=100.0) is None
    assert svc.next_deadline() == 105.0
    assert write(svc, a, SE, d.integer(27), now=101.0) is None
    assert write(svc, b, sgcb("EditSG"), d.unsigned(2), now=104.9) == BUSY
    # the server's timer fires at the deadline
    svc.expire(105.0)
    assert svc.next_deadline() is None
    assert svc.model.read("FDR1PROT/LLN0.SGCB.EditSG", "SP") == 0
    assert write(svc, a, SE, d.integer(28), now=105.5) == BUSY  # no longer a's
    assert write(svc, b, sgcb("EditSG"), d.unsigned(2), now=106.0) is None
    assert read(svc, b, SE, now=106.0) == ("success", d.integer(20))


def test_resv_tms_expiry_is_also_checked_lazily() -> None:
    _, svc, a, b = setup(scl_with_resv())
    assert write(svc, a, sgcb("EditSG"), d.unsigned(3), now=0.0) is None
    # no timer ran: b's request at now >= deadline sees the reservation gone
    assert write(svc, b, sgcb("EditSG"), d.unsigned(3), now=5.0) is None
    assert write(svc, a, SE, d.integer(1), now=5.0) == BUSY


def test_without_resv_tms_there_is_no_deadline_and_no_attribute() -> None:
    _, svc, a, _ = setup()
    assert write(svc, a, sgcb("EditSG"), d.unsigned(2), now=0.0) is None
    assert svc.next_deadline() is None
    assert write(svc, a, SE, d.integer(21), now=1e9) is None
    assert "ResvTms" not in svc.model.find("FDR1PROT/LLN0.SGCB", "SP").children


def test_resv_tms_defaults_and_needs_sgedit_resvtms() -> None:
    model = load_scl(scl_with_resv(""))
    assert model.read("FDR1PROT/LLN0.SGCB.ResvTms", "SP") == 30
    text = FEEDER.read_text().replace('actSG="1"', 'actSG="1" resvTms="5"', 1)
    with pytest.raises(SclError, match=r"<scl>:\d+: .*resvTms"):
        load_scl(text.encode())


def test_services_without_sgedit_refuse_editing() -> None:
    text = FEEDER.read_text().replace("<SGEdit/><ConfSG/>", "<ConfSG/>", 1)
    _, svc, a, _ = setup(text.encode())
    denied = DataAccessError.OBJECT_ACCESS_DENIED
    assert write(svc, a, sgcb("EditSG"), d.unsigned(2)) == denied
    assert write(svc, a, sgcb("ActSG"), d.unsigned(2)) is None
