"""Where a request's CPU goes: the profiled points' stacks (bench/measure/profile.py) -> microseconds of CPU
per request, by layer (bench/catalog.py LAYER_RULES), beside the CPU per request the telemetry measured.

Each sampled stack counts for the layer of its innermost frame that belongs to a known package; py-spy reads
the GIL holder's stack `rate_hz` times a second, so a layer's samples / rate_hz is CPU seconds (the samples it
failed to read added in proportion), and over the point's requests, CPU per request (`gil_us`). CPU spent
without the GIL (system calls, Argon2's C code) is on no GIL holder's stack: the measured CPU's remainder is
placed by a second py-spy's samples of every running thread (placed()), so the layers add up to `measured`. A
compiled driver (asyncmy, asyncpg, mysqlclient: Cython or C) has no Python frames: its CPU counts for the
Python code that called it (SQLAlchemy's greenlet bridge, the event loop). Writes `layers.csv` (one row per
app x workload x layer, and a row `measured`) and a speedscope flame graph per profiled point into
`flamegraphs/`. Pure: reads the run folder, starts nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.catalog import APP_PACKAGES, LAYER_RULES, LAYERS, present_pairs, scenario_rank
from bench.store.rundir import PROFILE_RUNNING, PROFILE_STACKS, PROFILE_SUMMARY, write_json

LAYERS_FILE = "layers.csv"
FLAMEGRAPHS = "flamegraphs"
MEASURED = "measured"
# A profile explains a difference only where its layers add up to about the CPU measured: outside this
# range most of the CPU ran outside the GIL (Argon2's C code in signup: 32-51% seen in run
# 20261204-235710-bench), where a GIL sampler both misses it and counts GIL holders waiting for the CPU.
EXPLAINED = (0.8, 1.2)
COLUMNS = ["backend", "app", "scenario", "users", "db_ms", "layer", "us_per_request", "gil_us", "samples"]
PAIR_COLUMNS = [
    "sync",
    "async_",
    "backend",
    "scenario",
    "users",
    "db_ms",
    "layer",
    "sync_us",
    "async_us",
    "diff_us",
    "sync_gil_us",
    "async_gil_us",
]
_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")
_SITE = re.compile(r"^.*/(?:site-packages|dist-packages|python3\.\d+)/")
_PROCESS = re.compile(r"^process (\d+):")
_THREAD = re.compile(r"^thread \((\d+)\)(?:: (.*))?$")


@dataclass(frozen=True)
class Frame:
    function: str
    path: str  # relative: package/module.py (py-spy's short form; absolute paths are cut the same way)
    line: int


def parse_frame(text: str) -> Frame:
    match = None if _PROCESS.match(text) or _THREAD.match(text) else _FRAME.match(text)
    if match is None:  # a process or thread frame, or native code without a file
        return Frame(text, "", 0)
    path = _SITE.sub("", match["path"])
    return Frame(match["function"], path, int(match["line"] or 0))


def parse_stacks(text: str) -> list[tuple[list[Frame], int]]:
    """py-spy's raw format: one `frame;frame;... count` line per distinct stack, root first."""
    out = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            out.append(([parse_frame(f) for f in stack.split(";")], int(count)))
    return out


def on_main_thread(stack: Sequence[Frame]) -> bool:
    """py-spy --threads puts `thread (TID): NAME` under the `process PID:...` frame; the main thread's TID is
    its process's PID (Linux), its name MainThread."""
    pid = next((m[1] for f in stack if (m := _PROCESS.match(f.function))), None)
    for frame in stack:
        if m := _THREAD.match(frame.function):
            return m[1] == pid or m[2] == "MainThread"
    return False


def _matches(frame: Frame, prefix: str) -> bool:
    """`path` prefix, or `path:name`: a function (py-spy names methods `Class.method`) or a class."""
    path, _, name = prefix.partition(":")
    if not frame.path.startswith(path):
        return False
    return not name or name in (frame.function, *frame.function.split("."))


def layer_of(stack: Sequence[Frame], app_packages: Iterable[str] = APP_PACKAGES) -> str:
    """The layer of the innermost frame of a known package; `app` for the app's own packages."""
    own = tuple(f"{p}/" for p in app_packages)
    for frame in reversed(stack):
        for layer, prefixes in LAYER_RULES:
            if any(_matches(frame, p) for p in prefixes):
                return layer
        if frame.path.startswith(own):
            return "app"
    return "other"


def _profiled(run_dir: Path) -> list[Path]:
    return sorted(p.parent for p in (run_dir / "points").glob(f"*/{PROFILE_SUMMARY}"))


