"""``gridbind iec61850 operate``: a control service from the command line.

::

    gridbind iec61850 operate --peer ctl1@example.org ... CTL1CTRL/CSWI5.Pos true
    gridbind iec61850 operate --peer ... CTL1CTRL/CSWI4.Pos false --at +5     (TimeActivatedOperate)
    gridbind iec61850 shell --peer ...   then: operate CTL1CTRL/CSWI5.Pos true --select-only
                                           operate CTL1CTRL/CSWI5.Pos true --cancel

The control model (ctlModel, FC CF) decides the sequence: Select ($SBO) or SelectWithValue
($SBOw) first for the SBO models, then Operate ($Oper), then the CommandTermination for enhanced
security. The outcome is printed as one JSON object (``ok``, ``service``, ``ctlNum``,
``addCause``, ``addCauseText``, ``failure``, ``terminated``); the exit status is 0 when it
succeeded, 1 when refused.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from .control.addcause import AddCause
from .control.client import ControlOutcome
from .control.models import CtlModel
from .valuetext import parse_value, type_from_description

__all__ = [
    "OPERATE_HELP",
    "OPERATE_EPILOG",
    "add_operate_arguments",
    "operate_command",
    "outcome_json",
]

OPERATE_HELP = "operate a control (Select/SelectWithValue as its ctlModel needs, Operate, Cancel)"
OPERATE_EPILOG = """\
The ctlModel decides: Select or SelectWithValue first for SBO models (unless --no-select), then
Operate, then the CommandTermination of enhanced security. A selection belongs to its
association: --select-only and --cancel make sense inside `gridbind iec61850 shell`, where the
next command runs in the same association. Prints the outcome as JSON (ok, service, ctlNum,
addCause, addCauseText, failure, terminated); exit status 1 when refused.
"""


def outcome_json(outcome: ControlOutcome) -> str:
    """The outcome as one line of JSON."""
    cause = outcome.add_cause
    return json.dumps(
        {
            "ok": outcome.ok,
            "service": outcome.service,
            "ctlNum": outcome.ctl_num,
            "addCause": None if cause is None else int(cause),
            "addCauseText": cause.text if isinstance(cause, AddCause) else None,
            "failure": outcome.failure,
            "terminated": outcome.terminated,
        }
    )


def _oper_time(text: str | None) -> float | None:
    if not text:
        return None
    if text.startswith("+"):
        return time.time() + float(text[1:])
    return float(text)


async def operate_command(session: Any, args: argparse.Namespace) -> int:
    """Run ``operate`` in ``session`` (the CLI's association); 0 ok, 1 refused."""
    ied = session.ied
    td = await ied.get_data_definition(f"{args.reference}.Oper.ctlVal", "CO")
    value = parse_value(args.value, type_from_description(td))
    params: dict[str, Any] = {
        "test": args.test,
        "interlock_check": args.interlock_check,
        "synchrocheck": args.synchrocheck,
    }
    if args.select_only:
        model = await ied.controls.control_model(args.reference)
        if model == CtlModel.SBO_NORMAL:
            outcome = await ied.select(args.reference)
        else:
            outcome = await ied.select_with_value(args.reference, value, **params)
    elif args.cancel:
        outcome = await ied.cancel(args.reference, value, **params)
    else:
        outcome = await ied.operate(
            args.reference,
            value,
            select=False if args.no_select else None,
            oper_time=_oper_time(args.at),
            termination_timeout=args.termination_timeout,
            **params,
        )
    print(outcome_json(outcome), flush=True)
    return 0 if outcome.ok else 1


def add_operate_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``operate`` (the single command and the shell's)."""
    p.add_argument("reference", help="the controllable data object, LD/LN.DO")
    p.add_argument("value", help="ctlVal as JSON (true/false, a number...)")
    p.add_argument("--no-select", action="store_true", help="Operate without selecting first")
    p.add_argument("--select-only", action="store_true", help="only Select / SelectWithValue")
    p.add_argument("--cancel", action="store_true", help="Cancel (a selection, a waiting operate)")
    p.add_argument("--at", help="TimeActivatedOperate: operTm as epoch seconds or +SECONDS")
    p.add_argument("--test", action="store_true", help="Test: a command for an LN in test mode")
    p.add_argument("--interlock-check", action="store_true", help="Check: interlock-check")
    p.add_argument("--synchrocheck", action="store_true", help="Check: synchrocheck")
    p.add_argument(
        "--termination-timeout",
        type=float,
        default=None,
        help="seconds to wait for the CommandTermination (enhanced security; default: from the"
        " object's operTimeout and operTm)",
    )
