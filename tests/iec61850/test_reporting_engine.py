"""The sans-IO report and log engines on their own: time passed in, deadlines out."""

from __future__ import annotations

import pytest

from gridbind.iec61850 import codec
from gridbind.iec61850.association import Association, InitiateParams
from gridbind.iec61850.logs import LogEngine, LogStore
from gridbind.iec61850.mmsdata import OptFlds, TriggerConditions
from gridbind.iec61850.reporting import ReportEngine, parse_report
from gridbind.iec61850.scl import load_scl

from iec_testkit import FEEDER

URCB = "FDR1LD0/LLN0.urcbStatus01"
IND1 = "FDR1LD0/GGIO1.Ind1.stVal"


def engine():
    model = load_scl(FEEDER)
    gate = codec.Codec()
    reports = ReportEngine(model, lambda pdu: len(gate.encode(pdu)))
    model.add_change_listener(lambda a, o, n: reports.notify(a, o, n, clock[0]))
    clock = [1000.0]
    assoc = Association("ops@x/IEC", "a1", InitiateParams(), frozenset())
    return model, reports, assoc, clock


def write(model, reports, assoc, name: str, value, now: float) -> None:
    cb = model.find(URCB, "RP")
    reports.stage_write(assoc, cb, cb.children[name], value, now)()


def test_buftm_and_integrity_are_deadlines() -> None:
    model, reports, assoc, clock = engine()
    trg = TriggerConditions.DATA_CHANGE | TriggerConditions.INTEGRITY
    write(model, reports, assoc, "TrgOps", trg.to_bits(), 1000.0)
    write(model, reports, assoc, "OptFlds", OptFlds.SEQUENCE_NUMBER.to_bits(), 1000.0)
    write(model, reports, assoc, "BufTm", 100, 1000.0)
    write(model, reports, assoc, "IntgPd", 1000, 1000.0)
    write(model, reports, assoc, "RptEna", True, 1000.0)
    assert reports.next_deadline() == 1001.0  # the integrity period
    model.update(IND1, False)
    assert reports.next_deadline() == 1000.1  # BufTm runs from the change
    reports.poll(1000.05)
    assert reports.take() == []
    reports.poll(1000.1)
    ((to, pdu),) = reports.take()
    assert to is assoc
    r = parse_report(pdu.choice.service.information_report)
    assert r.inclusion == "1000" and r.seq_num == 0
    assert reports.next_deadline() == 1001.0
    reports.poll(1001.0)
    ((_, pdu),) = reports.take()
    r = parse_report(pdu.choice.service.information_report)
    assert r.inclusion == "1111" and r.seq_num == 1
    assert reports.next_deadline() == 1002.0
    # the client goes: no deadline is left, nothing is sent
    reports.association_ended(assoc, 1001.5)
    assert reports.next_deadline() is None
    model.update(IND1, True)
    reports.poll(1010.0)
    assert reports.take() == []


def test_log_engine_integrity_is_a_deadline(tmp_path) -> None:
    model = load_scl(FEEDER)
    logs = LogEngine(model, LogStore(tmp_path / "l.sqlite"), 50.0, min_integrity_ms=100)
    lcb = model.find("FDR1LD0/LLN0.logStatus", "LG")
    assoc = Association("ops@x/IEC", "a1", InitiateParams(), frozenset())
    bits = TriggerConditions.INTEGRITY.to_bits()
    for name, value in (("TrgOps", bits), ("IntgPd", 500), ("LogEna", True)):
        logs.stage_write(assoc, lcb, lcb.children[name], value, 100.0)()
    assert logs.next_deadline() == 100.5
    logs.poll(100.4)
    assert logs.store.status(logs.logs[0]) == (None, None)
    logs.poll(100.5)
    old, new = logs.store.status("FDR1LD0/LLN0$Events")
    assert old is not None and new is not None and old.entry_id == new.entry_id == 1
    assert new.time == 100.5 and len(new.values) == 4
    assert model.read("FDR1LD0/LLN0.logStatus.NewEnt", "LG") == (1).to_bytes(8, "big")
    assert logs.next_deadline() == 101.0


