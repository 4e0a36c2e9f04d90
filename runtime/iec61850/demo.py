"""The IEC 61850-8-2 half of the demo: an IED served from SCL over XMPP, and a client using it.

``gridbind iec61850 demo`` (or :func:`run_demo` from the main ``gridbind demo``) starts a private
Prosody on loopback with its own test CA, serves the IED described by :data:`DEMO_SCL` (written
for this demo), and lets a client browse, read, write, build a data set, switch setting groups,
fetch a file, watch a buffered report (values the application changes, and the operate below),
operate a switch (SBO with enhanced security) and query a log, printing what happens. Needs
Prosody (Debian: ``apt-get install prosody``, or ``bash .ci/setup``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .mmsdata import ReasonForInclusion
    from .reporting.report_pdu import Report

__all__ = ["DEMO_SCL", "run_demo", "register_demo"]

#: A small substation feeder IED (two logical devices, enums, structures, a data set, a setting
#: group control block with two groups), addressed as demo-ied@demo.local/IEC.
DEMO_SCL = b"""<?xml version="1.0" encoding="UTF-8"?>
<SCL xmlns="http://www.iec.ch/61850/2003/SCL">
  <Communication><SubNetwork name="XMPP"><ConnectedAP iedName="FEEDER7" apName="AP">
    <Address><P type="JID">demo-ied@demo.local/IEC</P></Address></ConnectedAP></SubNetwork>
  </Communication>
  <IED name="FEEDER7"><AccessPoint name="AP"><Server>
    <LDevice inst="CTRL">
      <LN0 lnClass="LLN0" lnType="LLN0_T">
        <DataSet name="Overview">
          <FCDA ldInst="MEAS" lnClass="MMXU" lnInst="1" doName="TotW" daName="mag.f" fc="MX"/>
          <FCDA ldInst="CTRL" lnClass="XCBR" lnInst="1" doName="Pos" daName="stVal" fc="ST"/>
          <FCDA ldInst="CTRL" lnClass="CSWI" lnInst="1" doName="Pos" daName="stVal" fc="ST"/>
        </DataSet>
        <ReportControl name="brcbOverview" datSet="Overview" rptID="FEEDER7/Overview" confRev="1"
            buffered="true" bufTime="0">
          <TrgOps dchg="true" qchg="true" gi="true"/>
          <OptFields seqNum="true" timeStamp="true" dataSet="true" reasonCode="true"
              dataRef="true" entryID="true"/>
          <RptEnabled max="1"/>
        </ReportControl>
        <LogControl name="logOverview" datSet="Overview" logName="Events" logEna="true">
          <TrgOps dchg="true"/>
        </LogControl>
        <DOI name="NamPlt"><DAI name="vendor"><Val>gridbind demo</Val></DAI></DOI>
      </LN0>
      <LN lnClass="XCBR" inst="1" lnType="XCBR_T">
        <DOI name="Pos"><DAI name="stVal"><Val>2</Val></DAI></DOI>
      </LN>
      <LN lnClass="CSWI" inst="1" lnType="CSWI_T">
        <DOI name="Pos"><DAI name="stVal"><Val>2</Val></DAI>
          <DAI name="ctlModel"><Val>sbo-with-enhanced-security</Val></DAI></DOI>
      </LN>
    </LDevice>
    <LDevice inst="MEAS">
      <LN0 lnClass="LLN0" lnType="LLN0_T"><SettingControl numOfSGs="2" actSG="1"/></LN0>
      <LN lnClass="MMXU" inst="1" lnType="MMXU_T">
        <DOI name="TotW"><SDI name="mag"><DAI name="f"><Val>1520.0</Val></DAI></SDI></DOI>
        <DOI name="Hz"><SDI name="mag"><DAI name="f"><Val>50.0</Val></DAI></SDI></DOI>
      </LN>
      <LN prefix="OC" lnClass="PTOC" inst="1" lnType="PTOC_T">
        <DOI name="OpDlTmms"><DAI name="setVal"><Val sGroup="1">100</Val><Val sGroup="2">40</Val></DAI></DOI>
      </LN>
    </LDevice>
  </Server></AccessPoint></IED>
  <DataTypeTemplates>
    <LNodeType id="LLN0_T" lnClass="LLN0"><DO name="Beh" type="ENS_Beh"/><DO name="NamPlt" type="LPL_T"/></LNodeType>
    <LNodeType id="XCBR_T" lnClass="XCBR"><DO name="Beh" type="ENS_Beh"/><DO name="Pos" type="DPC_T"/></LNodeType>
    <LNodeType id="CSWI_T" lnClass="CSWI"><DO name="Beh" type="ENS_Beh"/><DO name="Pos" type="DPC_SBOE"/></LNodeType>
    <LNodeType id="MMXU_T" lnClass="MMXU"><DO name="TotW" type="MV_T"/><DO name="Hz" type="MV_T"/></LNodeType>
    <LNodeType id="PTOC_T" lnClass="PTOC"><DO name="OpDlTmms" type="ING_T"/></LNodeType>
    <DOType id="ENS_Beh" cdc="ENS">
      <DA name="stVal" bType="Enum" type="BehModKind" fc="ST"><Val>on</Val></DA>
      <DA name="q" bType="Quality" fc="ST"/><DA name="t" bType="Timestamp" fc="ST"/>
    </DOType>
    <DOType id="LPL_T" cdc="LPL"><DA name="vendor" bType="VisString255" fc="DC"/>
      <DA name="d" bType="VisString255" fc="DC"/></DOType>
    <DOType id="DPC_T" cdc="DPC"><DA name="stVal" bType="Dbpos" fc="ST" dchg="true"/>
      <DA name="q" bType="Quality" fc="ST"/><DA name="t" bType="Timestamp" fc="ST"/>
      <DA name="ctlModel" bType="Enum" type="CtlModelKind" fc="CF"><Val>status-only</Val></DA></DOType>
    <DOType id="DPC_SBOE" cdc="DPC"><DA name="SBOw" bType="Struct" type="DPCOper_T" fc="CO"/>
      <DA name="Oper" bType="Struct" type="DPCOper_T" fc="CO"/>
      <DA name="Cancel" bType="Struct" type="DPCOper_T" fc="CO"/>
      <DA name="stVal" bType="Dbpos" fc="ST" dchg="true"/><DA name="q" bType="Quality" fc="ST"/>
      <DA name="t" bType="Timestamp" fc="ST"/>
      <DA name="ctlModel" bType="Enum" type="CtlModelKind" fc="CF"/></DOType>
    <DAType id="DPCOper_T"><BDA name="ctlVal" bType="BOOLEAN"/><BDA name="operTm" bType="Timestamp"/>
      <BDA name="origin" bType="Struct" type="Orig_T"/><BDA name="ctlNum" bType="INT8U"/>
      <BDA name="T" bType="Timestamp"/><BDA name="Test" bType="BOOLEAN"/></DAType>
    <DAType id="Orig_T"><BDA name="orCat" bType="Enum" type="OrCat"/><BDA name="orIdent" bType="Octet64"/></DAType>
    <EnumType id="OrCat"><EnumVal ord="0">not-supported</EnumVal><EnumVal ord="3">remote-control</EnumVal></EnumType>
    <DOType id="MV_T" cdc="MV"><DA name="mag" bType="Struct" type="AV" fc="MX" dchg="true"/>
      <DA name="q" bType="Quality" fc="MX"/><DA name="t" bType="Timestamp" fc="MX"/>
      <DA name="d" bType="VisString255" fc="DC"/></DOType>
    <DOType id="ING_T" cdc="ING"><DA name="setVal" bType="INT32" fc="SG"/></DOType>
    <DAType id="AV"><BDA name="f" bType="FLOAT32"/></DAType>
    <EnumType id="BehModKind"><EnumVal ord="1">on</EnumVal><EnumVal ord="5">off</EnumVal></EnumType>
    <EnumType id="CtlModelKind"><EnumVal ord="0">status-only</EnumVal>
      <EnumVal ord="1">direct-with-normal-security</EnumVal>
      <EnumVal ord="4">sbo-with-enhanced-security</EnumVal></EnumType>
  </DataTypeTemplates>
