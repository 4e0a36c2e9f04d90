"""IEC 61850-8-2 control services: how long an operate takes, per control model.

Usage: ``.venv/bin/python bench/iec_controls.py [--operates 300] [--prosody]``

Serves ``tests/iec61850/data/controls.icd`` and operates, sequentially, the object of each
control model (direct / SBO, normal / enhanced security), printing the median and p99 latency of
the whole client call (for SBO: Select or SelectWithValue, then Operate; for enhanced security up
to the CommandTermination) and operates per second. In memory by default (the protocol, codec and
control core without XMPP); ``--prosody`` runs the same through a private Prosody on loopback.
A figure, never a pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from gridbind.iec61850.client import Client
from gridbind.iec61850.memory import MemoryNetwork
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer

SCL = Path(__file__).resolve().parents[1] / "tests" / "iec61850" / "data" / "controls.icd"
OBJECTS = {
    "direct-normal": "CTL1CTRL/CSWI2.Pos",
    "sbo-normal": "CTL1CTRL/CSWI3.Pos",
    "direct-enhanced": "CTL1CTRL/CSWI4.Pos",
    "sbo-enhanced": "CTL1CTRL/CSWI5.Pos",
}


async def measure(ied, operates: int) -> None:
    for model, ref in OBJECTS.items():
        await ied.operate(ref, True)  # type descriptions and ctlModel cached
        times = []
        started = time.perf_counter()
        for n in range(operates):
            t0 = time.perf_counter()
            outcome = await ied.operate(ref, bool(n % 2))
            times.append(time.perf_counter() - t0)
            if not outcome.ok:
                raise SystemExit(f"{model}: {outcome}")
        total = time.perf_counter() - started
        times.sort()
        print(
            f"{model:16s} median {statistics.median(times) * 1e3:7.2f} ms"
            f"  p99 {times[int(len(times) * 0.99) - 1] * 1e3:7.2f} ms"
            f"  {operates / total:8.1f} operates/s"
        )


async def in_memory(operates: int) -> None:
    net = MemoryNetwork()
    server = IedServer(load_scl(SCL), transport=net.endpoint("ied@bench.test"))
    async with server, Client(transport=net.endpoint("ops@bench.test")) as client:
        await measure(await client.associate(server.jid), operates)


async def through_prosody(operates: int) -> None:
    from gridbind.iec61850.prosody import Prosody
    from gridbind.iec61850.xmpp import XmppSettings

    with Prosody(domain="bench.local") as prosody:

        def account(user: str) -> XmppSettings:
            prosody.register(user, "bench-secret")
            return XmppSettings(
                jid=f"{user}@{prosody.domain}", password="bench-secret",
                ca_file=prosody.ca_cert, host="127.0.0.1", port=prosody.c2s_port,
            )  # fmt: skip

        server = IedServer(load_scl(SCL), account("ied"))
        async with server, Client(account("ops")) as client:
            await measure(await client.associate(server.jid), operates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operates", type=int, default=300)
    parser.add_argument("--prosody", action="store_true", help="through a private Prosody")
    args = parser.parse_args()
    print("through Prosody" if args.prosody else "in memory", f"({args.operates} operates each)")
    asyncio.run((through_prosody if args.prosody else in_memory)(args.operates))


if __name__ == "__main__":
    main()
