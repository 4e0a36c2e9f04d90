"""Reading X.693's literal forms as an option (DECISIONS.md 34); writing stays as the schema says."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gridbind.iec61850 import codec

pytestmark = pytest.mark.timeout(60)

NS = codec.SCSM_NS
CODECS = {
    "fast": codec.Codec(fast=True),
    "xsdata": codec.Codec(fast=False),
    "lenient-default": codec.Codec(lenient_x693=True),
}


def response(service: str) -> bytes:
    return (
        f'<MMSpdu xmlns="{NS}"><confirmed-ResponsePDU><invokeID>9</invokeID><service>'
        f"{service}</service></confirmed-ResponsePDU></MMSpdu>"
    ).encode()


#: (X.693 literal form, the schema's form) pairs.
PAIRS = {
    "value list and <true/>": (
        response(
            "<read><listOfAccessResult><success><boolean><true/></boolean></success>"
            "<failure><object-non-existent/></failure><success><structure><boolean><false/>"
            "</boolean><integer>3</integer></structure></success></listOfAccessResult></read>"
        ),
        response(
            "<read><listOfAccessResult><AccessResult><success><boolean>true</boolean></success>"
            "</AccessResult><AccessResult><failure><object-non-existent/></failure>"
            "</AccessResult><AccessResult><success><structure><Data><boolean>false</boolean>"
            "</Data><Data><integer>3</integer></Data></structure></success></AccessResult>"
            "</listOfAccessResult></read>"
        ),
    ),
    "write response": (
        response("<write><success/><failure><object-access-denied/></failure></write>"),
        response(
            "<write><CHOICE><success/></CHOICE><CHOICE><failure><object-access-denied/>"
            "</failure></CHOICE></write>"
        ),
    ),
    "moreFollows and mixed forms": (
        response(
            "<getNameList><listOfIdentifier><Identifier>LD0</Identifier></listOfIdentifier>"
            "<moreFollows>\n  <false/>\n</moreFollows></getNameList>"
        ),
        response(
            "<getNameList><listOfIdentifier><Identifier>LD0</Identifier></listOfIdentifier>"
            "<moreFollows>false</moreFollows></getNameList>"
        ),
    ),
    "nested arrays": (
        response(
            "<read><listOfAccessResult><AccessResult><success><array><array><unsigned>1"
            "</unsigned></array><Data><array/></Data></array></success></AccessResult>"
            "</listOfAccessResult></read>"
        ),
        response(
            "<read><listOfAccessResult><AccessResult><success><array><Data><array><Data>"
            "<unsigned>1</unsigned></Data></array></Data><Data><array/></Data></array></success>"
            "</AccessResult></listOfAccessResult></read>"
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("path", ["fast", "xsdata"])
def test_literal_forms_read_only_when_asked(path, name):
    c = CODECS[path]
    literal, schema_form = PAIRS[name]
    with pytest.raises(codec.SchemaViolation):
        c.decode_pdu(literal)
    expected = c.decode_pdu(schema_form)
    for form in (literal, etree.fromstring(literal)):
        assert c.decode_pdu(form, lenient_x693=True) == expected
    assert codec.decode_pdu(literal, lenient_x693=True) == expected
    # Writing stays as the schema says.
    assert c.encode(c.decode_pdu(literal, lenient_x693=True)) == c.encode(expected)
    assert b"<true/>" not in c.encode(expected) and b"<false/>" not in c.encode(expected)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_codec_wide_setting(name):
    literal, schema_form = PAIRS[name]
    lenient = CODECS["lenient-default"]
    assert lenient.decode_pdu(literal) == lenient.decode_pdu(schema_form)
    with pytest.raises(codec.SchemaViolation):
        lenient.decode_pdu(literal, lenient_x693=False)


@pytest.mark.parametrize(
    "body",
    [
        # still one CHOICE alternative per item, still schema-checked after the rewrite
        "<read><listOfAccessResult><success><boolean><true/><false/></boolean></success>"
        "</listOfAccessResult></read>",
        "<read><listOfAccessResult><success><boolean><maybe/></boolean></success>"
        "</listOfAccessResult></read>",
        "<read><listOfAccessResult><bogus/></listOfAccessResult></read>",
        "<read><listOfAccessResult><success><integer><true/></integer></success>"
        "</listOfAccessResult></read>",
    ],
)
def test_lenient_reading_still_validates(body):
    with pytest.raises(codec.SchemaViolation):
        codec.decode_pdu(response(body), lenient_x693=True)


def test_lenient_reading_keeps_the_guards():
    with pytest.raises(codec.ForbiddenXml):
        codec.decode_pdu(b'<!DOCTYPE x [<!ENTITY a "b">]>' + response(""), lenient_x693=True)
    deep = "<array>" * 200 + "</array>" * 200
    with pytest.raises(codec.LimitExceeded):
        codec.decode_pdu(
            response(
                f"<read><listOfAccessResult><success>{deep}</success>"
                "</listOfAccessResult></read>"
            ),
            lenient_x693=True,
        )
    with pytest.raises(codec.MalformedXml):
        codec.decode_pdu(response("<read>"), lenient_x693=True)
    big = codec.Codec(codec.Limits(max_bytes=200))
    with pytest.raises(codec.LimitExceeded):
        big.decode_pdu(PAIRS["value list and <true/>"][0], lenient_x693=True)


def test_forms_come_from_the_schema():
    forms = codec.default_codec().literal_forms()
    tag = f"{{{NS}}}listOfAccessResult"
    assert forms.lists[tag] == [
        (f"{{{NS}}}AccessResult", frozenset({f"{{{NS}}}failure", f"{{{NS}}}success"}))
    ]
    assert f"{{{NS}}}moreFollows" in forms.booleans
    assert f"{{{NS}}}integer" not in forms.booleans


# ---- fuzz: the lenient path only ever answers a value or a CodecError ------------------------

_TAGS = ["success", "failure", "AccessResult", "Data", "boolean", "true", "false", "structure",
         "array", "integer", "CHOICE", "write", "listOfAccessResult", "moreFollows", "bogus"]  # fmt: skip


def _xml(tree) -> str:
    if isinstance(tree, str):
        return tree.replace("&", "&amp;").replace("<", "&lt;")
    tag, children = tree
    return f"<{tag}>{''.join(_xml(c) for c in children)}</{tag}>"


_trees = st.recursive(
    st.sampled_from(["", "true", "1", "x", " "]),
    lambda inner: st.tuples(st.sampled_from(_TAGS), st.lists(inner, max_size=4)),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(tree=_trees)
def test_lenient_fuzz(tree):
    data = response(f"<read><listOfAccessResult>{_xml(tree)}</listOfAccessResult></read>")
    for c in (CODECS["fast"], CODECS["xsdata"]):
        try:
            pdu = c.decode_pdu(data, lenient_x693=True)
        except codec.CodecError:
            continue
        # whatever is accepted encodes in the schema's form and reads back strictly
        assert c.decode_pdu(c.encode(pdu)) == pdu


def test_lenient_reading_of_a_tree_with_comments():
    literal, schema_form = PAIRS["value list and <true/>"]
    tree = etree.fromstring(literal)
    boolean = tree.find(f".//{{{NS}}}boolean")
    boolean.insert(0, etree.Comment("peer's note"))
    boolean.append(etree.Comment("another"))
    # a comment next to <true/> is not a value: refused, never a crash
    with pytest.raises(codec.SchemaViolation):
        codec.decode_pdu(tree, lenient_x693=True)
    only_comment = etree.fromstring(literal)
    boolean = only_comment.find(f".//{{{NS}}}boolean")
    boolean.remove(boolean[0])
    boolean.append(etree.Comment("no value"))
    with pytest.raises(codec.SchemaViolation):
        codec.decode_pdu(only_comment, lenient_x693=True)
    tree = etree.fromstring(literal)
    tree.find(f".//{{{NS}}}listOfAccessResult").insert(0, etree.Comment("list note"))
    assert codec.decode_pdu(tree, lenient_x693=True) == codec.decode_pdu(schema_form)
