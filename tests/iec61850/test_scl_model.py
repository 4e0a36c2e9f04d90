"""SCL loading (the project's own feeder.scd) and the server model: addressing, values, write
policy, hooks, setting groups, and clear errors for broken or hostile SCL."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridbind.iec61850.model import (
    DataAccessError,
    ModelError,
    Timestamp,
    quality_bits,
)
from gridbind.iec61850.scl import SclError, list_ieds, load_scl

DATA = Path(__file__).parent / "data"
FEEDER = DATA / "feeder.scd"


@pytest.fixture()
def model():
    return load_scl(FEEDER)


def test_structure_from_templates(model) -> None:
    assert model.ied_name == "FDR1"
    assert model.jid == "fdr1@test.local/IEC"
    assert list(model.children) == ["FDR1LD0", "FDR1PROT", "FDR1MEAS"]
    lln0 = model.logical_node("FDR1LD0/LLN0")
    # FCs in the 8-1 order, control blocks in their own FC
    assert lln0.fcs() == ["ST", "CF", "DC", "RP", "LG", "BR", "GO", "EX", "MS"]
    assert [cb.name for cb in lln0.control_blocks] == [
        "urcbStatus01", "urcbStatus02", "brcbMeas", "logStatus", "gcbStatus", "msvcbMeas",
    ]  # fmt: skip
    assert model.logical_node("FDR1PROT/IPTOC1").fcs() == ["ST", "CF", "SG", "SE"]
    assert list(list_ieds(FEEDER)) == ["FDR1"]


def test_values_enums_structures(model) -> None:
    assert model.read("FDR1LD0/LLN0.Mod.stVal", "ST") == 1  # "on"
    assert model.read("FDR1LD0/LLN0.Mod.ctlModel", "CF") == 0
    assert model.find("FDR1LD0/GGIO1.SPCSO1").ctl_model == 1
    assert model.read("FDR1LD0/GGIO1.Ind1.stVal", "ST") is True
    assert model.read("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42
    assert model.read("FDR1MEAS/MMXU1.TotW.mag.f", "MX") == 1500.5
    assert model.read("FDR1MEAS/MMXU1.A.phsA.cVal.mag.f", "MX") == 10.5
    assert model.read("FDR1MEAS/MMXU1.TotW.units", "CF") == {"SIUnit": 38, "multiplier": 0}
    assert model.read("FDR1LD0/LLN0.NamPlt.ldNs", "EX") == "IEC 61850-7-4:2007B"
    assert model.read("FDR1LD0/GGIO1.AnOut1.sVC.scaleFactor", "CF") == 1.0
    ds = model.dataset("FDR1LD0/LLN0.Status")
    assert [str(m) for m in ds.members] == [
        "FDR1LD0/GGIO1.Ind1.stVal[ST]",
        "FDR1LD0/GGIO1.Ind1.q[ST]",
        "FDR1LD0/GGIO1.Ind2[ST]",
        "FDR1MEAS/MMXU1.TotW.mag.f[MX]",
    ]
    assert [cb.name for cb in model.dataset_users(ds)] == [
        "urcbStatus01", "urcbStatus02", "logStatus", "gcbStatus",
    ]  # fmt: skip
    assert model.read("FDR1LD0/LLN0.gcbStatus.GoID", "GO") == "FDR1_GOOSE"
    assert model.read("FDR1LD0/LLN0.msvcbMeas.SmpRate", "MS") == 80
    assert model.read("FDR1LD0/LLN0.urcbStatus01.TrgOps", "RP") == "011001"


def test_mms_names(model) -> None:
    node, fc = model.find_mms("FDR1LD0", "GGIO1$ST$Ind1$stVal")
    assert fc == "ST" and node.reference() == "FDR1LD0/GGIO1.Ind1.stVal"
    with pytest.raises(ModelError) as err:
        model.find_mms("FDR1LD0", "GGIO1$MX$Ind1")
    assert err.value.code == DataAccessError.OBJECT_NON_EXISTENT
    with pytest.raises(ModelError):
        model.find_mms("FDR1LD0", "GGIO1$XX$Ind1")
    with pytest.raises(ModelError):
        model.find_mms("FDR1LD0", "GGIO1$$Ind1")
    with pytest.raises(ModelError):
        model.find_mms("NOPE", "LLN0")


def test_find_errors(model) -> None:
    with pytest.raises(ModelError) as err:
        model.find("FDR1LD0/GGIO1.Ind1.stVal", "MX")  # wrong FC
    assert err.value.code == DataAccessError.OBJECT_NON_EXISTENT
    with pytest.raises(ModelError) as err:
        model.find("FDR1LD0/GGIO1.Ind1", "XX")
    assert err.value.code == DataAccessError.INVALID_ADDRESS
    with pytest.raises(ModelError) as err:
        model.find("FDR1LD0/GGIO1." + "x" * 130, "ST")
    assert err.value.code == DataAccessError.INVALID_ADDRESS
    with pytest.raises(ModelError):
        model.find("FDR1LD0/GGIO9.Ind1", "ST")


def test_update_with_quality_and_timestamp(model) -> None:
    model.update(
        "FDR1MEAS/MMXU1.TotW.mag.f", 12.5, quality=quality_bits("questionable", oldData=True)
    )
    assert model.read("FDR1MEAS/MMXU1.TotW.mag.f", "MX") == 12.5
    assert model.read("FDR1MEAS/MMXU1.TotW.q", "MX") == "1100000100000"
    assert model.read("FDR1MEAS/MMXU1.TotW.t", "MX").seconds > 1_700_000_000
    model.update("FDR1LD0/GGIO1.Ind1.stVal", False, timestamp=1000.5)
    assert model.read("FDR1LD0/GGIO1.Ind1.t", "ST") == Timestamp(1000, 1 << 23, 0)
    seen = []
    model.add_update_listener(lambda attr, value: seen.append((attr.reference(), value)))
    model.update("FDR1LD0/GGIO1.IntIn1.stVal", 7)
    assert seen[0] == ("FDR1LD0/GGIO1.IntIn1.stVal", 7)
    with pytest.raises(ModelError) as err:
        model.update("FDR1LD0/GGIO1.IntIn1.stVal", "seven")
    assert err.value.code == DataAccessError.TYPE_INCONSISTENT
    with pytest.raises(ModelError) as err:
        model.update("FDR1LD0/GGIO1.IntIn1.stVal", 1 << 40)
    assert err.value.code == DataAccessError.OBJECT_VALUE_INVALID
    with pytest.raises(ValueError):
        quality_bits("bad")


def test_write_policy_and_hooks(model) -> None:
    st = model.find("FDR1LD0/GGIO1.Ind1.stVal", "ST")
    with pytest.raises(ModelError) as err:
        model.write(st, "ST", True)
    assert err.value.code == DataAccessError.OBJECT_ACCESS_DENIED
    d = model.find("FDR1LD0/GGIO1.Ind1.d", "DC")
    model.write(d, "DC", "feeder indication")
    assert d.value == "feeder indication"
    refused = []

    def hook(m, attr, fc, value, originator):
        refused.append((attr.name, value, originator))
        return DataAccessError.OBJECT_ACCESS_DENIED if value == "no" else None

    model.add_write_hook(hook)
    with pytest.raises(ModelError) as err:
        model.write(d, "DC", "no", originator="client@test.local/IEC")
    assert err.value.code == DataAccessError.OBJECT_ACCESS_DENIED
    assert d.value == "feeder indication"
    assert refused[-1] == ("d", "no", "client@test.local/IEC")
    ctl = model.find("FDR1LD0/GGIO1.SPCSO1.ctlModel", "CF")
    with pytest.raises(ModelError) as err:
        model.write(ctl, "CF", 99)  # not an ordinal of CtlModelKind
    assert err.value.code == DataAccessError.OBJECT_VALUE_INVALID
    # Control blocks: enable is writable, DatSet only while disabled, ConfRev never.
    gcb = model.find("FDR1LD0/LLN0.gcbStatus", "GO")
    model.write(gcb.children["GoID"], "GO", "NEW_ID")
    model.write(gcb.children["GoEna"], "GO", True)
    with pytest.raises(ModelError) as err:
        model.write(gcb.children["GoID"], "GO", "LATE")
    assert err.value.code == DataAccessError.TEMPORARILY_UNAVAILABLE
    with pytest.raises(ModelError) as err:
        model.write(gcb.children["ConfRev"], "GO", 5)
    assert err.value.code == DataAccessError.OBJECT_ACCESS_DENIED


def test_setting_groups(model) -> None:
    f = model.find("FDR1PROT/IPTOC1.StrVal.setMag.f", "SG")
    assert model.get_value(f, "SG") == 100.0
    with pytest.raises(ModelError) as err:
        model.write(f, "SG", 1.0)
    assert err.value.code == DataAccessError.OBJECT_ACCESS_DENIED
    with pytest.raises(ModelError) as err:
        model.write(f, "SE", 1.0)  # no SelectEditSG yet
    assert err.value.code == DataAccessError.TEMPORARILY_UNAVAILABLE
    model.select_active_sg("FDR1PROT", 2)
    assert model.get_value(f, "SG") == 200.0
    assert model.read("FDR1PROT/LLN0.SGCB.ActSG", "SP") == 2
    model.select_edit_sg("FDR1PROT", 3)
    assert model.get_value(f, "SE") == 300.0
    model.write(f, "SE", 333.0)
    assert model.edit_value(f) == 333.0
    assert model.get_value(f, "SE") == 300.0  # not confirmed yet
    model.confirm_edit_sg("FDR1PROT")
    assert model.get_value(f, "SE") == 333.0
    model.select_active_sg("FDR1PROT", 3)
    assert model.get_value(f, "SG") == 333.0
    with pytest.raises(ModelError):
        model.select_active_sg("FDR1PROT", 4)
    with pytest.raises(ModelError):
        model.sgcb("FDR1LD0")


BROKEN = [
    ('type="SPS_T"/>\n      <DO name="Ind2"', 'type="NOPE"/>\n      <DO name="Ind2"', "DOType 'NOPE'"),
    ('type="BehModKind" fc="ST" dchg="true"/>', 'type="Missing" fc="ST" dchg="true"/>', "EnumType"),
    ('<DAI name="stVal"><Val>42</Val>', '<DAI name="stVal"><Val>forty</Val>', "bad Val"),
    ('<Val>status-only</Val></DAI>\n              <DAI name="stVal"><Val>on</Val>',
     '<Val>status-only</Val></DAI>\n              <DAI name="stVal"><Val>sideways</Val>',
     "not a value of EnumType"),
    ('doName="Ind2" fc="ST"', 'doName="Ind9" fc="ST"', "data set Status"),
    ('doName="Ind2" fc="ST"', 'doName="Ind2" fc="MX"', "data set Status"),
    ('datSet="Measurements" confRev="1" buffered', 'datSet="Nope" confRev="1" buffered', "datSet"),
    ('<DOI name="IntIn1">', '<DOI name="IntIn9">', "no such element"),
    ('lnType="MMXU_T"', 'lnType="MMXU_X"', "LNodeType 'MMXU_X'"),
    ('<DAType id="Vector">', '<DAType id="AnalogueValue">', "duplicate DAType id 'AnalogueValue' with"),
    ('fc="MX" dchg="true"/>\n      <DA name="q" bType="Quality" fc="MX" qchg="true"/>\n      <DA name="t" bType="Timestamp" fc="MX"/>\n      <DA name="units"',
     'fc="QQ" dchg="true"/>\n      <DA name="q" bType="Quality" fc="MX" qchg="true"/>\n      <DA name="t" bType="Timestamp" fc="MX"/>\n      <DA name="units"',
     "FC"),
    ('numOfSGs="3" actSG="1"', 'numOfSGs="3" actSG="7"', "SettingControl"),
    ('<P type="JID">fdr1@test.local/IEC</P>', '<P type="JID">nobody</P>', "JID"),
]  # fmt: skip


@pytest.mark.parametrize("old,new,message", BROKEN)
def test_broken_references_are_clear_errors(old, new, message) -> None:
    text = FEEDER.read_text()
    assert old in text, old
    with pytest.raises(SclError, match=message) as err:
        load_scl(text.replace(old, new, 1).encode())
    assert "<scl>:" in str(err.value)  # the line number of the culprit


def test_ied_selection_and_bad_input(tmp_path) -> None:
    with pytest.raises(SclError, match="no IED named"):
        load_scl(FEEDER, ied="OTHER")
    with pytest.raises(SclError, match="well-formed"):
        load_scl(b"<SCL")
    with pytest.raises(SclError, match="root element"):
        load_scl(b"<x/>")
    with pytest.raises(SclError, match="cannot read"):
        load_scl(tmp_path / "missing.scd")


def test_hostile_xml_is_refused(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE SCL [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<SCL xmlns="http://www.iec.ch/61850/2003/SCL"><IED name="&x;"/></SCL>'
    ).encode()
    with pytest.raises(SclError):
        load_scl(xxe)
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE SCL [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b'<SCL xmlns="http://www.iec.ch/61850/2003/SCL"><IED name="&c;"/></SCL>'
    )
    with pytest.raises(SclError):
        load_scl(laughs)


def test_identical_duplicate_template_is_accepted() -> None:
    text = FEEDER.read_text()
    block = text[text.index('    <DOType id="INS_T"') : text.index('    <DOType id="SPC_T"')]
    model = load_scl(text.replace(block, block + block, 1).encode())
    assert model.read("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42
