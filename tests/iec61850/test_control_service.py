"""The control services' sans-IO core (:class:`ControlService`) driven with ``now`` alone:
time-activated operate at operTm, select timeout, execution time limit, CommandTermination
PDUs, and hostile Oper values; no transport, no clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import mms
from gridbind.iec61850 import mmsdata as d
from gridbind.iec61850.association import Association, InitiateParams
from gridbind.iec61850.control.addcause import AddCause
from gridbind.iec61850.control.client import parse_last_appl_error
from gridbind.iec61850.control.service import (
    Abandon,
    Answer,
    ControlHandlers,
    ControlService,
    Deferred,
    Execute,
    Report,
)
from gridbind.iec61850.model import Timestamp
from gridbind.iec61850.scl import load_scl

CONTROLS = Path(__file__).parent / "data" / "controls.icd"
LD = "CTL1CTRL"
T0 = 1_800_000_000.0


def assoc(peer="ops@x/IEC", ident="1") -> Association:
    return Association(peer, ident, InitiateParams(), frozenset())


def oper(val=True, *, oper_tm=0.0, num=1, ident=b"me", test=False, check="00") -> m.Data:
    return d.structure(
        [
            d.boolean(val),
            d.utc_time(Timestamp.from_float(oper_tm)),
            d.structure([d.integer(3), d.octet_string(ident)]),
            d.unsigned(num),
            d.utc_time(Timestamp.from_float(T0)),
            d.boolean(test),
            d.bit_string(check),
        ]
    )


def key(ln: str, service: str = "Oper") -> tuple:
    return ("domain-specific", LD, f"{ln}$CO$Pos${service}")


@pytest.fixture()
def service() -> ControlService:
    return ControlService(load_scl(CONTROLS))


def test_time_activated_operate_fires_at_oper_tm(service) -> None:
    a = assoc()
    out = service.write(a, key("CSWI4"), oper(oper_tm=T0 + 5), T0)
    assert out == [Answer(None)] and service.next_deadline() == T0 + 5
    assert service.timer(T0 + 4.999) == []
    (execute,) = service.timer(T0 + 5)
    assert isinstance(execute, Execute) and execute.action.ctl_val is True
    # the application's time limit (operTimeout 300 ms) is the next deadline
    assert service.next_deadline() == pytest.approx(T0 + 5.3)
    (report,) = service.executed(execute.token, True, T0 + 5.1)
    assert isinstance(report, Report) and report.association is a
    info = report.pdu.choice.service.information_report
    names = [mms.name_key(n) for n in mms.var_def_names(info.variable_access_specification.choice)]
    assert names == [key("CSWI4")]  # CommandTermination +: the Oper alone
    assert service.model.read(f"{LD}/CSWI4.Pos.stVal", "ST") == 2
    assert service.next_deadline() is None


def test_execution_time_limit_and_negative_termination(service) -> None:
    a = assoc()
    out = service.write(a, key("CSWI4"), oper(), T0)
    assert out[0] == Answer(None) and isinstance(out[1], Execute)
    token = out[1].token
    out = service.timer(T0 + 0.3)
    assert out[0] == Abandon(token)
    info = out[1].pdu.choice.service.information_report
    names = [mms.name_key(n) for n in mms.var_def_names(info.variable_access_specification.choice)]
    assert names == [("vmd-specific", "LastApplError"), key("CSWI4")]
    error = parse_last_appl_error(info.list_of_access_result.access_result[0].choice)
    assert error.cause == AddCause.TIME_LIMIT_OVER and error.or_ident == b"me"
    assert error.cntrl_obj == f"{LD}/CSWI4$CO$Pos$Oper"
    assert service.executed(token, True, T0 + 0.4) == []  # too late: ignored
    assert service.model.read(f"{LD}/CSWI4.Pos.stVal", "ST") == 1


def test_normal_security_defers_the_answer(service) -> None:
    a = assoc()
    out = service.write(a, key("CSWI2"), oper(), T0)
    assert isinstance(out[0], Deferred) and isinstance(out[1], Execute)
    out = service.executed(out[1].token, AddCause.BLOCKED_BY_PROCESS, T0 + 0.1)
    assert isinstance(out[0], Report)
    assert out[1] == Answer("object-access-denied", out[1].token)


def test_select_timeout_by_deadline(service) -> None:
    a = assoc()
    result, _ = service.read_sbo(a, key("CSWI3", "SBO"), T0)
    assert result.choice.choice.value == f"{LD}/CSWI3$CO$Pos"
    assert service.next_deadline() == pytest.approx(T0 + 0.4)
    service.timer(T0 + 0.4)
    out = service.write(a, key("CSWI3"), oper(), T0 + 0.5)
    lae = out[0].pdu.choice.service.information_report.list_of_access_result.access_result[0]
    assert parse_last_appl_error(lae.choice).cause == AddCause.OBJECT_NOT_SELECTED


@pytest.mark.parametrize(
    "data, code",
    [
        (d.structure([d.boolean(True)]), "type-inconsistent"),
        (d.integer(1), "type-inconsistent"),
        (oper(ident=b"x" * 65), "object-value-invalid"),
        (oper(check="0"), "type-inconsistent"),
        (oper(num=300), "object-value-invalid"),
    ],
)
def test_hostile_oper_values_are_refused_cleanly(service, data, code) -> None:
    assert service.write(assoc(), key("CSWI2"), data, T0) == [Answer(code)]
    assert service.control_object(f"{LD}/CSWI2.Pos").state == "unselected"


# ---------------------------------------------------------------------------------- fuzz
_LEAVES = st.one_of(
    st.booleans().map(d.boolean),
    st.integers(-(2**40), 2**40).map(d.integer),
    st.integers(0, 2**40).map(d.unsigned),
    st.binary(max_size=80).map(d.octet_string),
    st.text(alphabet="abc$/ ", max_size=20).map(d.visible_string),
    st.text(alphabet="01", min_size=1, max_size=16).map(d.bit_string),
    st.floats(0, 4e9).map(lambda f: d.utc_time(Timestamp.from_float(f))),
)
_DATA = st.recursive(
    _LEAVES, lambda inner: st.lists(inner, max_size=8).map(d.structure), max_leaves=24
)
_OPERS = st.builds(
    oper,
    st.booleans(),
    oper_tm=st.sampled_from([0.0, T0 - 1, T0 + 1, T0 + 50]),
    num=st.integers(0, 400),
    ident=st.binary(max_size=70),
    test=st.booleans(),
    check=st.text(alphabet="01", min_size=1, max_size=3),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(_DATA, _OPERS), target=st.sampled_from(["CSWI2", "CSWI4", "CSWI6"]))
def test_fuzz_control_writes_answer_without_raising(data, target) -> None:
    service = ControlService(load_scl(CONTROLS))
    out = service.write(assoc(), key(target), data, T0)
    answers = [o for o in out if isinstance(o, (Answer, Deferred))]
    assert len(answers) == 1
    for o in service.timer(T0 + 100) + out:
        if isinstance(o, Execute):
            service.executed(o.token, True, T0 + 100)
    assert service.control_object(f"{LD}/{target}.Pos").state == "unselected"
    assert service.next_deadline() is None


@settings(max_examples=200, deadline=None)
@given(data=_DATA)
def test_fuzz_last_appl_error_parser_raises_only_value_errors(data) -> None:
    try:
        parse_last_appl_error(data)
    except ValueError:
        pass


def test_oper_tm_far_ahead_is_refused_and_leaves_the_object_free() -> None:
    service = ControlService(load_scl(CONTROLS), max_activation_delay=3600.0)
    a = assoc()
    out = service.write(a, key("CSWI4"), oper(oper_tm=T0 + 1e8), T0)
    lae = out[0].pdu.choice.service.information_report.list_of_access_result.access_result[0]
    assert parse_last_appl_error(lae.choice).cause == AddCause.INCONSISTENT_PARAMETERS
    assert service.next_deadline() is None
    assert service.write(a, key("CSWI4"), oper(oper_tm=T0 + 3599), T0) == [Answer(None)]


def test_select_asks_the_application_and_reads_empty_when_refused() -> None:
    asked = []

    def check(action):
        asked.append(action.service)
        return AddCause.BLOCKED_BY_HEALTH if len(asked) == 1 else None

    service = ControlService(load_scl(CONTROLS), ControlHandlers(on_check=check))
    a = assoc()
    result, _ = service.read_sbo(a, key("CSWI3", "SBO"), T0)
    assert result.choice.choice.value == "" and asked == ["SBO"]
    assert service.control_object(f"{LD}/CSWI3.Pos").state == "unselected"
    result, _ = service.read_sbo(a, key("CSWI3", "SBO"), T0)
    assert result.choice.choice.value == f"{LD}/CSWI3$CO$Pos"


@pytest.mark.parametrize(
    "ln, attr, cause",
    [
        ("CSWI2", "Oper", AddCause.INCONSISTENT_PARAMETERS),
        ("CSWI5", "SBOw", AddCause.SELECT_FAILED),
    ],
)
@pytest.mark.parametrize("or_cat", [9, -1, 200])
def test_or_cat_outside_0_to_8_is_object_value_invalid(service, ln, attr, cause, or_cat) -> None:
    data = oper()
    data.choice.data[2] = d.structure([d.integer(or_cat), d.octet_string(b"me")])
    out = service.write(assoc(), key(ln, attr), data, T0)
    assert out[1] == Answer("object-value-invalid")
    lae = out[0].pdu.choice.service.information_report.list_of_access_result.access_result[0]
    error = parse_last_appl_error(lae.choice)
    assert error.cause == cause and error.cntrl_obj == f"{LD}/{ln}$CO$Pos${attr}"
    assert service.control_object(f"{LD}/{ln}.Pos").state == "unselected"


def test_tracking_uses_only_an_ltrk_of_the_objects_own_ld(tmp_path) -> None:
    scl = CONTROLS.read_text()
    ltrk = '<LN lnClass="LTRK" lnType="C_LTRK" inst="1"/>'
    other = '<LDevice inst="TRK"><LN0 lnClass="LLN0" lnType="C_LLN0" inst=""/>' f"{ltrk}</LDevice>"
    scl = scl.replace(ltrk, "").replace("</Server>", other + "</Server>")
    (tmp_path / "two.icd").write_text(scl)
    service = ControlService(load_scl(tmp_path / "two.icd"))
    assert service.tracking.cts_of(service.model.find(f"{LD}/CSWI5.Pos")) is None
    service.write(assoc(), key("CSWI5", "SBOw"), oper(), T0)
    assert service.model.read("CTL1TRK/LTRK1.DpcTrk.objRef", "SR") == ""


def test_select_leaves_no_parameters_of_the_last_command_in_tracking(service) -> None:
    service.write(assoc(), key("CSWI5", "SBOw"), oper(num=9, ident=b"me"), T0)
    assert service.model.read(f"{LD}/LTRK1.DpcTrk.ctlNum", "SR") == 9
    service.read_sbo(assoc(), key("CSWI3", "SBO"), T0)
    cts = service.model.read(f"{LD}/LTRK1.DpcTrk", "SR")
    assert cts["objRef"] == f"{LD}/CSWI3.Pos" and cts["serviceType"] == 43  # Select
    assert (cts["ctlNum"], cts["ctlVal"], cts["origin"]) == (0, False, {"orCat": 0, "orIdent": b""})


@pytest.mark.parametrize("bits, asked", [("01", ["interlock"]), ("10", ["synchro"]), ("00", [])])
def test_check_bits_on_the_wire(bits, asked) -> None:
    """Check (7-2 / 8-1): bit 0 synchrocheck, bit 1 interlock-check, as a raw bit string."""
    seen = []

    def hook(name):
        return lambda action: seen.append(name) or False

    handlers = ControlHandlers(
        on_interlock_check=hook("interlock"), on_synchrocheck=hook("synchro")
    )
    service = ControlService(load_scl(CONTROLS), handlers)
    service.write(assoc(), key("CSWI2"), oper(check=bits), T0)
    assert seen == asked
