"""Regular expressions of REGEXMATCH / REGEXVAL, run by RE2 (linear time, bounded memory).

The deployed engines use backtracking engines (.NET ``Regex``, Python ``re``), where a pattern such
as ``(a*)*b`` takes exponential time on a hostile input. RE2 (``google-re2``) matches in time
linear in the input, with a memory cap per compiled pattern, and refuses what it cannot do in
linear time (backreferences, lookaround): such a pattern is a :class:`FilterExpressionError`.
For the patterns metadata filters use (anchors, classes, alternations, repetitions) the syntax of
RE2, .NET and Python agrees.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

from gridbind.sttp.expressions.budget import Budget, FilterExpressionError

__all__ = ["regex_search"]

# Memory RE2 may use for one compiled pattern's automata (it falls back to slower, still
# linear, matching rather than exceed it), and how many compiled patterns stay cached: together
# they bound what the cache keeps (~32 MiB at worst, instead of 128 x 8 MiB).
_MAX_MEMORY = 1 << 20
CACHE_SIZE = 32


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = _MAX_MEMORY
    return options


_OPTIONS = _options()


@lru_cache(maxsize=CACHE_SIZE)
def _compile(pattern: str) -> Any:
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        message = exc.args[0] if exc.args else exc
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        # Refusals are cached too: a bad pattern is then refused once per request, not per row.
        return FilterExpressionError(f"unsupported regular expression {pattern[:40]!r}: {message}")


def regex_search(pattern: str, text: str, budget: Budget) -> str | None:
    """The first match of ``pattern`` in ``text`` (``None`` when there is none)."""
    if len(pattern) > budget.limits.max_pattern:
        raise FilterExpressionError(
            f"regular expression longer than {budget.limits.max_pattern} chars"
        )
    budget.check_string(text)
    # RE2 is linear but not free (several ns per character for a pattern that needs its NFA):
    # a step per 8 characters keeps the step count honest about its time.
    budget.charge(1 + (len(pattern) + len(text)) // 8)
    compiled = _compile(pattern)
    if isinstance(compiled, FilterExpressionError):
        raise FilterExpressionError(*compiled.args)
    match = compiled.search(text)
    return None if match is None else match.group()
