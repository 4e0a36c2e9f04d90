"""ACSI services over the model on the typed requests and responses of the generated classes (no
transport): the rules that the service tests then exercise through a client."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import codec, mms
from gridbind.iec61850 import mmsdata as d
from gridbind.iec61850.association import AssociationCore, InitiateParams
from gridbind.iec61850.files import FileStore
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.services.acsi import RequestRefused, ServerServices, ServiceError
from gridbind.iec61850.services.mmsview import td_kind

from iec_testkit import results

FEEDER = Path(__file__).parent / "data" / "feeder.scd"


@pytest.fixture()
def env(tmp_path):
    (tmp_path / "f.txt").write_bytes(b"x" * 5000)
    model = load_scl(FEEDER)
    core = AssociationCore(InitiateParams(max_pdu_size=2048))
    assoc = core.accept("c@test.local/IEC", "1", InitiateParams())
    return ServerServices(model, FileStore(tmp_path)), assoc


def dom(ld, item):
    return ("domain-specific", ld, item)


def _name(key: tuple) -> m.ObjectName:
    return mms.dom(key[1], key[2]) if key[0] == "domain-specific" else mms.aa(key[1])


def read(svc, assoc, *keys) -> list:
    response = svc.serve(assoc, mms.read(*map(_name, keys))).choice
    return results(response)


def read_list(svc, assoc, key) -> list:
    return results(svc.serve(assoc, mms.read_list(_name(key))).choice)


def write(svc, assoc, target, datas) -> list:
    target = _name(target) if isinstance(target, tuple) else [_name(k) for k in target]
    return mms.write_results(svc.serve(assoc, mms.write(target, datas)).choice)


def test_name_lists_and_paging(env) -> None:
    svc, assoc = env
    assert svc.get_name_list(assoc, "domain", "vmdSpecific", None, None) == (
        ["FDR1LD0", "FDR1MEAS", "FDR1PROT"],
        False,
    )
    names, more = svc.get_name_list(assoc, "namedVariable", "domainSpecific", "FDR1LD0", None)
    assert more and names == sorted(names) and names[0] == "GGIO1"
    collected = list(names)
    while more:
        names, more = svc.get_name_list(
            assoc, "namedVariable", "domainSpecific", "FDR1LD0", collected[-1]
        )
        collected += names
    # (GoCB MinTime, MaxTime and the MSVCB DstAddress with its 4 members: 172 + 7; the LCB's
    # OldEntrTm, NewEntrTm, OldEnt, NewEnt: + 4)
    assert len(collected) == len(set(collected)) == 183
    assert "LLN0$GO$gcbStatus$GoEna" in collected
    assert svc.get_name_list(assoc, "namedVariableList", "domainSpecific", "FDR1LD0", None) == (
        ["LLN0$Measurements", "LLN0$Status"],
        False,
    )
    with pytest.raises(ServiceError) as err:
        svc.get_name_list(assoc, "namedVariable", "domainSpecific", "NOPE", None)
    assert (err.value.error_class, err.value.code) == ("access", "object-non-existent")
    with pytest.raises(ServiceError):
        svc.get_name_list(assoc, "semaphore", "vmdSpecific", None, None)


def test_read_write(env) -> None:
    svc, assoc = env
    res = read(svc, assoc, dom("FDR1LD0", "GGIO1$ST$Ind1$stVal"), dom("FDR1LD0", "GGIO1$MX$Ind1"))
    assert res == [("success", True), ("failure", "object-non-existent")]
    w = write(
        svc,
        assoc,
        [dom("FDR1LD0", "GGIO1$DC$Ind1$d"), dom("FDR1LD0", "GGIO1$ST$Ind1$stVal")],
        [d.visible_string("new"), d.boolean(False)],
    )
    assert w == [None, "object-access-denied"]
    assert svc.model.read("FDR1LD0/GGIO1.Ind1.d", "DC") == "new"
    assert write(svc, assoc, [dom("FDR1LD0", "GGIO1$DC$Ind1$d")], [d.integer(5)]) == [
        "type-inconsistent"
    ]
    # structure write: all of units (SIUnit, multiplier) at once
    assert write(
        svc,
        assoc,
        [dom("FDR1MEAS", "MMXU1$CF$TotW$units")],
        [d.structure([d.integer(33), d.integer(3)])],
    ) == [None]
    assert svc.model.read("FDR1MEAS/MMXU1.TotW.units", "CF") == {"SIUnit": 33, "multiplier": 3}
    with pytest.raises(ServiceError):
        write(svc, assoc, [dom("FDR1LD0", "GGIO1$DC$Ind1$d")], [])
    # the typed alternateAccess reaches the model's selection (by component), per variable
    by_component = mms.variable(mms.dom("FDR1LD0", "GGIO1$ST$Ind1"))
    by_component.alternate_access = m.AlternateAccess(
        choice=[mms.choice_of(m.AlternateAccess.Choice, "unnamed",
                              m.AlternateAccessSelection(choice=m.AccessSelection(choice="stVal")))]
    )  # fmt: skip
    named = mms.variable(mms.dom("FDR1LD0", "GGIO1$ST$Ind1"))
    named.alternate_access = m.AlternateAccess(
        choice=[m.AlternateAccess.Choice(choice=m.AlternateAccess.Choice.Named(
            component_name="stVal",
            access=m.AlternateAccessSelection(choice=m.AccessSelection(choice=0))))]
    )  # fmt: skip
    response = svc.serve(assoc, mms.read(by_component, named)).choice
    assert results(response) == [("success", True), ("failure", "object-access-unsupported")]
    # a variable without a name is no variable: the request is refused (a rejectPDU)
    with pytest.raises(RequestRefused) as refused:
        svc.serve(assoc, mms.read(m.VariableDefs.Sequence(
            variable_specification=m.VariableSpecification())))  # fmt: skip
    assert refused.value.reason.value == "confirmed-requestPDU:invalid-argument"


def test_datasets(env) -> None:
    svc, assoc = env
    status = dom("FDR1LD0", "LLN0$Status")
    response = svc.serve(assoc, mms.get_named_variable_list_attributes(_name(status))).choice
    members = mms.var_def_names(response.list_of_variable)
    assert not response.mms_deletable and members[0] == mms.dom("FDR1LD0", "GGIO1$ST$Ind1$stVal")
    assert [r[0] for r in read_list(svc, assoc, status)] == ["success"] * 4
    new = dom("FDR1LD0", "GGIO1$Mine")
    svc.define_named_variable_list(
        assoc, new, [dom("FDR1LD0", "GGIO1$ST$Ind1$stVal"), dom("FDR1LD0", "GGIO1$DC$Ind1$d")]
    )
    with pytest.raises(ServiceError) as err:
        svc.define_named_variable_list(assoc, new, [dom("FDR1LD0", "GGIO1$ST$Ind1$stVal")])
    assert err.value.code == "object-exists"
    with pytest.raises(ServiceError) as err:
        svc.define_named_variable_list(
            assoc, dom("FDR1LD0", "GGIO1$X"), [dom("FDR1LD0", "GGIO1$ST$No")]
        )
    assert err.value.code == "object-undefined"
    assert write(svc, assoc, new, [d.boolean(True), d.visible_string("via ds")]) == [
        "object-access-denied",
        None,
    ]
    svc.define_named_variable_list(assoc, ("aa-specific", "tmp"), [dom("FDR1LD0", "GGIO1$ST$Ind2")])
    assert svc.get_name_list(assoc, "namedVariableList", "aaSpecific", None, None) == (
        ["tmp"],
        False,
    )
    assert svc.delete_named_variable_list(
        assoc, "specific", [status, new, ("aa-specific", "tmp")]
    ) == (3, 2)
    assert svc.delete_named_variable_list(assoc, "specific", [new]) == (0, 0)
    with pytest.raises(ServiceError):
        svc.delete_named_variable_list(assoc, "domain", [])


def test_setting_groups_through_writes(env) -> None:
    svc, assoc = env
    sgcb = lambda a: dom("FDR1PROT", f"LLN0$SP$SGCB${a}")  # noqa: E731
    se = dom("FDR1PROT", "IPTOC1$SE$OpDlTmms$setVal")
    sg = dom("FDR1PROT", "IPTOC1$SG$OpDlTmms$setVal")
    assert write(svc, assoc, [se], [d.integer(1)]) == ["temporarily-unavailable"]
    assert write(svc, assoc, [sgcb("EditSG")], [d.unsigned(2)]) == [None]
    assert read(svc, assoc, se) == [("success", 20)]
    assert write(svc, assoc, [se], [d.integer(25)]) == [None]
    assert write(svc, assoc, [sgcb("CnfEdit")], [d.boolean(True)]) == [None]
    assert write(svc, assoc, [sgcb("ActSG")], [d.unsigned(2)]) == [None]
    assert read(svc, assoc, sg) == [("success", 25)]
    assert write(svc, assoc, [sgcb("ActSG")], [d.unsigned(9)]) == ["object-value-invalid"]
    assert write(svc, assoc, [sgcb("NumOfSG")], [d.unsigned(9)]) == ["object-access-denied"]


def test_definitions_and_files(env) -> None:
    svc, assoc = env
    _, td = svc.get_variable_access_attributes(assoc, dom("FDR1MEAS", "MMXU1$MX$TotW"))
    assert td_kind(td) == "structure"
    assert [c.component_name for c in td.choice.components.sequence] == ["mag", "q", "t"]
    with pytest.raises(ServiceError):
        svc.get_variable_access_attributes(assoc, dom("FDR1MEAS", "MMXU1$XX$TotW"))
    entries, more = svc.file_directory(assoc, None, None)
    assert entries[0][0] == ["f.txt"] and entries[0][1] == 5000 and not more
    frsm, size, _ = svc.file_open(assoc, ["f.txt"], 0)
    data, more = svc.file_read(assoc, frsm)
    assert more and len(data) < 5000
    svc.file_close(assoc, frsm)
    with pytest.raises(ServiceError):
        svc.file_read(assoc, frsm)
    with pytest.raises(ServiceError) as err:
        svc.file_open(assoc, ["..", "etc"], 0)
    assert err.value.error_class == "file"


def test_creation_is_bounded(env) -> None:
    from gridbind.iec61850.services.acsi import MAX_AA_DATASETS

    svc, assoc = env
    member = [dom("FDR1LD0", "GGIO1$ST$Ind2")]
    for i in range(MAX_AA_DATASETS):
        svc.define_named_variable_list(assoc, ("aa-specific", f"d{i}"), member)
    with pytest.raises(ServiceError) as err:
        svc.define_named_variable_list(assoc, ("aa-specific", "one_more"), member)
    assert (err.value.error_class, err.value.code) == ("resource", "capability-unavailable")
    with pytest.raises(ServiceError):
        svc.define_named_variable_list(assoc, ("aa-specific", "big"), member * 300)


def test_every_ln_encodes_schema_valid(env) -> None:
    """Whole LNs (all FCs: values and type descriptions) of the test and demo SCL encode into
    schema-valid PDUs: no basic type is left without a correct MMS mapping."""
    from gridbind.iec61850.demo import DEMO_SCL

    svc, assoc = env
    for model in (svc.model, load_scl(DEMO_SCL)):
        services = ServerServices(model)
        for ln in model.iter_nodes():
            name = mms.dom(ln.parent.name, ln.name)
            for request in (mms.read(name), mms.get_variable_access_attributes(name)):
                response = services.serve(assoc, request)
                codec.encode(mms.confirmed_response(1, response))  # validates
            assert results(services.serve(assoc, mms.read(name)).choice)[0][0] == "success"
