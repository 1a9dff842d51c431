"""The gate's samples: requests completed in each second of every valid point's measurement window,
per key (app × scenario × users × db_ms), read from a run folder through bench.store.

A paired run (the gate's own) holds both sides: `split_run` turns its `base:` apps into the baseline and
aligns each repeat with the current app's repeat over the same seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hdrh.histogram import HdrHistogram

from bench.catalog import BASE_PREFIX
from bench.store.loadgen import FloatArray, merge_histograms
from bench.store.rows import PointKey
from bench.store.run import RunFolderError, load_calibration, load_run

Key = PointKey


class CompareError(Exception):
    """A run folder is missing, unreadable, or shares no comparable points with the other."""


@dataclass
class Samples:
    """One run folder: per-second throughput of every valid point, and merged latency histograms."""

    path: Path
    calibration: float | None
    repeats: dict[Key, list[FloatArray]] = field(default_factory=dict)
    repeat_no: dict[Key, list[int]] = field(default_factory=dict)  # the `repeat` of each array
    hdr: dict[Key, HdrHistogram] = field(default_factory=dict)
    skipped: int = 0


def read_samples(run_dir: Path) -> Samples:
    try:
        run = load_run(run_dir)
    except RunFolderError as exc:
        raise CompareError(str(exc)) from None
    if not (run_dir / "points.csv").is_file():
        raise CompareError(f"{run_dir} has no points.csv")
    out = Samples(run_dir, load_calibration(run_dir))
    for _, row in run.points.iterrows():
        lg = row["loadgen"]
        if not row["valid"] or lg is None or len(seconds := lg.window_samples()) == 0:
            out.skipped += 1
            continue
        rate = float(row["target_rps"]) if row["mode"] == "open" else None
        key = Key(str(row["app"]), str(row["scenario"]), int(row["users"]), int(row["db_ms"]), rate)
        out.repeats.setdefault(key, []).append(seconds)
        out.repeat_no.setdefault(key, []).append(int(row["repeat"]))
        out.hdr[key] = merge_histograms([out.hdr.get(key), lg.hdr])
    return out


def pool(
    runs: Sequence[Samples], normalise: bool
) -> tuple[dict[Key, list[FloatArray]], dict[Key, HdrHistogram]]:
    """Several runs of the same code side by side (a first run and its re-measure), each run's samples
    divided by its calibration when `normalise`."""
    repeats: dict[Key, list[FloatArray]] = {}
    hdr: dict[Key, HdrHistogram] = {}
    for run in runs:
        scale = 1.0 / run.calibration if normalise and run.calibration else 1.0
        for key, arrays in run.repeats.items():
            repeats.setdefault(key, []).extend(a * scale for a in arrays)
        for key, hist in run.hdr.items():
            merged = merge_histograms([hdr.get(key), hist])
            if merged is not None:
                hdr[key] = merged
    return repeats, hdr


def split_run(run: Samples, prefix: str = BASE_PREFIX) -> tuple[Samples, Samples]:
    """One paired run -> (its `base:` apps under their plain names, the current apps), aligned: for each
    key, the i-th array of both sides is the same repeat, over the same seconds (a repeat that is valid
    on one side only is left out of both)."""
    base, cur = Samples(run.path, None), Samples(run.path, None, skipped=run.skipped)
    for key, arrays in run.repeats.items():
        if key.app.startswith(prefix) or key._replace(app=prefix + key.app) not in run.repeats:
            continue
        base_key = key._replace(app=prefix + key.app)
        theirs = dict(zip(run.repeat_no[base_key], run.repeats[base_key], strict=True))
        for repeat, mine in zip(run.repeat_no[key], arrays, strict=True):
            if repeat not in theirs:
                base.skipped += 1
                continue
            n = min(len(mine), len(theirs[repeat]))
            base.repeats.setdefault(key, []).append(theirs[repeat][:n])
            cur.repeats.setdefault(key, []).append(mine[:n])
        for side, k in ((base, base_key), (cur, key)):
            if k in run.hdr:
                side.hdr[key] = run.hdr[k]
    return base, cur
