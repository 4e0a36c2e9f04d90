"""Appendix F metadata templates: YAML files compiled into typed record classes."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path

import pytest

from gridbind.codegen import metadata
from gridbind.codegen.errors import SpecError
from gridbind.generated.sttp import draft_0_8 as d
from gridbind.generated.sttp import templates as t

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


def test_appendix_f_tables() -> None:
    assert set(t.TEMPLATES) == {"DataPoint", "PMU", "Substation", "Phasor", "VIPair"}
    pmu = t.TEMPLATES["PMU"]
    assert pmu.TABLE_TYPE == d.TableType.Resource
    assert t.PhasorRecord.TABLE_TYPE == d.TableType.CDSM
    assert t.DataPointRecord.TABLE_TYPE == d.TableType.DataPoint
    columns = {c.name: c for c in pmu.COLUMNS}
    assert columns["ResourceID"].value_type == d.AttributeValueType.Guid
    assert not columns["ResourceID"].nullable
    assert columns["Nominal Voltage"].field == "nominal_voltage"
    assert columns["Nominal Voltage"].value_type == d.AttributeValueType.Double
    assert columns["In Service Date"].value_type == d.AttributeValueType.Ticks
    assert columns["IDCODE"].value_type == d.AttributeValueType.String
    assert t.PhasorRecord.COLUMNS[3].value_type == d.AttributeValueType.Boolean
    for record in t.TEMPLATES.values():
        for column in record.COLUMNS:
            assert 0x00 <= column.value_type <= 0x0A
            assert column.value_type in column.accepts


def test_record_rows_and_validation() -> None:
    guid = uuid.uuid4()
    station = t.SubstationRecord(resource_id=guid, name="Smith", latitude=35.1, longitude=-85)
    row = station.to_row()
    assert row == {
        "ResourceID": guid,
        "Name": "Smith",
        "Latitude": 35.1,
        "Longitude": -85,
        "TimeZone": None,
    }
    assert t.SubstationRecord.from_row(row) == station
    with pytest.raises(d.ConstraintError, match="Substation.ResourceID may not be null"):
        t.SubstationRecord(resource_id=None).validate()
    with pytest.raises(d.ConstraintError, match="Latitude is Float"):
        t.SubstationRecord(resource_id=guid, latitude="north").validate()
    with pytest.raises(d.ConstraintError, match="unknown attributes"):
        t.SubstationRecord.from_row({"ResourceID": guid, "Altitude": 3})
    with pytest.raises(d.ConstraintError, match="required attributes missing"):
        t.SubstationRecord.from_row({"Name": "x"})


def test_adding_a_template_is_adding_a_file(tmp_path: Path) -> None:
    templates = sorted((ROOT / "specs" / "sttp" / "templates").glob("*.yaml"))
    extra = tmp_path / "line.yaml"
    extra.write_text(
        "table: Line\ntable_type: Resource\ncolumns:\n"
        "  - {name: ResourceID, type: Guid, nullable: false}\n"
        "  - {name: Length Km, type: Float}\n"
        "  - {name: Energized, type: Boolean}\n"
    )
    out = metadata.generate([*templates, extra], tmp_path / "templates_out.py", ROOT)
    spec = importlib.util.spec_from_file_location("gridbind_templates_fixture", out)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    assert set(module.TEMPLATES) == set(t.TEMPLATES) | {"Line"}
    line = module.LineRecord(resource_id=uuid.uuid4(), length_km=12.5, energized=True)
    assert module.LineRecord.from_row(line.to_row()) == line
    assert [c.value_type for c in module.LineRecord.COLUMNS] == [0x07, 0x03, 0x0A]


def test_bad_template_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("table: Bad\ntable_type: Resource\ncolumns:\n  - {name: Weight, type: Heavy}\n")
    with pytest.raises(SpecError) as caught:
        metadata.generate([bad], tmp_path / "out.py", tmp_path)
    assert str(caught.value) == (
        "bad.yaml:4:columns[0].type: unknown type 'Heavy' (known: Integer, Float, Date, Time, "
        "DateTime, Duration, Boolean, Binary, String, Guid)"
    )
