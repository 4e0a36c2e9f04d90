"""Evaluating filter expressions off the event loop that serves the other subscribers.

A worker thread cannot be killed in Python, so what bounds the CPU of one request is its
:class:`~gridbind.sttp.expressions.budget.Budget` (steps, deadline, value sizes) checked inside
the evaluator; running the work in a small thread pool keeps the event loop free to stream data
to everyone else meanwhile (the interpreter switches threads every few milliseconds, and RE2
matches in linear time). At most :data:`WORKERS` requests run at once; more wait their turn.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from gridbind.sttp.expressions.budget import DEFAULT_LIMITS, FilterExpressionError, Limits
from gridbind.sttp.expressions.parser import Dialect
from gridbind.sttp.expressions.select import IdFields, Tables, select_rows, select_signal_ids

__all__ = ["WORKERS", "run_bounded", "select_rows_async", "select_signal_ids_async"]

T = TypeVar("T")

#: Threads evaluating filter requests (shared by every publisher of the process).
WORKERS = 2

_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="gridbind-filter")
    return _executor


async def run_bounded(
    fn: Callable[..., T], *args: Any, limits: Limits = DEFAULT_LIMITS, **kwargs: Any
) -> T:
    """Run ``fn(*args, **kwargs)`` (a budgeted evaluation) in the filter thread pool.

    The budget inside ``fn`` ends the work; the wait here is capped as well (a second past the
    budget's deadline, plus queueing behind other requests) so a caller never waits forever.
    Raises only :class:`FilterExpressionError` for evaluation problems.
    """
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(_pool(), functools.partial(fn, *args, **kwargs))
    wait = (limits.max_seconds + 1.0) * (WORKERS + 1)
    try:
        return await asyncio.wait_for(future, wait)
    except asyncio.TimeoutError:
        raise FilterExpressionError(f"filter evaluation took longer than {wait:.0f} s") from None


async def select_signal_ids_async(
    tables: Tables,
    text: str,
    primary_table: str = "ActiveMeasurements",
    id_fields: IdFields = IdFields(),
    dialect: Dialect = Dialect.DEPLOYED,
    limits: Limits = DEFAULT_LIMITS,
) -> list[uuid.UUID]:
    """:func:`select_signal_ids` off the event loop."""
    return await run_bounded(
        select_signal_ids, tables, text, primary_table, id_fields, dialect, limits, limits=limits
    )


async def select_rows_async(
    tables: Tables,
    text: str,
    primary_table: str = "ActiveMeasurements",
    id_fields: IdFields = IdFields(),
    dialect: Dialect = Dialect.DEPLOYED,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Mapping[str, Any]]:
    """:func:`select_rows` off the event loop."""
    return await run_bounded(
        select_rows, tables, text, primary_table, id_fields, dialect, limits, limits=limits
    )
