"""The client's Data <-> Python conversion with type descriptions an IED may send: a
component or element whose type is given by name (typeName) instead of described."""

import pytest

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850.client import ClientError, from_python, to_python

TD = m.TypeDescription
_BOOL = m.TypeSpecification(choice=TD(choice=TD.Boolean()))
_NAMED = m.TypeSpecification(
    choice=m.ObjectName(
        choice=m.ObjectName.DomainSpecific(domain_id="LD0", item_id="SomeType"),
    )
)


def _structure(*components: tuple[str, m.TypeSpecification]) -> m.TypeDescription:
    seq = TD.Structure.Components.Sequence
    return TD(
        choice=TD.Structure(
            components=TD.Structure.Components(
                sequence=[seq(component_name=n, component_type=t) for n, t in components]
            )
        )
    )


def test_described_structure_round_trips() -> None:
    td = _structure(("a", _BOOL), ("b", _BOOL))
    data = from_python({"a": True, "b": False}, td)
    assert to_python(data, td) == {"a": True, "b": False}


def test_named_component_type_is_refused_when_encoding() -> None:
    td = _structure(("a", _BOOL), ("b", _NAMED))
    with pytest.raises(ClientError, match="typeName"):
        from_python({"a": True, "b": False}, td)
    with pytest.raises(ClientError, match="typeName"):
        from_python([True], TD(choice=TD.Array(number_of_elements=1, element_type=_NAMED)))


def test_named_component_type_decodes_untyped() -> None:
    inner = m.Data(choice=m.Structure(data=[m.Data(choice=True)]))
    data = m.Data(choice=m.Structure(data=[m.Data(choice=True), inner]))
    td = _structure(("a", _BOOL), ("b", _NAMED))
    # the named component carries no names, so its value is a list, the rest a dict
    assert to_python(data, td) == {"a": True, "b": [True]}
