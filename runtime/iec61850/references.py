"""ACSI ObjectReference strings <-> MMS ObjectName (IEC 61850-8-1 naming, reused by 8-2).

A data reference ``LD/LN.DO.DA[FC]`` (``"IED1LD0/XCBR1.Pos.stVal[ST]"``, or reference and FC
given apart) becomes the domain-specific name ``domainId=IED1LD0``, ``itemId=XCBR1$ST$Pos$stVal``:
the logical device is the MMS domain, and the LN-relative path is flattened with ``$`` after the
functional constraint, which sits right after the LN name (the LN's first structure level is its
FCs, in the 8-1 order :data:`FC_ORDER`). Array elements (``DA(3)``) cannot be flattened: they go into
``alternateAccess`` (:func:`to_variable`). Data sets and logs use ``LN$Name`` without FC
(:func:`list_name`, :func:`list_reference`); data sets starting with ``@`` are non-persistent
(aa-specific).

Limits enforced here: every MMS Identifier (domainId, itemId, components) at most 64 characters,
an ObjectReference at most 129; FC ``XX`` is not mapped. Violations raise
:class:`ReferenceError_` (a ``ValueError``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850.errors import Iec61850Error

__all__ = [
    "FC_ORDER",
    "MAX_IDENTIFIER",
    "MAX_OBJECT_REFERENCE",
    "ReferenceError_",
    "DataReference",
    "parse_reference",
    "to_object_name",
    "to_variable",
    "from_object_name",
    "from_variable",
    "list_name",
    "list_reference",
    "fc_sort_key",
    "split_fc",
    "with_fc",
]

#: Functional constraints in the order of the LN structure of IEC 61850-8-1.
FC_ORDER: tuple[str, ...] = (
    "MX",
    "ST",
    "CO",
    "CF",
    "DC",
    "SP",
    "SG",
    "RP",
    "LG",
    "BR",
    "GO",
    "GS",
    "SV",
    "SE",
    "EX",
    "SR",
    "OR",
    "BL",
    "MS",
    "US",
)
MAX_IDENTIFIER = 64
MAX_OBJECT_REFERENCE = 129

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ELEMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\((\d+)\))?")
_LD = re.compile(r"[A-Za-z0-9_]+")


class ReferenceError_(
    Iec61850Error, ValueError
):  # noqa: N801 - trailing underscore avoids the builtin name
    """A reference or name that cannot be mapped (syntax, limits, unmapped FC)."""


def fc_sort_key(fc: str) -> int:
    """Position of ``fc`` in :data:`FC_ORDER` (unknown FCs raise)."""
    try:
        return FC_ORDER.index(fc)
    except ValueError:
        raise ReferenceError_(f"functional constraint {fc!r} is not mapped") from None


@dataclass(frozen=True, slots=True)
class DataReference:
    """A parsed ``LD/LN[.DO[.DA...]]`` with optional array indexes per path element."""

    ld: str
    ln: str
    path: tuple[tuple[str, int | None], ...] = ()

    def __str__(self) -> str:
        parts = [self.ln] + [n if i is None else f"{n}({i})" for n, i in self.path]
        return f"{self.ld}/{'.'.join(parts)}"


def parse_reference(reference: str) -> DataReference:
    """Parse an ObjectReference (``LD/LN.DO.DA``, ``DA(3)`` for array elements)."""
    if len(reference) > MAX_OBJECT_REFERENCE:
        raise ReferenceError_(
            f"ObjectReference of {len(reference)} characters exceeds {MAX_OBJECT_REFERENCE}"
        )
    ld, slash, rest = reference.partition("/")
    if not slash or not ld or not rest:
        raise ReferenceError_(f"{reference!r} is not LD/LN[.DO[.DA]]")
    if not _LD.fullmatch(ld):
        raise ReferenceError_(f"logical device name {ld!r} has characters outside A-Z a-z 0-9 _")
    if len(ld) > MAX_IDENTIFIER:
        raise ReferenceError_(f"logical device name of {len(ld)} characters exceeds 64")
    ln, *elements = rest.split(".")
    if not _NAME.fullmatch(ln):
        raise ReferenceError_(f"logical node name {ln!r} is not a valid name")
    path = []
    for element in elements:
        match = _ELEMENT.fullmatch(element)
        if not match:
            raise ReferenceError_(f"{element!r} in {reference!r} is not a valid name")
        path.append((match.group(1), int(match.group(2)) if match.group(2) else None))
    return DataReference(ld, ln, tuple(path))


_FC_SUFFIX = re.compile(r"^(.*)\[([A-Z]{2})\]$")


def split_fc(text: str) -> tuple[str, str | None]:
    """``"LD/LN.DO.DA[ST]"`` -> ``("LD/LN.DO.DA", "ST")``; no suffix -> ``(text, None)``."""
    match = _FC_SUFFIX.match(text)
    return (match.group(1), match.group(2)) if match else (text, None)


def with_fc(reference: str, fc: str | None) -> str:
    """Inverse of :func:`split_fc`: ``("LD/LN.DO", "ST")`` -> ``"LD/LN.DO[ST]"``."""
    return f"{reference}[{fc}]" if fc else reference


def _check_fc(fc: str) -> None:
    if fc == "XX":
        raise ReferenceError_("functional constraint XX is not mapped to MMS")
    fc_sort_key(fc)


def _identifier(value: str, what: str) -> str:
    if len(value) > MAX_IDENTIFIER:
        raise ReferenceError_(f"{what} {value!r} has {len(value)} characters; the limit is 64")
    return value


def _split_at_index(
    ref: DataReference,
) -> tuple[list[str], list[tuple[str | None, int | None]]]:
    flat: list[str] = []
    for pos, (name, index) in enumerate(ref.path):
        flat.append(name)
        if index is not None:
            rest: list[tuple[str | None, int | None]] = [(None, index)]
            return flat, rest + list(ref.path[pos + 1 :])
    return flat, []


def to_object_name(reference: str | DataReference, fc: str | None = None) -> m.ObjectName:
    """ObjectReference (+FC) -> domain-specific ObjectName (``LN$FC$DO$DA``).

    The FC is ``fc`` or a ``[FC]`` suffix of the string (``"LD/XCBR1.Pos.stVal[ST]"``).
    Without an FC only an LN reference (``LD/LN``) is accepted. Array indexes are refused here:
    use :func:`to_variable`.
    """
    if isinstance(reference, str) and fc is None:
        reference, fc = split_fc(reference)
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    if any(index is not None for _, index in ref.path):
        raise ReferenceError_(f"{ref} addresses an array element: use to_variable()")
    return _object_name(ref, [name for name, _ in ref.path], fc)


def _object_name(ref: DataReference, flat: list[str], fc: str | None) -> m.ObjectName:
    if fc is None:
        if flat:
            raise ReferenceError_(f"{ref} needs a functional constraint")
        item = ref.ln
    else:
        _check_fc(fc)
        item = "$".join([ref.ln, fc, *flat])
    return m.ObjectName(
        choice=m.ObjectName.DomainSpecific(
            domain_id=_identifier(ref.ld, "domainId"), item_id=_identifier(item, "itemId")
        )
    )


def to_variable(reference: str | DataReference, fc: str | None = None) -> m.VariableDefs.Sequence:
    """ObjectReference + FC -> one ``listOfVariable`` entry, with alternateAccess for arrays.

    ``LD/LN.DO.arr(2).sub`` becomes the variable ``LN$FC$DO$arr`` with the access
    selectAlternateAccess(index 2, component ``sub``). ``fc`` may also be a ``[FC]`` suffix.
    """
    if isinstance(reference, str) and fc is None:
        reference, fc = split_fc(reference)
    if fc is None:
        raise ReferenceError_(f"{reference} needs a functional constraint")
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    flat, rest = _split_at_index(ref)
    name = _object_name(ref, flat, fc)
    access = _alternate_access(rest) if rest else None
    return m.VariableDefs.Sequence(
        variable_specification=m.VariableSpecification(name=name), alternate_access=access
    )


def _selection(name: str | None, index: int | None) -> m.AccessSelection:
    if name is not None:
        return m.AccessSelection(choice=_identifier(name, "component"))
    return m.AccessSelection(choice=index)


def _alternate_access(steps: list[tuple[str | None, int | None]]) -> m.AlternateAccess:
    """Nested selections: each step narrows the previous one (index, component, index...)."""
    selections: list[m.AccessSelection] = []
    for name, index in steps:
        if name is not None:
            selections.append(_selection(name, None))
        if index is not None:
            selections.append(_selection(None, index))
    access: m.AlternateAccess | None = None
    for selection in reversed(selections):
        if access is None:
            choice = m.AlternateAccessSelection(choice=selection)
        else:
            choice = m.AlternateAccessSelection(
                choice=m.AlternateAccessSelection.SelectAlternateAccess(
                    access_selection=selection, alternate_access=access
                )
            )
        access = m.AlternateAccess(choice=[m.AlternateAccess.Choice(choice=choice)])
    assert access is not None
    return access


def from_object_name(name: m.ObjectName) -> tuple[str, str | None]:
    """Domain-specific ObjectName -> ``(ObjectReference, FC or None)``.

    ``IED1LD0`` + ``XCBR1$ST$Pos$stVal`` -> ``("IED1LD0/XCBR1.Pos.stVal", "ST")``;
    ``XCBR1`` -> ``("IED1LD0/XCBR1", None)``; ``XCBR1$ST`` -> ``("IED1LD0/XCBR1", "ST")``.
    """
    alt = name.choice
    if not isinstance(alt, m.ObjectName.DomainSpecific):
        raise ReferenceError_("only domain-specific names map to data references")
    _identifier(alt.domain_id, "domainId")
    _identifier(alt.item_id, "itemId")
    ln, *rest = alt.item_id.split("$")
    fc = None
    if rest:
        fc = rest.pop(0)
        _check_fc(fc)
    for part in [ln, *rest]:
        if not _NAME.fullmatch(part):
            raise ReferenceError_(f"itemId {alt.item_id!r} has an empty or invalid part")
    reference = f"{alt.domain_id}/{'.'.join([ln, *rest])}"
    if len(reference) > MAX_OBJECT_REFERENCE:
        raise ReferenceError_(f"ObjectReference of {len(reference)} characters exceeds 129")
    return reference, fc


def from_variable(entry: m.VariableDefs.Sequence) -> tuple[str, str | None]:
    """Inverse of :func:`to_variable`: array indexes come back as ``(n)`` suffixes."""
    spec = entry.variable_specification
    if spec is None or spec.name is None:
        raise ReferenceError_("variable without a name")
    reference, fc = from_object_name(spec.name)
    access = entry.alternate_access
    while access is not None:
        if len(access.choice) != 1 or not isinstance(
            access.choice[0].choice, m.AlternateAccessSelection
        ):
            raise ReferenceError_("only single unnamed alternate access selections are mapped")
        selection = access.choice[0].choice.choice
        step: m.AccessSelection | None
        if isinstance(selection, m.AlternateAccessSelection.SelectAlternateAccess):
            step, access = selection.access_selection, selection.alternate_access
        else:
            step, access = selection, None
        if step is None:
            raise ReferenceError_("an alternate access selection without a selection")
        value = step.choice
        if isinstance(value, int) and not isinstance(value, bool):
            reference += f"({value})"
        elif isinstance(value, str):
            reference += f".{value}"
        else:
            raise ReferenceError_("index ranges and allElements have no ObjectReference")
    if len(reference) > MAX_OBJECT_REFERENCE:
        raise ReferenceError_(f"ObjectReference of {len(reference)} characters exceeds 129")
    return reference, fc


def list_name(reference: str) -> m.ObjectName:
    """Data set / log reference -> ObjectName.

    ``LD/LN.Name`` -> domain-specific ``LN$Name`` (persistent data set, log);
    ``@Name`` -> aa-specific (non-persistent data set of the association).
    """
    if reference.startswith("@"):
        name = reference[1:]
        if not _NAME.fullmatch(name):
            raise ReferenceError_(f"{reference!r} is not @Name")
        return m.ObjectName(choice=m.ObjectName.AaSpecific(value=_identifier(name, "aa-specific")))
    ref = parse_reference(reference)
    if len(ref.path) != 1 or ref.path[0][1] is not None:
        raise ReferenceError_(f"{reference!r} is not LD/LN.Name")
    item = f"{ref.ln}${ref.path[0][0]}"
    return m.ObjectName(
        choice=m.ObjectName.DomainSpecific(
            domain_id=_identifier(ref.ld, "domainId"), item_id=_identifier(item, "itemId")
        )
    )


def list_reference(name: m.ObjectName) -> str:
    """Inverse of :func:`list_name`."""
    alt = name.choice
    if isinstance(alt, m.ObjectName.AaSpecific):
        return f"@{_identifier(alt.value, 'aa-specific')}"
    if isinstance(alt, m.ObjectName.DomainSpecific):
        parts = alt.item_id.split("$")
        if len(parts) != 2 or not all(_NAME.fullmatch(p) for p in parts):
            raise ReferenceError_(f"itemId {alt.item_id!r} is not LN$Name")
        return f"{_identifier(alt.domain_id, 'domainId')}/{parts[0]}.{parts[1]}"
    raise ReferenceError_("vmd-specific names have no data set reference")
