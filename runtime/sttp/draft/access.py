"""Publisher-side access control for the draft profile ("Access Control Lists").

Rules are text, one per line, per subscriber identity (the certificate's subject common name, or
``"anonymous"`` without TLS) or per group::

    ALLOW WHERE DataType = 'BOOL'          -- filter implicit
    DENY {8d3e...-...}                     -- data point explicit
    ALLOW ALL

Precedence follows the seed: (1) data point explicit rules of the identity, (2) data point
explicit rules of its groups, (3) filter rules of the identity, (4) filter rules of its groups;
the first level with a matching rule decides, DENY winning within a level. When nothing matches,
``default_allow`` decides (False: access control is always on). The group ``"*"`` holds every
identity. Filters are :mod:`gridbind.sttp.expressions` expressions over the point's DataPoint
metadata row; a row lacking a column the rule names does not match it.

Metadata follows the points (:func:`metadata_visibility`). The seed asks for "access control
for both data and metadata so that only authorized users are able to successfully receive
information", and says an ``ALLOW WHERE`` expression "would cause the allowed metadata to
dynamically change": so a subscriber sees the DataPoint rows of the points it is allowed, and
a Resource or CDSM row only when it is related to at least one allowed point (see
:meth:`~gridbind.sttp.draft.metadata.MetadataDatabase.related_points`: referenced by the
point's ``ProducerTableName``/``ProducerTableID``, holding its PointID, or referenced in turn by
such a row, e.g. the PMU's Substation). A row related to points that are all disallowed is
hidden. A row related to no point at all is judged by the rules themselves, as if it were a
point with that row (``ALLOW ALL`` shows it, ``ALLOW WHERE DataType = 'BOOL'`` does not match
a row without that column, so the default denial hides it): access control stays always on.
Decisions: table definitions (GetMetadataSchema) are visible to every session; an update query
reports removed rows (UndefineRow) by key whatever their former visibility, and a row that
becomes hidden is simply no longer sent (it is not reported as removed).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gridbind.sttp.errors import InvalidArgument
from gridbind.sttp.expressions import (
    CompiledExpression,
    Dialect,
    FilterExpressionError,
    compile_expression,
)

__all__ = ["ANONYMOUS", "AccessControl", "AccessRule", "metadata_visibility", "parse_rule"]

if TYPE_CHECKING:
    from gridbind.sttp.draft.metadata import MetadataDatabase, MetaTable

ANONYMOUS = "anonymous"
_RULE = re.compile(r"^\s*(?P<verb>ALLOW|DENY)\s+(?P<body>.+?)\s*$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class AccessRule:
    """One ALLOW/DENY rule: for one point (``point``) or by expression (``where``), or for all."""

    allow: bool
    point: uuid.UUID | None = None
    where: CompiledExpression | None = None
    text: str = ""

    @property
    def explicit(self) -> bool:
        """True for a data-point-explicit rule."""
        return self.point is not None

    def matches(self, point: uuid.UUID, row: Mapping[str, Any] | None) -> bool:
        """Whether the rule speaks about ``point`` (with metadata ``row``)."""
        if self.point is not None:
            return self.point == point
        if self.where is None:
            return True
        if row is None:
            return False
        try:
            return self.where.matches(row)
        except FilterExpressionError:
            return False  # e.g. a column this table lacks


def parse_rule(text: str) -> AccessRule:
    """Parse ``ALLOW|DENY (ALL | WHERE <expr> | <guid>)``; raises ``ValueError``."""
    match = _RULE.match(text)
    if not match:
        raise InvalidArgument(f"access rule must start with ALLOW or DENY: {text!r}")
    allow = match["verb"].upper() == "ALLOW"
    body = match["body"]
    if body.upper() == "ALL":
        return AccessRule(allow, text=text)
    if body[:5].upper() == "WHERE":
        try:
            return AccessRule(allow, where=compile_expression(body[5:], Dialect.SQL), text=text)
        except FilterExpressionError as exc:
            raise InvalidArgument(f"access rule {text!r}: {exc}") from exc
    try:
        return AccessRule(allow, point=uuid.UUID(body.strip("{}' ")), text=text)
    except ValueError:
        raise InvalidArgument(
            f"access rule {text!r}: expected ALL, WHERE <expr> or a Guid"
        ) from None


class AccessControl:
    """Which identity may see which data point (metadata rows and streamed values alike)."""

    def __init__(
        self,
        rules: Mapping[str, Sequence[str]] | None = None,
        groups: Mapping[str, Iterable[str]] | None = None,
        group_rules: Mapping[str, Sequence[str]] | None = None,
        *,
        default_allow: bool = False,
    ) -> None:
        self._rules = {k: [parse_rule(r) for r in v] for k, v in (rules or {}).items()}
        self._group_rules = {k: [parse_rule(r) for r in v] for k, v in (group_rules or {}).items()}
        self._members = {k: set(v) for k, v in (groups or {}).items()}
        self.default_allow = default_allow

    @classmethod
    def allow_all(cls) -> AccessControl:
        """Every identity sees every point (an explicit, deliberate opt-out)."""
        return cls(group_rules={"*": ["ALLOW ALL"]})

    def groups_of(self, identity: str) -> list[str]:
        """Groups ``identity`` belongs to (``"*"`` always)."""
        found = [g for g, members in self._members.items() if identity in members]
        return found + ["*"]

    def allowed(self, identity: str, point: uuid.UUID, row: Mapping[str, Any] | None) -> bool:
        """Whether ``identity`` may receive ``point`` whose DataPoint metadata is ``row``."""
        own = self._rules.get(identity, [])
        group = [r for g in self.groups_of(identity) for r in self._group_rules.get(g, [])]
        for rules, explicit in ((own, True), (group, True), (own, False), (group, False)):
            verdict = None
            for rule in rules:
                if rule.explicit == explicit and rule.matches(point, row):
                    if not rule.allow:
                        return False
                    verdict = True
            if verdict:
                return True
        return self.default_allow


def metadata_visibility(
    database: MetadataDatabase, access: AccessControl, identity: str, table: MetaTable
) -> Callable[[MetaTable, Mapping[str, Any]], bool]:
    """Which rows of ``table`` ``identity`` may see (see the module documentation)."""
    if table.name.upper() == "DATAPOINT":
        return lambda t, row: access.allowed(identity, row[t.key], row)
    related = database.related_points()
    try:
        points = database.table("DataPoint").rows
    except ValueError:  # MetadataError: no DataPoint table
        points = {}
    verdicts: dict[Any, bool] = {}

    def point_allowed(point: Any) -> bool:
        if point not in verdicts:
            verdicts[point] = access.allowed(identity, point, points.get(point))
        return verdicts[point]

    def visible(t: MetaTable, row: Mapping[str, Any]) -> bool:
        key = row[t.key]
        linked = related.get((t.name.upper(), key))
        if linked:
            return any(point_allowed(p) for p in linked)
        return access.allowed(identity, key, row)

    return visible
