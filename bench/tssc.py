"""TSSC speed and size: gridbind (compiled core and pure Python) next to sttpapi.

Usage: ``.venv/bin/python bench/tssc.py [--seconds 10] [--signals 1000] [--rate 30]``

One synthetic PMU stream (signals x frames per second: frequency, dF/dt, voltage and current
magnitudes, wrapping phase angles as float32, rare flag changes, one timestamp per frame) is
encoded one block per frame, as a publisher sends it, then decoded block by block. Prints, per
implementation, measurements/s for encode and decode on one core and bytes per measurement (TSSC
payload, and with the 3-byte block header). sttpapi is fed the types its encoder handles correctly
(numpy.uint32 flags, Python-int timestamps).

Measured figures, with the peer's from the same run: README.md, section Benchmarks.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import time
import warnings
from array import array

from gridbind.sttp.tssc import (
    DEPLOYED,
    TsscDecoder,
    TsscEncoder,
    available_implementations,
)

TICKS_PER_SECOND = 10_000_000
BASE_TICKS = 638_000_000_000_000_000  # some day in 2022


def pmu_stream(signals: int, rate: int, seconds: float, seed: int = 7) -> list[tuple[array, ...]]:
    """Frames of ``(ids, timestamps, flags, values)`` columns for a synthetic PMU fleet.

    Each PMU has 10 signals: frequency, dF/dt, 4 magnitudes (3 voltages, 1 current) and their 4
    angles; angles advance with the frequency deviation and wrap at +-180 degrees.
    """
    rng = random.Random(seed)
    pmus = max(1, signals // 10)
    frames = int(rate * seconds)
    freq = [60.0 + rng.uniform(-0.02, 0.02) for _ in range(pmus)]
    angle = [[rng.uniform(-180, 180) for _ in range(4)] for _ in range(pmus)]
    mags = [[rng.uniform(0.98, 1.02) * n for n in (199_186.0, 199_186.0, 199_186.0, 812.0)]]
    mags = mags * pmus
    flags = [0] * (pmus * 10)
    out = []
    for k in range(frames):
        ts = BASE_TICKS + (k * TICKS_PER_SECOND) // rate
        ids, stamps, fl, vals = array("I"), array("q"), array("I"), array("f")
        for p in range(pmus):
            dfdt = rng.gauss(0.0, 0.004)
            freq[p] += dfdt / rate
            freq[p] += (60.0 - freq[p]) * 0.01
            values = [freq[p], dfdt]
            values += [m * (1 + rng.gauss(0, 0.001)) for m in mags[p]]
            for i in range(4):
                angle[p][i] = (angle[p][i] + 360.0 * (freq[p] - 60.0) / rate + 180.0) % 360.0
                angle[p][i] -= 180.0
            values += angle[p]
            for i, value in enumerate(values):
                sid = p * 10 + i
                if rng.random() < 0.0005:  # rare flag changes (e.g. a PMU reporting bad data)
                    flags[sid] ^= 0x2
                ids.append(sid)
                stamps.append(ts)
                fl.append(flags[sid])
                vals.append(value)
        out.append((ids, stamps, fl, vals))
    return out


def best_of(runs: int, func) -> float:
    best = math.inf
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def bench_gridbind(frames, implementation: str, runs: int) -> tuple[float, float, int, int]:
    blocks: list = []

    def encode() -> None:
        blocks.clear()
        enc = TsscEncoder(DEPLOYED, implementation=implementation)
        for ids, stamps, fl, vals in frames:
            blocks.extend(enc.encode(ids, stamps, fl, vals))

    def decode() -> None:
        dec = TsscDecoder(DEPLOYED, implementation=implementation)
        for block in blocks:
            dec.decode(block.data)

    t_enc = best_of(runs, encode)
    t_dec = best_of(runs, decode)
    total = sum(len(b.data) for b in blocks)
    return t_enc, t_dec, total - 3 * len(blocks), len(blocks)


def bench_per_measurement(frames, implementation: str) -> tuple[float, float, int, int]:
    """The convenience path: ``add()`` per measurement, ``decode_measurements()`` tuples."""
    rows = [list(zip(*frame, strict=True)) for frame in frames]
    blocks: list[bytes] = []

    def encode() -> None:
        blocks.clear()
        enc = TsscEncoder(DEPLOYED, implementation=implementation)
        add = enc.add
        for frame in rows:
            for pid, ts, flags, value in frame:
                if not add(pid, ts, flags, value):
                    raise RuntimeError("frame does not fit one block")
            blocks.append(enc.finish())

    def decode() -> None:
        dec = TsscDecoder(DEPLOYED, implementation=implementation)
        for block in blocks:
            dec.decode_measurements(block)

    t_enc = best_of(1, encode)
    t_dec = best_of(1, decode)
    total = sum(map(len, blocks))
    return t_enc, t_dec, total - 3 * len(blocks), len(blocks)


def bench_sttpapi(frames, runs: int) -> tuple[float, float, int, int] | None:
    try:
        import numpy as np
        from sttp.transport.tssc.decoder import Decoder
        from sttp.transport.tssc.encoder import Encoder
    except ImportError:
        return None
    warnings.simplefilter("ignore")  # numpy int64 wrap-around warnings in its encoder
    inputs = [
        [
            (np.int32(i), int(t), np.uint32(f), np.float32(v))
            for i, t, f, v in zip(ids, stamps, fl, vals, strict=True)
        ]
        for ids, stamps, fl, vals in frames
    ]
    payloads: list[bytes] = []
    buffer = bytearray(32768)

    def encode() -> None:
        payloads.clear()
        enc = Encoder()
        for frame in inputs:
            enc.set_buffer(buffer, np.uint32(0), np.uint32(len(buffer)))
            for m in frame:
                if not enc.try_add_measurement(*m):
                    raise RuntimeError("frame does not fit one sttpapi block")
            payloads.append(bytes(buffer[: enc.finish_block()]))

    def decode() -> None:
        dec = Decoder()
        for payload in payloads:
            dec.set_buffer(payload)
            while True:
                *_, ok, err = dec.try_get_measurement()
                if err is not None:
                    raise err
                if not ok:
                    break

    t_enc = best_of(runs, encode)
    t_dec = best_of(runs, decode)
    return t_enc, t_dec, sum(map(len, payloads)), len(payloads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="stream length (default 10)")
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=30, help="frames per second")
    parser.add_argument("--runs", type=int, default=3, help="best of N timings (fast paths)")
    parser.add_argument("--no-sttpapi", action="store_true")
    args = parser.parse_args()

    frames = pmu_stream(args.signals, args.rate, args.seconds)
    n = sum(len(f[0]) for f in frames)
    print(f"stream: {args.signals} signals x {args.rate} frames/s x {args.seconds:g} s = {n} meas.")
    print(f"{'implementation':<22}{'encode/s':>14}{'decode/s':>14}{'B/meas':>9}{'B/meas+hdr':>12}")

    rows = []
    for impl in available_implementations():
        runs = args.runs if impl == "c" else 1
        rows.append((f"gridbind[{impl}]", *bench_gridbind(frames, impl, runs)))
    rows.append(("gridbind add()/tuples", *bench_per_measurement(frames, "auto")))
    if not args.no_sttpapi:
        result = bench_sttpapi(frames, 1)
        if result is None:
            print("sttpapi not installed: skipped")
        else:
            rows.append(("sttpapi", *result))
    for name, t_enc, t_dec, payload, blocks in rows:
        print(
            f"{name:<22}{n / t_enc:>14,.0f}{n / t_dec:>14,.0f}"
            f"{payload / n:>9.3f}{(payload + 3 * blocks) / n:>12.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
