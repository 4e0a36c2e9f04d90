"""The sans-IO control state machine (7-2 control models), driven with ``now`` alone."""

from __future__ import annotations

import pytest

from gridbind.iec61850.control.addcause import AddCause, failure_code
from gridbind.iec61850.control.models import (
    Accept,
    Activate,
    ControlObject,
    ControlRequest,
    CtlModel,
    Refuse,
    SboClass,
    SelectExpired,
)

A, B = ("ops0", "1"), ("ops1", "2")


def oper(owner=A, val=True, **kw) -> ControlRequest:
    return ControlRequest("Oper", owner, ctl_val=val, **kw)


def sbow(owner=A, val=True, **kw) -> ControlRequest:
    return ControlRequest("SBOw", owner, ctl_val=val, **kw)


def cancel(owner=A) -> ControlRequest:
    return ControlRequest("Cancel", owner)


def test_status_only_refuses_every_service() -> None:
    obj = ControlObject("LD/CSWI1.Pos", CtlModel.STATUS_ONLY)
    assert obj.operate(oper(), 0) == Refuse(AddCause.NOT_SUPPORTED)
    assert obj.select(ControlRequest("SBO", A), 0) == Refuse(AddCause.NOT_SUPPORTED)
    assert obj.cancel(cancel(), 0) == Refuse(AddCause.NOT_SUPPORTED)


@pytest.mark.parametrize("model", [CtlModel.DIRECT_NORMAL, CtlModel.DIRECT_ENHANCED])
def test_direct_operate_runs_and_blocks_a_second_one(model) -> None:
    obj = ControlObject("LD/CSWI1.Pos", model)
    assert obj.operate(oper(), 0) == Accept(execute_now=True)
    assert obj.state == "executing"
    assert obj.operate(oper(B), 0.1) == Refuse(AddCause.COMMAND_ALREADY_IN_EXECUTION)
    obj.finished(0.2)
    assert obj.state == "unselected" and obj.operate(oper(B), 0.3) == Accept(True)
    # a direct model has no selection to use
    assert obj.select(sbow(), 1) == Refuse(AddCause.NOT_SUPPORTED)


def test_sbo_normal_select_operate_and_timeout() -> None:
    obj = ControlObject("LD/CSWI1.Pos", CtlModel.SBO_NORMAL, sbo_timeout=2.0)
    assert obj.operate(oper(), 0) == Refuse(AddCause.OBJECT_NOT_SELECTED)
    assert obj.select(ControlRequest("SBO", A), 0) == Accept()
    assert obj.next_deadline() == 2.0
    assert obj.select(ControlRequest("SBO", B), 1) == Refuse(AddCause.LOCKED_BY_OTHER_CLIENT)
    assert obj.operate(oper(B), 1) == Refuse(AddCause.LOCKED_BY_OTHER_CLIENT)
    assert obj.timer(1.9) == []
    assert obj.timer(2.0) == [SelectExpired(A)]
    assert obj.state == "unselected" and obj.next_deadline() is None
    assert obj.operate(oper(), 2.1) == Refuse(AddCause.OBJECT_NOT_SELECTED)
    # selected again, operated once (operate-once): the selection is used up
    assert obj.select(ControlRequest("SBO", A), 3) == Accept()
    assert obj.operate(oper(), 3.5) == Accept(execute_now=True)
    obj.finished(3.6)
    assert obj.operate(oper(), 3.7) == Refuse(AddCause.OBJECT_NOT_SELECTED)


def test_sbo_enhanced_needs_the_same_command() -> None:
    obj = ControlObject("LD/CSWI1.Pos", CtlModel.SBO_ENHANCED)
    assert obj.select(ControlRequest("SBO", A), 0) == Refuse(AddCause.NOT_SUPPORTED)
    for wrong in ({"ctl_num": 8}, {"or_ident": b"you"}, {"test": True}, {"check": "01"}):
        assert obj.select(sbow(ctl_num=7, or_ident=b"me"), 0) == Accept()
        command = {"ctl_num": 7, "or_ident": b"me", **wrong}
        assert obj.operate(oper(**command), 1) == Refuse(AddCause.INCONSISTENT_PARAMETERS)
        assert obj.state == "unselected"  # a wrong Operate ends the selection
        assert obj.operate(oper(ctl_num=7, or_ident=b"me"), 1) == Refuse(
            AddCause.OBJECT_NOT_SELECTED
        )
    assert obj.select(sbow(ctl_num=7, or_ident=b"me"), 0) == Accept()
    assert obj.operate(oper(ctl_num=7, or_ident=b"me"), 1) == Accept(execute_now=True)
    assert obj.cancel(cancel(), 1.5) == Refuse(AddCause.COMMAND_ALREADY_IN_EXECUTION)
    assert obj.cancel(cancel(B), 1.5) == Refuse(AddCause.LOCKED_BY_OTHER_CLIENT)
    obj.finished(2)
    assert obj.state == "unselected"


def test_operate_many_keeps_the_selection_until_cancel() -> None:
    obj = ControlObject(
        "LD/CSWI1.Pos", CtlModel.SBO_NORMAL, sbo_class=SboClass.OPERATE_MANY, sbo_timeout=5
    )
    assert obj.select(ControlRequest("SBO", A), 0) == Accept()
    for t in (1, 2, 3):
        assert obj.operate(oper(), t) == Accept(execute_now=True)
        obj.finished(t + 0.5)
        assert obj.state == "ready" and obj.next_deadline() == t + 5.5
    assert obj.cancel(cancel(B), 4) == Refuse(AddCause.LOCKED_BY_OTHER_CLIENT)
    assert obj.cancel(cancel(), 4) == Accept()
    assert obj.state == "unselected" and obj.operate(oper(), 4) == Refuse(
        AddCause.OBJECT_NOT_SELECTED
    )


