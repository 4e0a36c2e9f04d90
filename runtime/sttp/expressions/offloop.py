"""Evaluating filter expressions off the event loop that serves the other subscribers.

A worker thread cannot be killed in Python, so what bounds the CPU of one request is its
:class:`~gridbind.sttp.expressions.budget.Budget` (steps, deadline, value sizes) checked inside
the evaluator; running the work in a small thread pool keeps the event loop free to stream data
to everyone else meanwhile (the interpreter switches threads every few milliseconds, and RE2
matches in linear time).

The pool is shared by every publisher of the process, so one peer must not be able to fill it
or starve the others: at most :data:`MAX_PENDING` requests wait or run at once, at most
:data:`MAX_PER_PEER` of them from one peer (its IP address; a session itself sends one at a
time), and a request over either bound is refused at once as "busy" (a FAILED answer). Waiting
requests are handed to the :data:`WORKERS` threads round-robin over the peers that have work, so
an honest peer waits for at most one request of each other peer, however many a hostile one
queued; many honest subscribers behind one address (a gateway, a test rig on loopback) queue
instead of being refused. Only the running part of a request is timed. A request keeps its
place in the counts until its thread really ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
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
MAX_PENDING = 256
#: Requests of one peer waiting for or holding a worker.
MAX_PER_PEER = 32

_executor: ThreadPoolExecutor | None = None
_pending = 0
_per_peer: dict[str, int] = {}
# Waiting jobs per peer, and the peers with waiting jobs in round-robin order.
_waiting: dict[str | None, deque[Callable[[], None]]] = {}
_turns: deque[str | None] = deque()
_running = 0
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


def _dispatch_locked() -> None:
    """Hand waiting jobs to free workers, one peer at a time (call with the lock held)."""
    global _running
    while _running < WORKERS and _turns:
        peer = _turns.popleft()
        queue = _waiting[peer]
        job = queue.popleft()
        if queue:
            _turns.append(peer)
        else:
            del _waiting[peer]
        _running += 1
        _pool().submit(_run_job, job)


def _run_job(job: Callable[[], None]) -> None:
    global _running
    try:
        job()
    finally:
        with _lock:
            _running -= 1
            _dispatch_locked()


def _enqueue(peer: str | None, job: Callable[[], None]) -> None:
    with _lock:
        queue = _waiting.get(peer)
        if queue is None:
            queue = _waiting[peer] = deque()
            _turns.append(peer)
        queue.append(job)
        _dispatch_locked()


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

    result: Future[T] = Future()

    def job() -> None:
        # Counted out before the caller hears the outcome, so the counts it sees are settled.
        if not result.set_running_or_notify_cancel():
            release()
            return  # the caller gave up while it waited: skip the work
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(mark_started)
        try:
            value = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            release()
            result.set_exception(exc)
        else:
            release()
            result.set_result(value)

    try:
        future = asyncio.wrap_future(result, loop=loop)
        _enqueue(peer, job)
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
        # A request still waiting for its turn is dropped (cancelling a running one is a no-op).
        future.cancel()


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
