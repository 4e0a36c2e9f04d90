"""Per-PDU cost of the IEC 62351-4 E2E layer on the stanza path (not part of pytest).

Run: ``.venv/bin/python bench/e2e.py [--seconds 2] [--rounds 7] [--profile MODE]`` or
``.venv/bin/python bench/e2e.py --xmpp [--requests 1000] [--rounds 5]``

For each E2E mode (off, authenticated HMAC-SHA256, encrypted AES-128-GCM, encrypted AES-128-CBC +
HMAC) it measures, without a network, what the 8-2 cores do to one PDU between the sender's
object and the receiver's object: ``seal``, the gate's ``payload_element`` (encode, validate,
copy into ``xml.etree``), ``to_bytes`` (the wire), the gate's validating decode and ``open``.
It does so for a GetDataValues request and its one-value response (the exchange of
``bench/iec_xmpp.py``) and for a 50-value read response (~4 KB). Printed: microseconds per
exchange or PDU (median of rounds), the E2E cost relative to E2E off, and ``seal`` + ``open``
alone. ``--profile auth`` (or ``encr``, ``cbc``, ``off``) runs cProfile on that mode instead.

``--xmpp`` runs the GetDataValues of ``bench/iec_xmpp.py`` through a private Prosody with E2E
off, authenticated and encrypted (one IED/client pair each, in this process, rounds interleaved)
and reports this process's CPU time per request: on a shared machine it is steadier than
throughput, and the process (IED and client) is what limits the throughput of that benchmark,
so ``1 - CPU(off) / CPU(mode)`` estimates the throughput cost of issue 12 (Prosody's share, the
same in every mode but for the longer hex text of the encrypted envelope, is not counted).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_envelope import sessions  # noqa: E402

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m  # noqa: E402
from gridbind.iec61850 import mms, mmsdata  # noqa: E402
from gridbind.iec61850.codec import default_codec  # noqa: E402
from gridbind.iec61850.e2e import Mode  # noqa: E402
from gridbind.iec61850.envelope import ClearContext  # noqa: E402
from gridbind.iec61850.stanza import (  # noqa: E402
    Received,
    decode_payload,
    payload_element,
    to_bytes,
    unwrap,
)

from xer import read_response  # noqa: E402

MODES = {
    "off": ("E2E off", None, None),
    "auth": ("authenticated HMAC-SHA256", Mode.AUTHENTICATED, "aes-128-gcm"),
    "encr": ("encrypted AES-128-GCM", Mode.ENCRYPTED, "aes-128-gcm"),
    "cbc": ("encrypted AES-128-CBC+HMAC", Mode.ENCRYPTED, "aes-128-cbc"),
}


def small_pair() -> tuple[m.Mmspdu, m.Mmspdu]:
    request = mms.confirmed_request(1, mms.read(mms.dom("BENCHLD", "GGIO1$MX$AnIn1$mag$f")))
    response = m.Mmspdu(
        choice=m.ConfirmedResponsePdu(
            invoke_id=1,
            service=m.ConfirmedServiceResponse(
                choice=m.ReadResponse(
                    list_of_access_result=m.ListOfAccessResult(
                        access_result=[m.AccessResult(choice=mmsdata.float32(0.0))]
                    )
                )
            ),
        )
    )
    return request, response


def layers(mode: str):
    """(sender layer, receiver layer) of one established association of ``mode``."""
    _, e2e_mode, cipher = MODES[mode]
    if e2e_mode is None:
        return ClearContext("ied@bench.local/IEC", "1"), ClearContext("client@bench.local/IEC", "1")
    return sessions(e2e_mode, cipher)


def one_way(gate, sender, receiver, pdu):
    """sender object -> stanza element -> bytes -> gate -> receiver object (as the cores do;
    the XMPP library's own serialising and parsing is stood in for by to_bytes/ET)."""
    now = time.time()
    element = payload_element(sender.seal(pdu, now), gate)
    iq = ET.Element("{jabber:client}iq")
    iq.append(ET.fromstring(to_bytes(element)))
    received = decode_payload(unwrap(iq), gate, Received("iq", "get", "peer@b.local/IEC", "1"))
    assert received.error is None, received.error
    return receiver.open(received.payload, now)


def timed(step, seconds: float) -> float:
    """Process CPU microseconds per call of ``step`` over about ``seconds`` (CPU time: another
    process taking the core does not count)."""
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        step()
        n += 1
    return (time.process_time() - t0) / n * 1e6


def steps(mode: str):
    gate = default_codec()
    request, response = small_pair()
    big = read_response()
    client, ied = layers(mode)

    def exchange() -> None:
        one_way(gate, client, ied, request)
        one_way(gate, ied, client, response)

    def big_one() -> None:
        one_way(gate, ied, client, big)

    def seal_open() -> None:
        now = time.time()
        ied.open(client.seal(request, now), now)
        client.open(ied.seal(response, now), now)

    return exchange, big_one, seal_open


async def _xmpp(args: argparse.Namespace, server) -> dict[str, list[tuple[float, float]]]:
    import asyncio

    from iec_xmpp import bench_scl, throughput

    from gridbind.iec61850.client import Client
    from gridbind.iec61850.e2e import E2EConfig
    from gridbind.iec61850.e2e_certs import make_ca, make_e2e_certificate
    from gridbind.iec61850.scl import load_scl
    from gridbind.iec61850.server import IedServer
    from gridbind.iec61850.xmpp import XmppSettings

    def settings(user: str) -> XmppSettings:
        server.register(user, "bench")
        return XmppSettings(
            jid=f"{user}@{server.domain}", password="bench", ca_file=server.ca_cert,
            host="127.0.0.1", port=server.c2s_port, sasl_mechanism="PLAIN", request_timeout=60,
        )  # fmt: skip

    ca = make_ca("bench E2E CA")

    def e2e(user: str, mode: Mode | None) -> E2EConfig | None:
        if mode is None:
            return None
        leaf = make_e2e_certificate(ca, f"{user}@{server.domain}")
        return E2EConfig(
            mode, certificate=leaf.certificate, private_key=leaf.key,
            trust_anchors=(ca.certificate,),
        )  # fmt: skip

    pairs = {}
    for key in ("off", "auth", "encr"):
        mode = MODES[key][1]
        ied = IedServer(
            load_scl(bench_scl()), settings(f"ied-{key}"), max_outstanding=64,
            e2e=e2e(f"ied-{key}", mode),
        )  # fmt: skip
        client = Client(
            settings(f"client-{key}"), max_outstanding=64, e2e=e2e(f"client-{key}", mode)
        )
        await asyncio.gather(ied.start(), client.connect())
        pairs[key] = (ied, client, await client.associate(ied.jid))

    def caller(assoc):
        async def call() -> None:
            assert await assoc.get_data_values("BENCHLD/GGIO1.AnIn1.mag.f", "MX") == 0.0

        return call

    calls = {key: caller(assoc) for key, (_, _, assoc) in pairs.items()}
    for call in calls.values():
        for _ in range(50):
            await call()
    out: dict[str, list[tuple[float, float]]] = {key: [] for key in calls}
    for _ in range(args.rounds):
        for key, call in calls.items():
            t0 = time.process_time()
            rate = await throughput(call, args.requests, 32)
            out[key].append(((time.process_time() - t0) / args.requests * 1e6, rate))
    for ied, client, _ in pairs.values():
        await asyncio.gather(client.close(), ied.close())
    return out


def xmpp_main(args: argparse.Namespace) -> None:
    import asyncio

    from gridbind.iec61850.prosody import Prosody, prosody_available

    if not prosody_available():
        raise SystemExit("Prosody is not installed (Debian: apt-get install prosody)")
    with Prosody(domain="bench.local") as server:
        out = asyncio.run(_xmpp(args, server))
    print(
        f"GetDataValues through Prosody, {args.requests} requests x {args.rounds} rounds "
        "(32 in flight): this process's CPU per request, throughput; medians"
    )
    for key, rounds in out.items():
        cpu = statistics.median(r[0] for r in rounds)
        rate = statistics.median(r[1] for r in rounds)
        line = f"  {MODES[key][0]:28s} {cpu:7.0f} us CPU {rate:7.0f} req/s"
        if key != "off":
            by_cpu = statistics.median(
                1 - o[0] / r[0] for r, o in zip(rounds, out["off"], strict=True)
            )
            by_rate = statistics.median(
                1 - r[1] / o[1] for r, o in zip(rounds, out["off"], strict=True)
            )
            line += f"   cost: {by_cpu:4.0%} by CPU, {by_rate:4.0%} by req/s"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per mode and measurement")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", choices=tuple(MODES), help="cProfile this mode's exchange")
    parser.add_argument("--xmpp", action="store_true", help="through Prosody (see above)")
    parser.add_argument("--requests", type=int, default=1000, help="--xmpp: requests per round")
    args = parser.parse_args()
    if args.xmpp:
        xmpp_main(args)
        return
    if args.profile:
        exchange, big_one, _ = steps(args.profile)
        for _ in range(200):
            exchange()
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(3000):
            exchange()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(35)
        return
    built = {mode: steps(mode) for mode in MODES}
    for fns in built.values():
        for _ in range(100):
            fns[0]()
    # Rounds alternate the modes so that load from other processes hits them alike; each
    # cost is the median over rounds of the ratio to E2E off measured in the same round.
    per: dict[str, list[tuple[float, float, float]]] = {mode: [] for mode in MODES}
    slot = args.seconds / args.rounds
    for _ in range(args.rounds):
        for mode, (exchange, big_one, seal_open) in built.items():
            per[mode].append(
                (
                    timed(exchange, slot),
                    timed(big_one, slot),
                    timed(seal_open, slot) if mode != "off" else 0.0,
                )
            )
    print("CPU us per GetDataValues exchange (request + response) and per 4 KB read response")
    print(f"(median of {args.rounds} rounds; cost = median ratio to E2E off in the same round;")
    print(" seal+open = the E2E layer alone, one exchange)")
    for mode, rounds in per.items():
        x = statistics.median(r[0] for r in rounds)
        b = statistics.median(r[1] for r in rounds)
        so = statistics.median(r[2] for r in rounds)
        cx = statistics.median(r[0] / o[0] - 1 for r, o in zip(rounds, per["off"], strict=True))
        cb = statistics.median(r[1] / o[1] - 1 for r, o in zip(rounds, per["off"], strict=True))
        print(
            f"  {MODES[mode][0]:28s} exchange {x:7.1f} us ({cx:+5.0%})"
            f"   4 KB {b:7.1f} us ({cb:+5.0%})   seal+open {so:6.1f} us"
        )


if __name__ == "__main__":
    main()
