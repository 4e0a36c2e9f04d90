"""Service tracking of control blocks (LTRK BrcbTrk, UrcbTrk, LocbTrk, GocbTrk, SgcbTrk): each
Set<CB>Values and setting group service updates the tracking object of its block's kind, with
the service type and error names through the SCL's EnumTypes. Service level (time passed in),
over the in-memory transport, and one test through a real Prosody. The ServiceType ordinals of
tracking.scd are the SCL's own (the code writes names, never ordinals)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gridbind.iec61850 import mmsdata as d
from gridbind.iec61850.association import AssociationCore, InitiateParams
from gridbind.iec61850.client import Client
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer
from gridbind.iec61850.services.acsi import ServerServices

from iec_testkit import memory_served, run, settings

SCL = Path(__file__).parent / "data" / "tracking.scd"
A = "a@test.local/IEC"
B = "b@test.local/IEC"


def setup(scl: bytes | Path = SCL):
    core = AssociationCore(InitiateParams(max_pdu_size=8192))
    svc = ServerServices(load_scl(scl))
    return svc, core.accept(A, "1", InitiateParams()), core.accept(B, "2", InitiateParams())


def write(svc, assoc, ld, item, data):
    return svc.write_variables(assoc, [("domain-specific", ld, item)], [data], now=0.0)[0]


def tracked(owner, ref):
    """The tracking object with its enums by name (as the SCL declares them)."""
    model = getattr(owner, "model", owner)
    obj = model.find(ref)
    values = model.read(ref, "SR")
    for name in ("serviceType", "errorCode"):
        values[name] = obj.children[name].enum.values[values[name]]
    return values


def test_brcb_write_updates_brcb_tracking_only() -> None:
    svc, a, _ = setup()
    assert write(svc, a, "FDR1LD0", "LLN0$BR$brcbMeas$IntgPd", d.unsigned(2000)) is None
    bts = tracked(svc, "FDR1LD0/LTRK1.BrcbTrk")
    assert bts["objRef"] == "FDR1LD0/LLN0.brcbMeas"
    assert bts["serviceType"] == "SetBRCBValues"
    assert bts["errorCode"] == "no-error"
    assert bts["originatorID"] == A.encode()
    assert bts["intgPd"] == 2000 and bts["confRev"] == 1 and bts["rptEna"] is False
    assert bts["t"].seconds > 0
    # the URCB's tracking object is not touched by a BRCB service
    assert svc.model.read("FDR1LD0/LTRK1.UrcbTrk.objRef", "SR") == ""


def test_refused_rcb_writes_over_the_memory_transport() -> None:
    async def body() -> None:
        async with memory_served(SCL, clients=2) as (server, (c1, c2), _):
            a = await c1.associate(server.jid)
            b = await c2.associate(server.jid)
            urcb = "FDR1LD0/LLN0.urcbStatus01"
            assert (await a.set_urcb_values(urcb, Resv=True))["Resv"] is None
            uts = tracked(server.model, "FDR1LD0/LTRK1.UrcbTrk")
            assert (uts["serviceType"], uts["errorCode"]) == ("SetURCBValues", "no-error")
            assert uts["resv"] is True and uts["originatorID"] == c1.transport.full_jid.encode()
            # another client: the URCB is reserved by the first
            assert (await b.set_urcb_values(urcb, RptEna=True))["RptEna"] is not None
            uts = tracked(server.model, "FDR1LD0/LTRK1.UrcbTrk")
            assert uts["errorCode"] == "instance-locked-by-other-client"
            assert uts["originatorID"] == c2.transport.full_jid.encode() and uts["rptEna"] is False
            # a data set that does not exist: parameter-value-inappropriate
            brcb = "FDR1LD0/LLN0.brcbMeas"
            assert (await a.set_brcb_values(brcb, DatSet="FDR1LD0/LLN0.Nope"))["DatSet"]
            bts = tracked(server.model, "FDR1LD0/LTRK1.BrcbTrk")
            assert (bts["objRef"], bts["serviceType"], bts["errorCode"]) == (
                "FDR1LD0/LLN0.brcbMeas",
                "SetBRCBValues",
                "parameter-value-inappropriate",
            )
            assert bts["confRev"] == 1 and bts["originatorID"] == c1.transport.full_jid.encode()

    run(body(), timeout=10)


def test_lcb_and_gocb_writes() -> None:
    svc, a, _ = setup()
    assert write(svc, a, "FDR1LD0", "LLN0$LG$logStatus$LogEna", d.boolean(True)) is None
    lts = tracked(svc, "FDR1LD0/LTRK1.LocbTrk")
    assert (lts["objRef"], lts["serviceType"], lts["logEna"]) == (
        "FDR1LD0/LLN0.logStatus",
        "SetLCBValues",
        True,
    )
    assert write(svc, a, "FDR1LD0", "LLN0$GO$gcbStatus$GoEna", d.boolean(True)) is None
    gts = tracked(svc, "FDR1LD0/LTRK1.GocbTrk")
    assert (gts["objRef"], gts["serviceType"], gts["errorCode"]) == (
        "FDR1LD0/LLN0.gcbStatus",
        "SetGoCBValues",
        "no-error",
    )
    assert gts["goEna"] is True and gts["goID"] == svc.model.read(
        "FDR1LD0/LLN0.gcbStatus.GoID", "GO"
    )


def test_msvcb_write_updates_msvcb_tracking() -> None:
    svc, a, _ = setup()
    assert write(svc, a, "FDR1LD0", "LLN0$MS$msvcbMeas$SvEna", d.boolean(True)) is None
    mts = tracked(svc, "FDR1LD0/LTRK1.MsvcbTrk")
    assert (mts["objRef"], mts["serviceType"], mts["errorCode"]) == (
        "FDR1LD0/LLN0.msvcbMeas",
        "SetMSVCBValues",
        "no-error",
    )
    assert mts["svEna"] is True and mts["msvID"] == "FDR1_SV" and mts["smpRate"] == 80


def test_setting_group_services_update_sgcb_tracking() -> None:
    svc, a, b = setup()
    sgcb = "LLN0$SP$SGCB$"
    steps = [
        (a, sgcb + "ActSG", d.unsigned(2), "SelectActiveSG", "no-error"),
        (a, sgcb + "ActSG", d.unsigned(9), "SelectActiveSG", "parameter-value-inappropriate"),
        (a, sgcb + "EditSG", d.unsigned(3), "SelectEditSG", "no-error"),
        (a, "IPTOC1$SE$OpDlTmms$setVal", d.integer(25), "SetEditSGValue", "no-error"),
        (
            b,
            sgcb + "CnfEdit",
            d.boolean(True),
            "ConfirmEditSGValues",
            "instance-locked-by-other-client",
        ),
        (a, sgcb + "CnfEdit", d.boolean(True), "ConfirmEditSGValues", "no-error"),
    ]
    for assoc, item, data, service, error in steps:
        write(svc, assoc, "FDR1PROT", item, data)
        sts = tracked(svc, "FDR1PROT/LTRK1.SgcbTrk")
        assert sts["objRef"] == "FDR1PROT/LLN0.SGCB", item
        assert (sts["serviceType"], sts["errorCode"]) == (service, error), item
        assert sts["originatorID"] == assoc.peer.encode()
    assert (sts["numOfSG"], sts["actSG"], sts["editSG"]) == (3, 2, 3)


def test_undeclared_tracking_objects_are_untouched() -> None:
    text = SCL.read_text().replace('      <DO name="GocbTrk" type="T_GTS"/>\n', "", 1)
    svc, a, _ = setup(text.encode())
    assert svc.tracking.tracking_of("GoCB", "FDR1LD0") is None
    assert write(svc, a, "FDR1LD0", "LLN0$GO$gcbStatus$GoEna", d.boolean(True)) is None
    for name in ("BrcbTrk", "UrcbTrk", "LocbTrk"):
        assert svc.model.read(f"FDR1LD0/LTRK1.{name}.objRef", "SR") == ""
    # an LD without an LTRK (MEAS) and ordinary data writes are not tracked either
    assert svc.tracking.tracking_of("BRCB", "FDR1MEAS") is None
    write(svc, a, "FDR1LD0", "GGIO1$CF$SPCSO1$ctlModel", d.integer(1))
    assert svc.model.read("FDR1LD0/LTRK1.BrcbTrk.objRef", "SR") == ""


@pytest.mark.prosody
@pytest.mark.timeout(60)
def test_tracking_through_a_real_prosody(prosody, xmpp_account) -> None:
    async def main() -> None:
        server = IedServer(load_scl(SCL), settings(prosody, xmpp_account("ied")))
        client = Client(settings(prosody, xmpp_account("ops")))
        await asyncio.gather(server.start(), client.connect())
        try:
            ied = await client.associate(server.jid)
            await ied.select_active_sg("FDR1PROT", 3)
            sts = tracked(server.model, "FDR1PROT/LTRK1.SgcbTrk")
            assert (sts["serviceType"], sts["errorCode"], sts["actSG"]) == (
                "SelectActiveSG",
                "no-error",
                3,
            )
            assert sts["originatorID"] == client.transport.full_jid.encode()[:64]
        finally:
            await asyncio.gather(client.close(), server.close())

    run(main())