def _seconds_by_layer(
    stacks_file: Path, errors: int, rate: float, app_packages: Iterable[str]
) -> Counter[str]:
    """CPU seconds by layer from one py-spy file: samples / rate, the samples it failed to read added to the
    main thread's layers in their proportions (bench/measure/profile.py: nearly all failed reads are the
    event loop's)."""
    main: Counter[str] = Counter()  # samples of the main thread (the event loop), by layer
    rest: Counter[str] = Counter()  # of every other thread (the sync app's worker threads)
    for stack, n in parse_stacks(stacks_file.read_text(errors="replace")):
        (main if on_main_thread(stack) else rest)[layer_of(stack, app_packages)] += n
    if not main:  # no thread frames (py-spy without --threads): every sample is the main thread's
        main, rest = main + rest, Counter()
    scale = (sum(main.values()) + errors) / sum(main.values()) if main else 1.0
    return Counter({layer: (main[layer] * scale + rest[layer]) / rate for layer in LAYERS})


def placed(gil: Counter[str], running: Counter[str] | None, measured: float) -> Counter[str]:
    """Layers that add up to the CPU measured. The GIL holder's CPU by layer, plus what its samples cannot
    see (measured minus their sum: system calls and C code run without the GIL), placed in the layers where
    the running threads' samples exceed the GIL holder's, in proportion. When the GIL holder's samples come to
    more than the measured CPU (a holder waiting for the CPU, failed reads scaled up), they are scaled down to
    it. Without the running threads' samples there is nothing to place by: the GIL holder's alone."""
    held = sum(gil.values())
    if not math.isfinite(measured) or measured <= 0 or held <= 0:
        return gil
    if held >= measured:
        return Counter({layer: gil[layer] * measured / held for layer in LAYERS})
    if running is None:
        return gil
    weights = Counter({layer: max(0.0, running[layer] - gil[layer]) for layer in LAYERS})
    if not sum(weights.values()):
        weights = Counter({"other": 1.0})
    total = sum(weights.values())
    return Counter({layer: gil[layer] + (measured - held) * weights[layer] / total for layer in LAYERS})


def point_layers(folder: Path) -> list[dict[str, Any]]:
    """layers.csv's rows of one profiled point, or none (py-spy failed, the point was invalid or empty)."""
    summary = json.loads((folder / PROFILE_SUMMARY).read_text())
    point, profiler = summary.get("point") or {}, summary.get("profiler") or {}
    requests, rate = point.get("requests") or 0, profiler.get("rate_hz") or 0
    stacks_file = folder / PROFILE_STACKS
    if not point.get("valid") or requests <= 0 or rate <= 0 or not stacks_file.is_file():
        return []
    app_packages = summary.get("app_packages") or APP_PACKAGES
    seconds = float(point.get("duration_s") or 0)
    gil = _seconds_by_layer(stacks_file, int(profiler.get("errors") or 0), rate, app_packages)
    running_info = profiler.get("running") or {}
    running_file = folder / PROFILE_RUNNING
    running = (
        _seconds_by_layer(
            running_file,
            int(running_info.get("errors") or 0),
            running_info.get("rate_hz") or rate,
            app_packages,
        )
        if running_file.is_file() and not running_info.get("error")
        else None
    )
    cpu = point.get("app_cpu_mean")  # % of one core over the window
    measured_s = float(cpu) / 100 * seconds if cpu is not None else math.nan
    layers = placed(gil, running, measured_s)
    key = {k: point.get(k) for k in ("backend", "app", "scenario", "users", "db_ms")}

    def us(cpu_seconds: float) -> float:
        return round(cpu_seconds / requests * 1e6, 1)

    rows = [
        key
        | {
            "layer": layer,
            "us_per_request": us(layers[layer]),
            "gil_us": us(gil[layer]),
            "samples": round(gil[layer] * rate),
        }
        for layer in LAYERS
    ]
    rows.append(
        key
        | {
            "layer": MEASURED,
            "us_per_request": us(measured_s),
            "gil_us": us(sum(gil.values())),
            "samples": int(profiler.get("samples") or 0),
        }
    )
    return rows


def speedscope(stacks: list[tuple[list[Frame], int]], name: str) -> dict[str, Any]:
    """A speedscope file (https://www.speedscope.app): one sampled profile, one sample per distinct stack."""
    index: dict[Frame, int] = {}
    samples = [[index.setdefault(f, len(index)) for f in stack] for stack, _ in stacks]
    weights = [n for _, n in stacks]
    frames = [{"name": f.function, "file": f.path, "line": f.line} for f in index]
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled",
                "name": name,
                "unit": "none",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
        ],
        "name": name,
        "exporter": "bench (from py-spy's raw stacks)",
    }


def write_layers(run_dir: Path) -> pd.DataFrame:
    """layers.csv and flamegraphs/<point>.speedscope.json from every profiled point of the run. With no
    profiled point, the layers.csv already there, if any (a run whose stacks were removed for size)."""
    folders = _profiled(run_dir)
    if not folders:
        return read_layers(run_dir)
    rows = [row for folder in folders for row in point_layers(folder)]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.to_csv(run_dir / LAYERS_FILE, index=False)
    out = run_dir / FLAMEGRAPHS
    out.mkdir(exist_ok=True)
    for folder in folders:
        if (folder / PROFILE_STACKS).is_file():
            stacks = parse_stacks((folder / PROFILE_STACKS).read_text(errors="replace"))
            write_json(out / f"{folder.name}.speedscope.json", speedscope(stacks, folder.name))
    return table


