"""Control services end to end on the in-memory transport (the same stanzas, codec gate and
protocol cores as over XMPP), from tests/iec61850/data/controls.icd: each control model's
positive path and each failure path with its AddCause, CommandTermination +/-, time-activated
operate, select timeout, locks between associations and the application's handlers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import mms
from gridbind.iec61850 import mmsdata as d
from gridbind.iec61850.client import AssociationAborted
from gridbind.iec61850.control.addcause import AddCause
from gridbind.iec61850.control.models import ControlRequest
from gridbind.iec61850.control.service import ControlHandlers, last_appl_error

from iec_testkit import memory_served, run, until

CONTROLS = Path(__file__).parent / "data" / "controls.icd"
LD = "CTL1CTRL"
ON, OFF = 2, 1  # Dbpos


def served(clients=1, **server_kw):
    return memory_served(CONTROLS, clients=clients, server_kw=server_kw)


def st(server, ref: str):
    return server.model.read(f"{LD}/{ref}.stVal", "ST")


@pytest.mark.timeout(10)
def test_each_control_model_positive_path() -> None:
    async def main():
        async with served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            for ln in ("CSWI2", "CSWI3", "CSWI4", "CSWI5"):
                outcome = await ied.operate(f"{LD}/{ln}.Pos", True)
                assert outcome.ok, (ln, outcome)
                assert st(server, f"{ln}.Pos") == ON
                # stVal follows with t, q good; origin and ctlNum are recorded
                pos = server.model.read(f"{LD}/{ln}.Pos", "ST")
                assert pos["q"] == "0" * 13 and pos["t"].to_float() > time.time() - 5
                assert pos["ctlNum"] == outcome.ctl_num
                assert pos["origin"] == {"orCat": 3, "orIdent": client.transport.full_jid.encode()}
            enhanced = await ied.operate(f"{LD}/CSWI5.Pos", False)
            assert enhanced.ok and enhanced.terminated is True and st(server, "CSWI5.Pos") == OFF
            assert (await ied.operate(f"{LD}/GGIO1.ISCSO1", 42)).ok
            assert server.model.read(f"{LD}/GGIO1.ISCSO1.stVal", "ST") == 42
            # nothing of the control services reached the report stream
            assert ied._reports.empty()

    run(main(), 10)


@pytest.mark.timeout(10)
def test_status_only_and_wrong_services_are_refused() -> None:
    async def main():
        async with served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            outcome = await ied.operate(f"{LD}/CSWI1.Pos", True)
            assert not outcome.ok and outcome.add_cause is None  # status-only: no LastApplError
            assert outcome.failure == "object-access-unsupported"
            # SelectWithValue on a normal-security SBO object; Select on an enhanced one
            outcome = await ied.select_with_value(f"{LD}/CSWI3.Pos", True)
            assert outcome.add_cause == AddCause.NOT_SUPPORTED
            assert (await ied.select(f"{LD}/CSWI5.Pos")).failure == "select-failed"
            assert st(server, "CSWI1.Pos") == OFF

    run(main(), 10)


@pytest.mark.timeout(10)
def test_not_selected_select_timeout_and_cancel() -> None:
    async def main():
        async with served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            for ln in ("CSWI3", "CSWI5"):
                outcome = await ied.operate(f"{LD}/{ln}.Pos", True, select=False)
                assert outcome.add_cause == AddCause.OBJECT_NOT_SELECTED, ln
                assert outcome.failure == "object-access-denied"
            # sboTimeout is 400 ms: the server's deadline ends the selection, not a sleep
            assert (await ied.select(f"{LD}/CSWI3.Pos")).ok
            obj = server.controls.control_object(f"{LD}/CSWI3.Pos")
            assert obj.state == "ready"
            assert server.model.read(f"{LD}/CSWI3.Pos.stSeld", "ST") is True
            await until(lambda: obj.state == "unselected", 2, "select timeout")
            assert server.model.read(f"{LD}/CSWI3.Pos.stSeld", "ST") is False
            outcome = await ied.operate(f"{LD}/CSWI3.Pos", True, select=False)
            assert outcome.add_cause == AddCause.OBJECT_NOT_SELECTED
            # Cancel ends a SelectWithValue
            assert (await ied.select_with_value(f"{LD}/CSWI5.Pos", True)).ok
            assert (await ied.cancel(f"{LD}/CSWI5.Pos", True)).ok
            outcome = await ied.operate(f"{LD}/CSWI5.Pos", True, select=False)
            assert outcome.add_cause == AddCause.OBJECT_NOT_SELECTED
            assert (await ied.cancel(f"{LD}/CSWI5.Pos", True)).ok  # unselected: success
            assert st(server, "CSWI3.Pos") == OFF and st(server, "CSWI5.Pos") == OFF

    run(main(), 10)


@pytest.mark.timeout(10)
def test_wrong_ctl_num_or_origin_after_select_with_value() -> None:
    async def main():
        async with served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            ref = f"{LD}/CSWI5.Pos"
            assert (await ied.select_with_value(ref, True, ctl_num=10)).ok
            outcome = await ied.operate(ref, True, select=False, ctl_num=11)
            assert outcome.add_cause == AddCause.INCONSISTENT_PARAMETERS
            assert outcome.failure == "type-inconsistent"
            assert ied.controls.last_appl_error.cntrl_obj == f"{LD}/CSWI5$CO$Pos$Oper"
            assert ied.controls.last_appl_error.ctl_num == 11
            # the wrong Operate ended the selection
            outcome = await ied.operate(ref, True, select=False, ctl_num=10)
            assert outcome.add_cause == AddCause.OBJECT_NOT_SELECTED
            for wrong in (
                {"or_ident": b"other"},
                {"interlock_check": True},
                {"synchrocheck": True},
            ):
                assert (await ied.select_with_value(ref, True, ctl_num=10)).ok
                outcome = await ied.operate(ref, True, select=False, ctl_num=10, **wrong)
                assert outcome.add_cause == AddCause.INCONSISTENT_PARAMETERS, wrong
            assert (await ied.select_with_value(ref, True, ctl_num=10)).ok
            outcome = await ied.operate(ref, False, select=False, ctl_num=10)
            assert outcome.add_cause == AddCause.INCONSISTENT_PARAMETERS
            assert st(server, "CSWI5.Pos") == OFF
            assert (await ied.select_with_value(ref, True, ctl_num=10)).ok
            outcome = await ied.operate(ref, True, select=False, ctl_num=10)
            assert outcome.ok and outcome.terminated and st(server, "CSWI5.Pos") == ON
            # a separate Operate repeats the ctlNum of this association's SelectWithValue
            assert (await ied.select_with_value(ref, False)).ok
            assert (await ied.operate(f"{LD}/CSWI2.Pos", True)).ok  # numbers move on
            outcome = await ied.operate(ref, False, select=False)
            assert outcome.ok and st(server, "CSWI5.Pos") == OFF

    run(main(), 10)


@pytest.mark.timeout(10)
def test_locked_by_another_client_and_released_with_its_association() -> None:
    async def main():
        async with served(clients=2) as (server, (one, two), _):
            a = await one.associate(server.jid)
            b = await two.associate(server.jid)
            for ref, select in ((f"{LD}/CSWI3.Pos", a.select), (f"{LD}/XCBR1.Pos", None)):
                if select is None:
                    assert (await a.select_with_value(ref, True)).ok
                else:
                    assert (await select(ref)).ok
                outcome = await b.operate(ref, True)
                if select is not None:  # a refused Select is an empty SBO, no AddCause
                    assert outcome.failure == "select-failed"
                else:  # SelectWithValue of a selected object (libiec61850's answer)
                    assert outcome.add_cause == AddCause.OBJECT_ALREADY_SELECTED
                    assert outcome.failure == "temporarily-unavailable"
                    again = await a.select_with_value(ref, True)  # also for its owner
                    assert again.add_cause == AddCause.OBJECT_ALREADY_SELECTED
                outcome = await b.operate(ref, True, select=False)
                assert outcome.add_cause == AddCause.LOCKED_BY_OTHER_CLIENT
                assert (await b.cancel(ref, True)).add_cause == AddCause.LOCKED_BY_OTHER_CLIENT
            # the end of a's association drops its selections
            await a.conclude()
            assert (await b.operate(f"{LD}/CSWI3.Pos", True)).ok
            assert (await b.operate(f"{LD}/XCBR1.Pos", True)).ok

    run(main(), 10)


@pytest.mark.timeout(10)
def test_interlock_synchrocheck_and_check_handlers() -> None:
    seen = []

    def interlock(action):
        seen.append(("interlock", action.ref, action.ctl_val))
        return action.ctl_val is False  # closing is interlocked

    def synchro(action):
        seen.append(("synchro", action.ref))
        return False

    def check(action):
        return AddCause.BLOCKED_BY_HEALTH if action.ref.endswith("CSWI4.Pos") else None

    async def main():
        handlers = ControlHandlers(
            on_check=check, on_interlock_check=interlock, on_synchrocheck=synchro
        )
        async with served(control_handlers=handlers) as (server, (client,), _):
            ied = await client.associate(server.jid)
            ref = f"{LD}/CSWI2.Pos"
            assert (await ied.operate(ref, True)).ok  # no Check bits: no hook asked
            assert seen == []
            outcome = await ied.operate(ref, True, interlock_check=True)
            assert outcome.add_cause == AddCause.BLOCKED_BY_INTERLOCKING
            assert outcome.failure == "object-access-denied"
            outcome = await ied.operate(ref, False, synchrocheck=True)
            assert outcome.add_cause == AddCause.BLOCKED_BY_SYNCHROCHECK
            assert (await ied.operate(ref, False, interlock_check=True)).ok
            assert st(server, "CSWI2.Pos") == OFF
            # SelectWithValue runs the checks too, and a refused one leaves no selection
            outcome = await ied.select_with_value(f"{LD}/CSWI5.Pos", True, interlock_check=True)
            assert outcome.add_cause == AddCause.BLOCKED_BY_INTERLOCKING
            assert server.controls.control_object(f"{LD}/CSWI5.Pos").state == "unselected"
            outcome = await ied.operate(f"{LD}/CSWI4.Pos", True)
            assert outcome.add_cause == AddCause.BLOCKED_BY_HEALTH
            assert [s[0] for s in seen] == ["interlock", "synchro", "interlock", "interlock"]

    run(main(), 10)


@pytest.mark.timeout(10)
def test_test_mode_mismatch_is_blocked_by_mode() -> None:
    async def main():
        async with served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            outcome = await ied.operate(f"{LD}/CSWI6.Pos", True)  # LN in test, Test false
            assert outcome.add_cause == AddCause.BLOCKED_BY_MODE
            outcome = await ied.operate(f"{LD}/CSWI2.Pos", True, test=True)  # LN on, Test true
            assert outcome.add_cause == AddCause.BLOCKED_BY_MODE
            assert (await ied.operate(f"{LD}/CSWI6.Pos", True, test=True)).ok
            pos = server.model.read(f"{LD}/CSWI6.Pos", "ST")
            assert pos["stVal"] == ON and pos["q"][11] == "1"  # q.test
            server.model.update(f"{LD}/CSWI2.Beh.stVal", 5)  # off: nothing operates
            outcome = await ied.operate(f"{LD}/CSWI2.Pos", True)
            assert outcome.add_cause == AddCause.BLOCKED_BY_MODE

    run(main(), 10)


@pytest.mark.timeout(10)
def test_command_termination_negative_and_async_handler_bound() -> None:
    async def handler(action):
        if action.ctl_val is True:
            await asyncio.sleep(5)  # longer than operTimeout (300 ms): Time-limit-over
        return AddCause.BLOCKED_BY_PROCESS if action.ref.endswith("XCBR1.Pos") else True

    async def main():
        handlers = ControlHandlers(on_operate=handler)
        async with served(control_handlers=handlers, operate_timeout=0.3) as (
            server,
            (client,),
            _,
        ):
            ied = await client.associate(server.jid)
            # enhanced: write accepted, then CommandTermination - with AddCause
            started = time.monotonic()
            outcome = await ied.operate(f"{LD}/CSWI4.Pos", True)
            assert outcome.terminated is False and outcome.add_cause == AddCause.TIME_LIMIT_OVER
            assert time.monotonic() - started < 2
            assert st(server, "CSWI4.Pos") == OFF
            outcome = await ied.operate(f"{LD}/XCBR1.Pos", False)
            assert not outcome.ok and outcome.terminated is False
            assert outcome.add_cause == AddCause.BLOCKED_BY_PROCESS
            assert outcome.failure is None  # the write itself was accepted
            # normal security: the write answer waits for the application, bounded
            outcome = await ied.operate(f"{LD}/CSWI2.Pos", True)
            assert outcome.add_cause == AddCause.TIME_LIMIT_OVER
            assert outcome.failure == "object-access-denied"
            assert (await ied.operate(f"{LD}/CSWI2.Pos", False)).ok
            assert not server._executions  # the late handlers were stopped

    run(main(), 10)


@pytest.mark.timeout(10)
def test_time_activated_operate_fires_at_oper_tm_and_cancel() -> None:
    async def main():
        async with served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            ref = f"{LD}/CSWI4.Pos"
            at = time.time() + 0.4
            outcome = await ied.operate(ref, True, oper_time=at)
            assert outcome.ok and outcome.terminated
            assert time.time() >= at - 0.01 and st(server, "CSWI4.Pos") == ON
            # a pending one is cancelled before its time
            outcome_task = asyncio.get_running_loop().create_task(
                ied.operate(ref, False, oper_time=time.time() + 0.5, termination_timeout=1)
            )
            obj = server.controls.control_object(ref)
            await until(lambda: obj.state == "wait-for-activation", 2, "waiting")
            busy = await ied.operate(ref, False)
            assert busy.add_cause == AddCause.COMMAND_ALREADY_IN_EXECUTION
            assert (await ied.cancel(ref, False)).ok
            outcome = await outcome_task
            assert outcome.terminated is None and st(server, "CSWI4.Pos") == ON

    run(main(), 10)


@pytest.mark.timeout(10)
def test_control_pdus_on_the_wire() -> None:
    """LastApplError precedes the write failure; a Select is a read of $SBO."""

    async def main():
        async with served() as (server, (client,), net):
            ied = await client.associate(server.jid)
            response = await ied.request(mms.read(mms.dom(LD, "CSWI3$CO$Pos$SBO")))
            (result,) = response.list_of_access_result.access_result
            assert result.choice.choice.value == f"{LD}/CSWI3$CO$Pos"
            start = len(net.log)
            outcome = await ied.operate(f"{LD}/CSWI5.Pos", True, select=False)
            assert outcome.failure
            kinds = [k for k, sender, _ in net.log[start:] if sender == server.jid]
            assert kinds[-2:] == ["message", "iq"]
            # a write of a control attribute among others, or of SBO, is refused
            data = m.Data(choice=m.Data.VisibleString(value="x"))
            response = await ied.request(
                mms.write([mms.variable(mms.dom(LD, "CSWI3$CO$Pos$SBO"))], [data])
            )
            assert mms.write_results(response) == ["object-access-denied"]

    run(main(), 10)


@pytest.mark.timeout(10)
def test_control_service_tracking_in_ltrk() -> None:
    async def main():
        async with served(clients=2) as (server, (one, two), _):
            a = await one.associate(server.jid)
            b = await two.associate(server.jid)
            ref = f"{LD}/CSWI5.Pos"
            assert (await a.select_with_value(ref, True, ctl_num=5)).ok
            cts = await b.get_data_values(f"{LD}/LTRK1.DpcTrk", "SR")  # read over the wire
            assert cts["objRef"] == ref and cts["serviceType"] == 44  # SelectWithValue
            assert cts["errorCode"] == 0 and cts["respAddCause"] == 25  # no-error, None
            assert cts["ctlVal"] is True and cts["ctlNum"] == 5
            assert cts["originatorID"] == one.transport.full_jid.encode()
            assert cts["origin"] == {"orCat": 3, "orIdent": one.transport.full_jid.encode()}
            assert (await b.operate(ref, False, select=False)).ok is False
            cts = await b.get_data_values(f"{LD}/LTRK1.DpcTrk", "SR")
            assert (cts["serviceType"], cts["errorCode"], cts["respAddCause"]) == (46, 8, 27)
            assert cts["originatorID"] == two.transport.full_jid.encode()
            assert (await a.operate(ref, True, select=False, ctl_num=5)).ok
            cts = server.model.read(f"{LD}/LTRK1.DpcTrk", "SR")
            assert cts["serviceType"] == 47 and cts["errorCode"] == 0  # CommandTermination +
            assert cts["t"].to_float() > time.time() - 5
            # a control whose CDC has no CTS in the SCL (INC) is not tracked
            assert (await a.operate(f"{LD}/GGIO1.ISCSO1", 7)).ok
            assert server.model.read(f"{LD}/LTRK1.DpcTrk.serviceType", "SR") == 47

    run(main(), 10)


@pytest.mark.timeout(10)
def test_association_ending_during_execution_and_pending_operate() -> None:
    release = asyncio.Event()

    async def handler(action):
        await release.wait()
        return True

    async def main():
        handlers = ControlHandlers(on_operate=handler)
        async with served(clients=2, control_handlers=handlers) as (server, (one, two), _):
            a = await one.associate(server.jid)
            b = await two.associate(server.jid)
            task = asyncio.get_running_loop().create_task(a.operate(f"{LD}/CSWI2.Pos", True))
            obj = server.controls.control_object(f"{LD}/CSWI2.Pos")
            await until(lambda: obj.state == "executing", 2, "executing")
            # a time-activated operate of b waits; b's link drops: it is dropped with it
            pending = asyncio.get_running_loop().create_task(
                b.operate(f"{LD}/CSWI4.Pos", True, oper_time=time.time() + 30)
            )
            other = server.controls.control_object(f"{LD}/CSWI4.Pos")
            await until(lambda: other.state == "wait-for-activation", 2, "waiting")
            two.transport.drop_link()
            await until(lambda: other.state == "unselected", 2, "pending operate dropped")
            with pytest.raises(AssociationAborted):
                await pending
            assert server.controls.next_deadline() is not None  # a's execution is still bounded
            one.transport.drop_link()
            with pytest.raises(AssociationAborted):
                await task
            release.set()  # the application answers for an association that is gone
            await until(lambda: obj.state == "unselected", 2, "execution ended")
            assert st(server, "CSWI2.Pos") == ON and not server.protocol._control_waits

    run(main(), 10)


@pytest.mark.timeout(10)
def test_client_keeps_no_unasked_last_appl_errors() -> None:
    async def main():
        async with served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            (assoc,) = server.associations
            request = ControlRequest("Oper", assoc.key)
            for n in range(50):  # a server sending LastApplErrors nobody asked for
                data = last_appl_error(f"X/Y$CO$Z{n}$Oper", request, AddCause(n % 28), 0)
                pdu = mms.information_report(
                    [mms.vmd("LastApplError")], [m.AccessResult(choice=data)]
                )
                server.send_information_report(assoc, pdu)
            bad = mms.information_report(
                [mms.vmd("LastApplError")], [m.AccessResult(choice=d.integer(1))]
            )
            server.send_information_report(assoc, bad)
            await until(lambda: ied.controls.last_appl_error is not None, 2, "reports")
            await ied.get_server_directory()  # everything sent before has arrived
            assert ied.controls.last_appl_error.cntrl_obj == "X/Y$CO$Z49$Oper"
            assert ied.controls._errors == {} and ied._reports.empty()

    run(main(), 10)


@pytest.mark.timeout(10)
def test_failing_check_handler_refuses_and_frees_the_object() -> None:
    """A check handler that raises (or answers no AddCause) refuses with Unknown; the object
    is free again and the association keeps taking requests (no invokeID leaks)."""
    answers = iter([RuntimeError("bug"), 99] * 6)

    def check(action):
        if not action.ref.endswith("CSWI5.Pos"):
            return None
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def main():
        handlers = ControlHandlers(on_check=check)
        async with served(control_handlers=handlers) as (server, (client,), _):
            ied = await client.associate(server.jid)
            for _ in range(12):  # more than the 8 outstanding requests of an association
                outcome = await ied.operate(f"{LD}/CSWI5.Pos", True)
                assert outcome.add_cause == AddCause.UNKNOWN, outcome
                assert server.controls.control_object(f"{LD}/CSWI5.Pos").state == "unselected"
            # a bug in the control service itself: an error answer, the invokeID is freed
            write = server.controls.write
            server.controls.write = lambda *a: 1 / 0
            for _ in range(10):
                with pytest.raises(Exception, match="other"):
                    await ied.operate(f"{LD}/CSWI2.Pos", True)
            server.controls.write = write
            assert (await ied.operate(f"{LD}/CSWI2.Pos", True)).ok

    run(main(), 10)


@pytest.mark.timeout(10)
def test_client_waits_follow_the_objects_oper_timeout() -> None:
    """The Oper answer and CommandTermination waits come from operTimeout (and operTm)."""

    async def main():
        async with served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            controls = ied.controls
            assert await controls.oper_timeout(f"{LD}/CSWI4.Pos") == 0.3
            assert await controls.oper_timeout(f"{LD}/CSWI2.Pos") is None  # 0: none set
            waits = []
            write = controls._write

            async def spy(ref, service, value, num, params, termination=None, **kw):
                waits.append((ref.split("/")[1], termination, kw.get("request_timeout")))
                return await write(ref, service, value, num, params, termination, **kw)

            controls._write = spy
            assert (await ied.operate(f"{LD}/CSWI4.Pos", True)).ok
            assert (await ied.operate(f"{LD}/CSWI2.Pos", True)).ok
            in_1s = time.time() + 1
            assert (await ied.operate(f"{LD}/CSWI4.Pos", False, oper_time=in_1s)).ok
            margin, default = 5.0, 10.0
            assert waits[0] == ("CSWI4.Pos", pytest.approx(0.3 + margin), None)
            assert waits[1] == ("CSWI2.Pos", None, pytest.approx(default + margin))
            assert waits[2][1] == pytest.approx(1 + 0.3 + margin, abs=0.5)

    run(main(), 10)


@pytest.mark.timeout(10)
def test_server_bounds_the_activation_delay() -> None:
    async def main():
        async with served(max_activation_delay=60.0) as (server, (client,), _):
            ied = await client.associate(server.jid)
            far = await ied.operate(f"{LD}/CSWI4.Pos", True, oper_time=time.time() + 120)
            assert far.add_cause == AddCause.INCONSISTENT_PARAMETERS
            assert server.controls.control_object(f"{LD}/CSWI4.Pos").state == "unselected"

    run(main(), 10)