def test_time_activated_operate_fires_at_oper_tm_and_can_be_cancelled() -> None:
    obj = ControlObject("LD/CSWI1.Pos", CtlModel.DIRECT_ENHANCED)
    assert obj.operate(oper(oper_tm=10.0), 1) == Accept(execute_now=False)
    assert obj.state == "wait-for-activation" and obj.next_deadline() == 10.0
    assert obj.operate(oper(), 2) == Refuse(AddCause.COMMAND_ALREADY_IN_EXECUTION)
    assert obj.timer(9.99) == []
    (event,) = obj.timer(10.0)
    assert isinstance(event, Activate) and event.request.oper_tm == 10.0
    assert obj.state == "executing" and obj.next_deadline() is None
    obj.finished(10.5)
    # an operTm in the past operates at once; a pending one is cancelled by its owner only
    assert obj.operate(oper(oper_tm=5.0), 11) == Accept(execute_now=True)
    obj.finished(11)
    assert obj.operate(oper(oper_tm=20.0), 12) == Accept(execute_now=False)
    assert obj.cancel(cancel(B), 13) == Refuse(AddCause.LOCKED_BY_OTHER_CLIENT)
    assert obj.cancel(cancel(), 13) == Accept()
    assert obj.timer(20) == [] and obj.state == "unselected"


def test_release_drops_selection_and_pending_operate_of_that_association_only() -> None:
    obj = ControlObject("LD/CSWI1.Pos", CtlModel.SBO_ENHANCED)
    assert obj.select(sbow(), 0) == Accept()
    assert obj.release(B) is None and obj.selected_by == A
    assert obj.release(A) is None and obj.state == "unselected"
    assert obj.select(sbow(B), 1) == Accept()
    assert obj.operate(oper(B, oper_tm=9.0), 2) == Accept(execute_now=False)
    dropped = obj.release(B)
    assert dropped is not None and dropped.owner == B and obj.state == "unselected"


def test_addcause_names_and_write_failures() -> None:
    assert AddCause(27).text == "Locked-by-other-client"
    assert AddCause.ONE_OF_N_CONTROL.text == "1-of-n-control"
    assert len(AddCause) == 28
    assert failure_code(AddCause.LOCKED_BY_OTHER_CLIENT) == "temporarily-unavailable"
    assert failure_code(AddCause.BLOCKED_BY_INTERLOCKING) == "object-access-denied"
    assert failure_code(AddCause.OBJECT_NOT_SELECTED) == "object-access-denied"
    assert failure_code(AddCause.INCONSISTENT_PARAMETERS) == "type-inconsistent"


def test_time_activated_operate_beyond_the_maximum_delay_is_refused() -> None:
    obj = ControlObject("LD/CSWI1.Pos", CtlModel.DIRECT_ENHANCED, max_activation_delay=60.0)
    assert obj.operate(oper(oper_tm=100 + 1e8), 100) == Refuse(AddCause.INCONSISTENT_PARAMETERS)
    assert obj.state == "unselected" and obj.operate(oper(B), 100) == Accept(True)
    obj.finished(101)
    assert obj.operate(oper(oper_tm=161.0), 101) == Accept(execute_now=False)
    # the default bound is a day
    assert ControlObject("x", CtlModel.DIRECT_NORMAL).operate(oper(oper_tm=1e8), 0) == Refuse(
        AddCause.INCONSISTENT_PARAMETERS
    )


def test_select_with_value_of_a_selected_object_is_object_already_selected() -> None:
    obj = ControlObject("LD/CSWI1.Pos", CtlModel.SBO_ENHANCED)
    assert obj.select(sbow(), 0) == Accept()
    for owner in (A, B):
        assert obj.select(sbow(owner), 1) == Refuse(AddCause.OBJECT_ALREADY_SELECTED)
    assert failure_code(AddCause.OBJECT_ALREADY_SELECTED) == "temporarily-unavailable"
    # Operate and Cancel of another association stay Locked-by-other-client
    assert obj.operate(oper(B), 1) == Refuse(AddCause.LOCKED_BY_OTHER_CLIENT)
    assert obj.cancel(cancel(B), 1) == Refuse(AddCause.LOCKED_BY_OTHER_CLIENT)
    assert obj.operate(oper(A), 1) == Accept(True)
    assert obj.select(sbow(A), 1) == Refuse(AddCause.OBJECT_ALREADY_SELECTED)


def test_cancel_of_an_unselected_sbo_object_succeeds() -> None:
    for model in (CtlModel.SBO_NORMAL, CtlModel.SBO_ENHANCED):
        obj = ControlObject("LD/CSWI1.Pos", model)
        assert obj.cancel(cancel(), 0) == Accept() and obj.state == "unselected"


def test_operate_many_selection_ends_with_its_association_during_execution() -> None:
    obj = ControlObject("LD/CSWI1.Pos", CtlModel.SBO_NORMAL, sbo_class=SboClass.OPERATE_MANY)
    assert obj.select(ControlRequest("SBO", A), 0) == Accept()
    assert obj.operate(oper(), 1) == Accept(execute_now=True)
    assert obj.release(A) is None and obj.state == "executing"
    assert obj.operate(oper(B), 1) == Refuse(AddCause.COMMAND_ALREADY_IN_EXECUTION)
    obj.finished(2)
    assert obj.state == "unselected" and obj.next_deadline() is None
    assert obj.select(ControlRequest("SBO", B), 2) == Accept()
