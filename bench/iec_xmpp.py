"""IEC 61850-8-2 over XMPP: what the 61850 layers cost next to XMPP itself.

Usage: ``.venv/bin/python bench/iec_xmpp.py [--requests 1000] [--rounds 5] [--inflight 32]``
or ``.venv/bin/python bench/iec_xmpp.py --mode reports [--reports 5000] [--seconds 10]``

Starts a private Prosody (loopback, own CA, as the tests do) and measures, through the same
server in one run:

1. raw slixmpp: an iq get carrying the same MMSpdu tree as gridbind's GetDataValues request,
   in the same ``AssociationContext`` envelope (E2E security off), echoed untouched (in the
   envelope too) by a second slixmpp client (the XMPP floor for that payload);
2. gridbind GetDataValues of one attribute (``LD/GGIO1.AnIn1.mag.f``, MX);
3. gridbind GetDataSetValues of a 50-attribute data set;
4. gridbind GetDataValues of one attribute with IEC 62351-4 E2E security authenticated
   (ClearTransfer, HMAC-SHA256) and encrypted (EncrTransfer, AES-128-GCM), each on its own
   IED/client pair (its own E2E certificates from a test CA);

each as sequential latency (median, p99) and as throughput with N requests in flight. The IED is
built from an SCL text generated here (one GGIO with 50 MV data objects and a 50-member data set).
The target of issue 6: single-attribute GetDataValues throughput >= 80% of the raw iq echo; of
issue 12: E2E encrypted GetDataValues costs <= 15% of the throughput with E2E off.

Mode ``reports`` measures reporting through the same kind of Prosody: a URCB (BufTm 0,
TrgOps dchg, one FLOAT32 member) whose member the server changes (a) as fast as it can for one
client: reports/s delivered, every one checked (the values count up: no loss, no reorder); (b)
paced at 100/s for one client: latency from the data change to the client's report callback
(median, p99); (c) 20 clients, each with its own URCB instance, at 20 changes/s each: losses
and latency. Target of issue 11: >= 500 reports/s to one client, no loss with 20 clients.

Measured figures, with the peer's from the same run: README.md, section Benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher.base import MatcherBase

from gridbind.iec61850 import mms, xmppwire
from gridbind.iec61850.client import Client
from gridbind.iec61850.codec import default_codec
from gridbind.iec61850.e2e import E2EConfig, Mode
from gridbind.iec61850.e2e_certs import make_ca, make_e2e_certificate
from gridbind.iec61850.envelope import ClearContext
from gridbind.iec61850.prosody import Prosody, prosody_available
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer
from gridbind.iec61850.stanza import ASSOC_NS, is_8_2, payload_element
from gridbind.iec61850.xmpp import IecXmpp, XmppSettings

N_ATTR = 50


class _PlainSlixmpp(IecXmpp):
    """IecXmpp's connection (TLS, SASL, XEP-0198...) with slixmpp's stanza handling as it
    comes: gridbind's own stanza paths (xmppwire's serialiser, the iq in filter) taken out."""

    def _build(self):
        client = super()._build()
        client.del_filter("in", self._take_iq)
        client.del_filter("out_sync", xmppwire.serialise)
        del client.send  # the class's own method again
        return client


class RawEcho(_PlainSlixmpp):
    """The XMPP floor: a slixmpp handler answers every 8-2 iq with its payload element,
    untouched (no gate)."""

    def _build(self):
        client = super()._build()
        client.register_handler(Callback("raw echo", _Iq82(), self._echo))
        return client

    def _echo(self, stanza) -> None:
        payload = [c for c in stanza.xml if isinstance(c.tag, str) and ASSOC_NS in c.tag]
        reply = stanza.reply(clear=True)
        reply.xml.extend(payload)
        reply.send()


class _Iq82(MatcherBase):
    """iq get/set with an 8-2 payload (the matcher gridbind's adapter used for them)."""

    def __init__(self) -> None:
        super().__init__(ASSOC_NS)

    def match(self, stanza) -> bool:
        return stanza.name == "iq" and stanza["type"] in ("get", "set") and is_8_2(stanza.xml)


class RawCaller(_PlainSlixmpp):
    """Sends a ready payload element in an iq get and waits for the answer (no gate)."""

    async def raw_request(self, to: str, element) -> None:
        iq = self._client.make_iq(ito=to, itype="get")
        iq.xml.append(element)
        await iq.send(timeout=60)


def bench_scl(n: int = N_ATTR) -> bytes:
    dos = "".join(f'<DO name="AnIn{i}" type="MV"/>' for i in range(1, n + 1))
    fcdas = "".join(
        f'<FCDA ldInst="LD" lnClass="GGIO" lnInst="1" doName="AnIn{i}" daName="mag.f" fc="MX"/>'
        for i in range(1, n + 1)
    )
    return f"""<SCL xmlns="http://www.iec.ch/61850/2003/SCL">
  <IED name="BENCH"><AccessPoint name="AP"><Server><LDevice inst="LD">
    <LN0 lnClass="LLN0" lnType="LLN0"><DataSet name="All">{fcdas}</DataSet></LN0>
    <LN lnClass="GGIO" inst="1" lnType="GGIO"/>
  </LDevice></Server></AccessPoint></IED>
  <DataTypeTemplates>
    <LNodeType id="LLN0" lnClass="LLN0"><DO name="Beh" type="MV"/></LNodeType>
    <LNodeType id="GGIO" lnClass="GGIO">{dos}</LNodeType>
    <DOType id="MV" cdc="MV"><DA name="mag" bType="Struct" type="AV" fc="MX"/>
      <DA name="q" bType="Quality" fc="MX"/><DA name="t" bType="Timestamp" fc="MX"/></DOType>
    <DAType id="AV"><BDA name="f" bType="FLOAT32"/></DAType>
  </DataTypeTemplates></SCL>""".encode()


def summary(name: str, latencies: list[float], rate: float) -> str:
    lat = sorted(latencies)
    median = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    return f"{name:<38} {median:8.2f} {p99:8.2f} {rate:10.0f}"


async def latencies(call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t0)
    return out


async def throughput(call, requests: int, inflight: int) -> float:
    sem = asyncio.Semaphore(inflight)

    async def one():
        async with sem:
            await call()

    t0 = time.perf_counter()
    await asyncio.gather(*[one() for _ in range(requests)])
    return requests / (time.perf_counter() - t0)


async def run(args: argparse.Namespace, server: Prosody) -> None:
    def settings(user: str) -> XmppSettings:
        server.register(user, "bench")
        return XmppSettings(
            jid=f"{user}@{server.domain}",
            password="bench",
            ca_file=server.ca_cert,
            host="127.0.0.1",
            port=server.c2s_port,
            sasl_mechanism="PLAIN",
            request_timeout=60,
        )

    # raw slixmpp iq echo: the payload travels both ways in the same AssociationContext envelope
    # as gridbind's (E2E security off), so both carry the same elements.
    echoer = RawEcho(settings("echo"))
    caller = RawCaller(settings("caller"))
    # gridbind IED and client
    ied = IedServer(load_scl(bench_scl()), settings("ied"), max_outstanding=64)
    client = Client(settings("client"), max_outstanding=64)
    await asyncio.gather(echoer.start(), caller.start(), ied.start(), client.connect())
    assoc = await client.associate(ied.jid)
    # the same with E2E security, one IED/client pair per mode
    ca = make_ca("bench E2E CA")

    def e2e(user: str, mode: Mode) -> E2EConfig:
        leaf = make_e2e_certificate(ca, f"{user}@{server.domain}")
        return E2EConfig(
            mode,
            certificate=leaf.certificate,
            private_key=leaf.key,
            trust_anchors=(ca.certificate,),
        )

    secured = {}
    for mode in (Mode.AUTHENTICATED, Mode.ENCRYPTED):
        name = mode.value[:4]
        s_ied = IedServer(
            load_scl(bench_scl()),
            settings(f"ied-{name}"),
            max_outstanding=64,
            e2e=e2e(f"ied-{name}", mode),
        )
        s_client = Client(
            settings(f"client-{name}"), max_outstanding=64, e2e=e2e(f"client-{name}", mode)
        )
        await asyncio.gather(s_ied.start(), s_client.connect())
        secured[mode] = (s_ied, s_client, await s_client.associate(s_ied.jid))
    # The echoed payload is the very GetDataValues request gridbind sends (same elements, same
    # bytes): slixmpp's cost grows with the element count, so a flat blob would flatter XMPP.
    blob = payload_element(
        ClearContext(echoer.full_jid, assoc.id).seal(
            mms.confirmed_request(1, mms.read(mms.dom("BENCHLD", "GGIO1$MX$AnIn1$mag$f"))), 0.0
        ),
        default_codec(),
    )

    async def raw_call():
        await caller.raw_request(echoer.full_jid, blob)

    async def one_attr():
        value = await assoc.get_data_values("BENCHLD/GGIO1.AnIn1.mag.f", "MX")
        assert value == 0.0

    async def dataset():
        response = await assoc.request(mms.read_list(mms.dom("BENCHLD", "LLN0$All")))
        assert len(response.list_of_access_result.access_result) == N_ATTR

    def secured_attr(mode: Mode):
        association = secured[mode][2]

        async def call():
            value = await association.get_data_values("BENCHLD/GGIO1.AnIn1.mag.f", "MX")
            assert value == 0.0

        return call

    calls = {
        "raw": raw_call,
        "one": one_attr,
        "ds": dataset,
        "auth": secured_attr(Mode.AUTHENTICATED),
        "encr": secured_attr(Mode.ENCRYPTED),
    }
    lat: dict[str, list[float]] = {k: [] for k in calls}
    rates: dict[str, list[float]] = {k: [] for k in calls}
    for call in calls.values():  # warm-up: caches, type definitions
        for _ in range(20):
            await call()
    # Rounds alternate the three so that load from other processes hits them alike.
    for _ in range(args.rounds):
        for key, call in calls.items():
            n = args.requests if key != "ds" else max(100, args.requests // 4)
            lat[key] += await latencies(call, max(50, n // 4))
            rates[key].append(await throughput(call, n, args.inflight))
    await asyncio.gather(client.close(), ied.close(), echoer.close(), caller.close())
    for s_ied, s_client, _ in secured.values():
        await asyncio.gather(s_client.close(), s_ied.close())

    names = {
        "raw": "raw slixmpp iq echo",
        "one": "gridbind GetDataValues (1 attribute)",
        "ds": f"gridbind GetDataSetValues ({N_ATTR} attrs)",
        "auth": "  ... GetDataValues, E2E authenticated",
        "encr": "  ... GetDataValues, E2E encrypted",
    }
    print(
        f"{'':38} {'median':>8} {'p99':>8} {'req/s':>10}   "
        f"(latency ms; req/s = median of {args.rounds} rounds, {args.inflight} in flight)"
    )
    for key in calls:
        print(summary(names[key], lat[key], statistics.median(rates[key])))
    ratio = statistics.median(rates["one"]) / statistics.median(rates["raw"])
    print(f"GetDataValues throughput / raw iq echo: {ratio:.0%} (target >= 80%)")
    for key, what in (("auth", "authenticated"), ("encr", "encrypted")):
        cost = 1 - statistics.median(rates[key]) / statistics.median(rates["one"])
        print(f"E2E {what} costs {cost:.0%} of GetDataValues throughput (target <= 15%)")


def report_scl(clients: int) -> bytes:
    return f"""<SCL xmlns="http://www.iec.ch/61850/2003/SCL">
  <IED name="BENCH"><AccessPoint name="AP"><Server><LDevice inst="LD">
    <LN0 lnClass="LLN0" lnType="LLN0">
      <DataSet name="Ev"><FCDA ldInst="LD" lnClass="GGIO" lnInst="1" doName="AnIn1"
        daName="mag.f" fc="MX"/></DataSet>
      <ReportControl name="rcb" datSet="Ev" bufTime="0" confRev="1">
        <TrgOps dchg="true"/><OptFields seqNum="true"/><RptEnabled max="{clients}"/>
      </ReportControl>
    </LN0>
    <LN lnClass="GGIO" inst="1" lnType="GGIO"/>
  </LDevice></Server></AccessPoint></IED>
  <DataTypeTemplates>
    <LNodeType id="LLN0" lnClass="LLN0"><DO name="Beh" type="MV"/></LNodeType>
    <LNodeType id="GGIO" lnClass="GGIO"><DO name="AnIn1" type="MV"/></LNodeType>
    <DOType id="MV" cdc="MV"><DA name="mag" bType="Struct" type="AV" fc="MX" dchg="true"/>
      <DA name="q" bType="Quality" fc="MX" qchg="true"/><DA name="t" bType="Timestamp" fc="MX"/>
    </DOType>
    <DAType id="AV"><BDA name="f" bType="FLOAT32"/></DAType>
  </DataTypeTemplates></SCL>""".encode()


class Receiver:
    """One client's report stream: the values in order and when each arrived."""

    def __init__(self, assoc) -> None:
        self.values: list[float] = []
        self.arrived: list[float] = []
        self.task = asyncio.get_running_loop().create_task(self._run(assoc))

    async def _run(self, assoc) -> None:
        async for report in assoc.report_stream():
            self.values.append(report.values[0].value)
            self.arrived.append(time.perf_counter())


async def run_reports(args: argparse.Namespace, server: Prosody) -> None:
    from gridbind.iec61850.mmsdata import OptFlds, TriggerConditions

    def settings(user: str) -> XmppSettings:
        server.register(user, "bench")
        return XmppSettings(
            jid=f"{user}@{server.domain}", password="bench", ca_file=server.ca_cert,
            host="127.0.0.1", port=server.c2s_port, sasl_mechanism="PLAIN", request_timeout=60,
        )  # fmt: skip

    n_clients = 20
    ied = IedServer(load_scl(report_scl(n_clients)), settings("ied"))
    clients = [Client(settings(f"client{i}")) for i in range(n_clients)]
    await asyncio.gather(ied.start(), *(c.connect() for c in clients))
    assocs = [await c.associate(ied.jid) for c in clients]
    ref = "BENCHLD/GGIO1.AnIn1.mag.f"
    value = 0.0
    changed: dict[float, float] = {}

    def change() -> None:
        nonlocal value
        value += 1
        changed[value] = time.perf_counter()
        ied.model.update(ref, value)

    async def enable(i: int) -> Receiver:
        rx = Receiver(assocs[i])
        await assocs[i].enable_reporting(
            f"BENCHLD/LLN0.rcb{i + 1:02d}", buffered=False,
            TrgOps=TriggerConditions.DATA_CHANGE, OptFlds=OptFlds.SEQUENCE_NUMBER,
        )  # fmt: skip
        return rx

    async def wait_for(rxs: list[Receiver], last: float, timeout: float) -> None:
        end = time.perf_counter() + timeout
        while any(not rx.values or rx.values[-1] < last for rx in rxs):
            if time.perf_counter() > end:
                return
            await asyncio.sleep(0.01)

    def check(rx: Receiver, first: float, last: float) -> tuple[int, list[float]]:
        wanted = [first + k for k in range(int(last - first) + 1)]
        got = [v for v in rx.values if first <= v <= last]
        lost = len(wanted) - len(got) if got == sorted(got) else len(wanted)
        lat = [
            t - changed[v] for v, t in zip(rx.values, rx.arrived, strict=True) if first <= v <= last
        ]
        return lost, lat

    def line(name: str, lost: int, lat: list[float], rate: float | None) -> None:
        lat = sorted(lat) or [0.0]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        shown = f"{rate:10.0f}" if rate is not None else f"{'':>10}"
        print(f"{name:<44} {statistics.median(lat) * 1000:8.2f} {p99:8.2f} {shown} {lost:6d}")

    print(f"{'':44} {'median':>8} {'p99':>8} {'reports/s':>10} {'lost':>6}   (latency ms)")
    # (a) one client, as fast as the server can change the value
    rx = await enable(0)
    first = value + 1
    t0 = time.perf_counter()
    for k in range(args.reports):
        change()
        if k % 50 == 49:
            await asyncio.sleep(0)  # the server sends between bursts
    await wait_for([rx], value, 60)
    rate = sum(1 for v in rx.values if v >= first) / (rx.arrived[-1] - t0)
    lost, lat = check(rx, first, value)
    line("1 client, unpaced", lost, lat, rate)
    # (b) one client, paced 100/s: latency without queueing
    first = value + 1
    for _ in range(int(args.seconds * 100)):
        change()
        await asyncio.sleep(0.01)
    await wait_for([rx], value, 10)
    lost, lat = check(rx, first, value)
    line("1 client, 100 reports/s", lost, lat, None)
    # (c) 20 clients, 20 changes/s each
    rxs = [rx] + [await enable(i) for i in range(1, n_clients)]
    first = value + 1
    for _ in range(int(args.seconds * 20)):
        change()
        await asyncio.sleep(0.05)
    await wait_for(rxs, value, 10)
    results = [check(r, first, value) for r in rxs]
    total = sum(len(r.values) for r in rxs)
    line(
        f"{n_clients} clients x 20 reports/s",
        sum(lost for lost, _ in results),
        [t for _, lat in results for t in lat],
        None,
    )
    print(f"({total} reports delivered in all; lost counts every missing or reordered one)")
    for r in rxs:
        r.task.cancel()
    await asyncio.gather(*(c.close() for c in clients), ied.close())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("requests", "reports"), default="requests")
    parser.add_argument("--requests", type=int, default=1000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--inflight", type=int, default=32)
    parser.add_argument("--reports", type=int, default=5000, help="reports mode: unpaced count")
    parser.add_argument("--seconds", type=float, default=10, help="reports mode: paced runs")
    args = parser.parse_args()
    if not prosody_available():
        print("Prosody is not installed (Debian: apt-get install prosody)")
        return 2
    with Prosody(domain="bench.local") as server:
        asyncio.run(run(args, server) if args.mode == "requests" else run_reports(args, server))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