def test_a_tiny_integrity_period_is_run_at_the_floor() -> None:
    from gridbind.iec61850.reporting.rcb import MIN_INTEGRITY_MS

    model, reports, assoc, clock = engine()
    write(model, reports, assoc, "TrgOps", TriggerConditions.INTEGRITY.to_bits(), 1000.0)
    write(model, reports, assoc, "IntgPd", 1, 1000.0)
    write(model, reports, assoc, "RptEna", True, 1000.0)
    assert reports.next_deadline() == 1000.0 + MIN_INTEGRITY_MS / 1000
    reports.poll(1005.0)  # far behind: one report, and the next period from now
    assert len(reports.take()) == 1
    assert reports.next_deadline() == 1005.0 + MIN_INTEGRITY_MS / 1000


def _feeder_with_db_trigger():
    # a CF attribute with a trigger option in the DO of an MX member (as real tools write it)
    text = FEEDER.read_bytes().replace(
        b'<DA name="db" bType="INT32U" fc="CF">',
        b'<DA name="db" bType="INT32U" fc="CF" dchg="true">',
    )
    assert b'fc="CF" dchg="true"' in text
    return load_scl(text)


def test_a_change_in_another_fc_of_a_member_neither_reports_nor_logs(tmp_path) -> None:
    model = _feeder_with_db_trigger()
    gate = codec.Codec()
    reports = ReportEngine(model, lambda pdu: len(gate.encode(pdu)))
    logs = LogEngine(model, LogStore(tmp_path / "l.sqlite"), 1000.0)
    model.add_change_listener(
        lambda a, o, n: (reports.notify(a, o, n, 1000.0), logs.notify(a, o, n, 1000.0))
    )
    assoc = Association("ops@x/IEC", "a1", InitiateParams(), frozenset())
    cb = model.find(URCB, "RP")
    for name, value in (
        ("DatSet", "FDR1LD0/LLN0.Measurements"),
        ("TrgOps", TriggerConditions.DATA_CHANGE.to_bits()),
        ("BufTm", 0),
        ("RptEna", True),
    ):
        reports.stage_write(assoc, cb, cb.children[name], value, 1000.0)()
    lcb = model.find("FDR1LD0/LLN0.logStatus", "LG")
    for name, value in (("DatSet", "FDR1LD0/LLN0.Measurements"), ("LogEna", True)):
        logs.stage_write(assoc, lcb, lcb.children[name], value, 1000.0)()
    model.update("FDR1MEAS/MMXU1.TotW.db", 7)
    reports.poll(1001.0)
    assert reports.take() == []
    assert logs.store.status("FDR1LD0/LLN0$Events") == (None, None)


def test_scl_trgops_gi_defaults_to_true() -> None:
    text = FEEDER.read_bytes()
    model = load_scl(text)
    # <TrgOps period="true"/>: gi is true by the SCL schema's default
    assert model.read("FDR1LD0/LLN0.brcbMeas.TrgOps", "BR") == "000011"
    assert model.read("FDR1LD0/LLN0.urcbStatus01.TrgOps", "RP") == "011001"
    explicit = load_scl(
        text.replace(b'<TrgOps period="true"/>', b'<TrgOps period="true" gi="false"/>')
    )
    assert explicit.read("FDR1LD0/LLN0.brcbMeas.TrgOps", "BR") == "000010"


def test_scl_log_settings_logena_fix_locks_log_ena() -> None:
    from gridbind.iec61850.model import ModelError

    text = FEEDER.read_bytes()
    free = load_scl(text)  # no LogSettings: every LCB attribute is for the clients
    free.check_write(free.find("FDR1LD0/LLN0.logStatus.LogEna", "LG"), "LG", True)
    fixed = load_scl(text.replace(b"<Services>", b'<Services><LogSettings datSet="Dyn"/>', 1))
    lcb = fixed.find("FDR1LD0/LLN0.logStatus", "LG")
    assert "LogEna" not in lcb.writable and "DatSet" in lcb.writable_when_disabled
    with pytest.raises(ModelError):
        fixed.check_write(lcb.children["LogEna"], "LG", True)
    dyn = load_scl(text.replace(b"<Services>", b'<Services><LogSettings logEna="Dyn"/>', 1))
    dyn.check_write(dyn.find("FDR1LD0/LLN0.logStatus.LogEna", "LG"), "LG", True)


