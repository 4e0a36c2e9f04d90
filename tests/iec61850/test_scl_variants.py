"""SCL file variants beyond the SCD of the other tests: an ICD (capability description, IED
``TEMPLATE``, no address and so no JID) and a CID (one configured IED exported from an SCD, with
neighbours and other access points in its Communication section)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gridbind.cli import main as gridbind_main
from gridbind.iec61850.client import Client
from gridbind.iec61850.memory import MemoryNetwork
from gridbind.iec61850.scl import SclError, list_ieds, load_scl
from gridbind.iec61850.server import IedServer

DATA = Path(__file__).parent / "data"
ICD = DATA / "breaker.icd"
CID = DATA / "bay2.cid"


@pytest.mark.timeout(30)
def test_icd_loads_without_a_jid() -> None:
    assert list_ieds(ICD) == ["TEMPLATE"]
    model = load_scl(ICD)
    assert model.ied_name == "TEMPLATE" and model.jid is None
    assert list(model.children) == ["TEMPLATECTRL"]
    assert list(model.logical_device("TEMPLATECTRL").children) == ["LLN0", "LPHD1", "XCBR1"]
    # instance values over template defaults, Dbpos, enums, a structured attribute
    assert model.read("TEMPLATECTRL/XCBR1.Pos.stVal", "ST") == 2
    assert model.read("TEMPLATECTRL/XCBR1.Pos.ctlModel", "CF") == 1
    assert model.read("TEMPLATECTRL/XCBR1.Pos.origin", "ST") == {"orCat": 0, "orIdent": b""}
    assert model.read("TEMPLATECTRL/XCBR1.OpCnt.stVal", "ST") == 17
    assert model.read("TEMPLATECTRL/LLN0.Beh.stVal", "ST") == 1  # template <Val>on</Val>
    assert model.read("TEMPLATECTRL/LLN0.NamPlt", "DC") == {"vendor": "gridbind", "swRev": "3.A"}
    positions = model.dataset("TEMPLATECTRL/LLN0.Positions")
    assert [str(m) for m in positions.members] == [
        "TEMPLATECTRL/XCBR1.Pos.stVal[ST]",
        "TEMPLATECTRL/XCBR1.Pos.q[ST]",
    ]
    assert model.read("TEMPLATECTRL/LLN0.gcbPos.DatSet", "GO") == "TEMPLATECTRL/LLN0.Positions"
    assert load_scl(ICD, "TEMPLATE").jid is None


@pytest.mark.timeout(30)
def test_icd_variants_without_communication_and_in_edition_1() -> None:
    text = ICD.read_text()
    start, end = text.index("  <Communication>"), text.index("</Communication>\n")
    no_comm = text[:start] + text[end + len("</Communication>\n") :]
    assert "<Communication" not in no_comm
    assert load_scl(no_comm.encode()).jid is None
    # an edition 1 (2003) file: no version/revision/release on SCL, no History
    ed1 = no_comm.replace(' version="2007" revision="B" release="4"', "", 1)
    ed1 = ed1[: ed1.index("    <History>")] + ed1[ed1.index("</History>\n") + 11 :]
    model = load_scl(ed1.encode())
    assert model.ied_name == "TEMPLATE"
    assert model.read("TEMPLATECTRL/XCBR1.OpCnt.stVal", "ST") == 17
    # a JID written into the ICD's ConnectedAP is picked up (the configurator's job, normally)
    with_jid = text.replace(
        '<ConnectedAP iedName="TEMPLATE" apName="S1"/>',
        '<ConnectedAP iedName="TEMPLATE" apName="S1">'
        '<Address><P type="JID">bcu@test.local</P></Address></ConnectedAP>',
    )
    assert load_scl(with_jid.encode()).jid == "bcu@test.local"


@pytest.mark.timeout(30)
def test_cid_loads_its_ied_and_its_jid() -> None:
    assert list_ieds(CID) == ["BAY2"]  # BAY1 is only named in the Communication section
    model = load_scl(CID)
    # the JID of BAY2's server access point S1: not BAY1's, not the G1 access point's
    assert model.ied_name == "BAY2" and model.jid == "bay2@test.local/IEC"
    assert load_scl(CID, "BAY2").jid == "bay2@test.local/IEC"
    assert list(model.children) == ["BAY2CTRL"]  # ldName gives the domain name
    assert list(model.logical_device("BAY2CTRL").children) == ["LLN0", "Q0XSWI1", "PTOV1"]
    sgcb = model.sgcb("BAY2CTRL")
    assert (sgcb.num_of_sg, sgcb.act_sg) == (2, 2)
    assert model.read("BAY2CTRL/PTOV1.StrVal.setMag.f", "SG") == 115.0
    model.select_active_sg("BAY2CTRL", 1)
    assert model.read("BAY2CTRL/PTOV1.StrVal.setMag.f", "SG") == 110.0
    assert sorted(model.logical_node("BAY2CTRL/LLN0").datasets) == ["Spare", "Trip"]
    assert model.read("BAY2CTRL/LLN0.gcbTrip", "GO")["DatSet"] == "BAY2CTRL/LLN0.Trip"
    assert model.read("BAY2CTRL/LLN0.gcbTrip.ConfRev", "GO") == 2
    with pytest.raises(SclError, match="no IED named 'BAY1'"):
        load_scl(CID, "BAY1")


@pytest.mark.timeout(30)
def test_cid_jid_only_from_the_server_access_point() -> None:
    text = CID.read_text()
    # move the JID to the access point without a server: the server's AP has none
    moved = text.replace('<P type="JID">bay2@test.local/IEC</P>', "").replace(
        '<ConnectedAP iedName="BAY2" apName="G1">',
        '<ConnectedAP iedName="BAY2" apName="G1"><Address>'
        '<P type="JID">wrong@test.local</P></Address>',
    )
    assert load_scl(moved.encode()).jid is None
    broken = text.replace("bay2@test.local/IEC", "bay2.test.local")
    with pytest.raises(SclError, match="JID"):
        load_scl(broken.encode())
    # a data set member naming an LD that the CID does not have is a clear error
    bad_member = text.replace('ldInst="LD1" prefix="Q0"', 'ldInst="LD9" prefix="Q0"', 1)
    with pytest.raises(SclError, match="LDevice inst 'LD9'"):
        load_scl(bad_member.encode())


@pytest.mark.timeout(30)
def test_serving_an_icd_without_jid_is_a_clear_error(tmp_path, capsys) -> None:
    pw = tmp_path / "pw"
    pw.write_text("x")
    ca = tmp_path / "ca.pem"  # never read: serve stops before connecting
    ca.write_text("")
    status = gridbind_main(
        ["iec61850", "serve", "--scl", str(ICD), "--password-file", str(pw), "--ca", str(ca)]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert "no --jid" in err and "JID" in err.replace("--jid", "")


@pytest.mark.timeout(20)
def test_icd_and_cid_served() -> None:
    async def main():
        # an ICD has no JID of its own: the server is given one (its transport's)
        net = MemoryNetwork()
        icd = IedServer(load_scl(ICD), transport=net.endpoint("icd@memory.test"))
        cid = IedServer(load_scl(CID), transport=net.endpoint("cid@memory.test"))
        client = Client(transport=net.endpoint("variants@memory.test"))
        await asyncio.gather(icd.start(), cid.start(), client.connect())
        try:
            a, b = await asyncio.gather(client.associate(icd.jid), client.associate(cid.jid))
            assert await a.get_server_directory() == ["TEMPLATECTRL"]
            assert await a.get_logical_node_directory("TEMPLATECTRL/XCBR1") == [
                "Beh",
                "OpCnt",
                "Pos",
            ]
            assert await a.get_data_values("TEMPLATECTRL/XCBR1.Pos.stVal", "ST") == "10"
            assert await a.get_data_set_values("TEMPLATECTRL/LLN0.Positions") == [
                "10",
                "0000000000000",
            ]
            assert await b.get_server_directory() == ["BAY2CTRL"]
            sgcb = await b.get_sgcb_values("BAY2CTRL")
            assert (sgcb["NumOfSG"], sgcb["ActSG"], sgcb["EditSG"]) == (2, 2, 0)
            assert await b.get_data_values("BAY2CTRL/PTOV1.StrVal.setMag.f", "SG") == 115.0
            assert await b.get_logical_node_directory("BAY2CTRL/LLN0", "GoCB") == ["gcbTrip"]
        finally:
            await asyncio.gather(client.close(), icd.close(), cid.close())

    asyncio.run(asyncio.wait_for(main(), 15))
