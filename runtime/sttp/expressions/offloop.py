"""Evaluating filter expressions off the event loop that serves the other subscribers.

A worker thread cannot be killed in Python, so what bounds the CPU of one request is its
:class:`~gridbind.sttp.expressions.budget.Budget` (steps, deadline, value sizes) checked inside
the evaluator; running the work in a small thread pool keeps the event loop free to stream data
to everyone else meanwhile (the interpreter switches threads every few milliseconds, and RE2
matches in linear time).

The pool is shared by every publisher of the process, so one peer must not be able to fill it:
at most :data:`MAX_PENDING` requests wait or run at once, at most :data:`MAX_PER_PEER` of them
from one peer (its IP address; a session itself sends one at a time), and a request over either
bound is refused at once as "busy" (a FAILED answer) rather than queued. Only the running part
of a request is timed; the wait for a worker is bounded by the queue's size times the budget.
A request keeps its place in the counts until its thread really ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from gridbind.sttp.expressions.budget import DEFAULT_LIMITS, FilterExpressionError, Limits
from gridbind.sttp.expressions.select import select_rows, select_signal_ids

__all__ = [
    "MAX_PENDING",
    "MAX_PER_PEER",
    "WORKERS",
    "FilterBusy",
    "run_bounded",
    "select_rows_async",
    "select_signal_ids_async",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Threads evaluating filter requests (shared by every publisher of the process).
WORKERS = 2
#: Requests waiting for or holding a worker, process-wide.
MAX_PENDING = 16
#: Requests of one peer waiting for or holding a worker.
MAX_PER_PEER = 4

_executor: ThreadPoolExecutor | None = None
_pending = 0
_per_peer: dict[str, int] = {}
# The counts are taken on an event loop and given back by the worker thread (whose loop may be
# gone by then), so a lock guards them.
_lock = threading.Lock()


class FilterBusy(FilterExpressionError):
    """Too many filter requests are under way (in the process, or from this peer)."""


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="gridbind-filter")
    return _executor


def _admit(peer: str | None) -> Callable[[], None]:
    """Count one request in (or refuse it); returns the callback that counts it out."""
    global _pending
    with _lock:
        if _pending >= MAX_PENDING:
            raise FilterBusy(f"publisher busy: {_pending} filter evaluations under way")
        if peer is not None and _per_peer.get(peer, 0) >= MAX_PER_PEER:
            raise FilterBusy(f"publisher busy: {MAX_PER_PEER} filter evaluations of this peer")
        _pending += 1
        if peer is not None:
            _per_peer[peer] = _per_peer.get(peer, 0) + 1

    def release() -> None:
        global _pending
        with _lock:
            _pending -= 1
            if peer is not None:
                left = _per_peer.pop(peer, 1) - 1
                if left > 0:
                    _per_peer[peer] = left

    return release


async def run_bounded(
    fn: Callable[..., T],
    *args: Any,
    limits: Limits = DEFAULT_LIMITS,
    peer: str | None = None,
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, **kwargs)`` (a budgeted evaluation) in the filter thread pool.

    ``peer`` (e.g. the peer's IP address) is what :data:`MAX_PER_PEER` counts by. The budget
    inside ``fn`` ends the work; once it runs, the wait here is capped as well (a second past
    the budget's time). Raises only :class:`FilterExpressionError` (:class:`FilterBusy` when the
    request is refused without running).
    """
    loop = asyncio.get_running_loop()
    release = _admit(peer)
    started: asyncio.Future[None] = loop.create_future()

    def mark_started() -> None:
        if not started.done():
            started.set_result(None)

    def job() -> T:
        # Counted out when the thread is done, not when the caller stops waiting for it.
        try:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(mark_started)
            return fn(*args, **kwargs)
        finally:
            release()

    try:
        future = loop.run_in_executor(_pool(), job)
    except BaseException:
        release()
        raise
    try:
        waiting: set[asyncio.Future[Any]] = {started, future}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        wait = limits.max_seconds + 1.0
        try:
            return await asyncio.wait_for(asyncio.shield(future), wait)
        except TimeoutError:
            raise FilterExpressionError(
                f"filter evaluation took longer than {wait:.0f} s"
            ) from None
    except FilterExpressionError:
        raise
    except Exception as exc:  # noqa: BLE001 - the caller answers FAILED, never hangs
        log.exception("unexpected error evaluating a filter")
        raise FilterExpressionError(f"cannot evaluate the filter: {type(exc).__name__}") from None
    finally:
        if not started.done():
            started.cancel()


def _limits_of(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Limits:
    bound = inspect.signature(fn).bind(*args, **kwargs)
    limits = bound.arguments.get("limits", DEFAULT_LIMITS)
    return limits if isinstance(limits, Limits) else DEFAULT_LIMITS


async def select_signal_ids_async(*args: Any, **kwargs: Any) -> list[uuid.UUID]:
    """:func:`~gridbind.sttp.expressions.select.select_signal_ids` off the event loop."""
    limits = _limits_of(select_signal_ids, args, kwargs)
    return await run_bounded(functools.partial(select_signal_ids, *args, **kwargs), limits=limits)


async def select_rows_async(*args: Any, **kwargs: Any) -> list[Mapping[str, Any]]:
    """:func:`~gridbind.sttp.expressions.select.select_rows` off the event loop."""
    limits = _limits_of(select_rows, args, kwargs)
    return await run_bounded(functools.partial(select_rows, *args, **kwargs), limits=limits)