def test_integrity_floors_are_100_ms_for_reports_and_1_s_for_logs(tmp_path) -> None:
    model, reports, assoc, clock = engine()
    write(model, reports, assoc, "TrgOps", TriggerConditions.INTEGRITY.to_bits(), 1000.0)
    write(model, reports, assoc, "IntgPd", 20, 1000.0)
    write(model, reports, assoc, "RptEna", True, 1000.0)
    assert reports.next_deadline() == 1000.1
    model = load_scl(FEEDER)
    gate = codec.Codec()
    slower = ReportEngine(model, lambda pdu: len(gate.encode(pdu)), min_integrity_ms=250)
    cb = model.find(URCB, "RP")
    for name, value in (
        ("TrgOps", TriggerConditions.INTEGRITY.to_bits()),
        ("IntgPd", 20),
        ("RptEna", True),
    ):
        slower.stage_write(assoc, cb, cb.children[name], value, 1000.0)()
    assert slower.next_deadline() == 1000.25
    logs = LogEngine(model, LogStore(tmp_path / "l.sqlite"), 50.0)
    lcb = model.find("FDR1LD0/LLN0.logStatus", "LG")
    bits = TriggerConditions.INTEGRITY.to_bits()
    for name, value in (("TrgOps", bits), ("IntgPd", 20), ("LogEna", True)):
        logs.stage_write(assoc, lcb, lcb.children[name], value, 100.0)()
    assert logs.next_deadline() == 101.0


def test_a_log_entry_and_the_trim_are_one_transaction(tmp_path) -> None:
    store = LogStore(tmp_path / "l.sqlite", 2)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    store.add("LD/LLN0$Log", 1.0, [])
    kinds = [s.split()[0].upper() for s in statements if s.split()[0].upper() != "SELECT"]
    assert kinds == ["BEGIN", "INSERT", "DELETE", "COMMIT"]


BRCB = "FDR1LD0/LLN0.brcbMeas"
BUF_OPT = OptFlds.SEQUENCE_NUMBER | OptFlds.BUFFER_OVERFLOW | OptFlds.ENTRY_ID


def brcb_engine(monkeypatch, wall: float):
    from gridbind.iec61850.reporting import buffer as buffer_module

    monkeypatch.setattr(buffer_module.time, "time", lambda: wall)
    model = load_scl(FEEDER)
    gate = codec.Codec()
    return model, ReportEngine(model, lambda pdu: len(gate.encode(pdu)))


def brcb_write(model, reports, assoc, name: str, value, now: float) -> None:
    cb = model.find(BRCB, "BR")
    reports.stage_write(assoc, cb, cb.children[name], value, now)()


TOTW = "FDR1MEAS/MMXU1.TotW.mag.f"


def brcb_setup(monkeypatch, wall: float, assoc):
    model, reports = brcb_engine(monkeypatch, wall)
    model.add_change_listener(lambda a, o, n: reports.notify(a, o, n, 10.0))
    brcb_write(model, reports, assoc, "OptFlds", BUF_OPT.to_bits(), 10.0)
    brcb_write(model, reports, assoc, "TrgOps", TriggerConditions.DATA_CHANGE.to_bits(), 10.0)
    brcb_write(model, reports, assoc, "BufTm", 0, 10.0)
    brcb_write(model, reports, assoc, "RptEna", True, 10.0)
    return model, reports


def test_an_entry_id_of_a_previous_server_run_resends_all_with_bufovfl(monkeypatch) -> None:
    assoc = Association("ops@x/IEC", "a1", InitiateParams(), frozenset())
    model, reports = brcb_setup(monkeypatch, 1_700_000_000.0, assoc)
    model.update(TOTW, 1.0)
    reports.poll(11.0)
    ((_, pdu),) = reports.take()
    old_id = parse_report(pdu.choice.service.information_report).entry_id
    # the server restarts (a new engine, a later wall clock); it buffers two reports while
    # the client is away
    model, reports = brcb_setup(monkeypatch, 1_700_000_060.0, assoc)
    reports.association_ended(assoc, 10.0)
    model.update(TOTW, 2.0)
    model.update(TOTW, 3.0)
    reports.poll(12.0)
    assert reports.take() == []
    back = Association("ops@x/IEC", "a2", InitiateParams(), frozenset())
    brcb_write(model, reports, back, "EntryID", old_id, 20.0)
    brcb_write(model, reports, back, "RptEna", True, 20.0)
    sent = [parse_report(p.choice.service.information_report) for _, p in reports.take()]
    assert len(sent) == 2  # the old EntryID is no current one: everything, with BufOvfl
    assert sent[0].buf_ovfl is True
    assert all(r.entry_id != old_id for r in sent)


