"""XER speed: gridbind codec vs plain xsdata vs a hand-written lxml codec (not part of pytest).

Run: ``.venv/bin/python bench/xer.py [--seconds 0.5]``

Two PDUs: a read response with 50 values (floats, integers, booleans, Quality bit strings,
TimeStamps; ~4 KB) and a read request of one variable. For each codec it measures
"decode" (bytes -> objects, and for gridbind + "hand+xsd" also XMLSchema validation in the same
pass) and "encode" (objects -> bytes; gridbind validates its output too) and prints microseconds
per PDU (best of several rounds, so other load on the box inflates less) and the ratio to the
hand-written lxml codec without validation. The issue's target: gridbind within 3x of hand-written.
"""

from __future__ import annotations

import argparse
import struct
import time
from collections.abc import Callable

from lxml import etree
from xsdata.formats.dataclass.context import XmlContext
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import codec, mmsdata

NS = codec.SCSM_NS
P = "{" + NS + "}"


def read_response() -> m.Mmspdu:
    values = []
    quality = mmsdata.Quality(validity=mmsdata.Validity.QUESTIONABLE, old_data=True)
    for i in range(50):
        kind = i % 5
        if kind == 0:
            values.append(mmsdata.float32(i * 1.25))
        elif kind == 1:
            values.append(mmsdata.integer(i * 1000 - 7))
        elif kind == 2:
            values.append(mmsdata.boolean(i % 2 == 0))
        elif kind == 3:
            values.append(quality.to_data())
        else:
            values.append(mmsdata.utc_time(mmsdata.Timestamp(1_714_564_800 + i, 1 << 23)))
    return m.Mmspdu(
        choice=m.ConfirmedResponsePdu(
            invoke_id=42,
            service=m.ConfirmedServiceResponse(
                choice=m.ReadResponse(
                    list_of_access_result=m.ListOfAccessResult(
                        access_result=[m.AccessResult(choice=v) for v in values]
                    )
                )
            ),
        )
    )


def read_request() -> m.Mmspdu:
    from gridbind.iec61850 import references

    entry = references.to_variable("IED1LD0/MMXU1.TotW.mag.f", "MX")
    return m.Mmspdu(
        choice=m.ConfirmedRequestPdu(
            invoke_id=42,
            service=m.ConfirmedServiceRequest(
                choice=m.ReadRequest(
                    variable_access_specification=m.VariableAccessSpecification(
                        choice=m.VariableDefs(sequence=[entry])
                    )
                )
            ),
        )
    )


# ---- the hand-written lxml codec: Python tuples <-> XER, no typed classes -------------------

_SCALARS = {
    P + "floating-point": ("float", lambda t: struct.unpack(">f", bytes.fromhex(t)[1:])[0]),
    P + "integer": ("int", int),
    P + "unsigned": ("uint", int),
    P + "boolean": ("bool", lambda t: t == "true"),
    P + "bit-string": ("bits", str),
    P + "utc-time": ("utc", bytes.fromhex),
    P + "octet-string": ("octets", bytes.fromhex),
    P + "visible-string": ("str", str),
}


def hand_decode(data: bytes, parser: etree.XMLParser) -> tuple:
    root = etree.fromstring(data, parser)
    pdu = root[0]
    invoke = int(pdu[0].text)
    service = pdu[1][0]
    if pdu.tag == P + "confirmed-RequestPDU":
        names = []
        for seq in service[-1][0]:
            dom = seq[0][0][0]
            names.append((dom[0].text, dom[1].text))
        return ("read-request", invoke, names)
    results = []
    for result in service[-1]:
        alt = result[0]
        if alt.tag == P + "success":
            value = alt[0]
            kind, convert = _SCALARS[value.tag]
            results.append((kind, convert(value.text)))
        else:
            results.append(("failure", etree.QName(alt[0]).localname))
    return ("read-response", invoke, results)


_ENCODE = {
    "float": ("floating-point", lambda v: "08" + struct.pack(">f", v).hex().upper()),
    "int": ("integer", str),
    "uint": ("unsigned", str),
    "bool": ("boolean", lambda v: "true" if v else "false"),
    "bits": ("bit-string", str),
    "utc": ("utc-time", lambda v: v.hex().upper()),
    "octets": ("octet-string", lambda v: v.hex().upper()),
    "str": ("visible-string", str),
}


