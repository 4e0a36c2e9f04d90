"""AddCause (IEC 61850-7-2 Ed2, the ``AddCause`` of LastApplError and of a negative
CommandTermination) and the ``Error`` code of LastApplError (IEC 61850-8-1 ControlLastApplError).

The 8-2 schema carries both as plain integers inside a Data structure, so no generated module
holds them: these are the 7-2 / 8-1 tables, in one place.
"""

from __future__ import annotations

import enum

__all__ = ["AddCause", "ControlError", "failure_code"]


class AddCause(enum.IntEnum):
    """Why a control service failed (7-2 Ed2, values 0..27)."""

    UNKNOWN = 0
    NOT_SUPPORTED = 1
    BLOCKED_BY_SWITCHING_HIERARCHY = 2
    SELECT_FAILED = 3
    INVALID_POSITION = 4
    POSITION_REACHED = 5
    PARAMETER_CHANGE_IN_EXECUTION = 6
    STEP_LIMIT = 7
    BLOCKED_BY_MODE = 8
    BLOCKED_BY_PROCESS = 9
    BLOCKED_BY_INTERLOCKING = 10
    BLOCKED_BY_SYNCHROCHECK = 11
    COMMAND_ALREADY_IN_EXECUTION = 12
    BLOCKED_BY_HEALTH = 13
    ONE_OF_N_CONTROL = 14
    ABORTION_BY_CANCEL = 15
    TIME_LIMIT_OVER = 16
    ABORTION_BY_TRIP = 17
    OBJECT_NOT_SELECTED = 18
    OBJECT_ALREADY_SELECTED = 19
    NO_ACCESS_AUTHORITY = 20
    ENDED_WITH_OVERSHOOT = 21
    ABORTION_DUE_TO_DEVIATION = 22
    ABORTION_BY_COMMUNICATION_LOSS = 23
    BLOCKED_BY_COMMAND = 24
    NONE = 25
    INCONSISTENT_PARAMETERS = 26
    LOCKED_BY_OTHER_CLIENT = 27

    @property
    def text(self) -> str:
        """The 7-2 spelling (``Locked-by-other-client``)."""
        words = self.name.lower().replace("one_of_n", "1-of-n").split("_")
        return "-".join(words).capitalize()


class ControlError(enum.IntEnum):
    """``Error`` of LastApplError (8-1): why, beyond AddCause, the service failed."""

    NO_ERROR = 0
    UNKNOWN = 1
    TIMEOUT_TEST_NOT_OK = 2
    OPERATOR_TEST_NOT_OK = 3


#: The write failure (MMS DataAccessError) that follows a LastApplError, by AddCause, as
#: libiec61850 answers: a busy, selected or locked object is temporarily-unavailable; an Operate
#: that does not repeat its SelectWithValue is type-inconsistent; any other refusal (the object
#: not selected, a check or the application refusing) is object-access-denied. (A status-only
#: object answers object-access-unsupported without LastApplError: see the service.)
_TEMPORARY = frozenset(
    {
        AddCause.COMMAND_ALREADY_IN_EXECUTION,
        AddCause.OBJECT_ALREADY_SELECTED,
        AddCause.LOCKED_BY_OTHER_CLIENT,
    }
)


def failure_code(cause: AddCause) -> str:
    """The DataAccessError name of the negative write response for ``cause``."""
    if cause in _TEMPORARY:
        return "temporarily-unavailable"
    if cause == AddCause.INCONSISTENT_PARAMETERS:
        return "type-inconsistent"
    return "object-access-denied"
