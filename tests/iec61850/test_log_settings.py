"""The SCL LogControl settings without an 8-1 attribute: ``reasonCode`` (the ReasonCode after
each logged value, or none) and ``bufTime`` (the changes within it make one entry), on the
sans-IO log engine with time passed in; and a logged change shows the ``q`` and ``t`` the update
stored after the value."""

from __future__ import annotations

from gridbind.iec61850.association import Association, InitiateParams
from gridbind.iec61850.logs import LogEngine, LogStore
from gridbind.iec61850.logs.journal import parse_journal_entry, read_journal_by_time
from gridbind.iec61850.mmsdata import ReasonForInclusion as R
from gridbind.iec61850.mmsdata import Timestamp, TriggerConditions
from gridbind.iec61850.scl import load_scl

from iec_testkit import FEEDER

LCB = "FDR1LD0/LLN0.logStatus"
LOG = "FDR1LD0/LLN0$Events"
IND1 = "FDR1LD0/GGIO1.Ind1.stVal"
IND2 = "FDR1LD0/GGIO1.Ind2.stVal"
WALL = 1_800_000_000.0


def engine(tmp_path, settings: str = ""):
    text = FEEDER.read_bytes().replace(
        b'logName="Events" logEna="false" intgPd="0"',
        b'logName="Events" logEna="false" intgPd="0" ' + settings.encode(),
    )
    model = load_scl(text)
    clock = [100.0]
    logs = LogEngine(
        model, LogStore(tmp_path / "l.sqlite"), clock[0], wall_clock=lambda: WALL + clock[0]
    )
    model.add_change_listener(lambda a, o, n: logs.notify(a, o, n, clock[0]))
    cb = model.find(LCB, "LG")
    assoc = Association("ops@x/IEC", "a1", InitiateParams(), frozenset())
    for name, value in (("TrgOps", TriggerConditions.DATA_CHANGE.to_bits()), ("LogEna", True)):
        logs.stage_write(assoc, cb, cb.children[name], value, clock[0])()
    return model, logs, clock


def journal(logs: LogEngine) -> list:
    request = read_journal_by_time(LOG, 0.0)
    answer = logs.read_journal(request.choice)
    return [parse_journal_entry(e) for e in answer.list_of_journal_entry.journal_entry]


def test_the_scl_defaults_store_reason_codes_and_an_entry_per_change(tmp_path) -> None:
    model, logs, clock = engine(tmp_path)
    assert model.find(LCB, "LG").config == {"reasonCode": True, "bufTime": 0}
    model.update(IND1, False)
    model.update(IND2, True)
    entries = journal(logs)
    assert [[(v.reference, v.reason) for v in e.values] for e in entries] == [
        [("FDR1LD0/GGIO1$ST$Ind1$stVal", R.DATA_CHANGE)],
        [("FDR1LD0/GGIO1$ST$Ind2", R.DATA_CHANGE)],
    ]
    # the logged Ind2 shows the t its update stamped after the value
    (stamp,) = [v for v in entries[1].values[0].value if isinstance(v, Timestamp)]
    assert stamp == model.read("FDR1LD0/GGIO1.Ind2.t", "ST") and stamp.seconds > 0


def test_reason_code_false_stores_no_reason_codes(tmp_path) -> None:
    model, logs, clock = engine(tmp_path, 'reasonCode="false"')
    model.update(IND1, False)
    logs.poll(clock[0])
    (entry,) = journal(logs)
    assert [(v.value, v.reason) for v in entry.values] == [(False, None)]
    raw = logs.read_journal(read_journal_by_time(LOG, 0.0).choice)
    tags = [
        v.variable_tag
        for v in raw.list_of_journal_entry.journal_entry[
            0
        ].entry_content.entry_form.choice.list_of_variables.journal_variable
    ]
    assert tags == ["FDR1LD0/GGIO1$ST$Ind1$stVal"]


def test_buf_time_gathers_the_changes_of_an_lcb_into_one_entry(tmp_path) -> None:
    model, logs, clock = engine(tmp_path, 'bufTime="100"')
    model.update(IND1, False)  # the first change: the entry is due 100 ms later
    assert logs.next_deadline() == 100.1
    clock[0] = 100.05
    model.update(IND2, True)
    logs.poll(100.09)
    assert journal(logs) == []  # gathering (a readJournal does not cut it short)
    logs.poll(100.1)
    (entry,) = journal(logs)
    assert [(v.reference, v.reason) for v in entry.values] == [
        ("FDR1LD0/GGIO1$ST$Ind1$stVal", R.DATA_CHANGE),
        ("FDR1LD0/GGIO1$ST$Ind2", R.DATA_CHANGE),
    ]
    assert entry.time.to_float() == WALL + 100.0  # the time of its first change
    # the same member changing again within bufTime writes the gathered entry first
    clock[0] = 200.0
    model.update(IND1, True)
    clock[0] = 200.02
    model.update(IND1, False)
    assert len(journal(logs)) == 2 and logs.next_deadline() == 200.12
    logs.poll(200.12)
    values = [[v.value for v in e.values] for e in journal(logs)]
    assert values[1:] == [[True], [False]]
    assert logs.next_deadline() is None