def hand_encode(value: tuple) -> bytes:
    sub = etree.SubElement
    root = etree.Element(P + "MMSpdu", nsmap={None: NS})
    if value[0] == "read-request":
        pdu = sub(root, P + "confirmed-RequestPDU")
        sub(pdu, P + "invokeID").text = str(value[1])
        read = sub(sub(pdu, P + "service"), P + "read")
        lov = sub(sub(read, P + "variableAccessSpecification"), P + "listOfVariable")
        for domain, item in value[2]:
            name = sub(sub(sub(lov, P + "SEQUENCE"), P + "variableSpecification"), P + "name")
            dom = sub(name, P + "domain-specific")
            sub(dom, P + "domainId").text = domain
            sub(dom, P + "itemId").text = item
    else:
        pdu = sub(root, P + "confirmed-ResponsePDU")
        sub(pdu, P + "invokeID").text = str(value[1])
        read = sub(sub(pdu, P + "service"), P + "read")
        results = sub(read, P + "listOfAccessResult")
        for kind, item in value[2]:
            result = sub(results, P + "AccessResult")
            if kind == "failure":
                sub(sub(result, P + "failure"), P + item)
            else:
                tag, convert = _ENCODE[kind]
                sub(sub(result, P + "success"), P + tag).text = convert(item)
    return etree.tostring(root)


# ---- timing --------------------------------------------------------------------------------


def _batch(func: Callable[[], object], seconds: float) -> int:
    """Calls per measuring round so that one round takes about ``seconds``."""
    func()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < 0.02:
        func()
        n += 1
    return max(1, int(n * seconds / 0.02))


def per_call(func: Callable[[], object], seconds: float) -> float:
    """Best microseconds per call over 5 rounds of about ``seconds / 5`` each."""
    return interleaved([func], seconds)[0]


def interleaved(funcs: list[Callable[[], object]], seconds: float, rounds: int = 9) -> list[float]:
    """Best microseconds per call of each function, measured round-robin.

    The box is shared: measuring the codecs in turn, round after round, exposes all of them to
    the same background load, and the best round of each is compared.
    """
    batches = [_batch(f, seconds / rounds) for f in funcs]
    best = [float("inf")] * len(funcs)
    for _ in range(rounds):
        for i, (func, batch) in enumerate(zip(funcs, batches, strict=True)):
            t0 = time.perf_counter()
            for _ in range(batch):
                func()
            best[i] = min(best[i], (time.perf_counter() - t0) / batch)
    return [b * 1e6 for b in best]


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    opts = args.parse_args(argv)

    gb = codec.default_codec()
    context = XmlContext()
    xs_parser = XmlParser(context=context)
    xs_serializer = XmlSerializer(context=context, config=SerializerConfig(xml_declaration=False))
    plain = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    validating = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, schema=gb.schema
    )

    print(f"{'PDU':<14}{'codec':<22}{'decode us':>11}{'ratio':>7}{'encode us':>11}{'ratio':>7}")
    for label, pdu in (("read rsp x50", read_response()), ("read request", read_request())):
        data = gb.encode(pdu)
        hand_value = hand_decode(data, plain)
        assert hand_encode(hand_value) == data or label == "read request"
        assert gb.decode(data) == pdu
        assert xs_parser.from_bytes(data, m.Mmspdu) == pdu
        rows = [
            (
                "hand-written lxml",
                lambda data=data: hand_decode(data, plain),
                lambda hand_value=hand_value: hand_encode(hand_value),
            ),
            (
                "hand-written + XSD",
                lambda data=data: hand_decode(data, validating),
                lambda hand_value=hand_value: gb.schema.validate(
                    etree.fromstring(hand_encode(hand_value))
                ),
            ),
            (
                "gridbind (validating)",
                lambda data=data: gb.decode(data),
                lambda pdu=pdu: gb.encode(pdu),
            ),
            (
                "xsdata (no validation)",
                lambda data=data: xs_parser.from_bytes(data, m.Mmspdu, ns_map={}),
                lambda pdu=pdu: xs_serializer.render(pdu, ns_map={None: NS}).encode(),
            ),
        ]
        decode_us = interleaved([row[1] for row in rows], opts.seconds * len(rows))
        encode_us = interleaved([row[2] for row in rows], opts.seconds * len(rows))
        base_dec, base_enc = decode_us[0], encode_us[0]
        for (name, _, _), d_us, e_us in zip(rows, decode_us, encode_us, strict=True):
            print(
                f"{label:<14}{name:<22}{d_us:>11.1f}{d_us / base_dec:>7.1f}"
                f"{e_us:>11.1f}{e_us / base_enc:>7.1f}"
            )
        print(f"{'':<14}({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
