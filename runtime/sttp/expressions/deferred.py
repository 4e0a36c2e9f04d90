"""The result of one deferred filter evaluation: a value, or the error to answer FAILED with.

Both STTP profiles park a session while its filter runs elsewhere and resume it with whatever
the run returned. An exception that escaped the run would leave the session parked forever (no
answer, later commands queued behind it), so every exception of the evaluation becomes the
returned error value here; unexpected ones (a bug, or memory / recursion exhaustion that the
budget did not foresee) are logged with their traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gridbind.sttp.expressions.budget import FilterExpressionError

__all__ = ["evaluation_result"]

log = logging.getLogger(__name__)


def evaluation_result(
    work: Callable[[], Any], expected: tuple[type[Exception], ...] = (FilterExpressionError,)
) -> Any:
    """``work()``, or the exception it raised as the value.

    Exceptions of the ``expected`` types are returned as they are; any other exception is logged
    and returned as a :class:`FilterExpressionError`, so the peer gets a FAILED answer.
    """
    try:
        return work()
    except expected as exc:
        return exc
    except MemoryError:
        log.warning("filter evaluation ran out of memory", exc_info=True)
        return FilterExpressionError("filter evaluation ran out of memory")
    except RecursionError:
        log.warning("filter evaluation nested too deeply", exc_info=True)
        return FilterExpressionError("filter evaluation nested too deeply")
    except Exception as exc:  # noqa: BLE001 - a peer's filter must get an answer, not a hang
        log.exception("unexpected error evaluating a filter")
        return FilterExpressionError(f"cannot evaluate the filter: {type(exc).__name__}")
