"""STTP filter expressions: a parser and a bounded evaluator over metadata rows.

The deployed STTP family selects signals and metadata with a small SQL-like language, e.g.::

    FILTER ActiveMeasurements WHERE SignalType='FREQ'
    FILTER TOP 10 ActiveMeasurements WHERE SignalType LIKE 'VPH%' ORDER BY PointTag DESC
    {E4BBFE6A-35BD-4E5B-92C9-11FF913E7877}; PPA:15; "DOM_GPLAINS-BUS1:VH"

A filter expression is a ``;``-separated list of statements. Each statement is one of

- ``FILTER [TOP n] <table> WHERE <expression> [ORDER BY col [ASC|DESC], ...]``;
- an identifier: a signal ID (GUID), a measurement key (``SOURCE:123``) or a quoted point tag
  (``"TAG"``), matched against the primary table's ``SignalID``/``ID``/``PointTag`` columns;
- a bare boolean expression, evaluated against the primary table.

Besides selection, :func:`compile_expression` / :func:`evaluate` evaluate one expression against a
row, which suits access rules such as the draft profile's ``ALLOW WHERE DataType='BOOL'``::

    rule = compile_expression("DataType = 'BOOL'", Dialect.SQL)
    rule.matches({"DataType": "bool"})   # True

Rows are mappings from column name to a Python value (``None`` is NULL); column names resolve
case-insensitively. Tables are anything with ``name``, ``column_names`` and ``rows``.

Semantics (the one place where gridbind's choices are written down)
-------------------------------------------------------------------
Both dialects: string comparison, ``IN`` and ``LIKE`` ignore case unless the exact forms
(``===``, ``!==``, ``BINARY``) are used; the string functions are case-sensitive unless their
``ignoreCase`` argument is true; ``NULL`` propagates through operators and a ``NULL`` condition
selects nothing; ``LIKE`` takes ``%`` or ``*`` wildcards at the start and/or end only; ``TOP n``
limits the scan (the first ``n`` matches in table order) and ``ORDER BY`` then sorts them, NULLs
first; a negative ``TOP`` means no limit. Numbers: integer literals are 64-bit integers (wrapping
on overflow, as C# does unchecked; a literal past 64 bits is a Decimal), literals with a fraction or
exponent are Decimal; float beats Decimal beats integer when types mix, a boolean meets a number as
0 / 1; integer ``/`` truncates toward zero and ``%`` takes the dividend's sign (C#); ``%`` and the
bitwise operators need integers (``& | ^`` also take two booleans); text that does not convert to
the other operand's type compares unequal (neither less nor greater); Floor / Ceiling / Round keep
the type (Round is banker's rounding, .NET's default, and takes an optional digit count, a
gridbind extension); ``Power`` computes in floating point and must fit the result type;
``DateAdd`` of months or years to a missing day (Dec 31 minus one month) gives the month's last
day, as .NET does; ``DateDiff`` counts calendar boundaries (years and months by number, days by
date, shorter units truncated) and ``DatePart(x, 'Weekday')`` counts Sunday as 1, as GSF's C++
engine does; ``Split`` of text without the delimiter gives the whole text at index 0. A
statement list selects the directly named signals (GUIDs, measurement keys, point tags) first, in
statement order, then the rows of the ``FILTER`` / expression statements in statement order, as
the deployed engines do (they resolve identifiers while parsing). A quoted point tag may contain
``:`` (the deployed grammar's cannot).

:attr:`Dialect.DEPLOYED` (the ieee2664 profile; the default) follows the grammar of GSF's
``FilterExpressionSyntax`` that the deployed C++, Go and Python engines generate their parsers
from, and where that grammar's own comment (a conventional precedence table) disagrees with it,
the grammar wins, because it is what the engines run: ``NOT`` binds tighter than ``AND`` / ``OR``,
which share one level (left to right: ``a OR b AND c`` is ``(a OR b) AND c``); ``IN`` > ``IS NULL``
> every comparison operator (one level) > ``LIKE``; ``* / % + -`` share one level (``1 + 2 * 3``
is 9), tighter than ``<< >> & | ^ XOR`` (one level). ``AND`` / ``OR`` evaluate both sides and give
NULL when either is NULL. ``LIKE`` without a wildcard never matches (all three engines).

:attr:`Dialect.SQL` (the draft profile, whose text asks for "SQL style expressions"): SQL
levels (``OR`` < ``AND`` < ``NOT`` < ``IN`` / ``LIKE`` / ``IS`` < equality < relational < bitwise <
``+ -`` < ``* / %``), three-valued ``AND`` / ``OR`` (``NULL AND FALSE`` is FALSE), and ``LIKE``
without a wildcard tests equality.

Defects of ``sttpapi`` 0.7.6 that gridbind does not copy are listed in
``docs/sttpapi-defects.md``.

Bounds (hostile input)
----------------------
An expression is untrusted peer input. :class:`Limits` bounds its length, nesting, evaluation
steps and wall-clock time per request (one :class:`Budget` for a whole SUBSCRIBE or metadata
query), and the size of every intermediate string, integer (64 bits) and Decimal (28 digits); ``ORDER BY``
takes at most 16 columns and charges every comparison of its sort.
Regular expressions run on RE2 (linear time); patterns it cannot run in linear time
(backreferences, lookaround) are refused. :func:`select_signal_ids_async` /
:func:`select_rows_async` / :func:`run_bounded` run the work in a small thread pool, off the event
loop; the pool holds at most 16 requests, 4 per peer, and refuses more at once
(:class:`FilterBusy`). Every failure, of parsing or of evaluation, is a
:class:`FilterExpressionError` (:class:`BudgetExceeded` when the steps or the time ran out), and
:func:`evaluation_result` turns any other exception of a deferred evaluation into one, so a
peer always gets an answer.
"""

from gridbind.sttp.expressions.budget import Budget, BudgetExceeded, FilterExpressionError, Limits
from gridbind.sttp.expressions.deferred import evaluation_result
from gridbind.sttp.expressions.offloop import (
    FilterBusy,
    run_bounded,
    select_rows_async,
    select_signal_ids_async,
)
from gridbind.sttp.expressions.parser import (
    CompiledExpression,
    Dialect,
    ExpressionStatement,
    FilterStatement,
    IdentifierStatement,
    Statement,
    compile_expression,
    evaluate,
    parse,
)
from gridbind.sttp.expressions.select import (
    IdFields,
    Table,
    TableLike,
    select_rows,
    select_signal_ids,
    select_statement_rows,
)

#: Longest expression text accepted by default.
MAX_EXPRESSION_LENGTH = Limits().max_length

__all__ = [
    "Budget",
    "BudgetExceeded",
    "CompiledExpression",
    "Dialect",
    "ExpressionStatement",
    "FilterBusy",
    "FilterExpressionError",
    "FilterStatement",
    "IdFields",
    "IdentifierStatement",
    "Limits",
    "MAX_EXPRESSION_LENGTH",
    "Statement",
    "Table",
    "TableLike",
    "compile_expression",
    "evaluate",
    "evaluation_result",
    "parse",
    "run_bounded",
    "select_rows",
    "select_rows_async",
    "select_signal_ids",
    "select_signal_ids_async",
    "select_statement_rows",
]
