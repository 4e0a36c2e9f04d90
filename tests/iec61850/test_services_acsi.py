"""ACSI services over the model in their neutral MMS forms (no codec, no sockets): the rules that
the end-to-end tests then exercise through Prosody."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridbind.iec61850.association import AssociationCore, InitiateParams
from gridbind.iec61850.files import FileStore
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.services.acsi import ServerServices, ServiceError

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
    # (GoCB MinTime, MaxTime and the MSVCB DstAddress with its 4 members: 172 + 7)
    assert len(collected) == len(set(collected)) == 179
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
    res = svc.read(
        assoc,
        (
            "listOfVariable",
            [dom("FDR1LD0", "GGIO1$ST$Ind1$stVal"), dom("FDR1LD0", "GGIO1$MX$Ind1")],
        ),
    )
    assert res == [("success", ("boolean", True)), ("failure", "object-non-existent")]
    w = svc.write(
        assoc,
        (
            "listOfVariable",
            [dom("FDR1LD0", "GGIO1$DC$Ind1$d"), dom("FDR1LD0", "GGIO1$ST$Ind1$stVal")],
        ),
        [("visible-string", "new"), ("boolean", False)],
    )
    assert w == [None, "object-access-denied"]
    assert svc.model.read("FDR1LD0/GGIO1.Ind1.d", "DC") == "new"
    assert svc.write(
        assoc, ("listOfVariable", [dom("FDR1LD0", "GGIO1$DC$Ind1$d")]), [("integer", 5)]
    ) == ["type-inconsistent"]
    # structure write: all of units (SIUnit, multiplier) at once
    assert svc.write(
        assoc,
        ("listOfVariable", [dom("FDR1MEAS", "MMXU1$CF$TotW$units")]),
        [("structure", [("integer", 33), ("integer", 3)])],
    ) == [None]
    assert svc.model.read("FDR1MEAS/MMXU1.TotW.units", "CF") == {"SIUnit": 33, "multiplier": 3}
    with pytest.raises(ServiceError):
        svc.write(assoc, ("listOfVariable", [dom("FDR1LD0", "GGIO1$DC$Ind1$d")]), [])


def test_datasets(env) -> None:
    svc, assoc = env
    status = dom("FDR1LD0", "LLN0$Status")
    deletable, members = svc.get_named_variable_list_attributes(assoc, status)
    assert not deletable and members[0] == dom("FDR1LD0", "GGIO1$ST$Ind1$stVal")
    assert [r[0] for r in svc.read(assoc, ("variableListName", status))] == ["success"] * 4
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
    assert svc.write(
        assoc, ("variableListName", new), [("boolean", True), ("visible-string", "via ds")]
    ) == ["object-access-denied", None]
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
    assert svc.write(assoc, ("listOfVariable", [se]), [("integer", 1)]) == [
        "temporarily-unavailable"
    ]
    assert svc.write(assoc, ("listOfVariable", [sgcb("EditSG")]), [("unsigned", 2)]) == [None]
    assert svc.read(assoc, ("listOfVariable", [se])) == [("success", ("integer", 20))]
    assert svc.write(assoc, ("listOfVariable", [se]), [("integer", 25)]) == [None]
    assert svc.write(assoc, ("listOfVariable", [sgcb("CnfEdit")]), [("boolean", True)]) == [None]
    assert svc.write(assoc, ("listOfVariable", [sgcb("ActSG")]), [("unsigned", 2)]) == [None]
    assert svc.read(assoc, ("listOfVariable", [sg])) == [("success", ("integer", 25))]
    assert svc.write(assoc, ("listOfVariable", [sgcb("ActSG")]), [("unsigned", 9)]) == [
        "object-value-invalid"
    ]
    assert svc.write(assoc, ("listOfVariable", [sgcb("NumOfSG")]), [("unsigned", 9)]) == [
        "object-access-denied"
    ]


def test_definitions_and_files(env) -> None:
    svc, assoc = env
    _, td = svc.get_variable_access_attributes(assoc, dom("FDR1MEAS", "MMXU1$MX$TotW"))
    assert td[0] == "structure" and [c[0] for c in td[1]] == ["mag", "q", "t"]
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
    from gridbind.iec61850.pdu import encode
    from gridbind.iec61850.services.mmsview import data_value, type_description
    from test_pdu import valid

    svc, _ = env
    for model in (svc.model, load_scl(DEMO_SCL)):
        for ln in model.iter_nodes():
            valid(
                encode(
                    ("confirmed-ResponsePDU", 1, "read", [("success", data_value(model, ln, ""))])
                )
            )
            valid(
                encode(
                    ("confirmed-ResponsePDU", 1, "getVariableAccessAttributes",
                     (False, type_description(ln, "")))
                )
            )  # fmt: skip
