"""Machine calibration: a fixed pure-Python CPU loop, timed in a separate process pinned to given CPUs.

The regression gate divides each run's throughput by this score, so a machine that is 20% slower today
(a noisy neighbour, throttling, another CI runner) does not read as 20% slower code. The loop does the
interpreter work a request handler does (integer arithmetic, dict stores), no I/O and no allocation
growth, so its speed follows the CPU the app gets. The runner measures it before and after a run, on the
app's CPUs, and stores both in `calibration.json`.

`python -m bench.measure.calibrate --cpus 2,3 --samples 10` prints the JSON that `measure()` returns.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ITERATIONS = 1_300_000  # loops per sample: about 0.2 s on the development machine
_ROOT = Path(__file__).resolve().parents[2]


class CalibrationError(RuntimeError):
    pass


def work(iterations: int = ITERATIONS) -> int:
    """The fixed workload: same operations, same order, every time."""
    table: dict[int, int] = {}
    acc = 0
    for i in range(iterations):
        acc = (acc * 1_103_515_245 + i) & 0xFFFF_FFFF
        table[acc & 0x3FF] = i
    return acc ^ len(table)


def run_samples(samples: int, iterations: int = ITERATIONS) -> list[float]:
    """Loops per second of `samples` timed repetitions, after one untimed warm-up (in this process)."""
    work(iterations // 4)
    out: list[float] = []
    gc.disable()
    try:
        for _ in range(samples):
            start = time.perf_counter()
            work(iterations)
            out.append(iterations / (time.perf_counter() - start))
    finally:
        gc.enable()
    return out


def measure(cpus: list[int] | None, samples: int = 10, timeout: float = 120.0) -> dict[str, Any]:
    """Run the loop in a child process pinned to `cpus` (None: not pinned).

    Returns {"score": median loops/s, "samples": [...], "cpus": [...], "iterations": n}.
    """
    argv = [sys.executable, "-m", "bench.measure.calibrate", "--samples", str(samples)]
    if cpus:
        argv += ["--cpus", ",".join(str(c) for c in cpus)]
    try:
        proc = subprocess.run(argv, cwd=_ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise CalibrationError(f"calibration took longer than {timeout:.0f}s") from exc
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise CalibrationError(f"calibration failed (exit {proc.returncode}): {tail[0]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time a fixed pure-Python loop; print JSON.")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--cpus", default="", help="comma-separated CPU ids to pin this process to")
    opts = parser.parse_args(args)
    if opts.cpus:
        os.sched_setaffinity(0, {int(c) for c in opts.cpus.split(",")})
    values = run_samples(max(1, opts.samples))
    print(
        json.dumps(
            {
                "score": statistics.median(values),
                "samples": [round(v, 1) for v in values],
                "cpus": sorted(os.sched_getaffinity(0)),
                "iterations": ITERATIONS,
            }
        )
    )


if __name__ == "__main__":
    main()
