"""Alternate access by component (8-2 8.2.6): an FCD / FCDA selected inside an LN (or an LN's
FC) by component names, nested components with array indices; and the conversion of the typed
8-2 ``AlternateAccess`` into those steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridbind.generated.iec61850_8_2 import scsm_8_2 as g
from gridbind.iec61850 import mmsdata as d
from gridbind.iec61850.association import AssociationCore, InitiateParams
from gridbind.iec61850.model import DataAccessError, ModelError
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.services.acsi import ServerServices, access_steps

from iec_testkit import outcome

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def env():
    svc = ServerServices(load_scl(DATA / "fidelity.cid"))
    assoc = AssociationCore(InitiateParams()).accept("c@t.local/x", "1", InitiateParams())
    return svc, assoc


def read(env, item, steps):
    svc, assoc = env
    (result,) = svc.read_variables(assoc, [("domain-specific", "FID1CTRL", item, steps)])
    return outcome(result)


def test_fcd_and_fcda_inside_an_ln(env) -> None:
    svc, _ = env
    stval = ("success", d.bit_string("10"))  # Dbpos on
    # LN whole, component = FC, then DO, then DA
    assert (
        read(env, "XCBR1", [("component", "ST"), ("component", "Pos"), ("component", "stVal")])
        == stval
    )
    # LN$FC, then DO.DA
    assert read(env, "XCBR1$ST", [("component", "Pos"), ("component", "stVal")]) == stval
    # an FCD: the whole data object in that FC
    kind, data = read(env, "XCBR1$ST", [("component", "Pos")])
    assert kind == "success" and d.as_items(data)[0] == stval[1]
    # the same as the flat name
    (flat,) = svc.read_variables(env[1], [("domain-specific", "FID1CTRL", "XCBR1$ST$Pos")])
    assert outcome(flat) == (kind, data)


def test_nested_component_and_index(env) -> None:
    steps = [
        ("component", "Har"),
        ("component", "phsAHar"),
        ("index", 1),
        ("component", "cVal"),
        ("component", "mag"),
        ("component", "f"),
    ]
    assert read(env, "MMXU1$MX", steps) == ("success", d.float32(0.25))
    assert read(env, "XCBR1$SP$Lim$vals", [("index", 2)]) == ("success", d.integer(30))
    assert read(env, "XCBR1$SP$Lim", [("component", "vals"), ("index", 0)]) == (
        "success",
        d.integer(10),
    )


@pytest.mark.parametrize(
    "item,steps,code",
    [
        ("XCBR1", [("component", "MX")], DataAccessError.OBJECT_NON_EXISTENT),
        ("XCBR1$ST", [("component", "Nope")], DataAccessError.OBJECT_NON_EXISTENT),
        ("XCBR1$ST", [("component", "OpCnt"), ("component", "q"), ("component", "x")],
         DataAccessError.OBJECT_ATTRIBUTE_INCONSISTENT),
        ("XCBR1$ST", [("component", "TapCmd")], DataAccessError.OBJECT_NON_EXISTENT),  # SP only
        ("XCBR1$SP$Lim$vals", [("index", 4)], DataAccessError.OBJECT_NON_EXISTENT),
        ("XCBR1$SP$Lim$vals", [("component", "x")], DataAccessError.OBJECT_ATTRIBUTE_INCONSISTENT),
        ("XCBR1$ST$Pos", [("index", 0)], DataAccessError.OBJECT_ATTRIBUTE_INCONSISTENT),
        ("XCBR1$ST", [("allElements",)], DataAccessError.OBJECT_ACCESS_UNSUPPORTED),
        ("XCBR1$ST", [("component", "Pos")] * 17, DataAccessError.OBJECT_ACCESS_UNSUPPORTED),
    ],
)  # fmt: skip
def test_bad_selections(env, item, steps, code) -> None:
    assert read(env, item, steps) == ("failure", code)


def test_write_through_alternate_access(env) -> None:
    svc, assoc = env
    name = ("domain-specific", "FID1CTRL", "XCBR1$SP", [("component", "Lim"),
                                                        ("component", "vals"), ("index", 3)])  # fmt: skip
    assert svc.write_variables(assoc, [name], [d.integer(44)]) == [None]
    assert svc.model.read("FID1CTRL/XCBR1.Lim.vals", "SP")[3] == 44


def _select(access: g.AccessSelection, inner: g.AlternateAccess | None = None):
    if inner is None:
        selection = g.AlternateAccessSelection(choice=access)
    else:
        selection = g.AlternateAccessSelection(
            choice=g.AlternateAccessSelection.SelectAlternateAccess(
                access_selection=access, alternate_access=inner
            )
        )
    return g.AlternateAccess(choice=[g.AlternateAccess.Choice(choice=selection)])


def test_typed_alternate_access_to_steps() -> None:
    typed = _select(
        g.AccessSelection(choice="phsAHar"),
        _select(g.AccessSelection(choice=2), _select(g.AccessSelection(choice="cVal"))),
    )
    assert access_steps(typed) == [("component", "phsAHar"), ("index", 2), ("component", "cVal")]
    assert access_steps(_select(g.AccessSelection(choice=0))) == [("index", 0)]
    named = g.AlternateAccess(
        choice=[
            g.AlternateAccess.Choice(
                choice=g.AlternateAccess.Choice.Named(
                    component_name="x",
                    access=g.AlternateAccessSelection(choice=g.AccessSelection(choice=1)),
                )
            )
        ]
    )
    for bad in (
        named,
        _select(g.AccessSelection(choice=g.IndexRange(low_index=0, number_of_elements=2))),
        g.AlternateAccess(choice=[]),
    ):
        with pytest.raises(ModelError) as err:
            access_steps(bad)
        assert err.value.code == DataAccessError.OBJECT_ACCESS_UNSUPPORTED
