"""The SCL loader reads what IEC 61850-6 allows and configuration tools write (values by name,
array elements, white space per type, SDO arrays, timestamps, GSE/SMV addresses, Services
limits), and refuses what is wrong with an SclError naming file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gridbind.iec61850.association import AssociationCore, InitiateParams
from gridbind.iec61850.model import DataAccessError, Timestamp
from gridbind.iec61850.scl import SclError, load_scl
from gridbind.iec61850.services.acsi import ServerServices, ServiceError
from gridbind.iec61850.services.mmsview import td_kind, type_description

DATA = Path(__file__).parent / "data"
FIDELITY = DATA / "fidelity.cid"
TEXT = FIDELITY.read_text()


@pytest.fixture(scope="module")
def model():
    return load_scl(FIDELITY)


def variant(old: str, new: str) -> bytes:
    assert old in TEXT, old
    return TEXT.replace(old, new, 1).encode()


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


# ---------------------------------------------------------------- values


@pytest.mark.parametrize(
    "name,ordinal", [("intermediate-state", 0), ("off", 1), ("on", 2), ("bad-state", 3)]
)
def test_dbpos_by_name(name, ordinal) -> None:
    m = load_scl(variant('<DAI name="stVal"><Val>on</Val>', f'<DAI name="stVal"><Val>{name}</Val>'))
    assert m.read("FID1CTRL/XCBR1.Pos.stVal", "ST") == ordinal


@pytest.mark.parametrize("name,ordinal", [("stop", 0), ("lower", 1), ("higher", 2)])
def test_tcmd_by_name(name, ordinal) -> None:
    m = load_scl(variant("<Val>higher</Val>", f"<Val>{name}</Val>"))
    assert m.read("FID1CTRL/XCBR1.TapCmd.ctlVal", "SP") == ordinal


def test_coded_enum_numbers_still_read_and_unknown_names_refused(model) -> None:
    assert load_scl(DATA / "breaker.icd").read("TEMPLATECTRL/XCBR1.Pos.stVal", "ST") == 2
    with pytest.raises(SclError, match=r"<scl>:\d+: bad Val for stVal \(Dbpos\)"):
        load_scl(variant("<Val>on</Val></DAI>\n              <DAI name=\"t\">",
                         "<Val>open</Val></DAI>\n              <DAI name=\"t\">"))  # fmt: skip


def test_white_space_per_type(model) -> None:
    # strings keep theirs; numbers and enumerations are collapsed
    assert model.read("FID1CTRL/LLN0.NamPlt.vendor", "DC") == "  gridbind   test  "
    assert model.read("FID1CTRL/XCBR1.Pos.d", "DC") == " main breaker "
    assert model.read("FID1CTRL/XCBR1.OpCnt.stVal", "ST") == 17
    assert model.read("FID1CTRL/XCBR1.Pos.ctlModel", "CF") == 1
    assert model.read("FID1CTRL/MMXU1.A.phsA.cVal.mag.f", "MX") == 15.0  # xs:float 1.5E1


@pytest.mark.parametrize("bad", ["1_000", "١٢", "0x10", "1 7"])
def test_integers_are_xml_schema_integers(bad) -> None:
    with pytest.raises(SclError, match="bad Val for stVal"):
        load_scl(variant("\n              17\n", bad))


def test_dai_ix_sets_array_elements(model) -> None:
    assert model.read("FID1CTRL/XCBR1.Lim.vals", "SP") == [10, 0, 30, 0]
    # SDI ix: a member of one element of an array of structures
    assert model.read("FID1CTRL/XCBR1.Lim.pts", "SP") == [{"f": 0.0}, {"f": 2.5}]


@pytest.mark.parametrize(
    "old,new,message",
    [
        ('name="vals" ix="2"', 'name="vals" ix="4"', r"ix=4 outside vals\[0..3\]"),
        ('name="spec"><Val>', 'name="spec" ix="0"><Val>', "not an array"),
        ('name="vals" ix="2"', 'name="vals"', "is an array: one DAI per ix"),
        ('<SDI name="phsAHar" ix="1">', '<SDI name="phsAHar">', "is an array: give ix"),
        ('<SDI name="phsAHar" ix="1">', '<SDI name="phsAHar" ix="3">', "ix=3 outside"),
    ],
)
def test_bad_array_indices(old, new, message) -> None:
    with pytest.raises(SclError, match=r"<scl>:\d+: .*" + message):
        load_scl(variant(old, new))


def test_sdo_count_is_an_array_of_data_objects(model) -> None:
    har = model.read("FID1CTRL/MMXU1.Har.phsAHar", "MX")
    assert [e["cVal"]["mag"]["f"] for e in har] == [0.0, 0.25, 0.0]
    td = type_description(model.find("FID1CTRL/MMXU1.Har", "MX"), "MX")
    first = td.choice.components.sequence[0]
    assert td_kind(td) == "structure" and first.component_name == "phsAHar"
    har_td = first.component_type.choice
    assert td_kind(har_td) == "array" and har_td.choice.number_of_elements == 3


def test_timestamp_val(model) -> None:
    t = model.read("FID1CTRL/XCBR1.Pos.t", "ST")
    assert t == Timestamp(1714564800, 1 << 23)  # 2024-05-01T12:00:00.5Z
    m = load_scl(variant("2024-05-01T12:00:00.5Z", "2024-05-01T14:00:00+02:00"))
    assert m.read("FID1CTRL/XCBR1.Pos.t", "ST") == Timestamp(1714564800, 0)
    for bad in ("yesterday", "2024-13-01T00:00:00Z", "1969-12-31T23:59:59Z"):
        with pytest.raises(SclError, match="bad Val for t"):
            load_scl(variant("2024-05-01T12:00:00.5Z", bad))


# ---------------------------------------------------------------- refusals with file:line


@pytest.mark.parametrize(
    "old,new,culprit,message",
    [
        ('<Val sGroup="2">200.0</Val>', '<Val sGroup="3">200.0</Val>', 'sGroup="3"',
         "sGroup=3 beyond numOfSGs=2"),
        ('<DAI name="vals" ix="0"><Val>', '<DAI name="vals" ix="0"><Val sGroup="1">',
         'sGroup="1">10', "only SG/SE attributes have groups"),
        ('<LN lnClass="XCBR" lnType="F_XCBR" inst="1">', '<LN lnClass="XCBR" lnType="F_XCBR">',
         '<LN lnClass="XCBR" lnType="F_XCBR">', "LN XCBR without inst"),
        ('<ConfDataSet max="3" maxAttributes="4"/>', '<ConfDataSet max="1" maxAttributes="4"/>',
         '<DataSet name="Currents">', "more than 1 data sets"),
        ('<ConfDataSet max="3" maxAttributes="4"/>', '<ConfDataSet max="3" maxAttributes="0"/>',
         "<ConfDataSet", "maxAttributes as a positive integer"),
        ('<ConfReportControl max="3"/>', '<ConfReportControl max="2"/>',
         '<ReportControl name="urcbTrip"', "more than 2 report control block instances"),
        ('<ConfReportControl max="3"/>', '<ConfReportControl max="3" bufMode="unbuffered"/>',
         '<ReportControl name="brcbTrip"', "bufMode='unbuffered'"),
        ('<GOOSE max="2"/>', '<GOOSE max="0"/>', '<GOOSE max="0"/>', "max as a positive"),
        ('<SMVsc max="1"/>', '<SMVsc max="1"/><FileHandling/>', "", None),
        # (lxml gives the line where a multi-line start tag ends)
        ('rptID="Fix"', 'rptID="Sometimes"', "resvTms=\"true\" owner", "rptID='Sometimes'"),
        ('<P type="APPID">3A01</P>', '<P type="APPID">13A01</P>', "13A01", "APPID"),
        ('<P type="VLAN-PRIORITY">6</P>', '<P type="VLAN-PRIORITY">8</P>', ">8<",
         "VLAN-PRIORITY"),
        ("01-0C-CD-01-00-2A", "01:0C:CD:01:00:2A", "01:0C", "MAC-Address"),
        ('<MinTime unit="s" multiplier="m">4</MinTime>',
         '<MinTime unit="s" multiplier="k">4</MinTime>', 'multiplier="k"', "MinTime"),
        ('confRev="1"/>', 'confRev="4294967296"/>', 'confRev="4294967296"', "GSEControl"),
        ('<LDevice inst="CTRL">', '<LDevice inst="CTRL" ldName="9CTRL">', "9CTRL",
         "not an MMS Identifier"),
    ],
)  # fmt: skip
def test_scl_problems_name_file_and_line(tmp_path, old, new, culprit, message) -> None:
    text = TEXT.replace(old, new, 1)
    assert text != TEXT
    path = tmp_path / "ied.cid"
    path.write_text(text)
    if message is None:  # the control: the variant itself is fine
        load_scl(path)
        return
    with pytest.raises(SclError) as err:
        load_scl(path)
    assert re.search(message, str(err.value)), str(err.value)
    assert str(err.value).startswith(f"{path}:{line_of(text, culprit)}: "), str(err.value)
    assert type(err.value) is SclError


def test_duplicate_do_in_lnodetype_is_an_scl_error() -> None:
    text = TEXT.replace('<DO name="OpCnt" type="F_INS"/>', '<DO name="Pos" type="F_INS"/>', 1)
    with pytest.raises(SclError, match=r"<scl>:\d+: LNodeType F_XCBR: two DOs named Pos"):
        load_scl(text.encode())


def test_scl_control_of_the_refusals(model) -> None:
    # the test file itself is within every limit it declares
    assert model.limits.max_associations == 4
    assert (model.limits.dyn_datasets_max, model.limits.dyn_dataset_attributes) == (2, 3)


# ---------------------------------------------------------------- Services online


def test_report_settings_shape_and_writability(model) -> None:
    brcb = model.find("FID1CTRL/LLN0.brcbTrip01", "BR")
    assert {"ResvTms", "Owner"} <= set(brcb.children)  # resvTms / owner "true"
    # Dyn: writable while disabled; Fix (rptID) and Conf are not changed online
    assert "DatSet" in brcb.writable_when_disabled and "TrgOps" in brcb.writable_when_disabled
    assert "RptID" not in brcb.writable_when_disabled
    with pytest.raises(Exception) as err:
        model.write(brcb.children["RptID"], "BR", "x")
    assert err.value.code == DataAccessError.OBJECT_ACCESS_DENIED
    m = load_scl(variant('resvTms="true" owner="true"', ""))
    brcb = m.find("FID1CTRL/LLN0.brcbTrip01", "BR")
    assert "ResvTms" not in brcb.children and "Owner" not in brcb.children
    assert "Owner" not in m.find("FID1CTRL/LLN0.urcbTrip", "RP").children


def test_dyn_data_set_limits_online() -> None:
    svc = ServerServices(load_scl(FIDELITY))
    assoc = AssociationCore(InitiateParams()).accept("c@t.local/x", "1", InitiateParams())
    member = ("domain-specific", "FID1CTRL", "XCBR1$ST$Pos")
    with pytest.raises(ServiceError, match="maxAttributes") as err:
        svc.define_named_variable_list(assoc, ("aa-specific", "big"), [member] * 4)
    assert err.value.code == "capability-unavailable"
    svc.define_named_variable_list(assoc, ("aa-specific", "one"), [member] * 3)
    svc.define_named_variable_list(assoc, ("domain-specific", "FID1CTRL", "LLN0$Two"), [member])
    with pytest.raises(ServiceError, match="DynDataSet max") as err:
        svc.define_named_variable_list(assoc, ("aa-specific", "three"), [member])
    assert err.value.code == "capability-unavailable"
    # an IED whose Services have no DynDataSet offers no CreateDataSet
    svc = ServerServices(load_scl(variant('<DynDataSet max="2" maxAttributes="3"/>', "")))
    with pytest.raises(ServiceError, match="no DynDataSet") as err:
        svc.define_named_variable_list(assoc, ("aa-specific", "x"), [member])
    assert err.value.code == "object-access-unsupported"


# ---------------------------------------------------------------- GoCB / MSVCB


def test_gocb_and_msvcb_addresses_from_communication(model) -> None:
    gocb = model.read("FID1CTRL/LLN0.gcbTrip", "GO")
    assert gocb["DstAddress"] == {
        "Addr": bytes.fromhex("010CCD01002A"),
        "PRIORITY": 6,
        "VID": 0x05F,
        "APPID": 0x3A01,
    }
    assert (gocb["MinTime"], gocb["MaxTime"]) == (4, 2000)
    assert list(gocb)[-4:] == ["DstAddress", "MinTime", "MaxTime", "FixedOffs"]  # 8-1 order
    msvcb = model.read("FID1CTRL/LLN0.msvcbI", "MS")
    assert msvcb["DstAddress"] == {
        "Addr": bytes.fromhex("010CCD040001"),
        "PRIORITY": 4,
        "VID": 0,
        "APPID": 0x4001,
    }
    assert list(msvcb)[-3:] == ["SmpMod", "DstAddress", "noASDU"]
    # MaxTime in seconds (no multiplier) is converted to ms
    m = load_scl(variant('<MaxTime unit="s" multiplier="m">2000</MaxTime>', "<MaxTime>2</MaxTime>"))
    assert m.read("FID1CTRL/LLN0.gcbTrip.MaxTime", "GO") == 2000
    # read-only online
    with pytest.raises(Exception) as err:
        model.write(model.find("FID1CTRL/LLN0.gcbTrip.DstAddress.APPID", "GO"), "GO", 1)
    assert err.value.code == DataAccessError.OBJECT_ACCESS_DENIED


def test_gocb_without_gse_entry_has_zero_address() -> None:
    gocb = load_scl(DATA / "feeder.scd").read("FDR1LD0/LLN0.gcbStatus", "GO")
    assert gocb["DstAddress"] == {"Addr": b"\x00" * 6, "PRIORITY": 0, "VID": 0, "APPID": 0}
    assert (gocb["MinTime"], gocb["MaxTime"]) == (0, 0)


def test_services_bound_the_server(tmp_path) -> None:
    from gridbind.iec61850.server import IedServer
    from gridbind.iec61850.xmpp import XmppSettings

    ca = tmp_path / "ca.pem"
    ca.write_text("not read before start()")
    settings = XmppSettings(jid="fid1@test.local", ca_file=ca)
    assert IedServer(load_scl(FIDELITY), settings).core.max_associations == 4  # SCL max
    assert IedServer(load_scl(DATA / "breaker.icd"), settings).core.max_associations == 64
    # no FileHandling in fidelity.cid's Services: no file services offered, files_root or not
    offered = IedServer(load_scl(FIDELITY), settings, files_root=tmp_path).core.local.services
    assert "fileOpen" not in offered and "obtainFile" not in offered and "read" in offered
    offered = IedServer(load_scl(DATA / "breaker.icd"), settings, files_root=tmp_path)
    assert "fileOpen" in offered.core.local.services
