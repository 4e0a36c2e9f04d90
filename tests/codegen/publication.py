"""A stand-in for the official IEC 61850-8-2 code component, made from the authored XSDs.

:func:`build_zip` writes ``IEC_61850-8-2.2018_ed1.0.XSD.2018A1.full.zip`` the way a publication
changes a schema: one optional element added to ``Initiate-RequestPDU``, one alternative added to
the ``Data`` CHOICE, a complex type renamed, a restriction tightened, the files inside a
sub-folder of the zip, and an extra XSD of an unrelated namespace next to them. ``breaking=True``
also renames an element the hand-written runtime relies on (``alternateAccess`` of a variable
definition), which regeneration must report by class and field; ``breaking="cardinality"``
repeats that element instead (same name, a list now).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

ZIP_NAME = "IEC_61850-8-2.2018_ed1.0.XSD.2018A1.full.zip"
TOP = "IEC_61850-8-2.2018_ed1.0.XSD.2018A1"
UNRELATED = """\
<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           targetNamespace="http://www.iec.ch/61850/2018/SCSM_8_2/Extras"
           xmlns="http://www.iec.ch/61850/2018/SCSM_8_2/Extras"
           elementFormDefault="qualified">
  <xs:element name="ToolInfo">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="vendor" type="xs:string"/>
        <xs:element name="revision" type="xs:int" minOccurs="0"/>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""


def _edit(text: str, old: str, new: str, count: int = 1) -> str:
    assert text.count(old) == count, f"{old!r} occurs {text.count(old)} times, not {count}"
    return text.replace(old, new)


def published_scsm(text: str, breaking: bool | str = False) -> str:
    """SCSM_8_2.xsd as the publication changes it."""
    text = _edit(
        text,
        '      <xs:element name="proposedDataStructureNestingLevel" type="Integer8" minOccurs="0"/>\n',
        '      <xs:element name="proposedDataStructureNestingLevel" type="Integer8" minOccurs="0"/>\n'
        '      <xs:element name="proposedSecurityProfile" type="Identifier" minOccurs="0"/>\n',
    )
    text = _edit(
        text,
        '      <xs:element name="utc-time" type="UtcTime"/>\n    </xs:choice>',
        '      <xs:element name="utc-time" type="UtcTime"/>\n'
        '      <xs:element name="generalized-time" type="GeneralizedTime"/>\n    </xs:choice>',
    )
    text = _edit(text, 'name="FileAttributes"', 'name="FileAttributesType"')
    text = _edit(text, 'type="FileAttributes"', 'type="FileAttributesType"', count=2)
    if breaking == "cardinality":
        text = _edit(
            text,
            '<xs:element name="alternateAccess" type="AlternateAccess" minOccurs="0"/>',
            '<xs:element name="alternateAccess" type="AlternateAccess" minOccurs="0"'
            ' maxOccurs="unbounded"/>',
        )
    elif breaking:
        text = _edit(
            text,
            '<xs:element name="alternateAccess" type="AlternateAccess" minOccurs="0"/>',
            '<xs:element name="accessPath" type="AlternateAccess" minOccurs="0"/>',
        )
    return text


def published_e2e(text: str) -> str:
    """E2E_4.xsd as the publication changes it: a certificate is at most 16384 octets."""
    return _edit(
        text,
        "<xs:documentation>DER X.509 certificate (hex).</xs:documentation></xs:annotation>\n"
        '    <xs:restriction base="xs:hexBinary">\n      <xs:minLength value="1"/>\n',
        "<xs:documentation>DER X.509 certificate (hex).</xs:documentation></xs:annotation>\n"
        '    <xs:restriction base="xs:hexBinary">\n      <xs:minLength value="1"/>\n'
        '      <xs:maxLength value="16384"/>\n',
    )


def build_zip(xsd_dir: Path, target_dir: Path, breaking: bool | str = False) -> Path:
    """The stand-in code component in ``target_dir``, made from ``SCSM_8_2.xsd``/``E2E_4.xsd``
    of ``xsd_dir``."""
    scsm = published_scsm((xsd_dir / "SCSM_8_2.xsd").read_text(encoding="utf-8"), breaking)
    e2e = published_e2e((xsd_dir / "E2E_4.xsd").read_text(encoding="utf-8"))
    target = Path(target_dir) / ZIP_NAME
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(f"{TOP}/README.txt", "IEC 61850-8-2 code component (test stand-in)\n")
        bundle.writestr(f"{TOP}/schemas/SCSM_8_2.xsd", scsm)
        bundle.writestr(f"{TOP}/schemas/E2E_4.xsd", e2e)
        bundle.writestr(f"{TOP}/extras/Extras.xsd", UNRELATED)
    return target


#: File names and namespace year of a later edition (:func:`renamed_edition`).
EDITION_FILES = {
    "SCSM_8_2.xsd": "IEC61850-8-2_2020_SCSM.xsd",
    "E2E_4.xsd": "IEC62351-4_2020_E2E.xsd",
}
EDITION_NAMESPACES = {
    "http://www.iec.ch/61850/2018/SCSM_8_2": "http://www.iec.ch/61850/2020/SCSM_8_2",
    "http://www.iec.ch/62351/2018/E2E_4": "http://www.iec.ch/62351/2020/E2E_4",
}


def renamed_edition(files: dict[str, bytes]) -> dict[str, bytes]:
    """A schema set as a later edition might publish it: renamed files, a new namespace year."""
    out = {}
    for rel, data in files.items():
        text = data.decode("utf-8")
        for old, new in {**EDITION_NAMESPACES, **EDITION_FILES}.items():
            text = text.replace(old, new)
        name = rel.rsplit("/", 1)[-1]
        out[f"schemas/{EDITION_FILES.get(name, name)}"] = text.encode("utf-8")
    return out