def problems(run_dir: Path) -> list[str]:
    """One line per profiled point that gave no layers, and why (py-spy's own words, or the point's)."""
    out = []
    for folder in _profiled(run_dir):
        summary = json.loads((folder / PROFILE_SUMMARY).read_text())
        point, profiler = summary.get("point") or {}, summary.get("profiler") or {}
        if profiler.get("error"):
            out.append(f"{folder.name}: {profiler['error']}")
        elif not point.get("valid"):
            out.append(f"{folder.name}: the point was invalid ({point.get('invalid_reasons')})")
    return out


def read_layers(run_dir: Path) -> pd.DataFrame:
    """layers.csv as written (an empty table when the run profiled nothing)."""
    path = run_dir / LAYERS_FILE
    return pd.read_csv(path).reindex(columns=COLUMNS) if path.is_file() else pd.DataFrame(columns=COLUMNS)


def compared(layers: pd.DataFrame) -> pd.DataFrame:
    """Each sync/async pair of the catalog whose two apps were profiled in the same workload: one row per
    pair x workload x layer (and `measured`), with both sides' microseconds and their difference."""
    if layers.empty:
        return pd.DataFrame(columns=[*PAIR_COLUMNS])
    layers = layers.reindex(columns=COLUMNS)  # a layers.csv from before `gil_us`: NaN there
    key = ["backend", "scenario", "users", "db_ms", "layer"]
    out = []
    for pair in present_pairs(set(layers["app"])):
        a = layers[layers["app"] == pair.sync].drop(columns=["app", "samples"])
        b = layers[layers["app"] == pair.async_].drop(columns=["app", "samples", "users"])
        both = a.merge(b, on=[k for k in key if k != "users"], suffixes=("_sync", "_async"))
        if both.empty:
            continue
        both = both.rename(
            columns={
                "us_per_request_sync": "sync_us",
                "us_per_request_async": "async_us",
                "gil_us_sync": "sync_gil_us",
                "gil_us_async": "async_gil_us",
            }
        )
        out.append(
            both.assign(sync=pair.sync, async_=pair.async_, diff_us=both["async_us"] - both["sync_us"])
        )
    if not out:
        return pd.DataFrame(columns=[*PAIR_COLUMNS])
    ordered = [  # the catalog's pair order, then the scenarios' order and database time within a pair
        part.assign(_r=[scenario_rank(str(s))[0] for s in part["scenario"]]).sort_values(["_r", "db_ms"])
        for part in out
    ]
    return pd.concat(ordered, ignore_index=True)[[*PAIR_COLUMNS]]


Case = tuple[str, str, str, float]  # sync app, async app, scenario, db_ms


def cases(table: pd.DataFrame) -> list[tuple[Case, pd.DataFrame]]:
    """compared()'s rows, one group per pair x workload, in its order."""
    out = []
    for _, rows in table.groupby(["sync", "async_", "scenario", "db_ms"], sort=False):
        r = rows.iloc[0]
        out.append(((str(r["sync"]), str(r["async_"]), str(r["scenario"]), float(r["db_ms"])), rows))
    return out


def explained(rows: pd.DataFrame) -> bool:
    """Whether both sides' layers add up to about the CPU measured (EXPLAINED)."""
    return all(EXPLAINED[0] <= coverage(rows, side) <= EXPLAINED[1] for side in ("sync_us", "async_us"))


def biggest(rows: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """The layers (not `measured`) of one pair x workload whose difference is largest, in its direction
    first: the layers that make most of the measured difference."""
    parts = rows[rows["layer"] != MEASURED]
    total = float(rows.loc[rows["layer"] == MEASURED, "diff_us"].sum())
    sign = 1.0 if total >= 0 else -1.0
    return (
        parts.assign(_k=parts["diff_us"] * sign).sort_values("_k", ascending=False).head(n).drop(columns="_k")
    )


def coverage(rows: pd.DataFrame, side: str) -> float:
    """The layers' sum over the measured CPU per request, for one side (`sync_us` or `async_us`)."""
    measured = rows.loc[rows["layer"] == MEASURED, side]
    total = float(rows.loc[rows["layer"] != MEASURED, side].sum())
    return total / float(measured.iloc[0]) if len(measured) and float(measured.iloc[0]) > 0 else math.nan


def gil_share(rows: pd.DataFrame, side: str) -> float:
    """Of the measured CPU per request, the part sampled on the GIL holder's stack, for one side (`sync` or
    `async`); the rest ran without the GIL and is placed by the running threads' samples (placed())."""
    measured = rows.loc[rows["layer"] == MEASURED]
    if not len(measured) or not float(measured[f"{side}_us"].iloc[0]) > 0:
        return math.nan
    return float(measured[f"{side}_gil_us"].iloc[0]) / float(measured[f"{side}_us"].iloc[0])