</SCL>
"""


#: The demo's buffered report control block and log (on the data set Overview).
BRCB = "FEEDER7CTRL/LLN0.brcbOverview"
LOG = "FEEDER7CTRL/LLN0$Events"
#: How long the demo waits for each report (they arrive within milliseconds on loopback).
REPORT_WAIT = 10.0


def _report_line(report: Report) -> str:
    """One received report: sequence number, then each included member with its reasons."""
    members = ", ".join(f"{v.reference}={v.value} ({_reasons(v.reason)})" for v in report.values)
    return f"report {report.rpt_id} #{report.seq_num}: {members}"


def _reasons(reason: ReasonForInclusion | None) -> str:
    if reason is None:
        return "no reason code"
    # Iterating a Flag class yields its named members only, so ``name`` is never None here.
    names = (flag.name or "" for flag in type(reason) if flag in reason)
    return "+".join(name.lower().replace("_", "-") for name in names)


async def _scenario(prosody, files: Path, say: Callable[[str], None]) -> None:
    from .client import Client
    from .model import quality_bits
    from .scl import load_scl
    from .server import IedServer
    from .xmpp import XmppSettings

    def account(user: str) -> XmppSettings:
        prosody.register(user, "demo-secret")
        return XmppSettings(
            jid=f"{user}@{prosody.domain}",
            password="demo-secret",
            ca_file=prosody.ca_cert,
            host="127.0.0.1",
            port=prosody.c2s_port,
        )

    model = load_scl(DEMO_SCL)
    say(f"SCL: IED {model.ied_name}, logical devices {', '.join(model.children)}, JID {model.jid}")
    server = IedServer(model, account("demo-ied"), files_root=files)
    client = Client(account("operator"))
    await asyncio.gather(server.start(), client.connect())
    try:
        say(f"IED online as {server.jid} (TLS validated against the demo CA, SCRAM login)")
        ied = await client.associate(server.jid)
        say(f"associated (id {ied.id}, max PDU {ied.params.max_pdu_size} octets)")
        say(f"GetServerDirectory: {await ied.get_server_directory()}")
        for ld in await ied.get_server_directory():
            say(f"  {ld}: {await ied.get_logical_device_directory(ld)}")
        say(
            f"GetLogicalNodeDirectory MMXU1: {await ied.get_logical_node_directory('FEEDER7MEAS/MMXU1')}"
        )
        for watts in (1520.0, 1498.5, 1533.25):
            model.update("FEEDER7MEAS/MMXU1.TotW.mag.f", watts, quality=quality_bits())
            value = await ied.get_data_values("FEEDER7MEAS/MMXU1.TotW", "MX")
            say(
                f"GetDataValues TotW[MX]: mag.f={value['mag']['f']} q={value['q']} t={value['t'].seconds}"
            )
        await ied.set_data_values("FEEDER7MEAS/MMXU1.TotW.d", "DC", "feeder 7 total active power")
        say(
            f"SetDataValues TotW.d[DC] -> {await ied.get_data_values('FEEDER7MEAS/MMXU1.TotW.d', 'DC')!r}"
        )
        try:
            await ied.set_data_values("FEEDER7MEAS/MMXU1.TotW.mag.f", "MX", 0.0)
        except Exception as exc:  # noqa: BLE001 - the point is to show the refusal
            say(f"SetDataValues TotW.mag.f[MX] refused: {exc}")
        say(f"data set Overview: {await ied.get_data_set_values('FEEDER7CTRL/LLN0.Overview')}")
        await ied.create_data_set("@mine", [("FEEDER7MEAS/MMXU1.Hz.mag.f", "MX")])
        say(
            f"CreateDataSet @mine (this association only): {await ied.get_data_set_values('@mine')}"
        )
        ref = "FEEDER7MEAS/OCPTOC1.OpDlTmms.setVal"
        say(
            f"setting group {(await ied.get_sgcb_values('FEEDER7MEAS'))['ActSG']}: {ref} = {await ied.get_data_values(ref, 'SG')}"
        )
        await ied.select_active_sg("FEEDER7MEAS", 2)
        say(f"SelectActiveSG 2: {ref} = {await ied.get_data_values(ref, 'SG')}")
        say(f"files: {[f['name'] for f in await ied.list_files()]}")
        say(f"GetFile events.log: {(await ied.get_file('events.log')).decode().strip()!r}")
        # -- reports: a BRCB on the data set Overview, watched through the control below
        reports: asyncio.Queue = asyncio.Queue()

        async def collect() -> None:
            async for report in ied.report_stream():
                reports.put_nowait(report)

        async def show(count: int) -> None:
            for _ in range(count):
                say(_report_line(await asyncio.wait_for(reports.get(), REPORT_WAIT)))

        collector = asyncio.create_task(collect())
        try:
            await ied.enable_reporting(BRCB, buffered=True, gi=True)
            say(f"SetBRCBValues {BRCB}: RptEna, GI (TrgOps dchg, qchg, gi; reports below)")
            await show(1)  # the GI: every member, reason general-interrogation
            for watts in (1610.5, 1587.0):  # the application changes a measurement
                model.update("FEEDER7MEAS/MMXU1.TotW.mag.f", watts, quality=quality_bits())
                await show(1)
            # -- control: sbo-with-enhanced-security (SelectWithValue, Operate, CommandTermination)
            pos = "FEEDER7CTRL/CSWI1.Pos"
            outcome = await ied.operate(pos, False)
            state = await ied.get_data_values(f"{pos}.stVal", "ST")
            say(f"operate {pos} open: {outcome}; stVal = {state} (Dbpos 01: off)")
            await show(1)  # the stVal change the operate made, as a report
            say(
                f"operate {pos} without SelectWithValue: "
                f"{await ied.operate(pos, True, select=False)}"
            )
            # -- end of control
            model.update("FEEDER7CTRL/XCBR1.Pos.stVal", 1)  # the breaker follows: open (01)
            await show(1)
            await ied.disable_reporting(BRCB, buffered=True)
        finally:
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)
        entries = await ied.query_log_by_time(LOG, start=0.0)
        say(f"QueryLogByTime {LOG}: {len(entries)} entries (LogControl logOverview, dchg)")
        for entry in entries:
            values = ", ".join(f"{v.reference}={v.value}" for v in entry.values)
            say(f"  entry {entry.entry_id.hex()}: {values}")
        await ied.conclude()
        say("association concluded")
    finally:
        await asyncio.gather(client.close(), server.close())


def run_demo(say: Callable[[str], None] = print) -> int:
    """Run the 8-2 demo with a private Prosody; returns an exit status (2: no Prosody)."""
    from .prosody import Prosody, prosody_available

    if not prosody_available():
        say(
            "Prosody is not installed: sudo apt-get install prosody (Debian) or bash .ci/setup"
            " (the demo runs its own private instance)"
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="gridbind-demo-") as tmp:
        files = Path(tmp, "files")
        files.mkdir()
        (files / "events.log").write_text("2026-11-22T08:00:00Z XCBR1 opened by protection\n")
        with Prosody(domain="demo.local", directory=Path(tmp, "prosody")) as prosody:
            say(f"private Prosody on 127.0.0.1:{prosody.c2s_port} (domain demo.local)")
            asyncio.run(_scenario(prosody, files, say))
    return 0


def write_demo_scl(args: argparse.Namespace) -> int:
    """``demo-scl``: the demo IED's SCL file (IED ``FEEDER7``) on stdout or into ``--out``."""
    if args.out:
        Path(args.out).write_bytes(DEMO_SCL)
    else:
        sys.stdout.buffer.write(DEMO_SCL)
        sys.stdout.flush()
    return 0


def register_demo(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo`` and ``demo-scl`` under ``gridbind iec61850``."""
    p = subparsers.add_parser("demo", help="serve a demo IED over a private Prosody and use it")
    p.set_defaults(func=lambda args: run_demo())
    p = subparsers.add_parser(
        "demo-scl",
        help="write the demo IED's SCL file (IED FEEDER7), e.g. to try serve and the client",
    )
    p.add_argument("--out", "-o", help="write to this file instead of stdout")
    p.set_defaults(func=write_demo_scl)
