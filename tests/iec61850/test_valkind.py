"""SCL ``valKind`` online (IEC 61850-6): RO and Spec attributes refuse client writes with
object-access-denied, Set (and the default Conf) follow the FC write policy; a DAI's valKind
overrides its DA's, a structure's passes to its members and array elements."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridbind.iec61850 import mmsdata as d
from gridbind.iec61850.association import AssociationCore, InitiateParams
from gridbind.iec61850.model import DataAccessError, ModelError
from gridbind.iec61850.scl import SclError, load_scl
from gridbind.iec61850.services.acsi import ServerServices

DATA = Path(__file__).parent / "data"
DENIED = DataAccessError.OBJECT_ACCESS_DENIED


@pytest.fixture()
def svc():
    core = AssociationCore(InitiateParams())
    return ServerServices(load_scl(DATA / "fidelity.cid")), core.accept(
        "c@t.local/x", "1", InitiateParams()
    )


def write(svc_assoc, ld, item, data):
    svc, assoc = svc_assoc
    return svc.write_variables(assoc, [("domain-specific", ld, item)], [data])[0]


def test_val_kinds_from_templates_and_instances(svc) -> None:
    model = svc[0].model
    kind = lambda ref, fc: model.find(ref, fc).val_kind  # noqa: E731
    assert kind("FID1CTRL/LLN0.NamPlt.vendor", "DC") == "RO"  # DA
    assert kind("FID1CTRL/LLN0.NamPlt.configRev", "DC") == "Set"  # DAI overrides the DA
    assert kind("FID1CTRL/XCBR1.Pos.d", "DC") == "RO"  # DAI on a Conf DA
    assert kind("FID1CTRL/XCBR1.Pos.ctlModel", "CF") == "Conf"  # the default
    assert kind("FID1CTRL/XCBR1.Lim.spec", "SP") == "Spec"
    assert [e.val_kind for e in model.find("FID1CTRL/XCBR1.Lim.vals", "SP").elements] == ["Set"] * 4


def test_ro_and_spec_writes_are_refused_set_and_conf_written(svc) -> None:
    model = svc[0].model
    assert write(svc, "FID1CTRL", "LLN0$DC$NamPlt$vendor", d.visible_string("x")) == DENIED
    assert write(svc, "FID1CTRL", "XCBR1$DC$Pos$d", d.visible_string("x")) == DENIED
    assert write(svc, "FID1CTRL", "XCBR1$SP$Lim$spec", d.integer(1)) == DENIED
    assert model.read("FID1CTRL/XCBR1.Pos.d", "DC") == " main breaker "
    assert write(svc, "FID1CTRL", "LLN0$DC$NamPlt$configRev", d.visible_string("r2")) is None
    assert model.read("FID1CTRL/LLN0.NamPlt.configRev", "DC") == "r2"
    assert write(svc, "FID1CTRL", "XCBR1$CF$Pos$ctlModel", d.integer(2)) is None
    # a structured write with one RO member stores nothing
    assert (
        write(
            svc,
            "FID1CTRL",
            "LLN0$DC$NamPlt",
            d.structure([d.visible_string("v"), d.visible_string("r3")]),
        )
        == DENIED
    )
    assert model.read("FID1CTRL/LLN0.NamPlt.configRev", "DC") == "r2"
    # the model API refuses too, with the reason in the text
    with pytest.raises(ModelError, match="valKind RO"):
        model.write(model.find("FID1CTRL/XCBR1.Pos.d", "DC"), "DC", "y")
    # application updates are not client writes: RO is about the online services
    model.update("FID1CTRL/XCBR1.Pos.d", "replaced breaker")
    assert model.read("FID1CTRL/XCBR1.Pos.d", "DC") == "replaced breaker"


def test_set_array_elements_are_writable(svc) -> None:
    svc_, assoc = svc
    name = ("domain-specific", "FID1CTRL", "XCBR1$SP$Lim$vals", 1)
    assert svc_.write_variables(assoc, [name], [d.integer(20)]) == [None]
    assert svc_.model.read("FID1CTRL/XCBR1.Lim.vals", "SP") == [10, 20, 30, 0]


def test_unknown_val_kind_is_an_scl_error() -> None:
    text = (DATA / "fidelity.cid").read_text().replace('valKind="Spec"', 'valKind="Fixed"', 1)
    with pytest.raises(SclError, match=r"<scl>:\d+: valKind 'Fixed'"):
        load_scl(text.encode())