def test_a_resent_brcb_entry_keeps_its_sqnum(monkeypatch) -> None:
    assoc = Association("ops@x/IEC", "a1", InitiateParams(), frozenset())
    model, reports = brcb_setup(monkeypatch, 1_700_000_000.0, assoc)
    model.update(TOTW, 1.0)
    model.update(TOTW, 2.0)
    reports.poll(10.0)
    first = [parse_report(p.choice.service.information_report) for _, p in reports.take()]
    assert [r.seq_num for r in first] == [0, 1]
    reports.association_ended(assoc, 10.0)  # the second report may not have arrived
    model.update(TOTW, 3.0)
    model.update(TOTW, 4.0)
    reports.poll(10.0)
    back = Association("ops@x/IEC", "a2", InitiateParams(), frozenset())
    brcb_write(model, reports, back, "EntryID", first[0].entry_id, 20.0)
    brcb_write(model, reports, back, "RptEna", True, 20.0)
    again = [parse_report(p.choice.service.information_report) for _, p in reports.take()]
    assert [r.entry_id for r in again[:1]] == [first[1].entry_id]
    assert [r.seq_num for r in again] == [1, 2, 3]


def test_rcb_writes_run_on_the_now_passed_in_and_entries_on_the_wall_clock(tmp_path) -> None:
    from gridbind.iec61850 import mmsdata as d
    from gridbind.iec61850.association import AssociationCore
    from gridbind.iec61850.services.acsi import ServerServices

    model = load_scl(FEEDER)
    gate = codec.Codec()
    wall = 1_700_000_000.0
    reports = ReportEngine(model, lambda pdu: len(gate.encode(pdu)), wall_clock=lambda: wall)
    logs = LogEngine(model, LogStore(tmp_path / "l.sqlite"), 50.0, 100, wall_clock=lambda: wall)
    svc = ServerServices(model)
    svc.reports, svc.logs = reports, logs
    assoc = AssociationCore(InitiateParams()).accept("c@t.local/x", "1", InitiateParams())
    integrity = d.bit_string(TriggerConditions.INTEGRITY.to_bits())
    for item, data in (
        ("LLN0$RP$urcbStatus01$TrgOps", integrity),
        ("LLN0$RP$urcbStatus01$IntgPd", d.unsigned(1000)),
        ("LLN0$RP$urcbStatus01$OptFlds", d.bit_string(OptFlds.REPORT_TIME_STAMP.to_bits())),
        ("LLN0$RP$urcbStatus01$RptEna", d.boolean(True)),
        ("LLN0$LG$logStatus$TrgOps", integrity),
        ("LLN0$LG$logStatus$IntgPd", d.unsigned(500)),
        ("LLN0$LG$logStatus$LogEna", d.boolean(True)),
    ):
        name = ("domain-specific", "FDR1LD0", item)
        assert svc.write_variables(assoc, [name], [data], now=10.0) == [None], item
    assert reports.next_deadline() == 11.0  # a monotonic 10 s, not the time of day
    assert logs.next_deadline() == 10.5
    reports.poll(11.0)
    logs.poll(11.0)
    ((_, pdu),) = reports.take()
    assert parse_report(pdu.choice.service.information_report).time_of_entry.to_float() == wall
    assert logs.store.status("FDR1LD0/LLN0$Events")[1].time == wall


def test_an_integrity_period_the_scl_configured_below_the_floor_is_kept(tmp_path) -> None:
    text = FEEDER.read_bytes().replace(
        b'logName="Events" logEna="false" intgPd="0"',
        b'logName="Events" logEna="false" intgPd="200"',
    )
    model = load_scl(text)
    logs = LogEngine(model, LogStore(tmp_path / "l.sqlite"), 50.0)
    assoc = Association("ops@x/IEC", "a1", InitiateParams(), frozenset())
    lcb = model.find("FDR1LD0/LLN0.logStatus", "LG")
    bits = TriggerConditions.INTEGRITY.to_bits()
    for name, value in (("TrgOps", bits), ("LogEna", True)):
        logs.stage_write(assoc, lcb, lcb.children[name], value, 100.0)()
    assert logs.next_deadline() == 100.2  # the IED's own 200 ms
    logs.stage_write(assoc, lcb, lcb.children["LogEna"], False, 100.0)()
    logs.stage_write(assoc, lcb, lcb.children["IntgPd"], 20, 100.0)()
    logs.stage_write(assoc, lcb, lcb.children["LogEna"], True, 100.0)()
    assert logs.next_deadline() == 100.2  # a client's 20 ms runs at the SCL's period
