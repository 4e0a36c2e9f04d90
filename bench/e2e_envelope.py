"""Cost of the IEC 62351-4 E2E envelope per PDU, without the network (not part of pytest).

Run: ``.venv/bin/python bench/e2e_envelope.py [--seconds 0.5]``

For the ~4 KB read response of ``bench/xer.py`` (50 values) it measures one PDU's way from the
sender's object to the receiver's object, as the 8-2 core does it: wrap or ``seal``, codec
encode to bytes, codec decode, unwrap or ``open``. Modes: E2E off (AssociationContext),
authenticated (ClearTransfer + HMAC-SHA256), encrypted AES-128-GCM and AES-128-CBC + HMAC. Prints
microseconds per PDU (best of several rounds) and the cost relative to E2E off; the issue's
target is that encrypted E2E costs at most 15 % of the throughput of the whole exchange, which
includes XMPP (see bench/iec_xmpp.py), so these figures are the upper bound of that share.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gridbind.generated.iec61850_8_2 import e2e_4 as e  # noqa: E402
from gridbind.iec61850 import codec  # noqa: E402
from gridbind.iec61850.e2e import E2EConfig, Initiator, Mode, Responder  # noqa: E402
from gridbind.iec61850.e2e_certs import make_ca, make_e2e_certificate  # noqa: E402

from xer import read_response  # noqa: E402

CLIENT, IED = "client@bench.local/IEC", "ied@bench.local/IEC"


def sessions(mode: Mode, cipher: str = "aes-128-gcm"):
    ca = make_ca()
    out = []
    for jid in ("client@bench.local", "ied@bench.local"):
        leaf = make_e2e_certificate(ca, jid)
        out.append(
            E2EConfig(
                mode,
                certificate=leaf.certificate,
                private_key=leaf.key,
                trust_anchors=(ca.certificate,),
                cipher=cipher,
            )
        )
    initiate = codec.decode_pdu(
        b'<MMSpdu xmlns="http://www.iec.ch/61850/2018/SCSM_8_2"><initiate-RequestPDU>'
        b"<proposedMaxServOutstandingCalling>5</proposedMaxServOutstandingCalling>"
        b"<proposedMaxServOutstandingCalled>5</proposedMaxServOutstandingCalled>"
        b"<initRequestDetail><proposedVersionNumber>1</proposedVersionNumber>"
        b"<proposedParameterCBB>11110001000</proposedParameterCBB>"
        b"<servicesSupportedCalling>" + b"1" * 85 + b"</servicesSupportedCalling>"
        b"</initRequestDetail></initiate-RequestPDU></MMSpdu>"
    )
    response = codec.decode_pdu(
        b'<MMSpdu xmlns="http://www.iec.ch/61850/2018/SCSM_8_2"><initiate-ResponsePDU>'
        b"<negotiatedMaxServOutstandingCalling>5</negotiatedMaxServOutstandingCalling>"
        b"<negotiatedMaxServOutstandingCalled>5</negotiatedMaxServOutstandingCalled>"
        b"<initResponseDetail><negotiatedVersionNumber>1</negotiatedVersionNumber>"
        b"<negotiatedParameterCBB>11110001000</negotiatedParameterCBB>"
        b"<servicesSupportedCalled>" + b"1" * 85 + b"</servicesSupportedCalled>"
        b"</initResponseDetail></initiate-ResponsePDU></MMSpdu>"
    )
    now = time.time()
    hs = Initiator(out[0], IED, "1", initiate, now)
    ied, acc = Responder(out[1]).receive(CLIENT, hs.request, now).accept(response, now)
    return hs.complete(acc, now), ied


def measure(step, seconds: float) -> float:
    best = float("inf")
    for _ in range(5):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 5:
            step()
            n += 1
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="per mode")
    args = parser.parse_args()
    pdu = read_response()

    def off() -> None:
        env = e.AssociationContext(asso_id="1", appl_data=e.ApplData(mmspdu=pdu))
        assert codec.decode(codec.encode(env)).appl_data.mmspdu is not None

    results = {"E2E off (AssociationContext)": measure(off, args.seconds)}
    for label, mode, cipher in (
        ("authenticated (HMAC-SHA256)", Mode.AUTHENTICATED, "aes-128-gcm"),
        ("encrypted AES-128-GCM", Mode.ENCRYPTED, "aes-128-gcm"),
        ("encrypted AES-128-CBC + HMAC", Mode.ENCRYPTED, "aes-128-cbc"),
    ):
        client, ied = sessions(mode, cipher)

        def step(client=client, ied=ied) -> None:
            now = time.time()
            ied.open(codec.decode(codec.encode(client.seal(pdu, now))), now)

        results[label] = measure(step, args.seconds)
    size = len(codec.encode(pdu))
    print(f"E2E envelope, one {size}-octet read response, sender object -> receiver object")
    base = results["E2E off (AssociationContext)"]
    for label, us in results.items():
        print(f"  {label:32s} {us:8.1f} us/PDU   x{us / base:4.2f}")


if __name__ == "__main__":
    main()
