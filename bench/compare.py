"""The regression gate: is the current code slower than the baseline code by more than the noise?

Decision rule, for each (app, scenario, users, db_ms) key with valid points on both sides:
1. Samples: requests completed in each second of every repeat's measurement window (the window starts
   after the warm-up and is cut at whole seconds, so every second is a full second of steady load).
   The gate's own runs hold both sides, interleaved (`compare_within`: `base:sync` vs `sync`), so the
   machine's drift hits both alike and nothing is normalised. Two separate runs (`compare_runs`) are
   divided by each run's calibration score (bench/calibrate.py); without one, the output says so.
2. Effect = median(current) / median(baseline) - 1, with a 95% bootstrap CI (2000 resamples, fixed seed,
   seconds resampled within each repeat).
3. One-sided Mann-Whitney U test of "current < baseline" (and "current > baseline" for improvements).
4. "regression" when effect <= -min_effect/2 AND p < alpha AND the CI's upper bound < 0; "improvement" is
   the mirror image; anything else is "no change" (too small, or within noise). `min_effect` (10%) is the
   drop the gate must catch; flagging at half of it splits the noise margin between misses and false
   alarms (flagging at exactly 10% would miss half of all true 10% drops). Drops under 5% never fail.
5. The gate fails only if a re-measured run flags the same key again (`decide_with_remeasure`).
p99 latency (from the merged HdrHistograms) is reported next to throughput; it does not decide.
Points of one run differ by more than their seconds do (a point-level share of the noise), so p and the
CI are optimistic on their own: the 5% flag line and the independent re-measure keep false alarms rare,
and scripts/perf-gate-trials measures the rates that result (docs/perf-gate.md).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from hdrh.histogram import HdrHistogram
from rich.console import Console
from rich.table import Table
from scipy.stats import mannwhitneyu, wilcoxon

from bench.apps import BASE_PREFIX
from bench.calibrate import load_calibration
from bench.results import read_loadgen

BOOTSTRAP_RESAMPLES = 2000
FLAG_FRACTION = 0.5  # a key is flagged when its estimated change passes this fraction of min_effect
BOOTSTRAP_SEED = 20261124

FloatArray = np.ndarray[tuple[int], np.dtype[np.float64]]


class CompareError(Exception):
    """A run folder is missing, unreadable, or shares no comparable points with the other."""


class Key(NamedTuple):
    app: str
    scenario: str
    users: int
    db_ms: int
    rate: float | None = None  # open-loop points: target req/s (users is then 1)

    @property
    def label(self) -> str:
        load = f"rate{self.rate:g}" if self.rate else f"u{self.users}"
        return f"{self.app} {self.scenario} {load}" + (f" d{self.db_ms}" if self.db_ms else "")


@dataclass
class RunData:
    """One run folder: per-second throughput of every valid point, and merged latency histograms."""

    path: Path
    calibration: float | None
    repeats: dict[Key, list[FloatArray]] = field(default_factory=dict)
    hdr: dict[Key, HdrHistogram] = field(default_factory=dict)
    skipped: int = 0
    repeat_no: dict[Key, list[int]] = field(default_factory=dict)  # the `repeat` of each array


@dataclass(frozen=True)
class KeyResult:
    key: Key
    baseline: list[FloatArray]  # samples per repeat, normalised when the comparison is
    current: list[FloatArray]
    baseline_rps: float  # median requests/s, never normalised (for reading)
    current_rps: float
    effect: float
    ci: tuple[float, float]
    p_slower: float
    p_faster: float
    p99_baseline_ms: float | None
    p99_current_ms: float | None
    verdict: str  # "regression" | "improvement" | "no change"
    reason: str  # "slower" | "faster" | "within noise" | "below the 10% threshold"

    @property
    def p(self) -> float:
        """p of the test in the direction of the effect."""
        return self.p_slower if self.effect < 0 else self.p_faster

    @property
    def p99_change(self) -> float | None:
        if not self.p99_baseline_ms or self.p99_current_ms is None:
            return None
        return self.p99_current_ms / self.p99_baseline_ms - 1

    @property
    def text(self) -> str:
        """One line in plain words."""
        p99 = f"; p99 {self.p99_change:+.1%}" if self.p99_change is not None else ""
        return (
            f"{self.key.label}: throughput {self.effect:+.1%} (95% CI {self.ci[0]:+.1%}..{self.ci[1]:+.1%}, "
            f"p={self.p:.2g}) — {self.reason}{p99}"
        )


@dataclass
class Comparison:
    baseline: list[Path]
    current: list[Path]
    rows: list[KeyResult]
    normalised: bool
    calibration: dict[str, list[float | None]]
    min_effect: float
    alpha: float
    notes: list[str] = field(default_factory=list)
    interleaved: bool = False  # both sides from the same run(s): nothing to normalise

    @property
    def regressions(self) -> list[KeyResult]:
        return [r for r in self.rows if r.verdict == "regression"]

    @property
    def improvements(self) -> list[KeyResult]:
        return [r for r in self.rows if r.verdict == "improvement"]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    @property
    def headline(self) -> str:
        n = len(self.rows)
        if self.regressed:
            return f"REGRESSION in {len(self.regressions)} of {n} comparisons"
        return f"no regression in {n} comparisons" + (
            f" ({len(self.improvements)} faster)" if self.improvements else ""
        )


# --- reading ---------------------------------------------------------------------------------------------


def window_samples(per_second: dict[int, int], window: tuple[float, float] | None) -> FloatArray:
    """Requests per second over the window; a second without any completed request counts 0."""
    if window is not None:
        n = int(np.ceil(window[1] - window[0] - 1e-6))
        seconds = range(n)
    elif per_second:
        seconds = range(min(per_second), max(per_second) + 1)
    else:
        seconds = range(0)
    return np.array([per_second.get(t, 0) for t in seconds], dtype=np.float64)


def read_run(run_dir: Path) -> RunData:
    table = run_dir / "points.csv"
    if not run_dir.is_dir():
        raise CompareError(f"no run folder at {run_dir}")
    if not table.is_file():
        raise CompareError(f"{run_dir} has no points.csv")
    run = RunData(run_dir, load_calibration(run_dir))
    with table.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        try:
            key = Key(
                row["app"],
                row["scenario"],
                int(row["users"]),
                int(row["db_ms"] or 0),
                float(row["target_rps"]) if row.get("target_rps") else None,
            )
            lg = read_loadgen(run_dir / "points" / row["point_id"])
        except (KeyError, ValueError, OSError) as exc:  # a damaged row or loadgen file: left out, counted
            if not {"app", "scenario", "users", "db_ms", "point_id"} <= set(row):
                raise CompareError(f"{table} lacks the points.csv columns (results/README.md)") from exc
            run.skipped += 1
            continue
        samples = window_samples(lg.per_second, lg.window)
        if row.get("valid") != "True" or len(samples) == 0:
            run.skipped += 1
            continue
        run.repeats.setdefault(key, []).append(samples)
        run.repeat_no.setdefault(key, []).append(int(row.get("repeat") or 0))
        if lg.hdr is not None:
            if key in run.hdr:
                run.hdr[key].add(lg.hdr)
            else:
                run.hdr[key] = lg.hdr
    return run


def _pool(
    runs: Sequence[RunData], normalise: bool
) -> tuple[dict[Key, list[FloatArray]], dict[Key, HdrHistogram]]:
    repeats: dict[Key, list[FloatArray]] = {}
    hdr: dict[Key, HdrHistogram] = {}
    for run in runs:
        scale = 1.0 / run.calibration if normalise and run.calibration else 1.0
        for key, arrays in run.repeats.items():
            repeats.setdefault(key, []).extend(a * scale for a in arrays)
        for key, hist in run.hdr.items():
            if key in hdr:
                hdr[key].add(hist)
            else:
                hdr[key] = HdrHistogram.decode(hist.encode())  # a copy: never mutate a run's histogram
    return repeats, hdr


# --- statistics ------------------------------------------------------------------------------------------


def resample(repeats: list[FloatArray], rng: np.random.Generator, n: int) -> FloatArray:
    """`n` bootstrap resamples, one per row: the samples of each repeat drawn with replacement within
    that repeat. (Resampling the repeats too, a two-level bootstrap, counts the seconds' noise twice: on
    one four-repeat run here its interval was 1.7-1.9 times as wide and left a measured 8% slowdown
    unflagged.)"""
    flat = np.concatenate(repeats)
    lens = [len(r) for r in repeats]
    offsets = np.cumsum(lens) - lens
    draws = rng.random((n, len(repeats), max(lens)))
    idx = np.concatenate(
        [
            off + (draws[:, i, :m] * m).astype(np.int64)
            for i, (off, m) in enumerate(zip(offsets, lens, strict=True))
        ],
        axis=1,
    )
    values: FloatArray = flat[idx]
    return values


def _p_value(current: FloatArray, baseline: FloatArray, alternative: str) -> float:
    both = np.concatenate([current, baseline])
    if np.all(both == both[0]):
        return 1.0
    return float(mannwhitneyu(current, baseline, alternative=alternative).pvalue)


Stats = tuple[float, tuple[float, float], float, float]  # effect, 95% CI, p slower, p faster


def _unpaired(baseline: list[FloatArray], current: list[FloatArray], rng: np.random.Generator) -> Stats:
    """Two runs at different times: ratio of medians, Mann-Whitney U."""
    base, cur = np.concatenate(baseline), np.concatenate(current)
    med_b = float(np.median(base))
    effect = float(np.median(cur)) / med_b - 1 if med_b > 0 else 0.0
    boot_b = np.median(resample(baseline, rng, BOOTSTRAP_RESAMPLES), axis=1)
    boot_c = np.median(resample(current, rng, BOOTSTRAP_RESAMPLES), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = boot_c / boot_b - 1
    ratios = ratios[np.isfinite(ratios)]
    low, high = (float(v) for v in np.percentile(ratios, [2.5, 97.5])) if len(ratios) else (-1.0, 1.0)
    return effect, (low, high), _p_value(cur, base, "less"), _p_value(cur, base, "greater")


def _paired(baseline: list[FloatArray], current: list[FloatArray], rng: np.random.Generator) -> Stats:
    """Both sides over the same seconds: each second's log ratio current / baseline (+1 each, so a
    stalled second stays finite), its mean, Wilcoxon signed-rank."""
    ratios = [np.log((c + 1) / (b + 1)) for b, c in zip(baseline, current, strict=True)]
    flat = np.concatenate(ratios)
    boot = resample(ratios, rng, BOOTSTRAP_RESAMPLES).mean(axis=1)
    low, high = (float(v) for v in np.expm1(np.percentile(boot, [2.5, 97.5])))
    if np.all(flat == 0):
        return 0.0, (low, high), 1.0, 1.0
    p_slower = float(wilcoxon(flat, alternative="less").pvalue)
    return (
        float(np.expm1(flat.mean())),
        (low, high),
        p_slower,
        float(wilcoxon(flat, alternative="greater").pvalue),
    )


def judge(
    key: Key,
    baseline: list[FloatArray],
    current: list[FloatArray],
    *,
    paired: bool = False,
    rps: tuple[float, float] | None = None,
    min_effect: float = 0.10,
    alpha: float = 0.01,
    p99_ms: tuple[float | None, float | None] = (None, None),
) -> KeyResult:
    """The verdict for one key. `paired`: the i-th arrays of `baseline` and `current` cover the same
    seconds (the gate's own runs), so a slower machine in a second slows both sides alike and each
    second's ratio is a sample; otherwise the two sides' seconds are compared as two groups.
    `rps`: the raw median requests/s to show (default: the samples' medians)."""
    stats = _paired if paired else _unpaired
    effect, ci, p_slower, p_faster = stats(baseline, current, np.random.default_rng(BOOTSTRAP_SEED))
    verdict, reason = _verdict(effect, ci, p_slower, p_faster, min_effect, alpha)
    shown = rps or (float(np.median(np.concatenate(baseline))), float(np.median(np.concatenate(current))))
    return KeyResult(
        key, baseline, current, *shown, effect, ci, p_slower, p_faster, p99_ms[0], p99_ms[1], verdict, reason
    )


def _verdict(
    effect: float, ci: tuple[float, float], p_slower: float, p_faster: float, min_effect: float, alpha: float
) -> tuple[str, str]:
    flag_at = min_effect * FLAG_FRACTION
    if effect <= -flag_at and p_slower < alpha and ci[1] < 0:
        return "regression", "slower"
    if effect >= flag_at and p_faster < alpha and ci[0] > 0:
        return "improvement", "faster"
    if abs(effect) < flag_at:
        return "no change", f"below the {flag_at:.0%} flag line"
    return "no change", "within noise"


def _p99(hist: HdrHistogram | None) -> float | None:
    if hist is None or hist.get_total_count() == 0:
        return None
    return float(hist.get_value_at_percentile(99.0)) / 1000


def _as_list(paths: Path | Sequence[Path]) -> list[Path]:
    return [paths] if isinstance(paths, Path) else list(paths)


def compare_runs(
    baseline: Path | Sequence[Path],
    current: Path | Sequence[Path],
    min_effect: float = 0.10,
    alpha: float = 0.01,
) -> Comparison:
    """Compare two runs (or pools of runs: each side may be several run folders of the same code),
    normalised by each run's calibration."""
    base_runs = [read_run(p) for p in _as_list(baseline)]
    cur_runs = [read_run(p) for p in _as_list(current)]
    notes: list[str] = []
    uncalibrated = sorted({str(r.path) for r in base_runs + cur_runs if r.calibration is None})
    if uncalibrated:
        notes.append(f"not normalised by calibration (none in {', '.join(uncalibrated)}): raw requests/s")
    return compare_data(base_runs, cur_runs, not uncalibrated, notes, min_effect, alpha)


def split_run(run: RunData, prefix: str = BASE_PREFIX) -> tuple[RunData, RunData]:
    """One paired run -> (its `base:` apps under their plain names, the current apps), aligned: for each
    key, the i-th array of both sides is the same repeat, over the same seconds (a repeat that is valid
    on one side only is left out of both)."""
    base, cur = RunData(run.path, None), RunData(run.path, None, skipped=run.skipped)
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


def compare_within(runs: Path | Sequence[Path], min_effect: float = 0.10, alpha: float = 0.01) -> Comparison:
    """The gate's comparison: in each run the baseline code (`base:` apps) and the current code were
    measured interleaved, on the same machine minutes apart, so no calibration is needed. Several runs
    (a first run and its re-measure) are pooled, side by side."""
    pairs = [split_run(read_run(p)) for p in _as_list(runs)]
    note = "baseline code measured at the same time as the current code, sharing its CPU: paired seconds"
    cmp = compare_data(
        [b for b, _ in pairs], [c for _, c in pairs], False, [note], min_effect, alpha, paired=True
    )
    cmp.interleaved = True
    return cmp


def compare_data(
    base_runs: list[RunData],
    cur_runs: list[RunData],
    normalise: bool,
    notes: list[str],
    min_effect: float = 0.10,
    alpha: float = 0.01,
    paired: bool = False,
) -> Comparison:
    """`paired`: the i-th array of each side was measured over the same seconds (`split_run`)."""
    base, base_hdr = _pool(base_runs, normalise)
    cur, cur_hdr = _pool(cur_runs, normalise)
    keys = sorted(set(base) & set(cur), key=lambda k: (k.app, k.scenario, k.db_ms, k.users, k.rate or 0))
    if not keys:
        raise CompareError("no comparable points: no (app, scenario, users, db_ms) with valid points in both")
    for side, pooled, other in (("baseline", base, cur), ("current", cur, base)):
        only = sorted(k.label for k in set(pooled) - set(other))
        if only:
            notes.append(f"only in {side}, not compared: {', '.join(only)}")
    skipped = sum(r.skipped for r in base_runs + cur_runs)
    if skipped:
        notes.append(f"{skipped} invalid, empty or unreadable point(s) left out")

    raw_base, raw_cur = _pool(base_runs, False)[0], _pool(cur_runs, False)[0]

    def raw_median(pool: dict[Key, list[FloatArray]], key: Key) -> float:
        return float(np.median(np.concatenate(pool[key])))

    rows = [
        judge(
            key, base[key], cur[key], paired=paired, rps=(raw_median(raw_base, key), raw_median(raw_cur, key)),
            min_effect=min_effect, alpha=alpha,
            p99_ms=(_p99(base_hdr.get(key)), _p99(cur_hdr.get(key))),
        )
        for key in keys
    ]  # fmt: skip
    return Comparison(
        baseline=list(dict.fromkeys(r.path for r in base_runs)),
        current=list(dict.fromkeys(r.path for r in cur_runs)),
        rows=rows,
        normalised=normalise,
        calibration={
            "baseline": [r.calibration for r in base_runs],
            "current": [r.calibration for r in cur_runs],
        },
        min_effect=min_effect,
        alpha=alpha,
        notes=notes,
    )


def decide_with_remeasure(first: Comparison, second: Comparison | None) -> bool:
    """True = fail the gate: a key flagged as a regression by the first comparison AND by the re-measure.

    Without a re-measure (`second` None) the first comparison decides alone.
    """
    flagged = {r.key for r in first.regressions}
    if not flagged or second is None:
        return bool(flagged)
    return bool(flagged & {r.key for r in second.regressions})


# --- output ----------------------------------------------------------------------------------------------

_STYLE = {"regression": "bold red", "improvement": "green", "no change": ""}


def render(cmp: Comparison, console: Console) -> None:
    """One screen (fits 80 columns): a row per key, then the notes and the flagged keys in plain words."""
    current, base = (", ".join(p.name for p in paths) for paths in (cmp.current, cmp.baseline))
    title = (
        f"perf gate: {current} vs {base}"
        if current != base
        else f"perf gate: current vs base: apps in {current}"
    )
    table = Table(
        title=title, title_justify="left", box=None, header_style="bold underline", pad_edge=False,
        collapse_padding=True,
    )  # fmt: skip
    table.add_column("key", overflow="fold", min_width=20)
    for name in ("n", "base/s", "cur/s", "Δ thr", "95% CI", "p", "Δ p99"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True, min_width=6)
    short = {"slower": "SLOWER", "faster": "faster", "within noise": "noise"}
    for r in cmp.rows:
        table.add_row(
            r.key.label, f"{sum(map(len, r.baseline))}/{sum(map(len, r.current))}", f"{r.baseline_rps:,.0f}",
            f"{r.current_rps:,.0f}", f"{r.effect:+.1%}", f"{r.ci[0]:+.0%}..{r.ci[1]:+.0%}", f"{r.p:.1g}",
            f"{r.p99_change:+.0%}" if r.p99_change is not None else "–",
            short.get(r.reason, f"<{cmp.min_effect * FLAG_FRACTION:.0%}"), style=_STYLE[r.verdict],
        )  # fmt: skip
    console.print(table)
    unit = _basis(cmp).upper() if not (cmp.normalised or cmp.interleaved) else _basis(cmp)
    console.print(
        f"throughput ({unit}). SLOWER = regression: ≤ -{cmp.min_effect * FLAG_FRACTION:.0%} (to catch "
        f"{cmp.min_effect:.0%} drops), p < {cmp.alpha:g} and CI < 0; <{cmp.min_effect * FLAG_FRACTION:.0%}: "
        "smaller change; noise: not significant.",
        highlight=False,
    )
    for note in cmp.notes:
        console.print(f"[dim]note: {note}[/]", highlight=False)
    for r in cmp.regressions + cmp.improvements:
        console.print(r.text, style=_STYLE[r.verdict], highlight=False)
    console.print(f"[bold]{cmp.headline}[/]", highlight=False)


def _basis(cmp: Comparison) -> str:
    if cmp.interleaved:
        return "paired: both sides in the same seconds, sharing the app's CPU"
    return "calibrated" if cmp.normalised else "not calibrated"


def plot(cmp: Comparison, path: Path) -> Path:
    """Baseline vs current per key: every sample divided by the baseline's median, as strips."""
    from matplotlib.figure import Figure  # no pyplot: no global state, Agg via savefig

    rows = cmp.rows
    fig = Figure(figsize=(10, 1.6 + 0.45 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    colors = {"regression": "#c0392b", "improvement": "#27ae60", "no change": "#2e86c1"}
    for i, r in enumerate(rows):
        color = colors[r.verdict]
        if cmp.interleaved:  # one strip: each second's current / baseline, with the estimate and its CI
            values = np.concatenate([(c + 1) / (b + 1) for b, c in zip(r.baseline, r.current, strict=True)])
            ax.scatter(
                values, i + rng.uniform(-0.15, 0.15, len(values)), s=10, color=color, alpha=0.5, linewidths=0
            )
            ax.plot(
                [1 + r.ci[0], 1 + r.ci[1]], [i, i], color=color, linewidth=5, alpha=0.6, solid_capstyle="butt"
            )
            ax.plot([1 + r.effect] * 2, [i - 0.25, i + 0.25], color=color, linewidth=2.5)
            continue
        ref = float(np.median(np.concatenate(r.baseline)))
        for offset, samples, shade in ((-0.18, r.baseline, "#7f8c8d"), (0.18, r.current, color)):
            values = np.concatenate(samples) / ref
            y = i + offset + rng.uniform(-0.07, 0.07, len(values))
            ax.scatter(values, y, s=10, color=shade, alpha=0.6, linewidths=0)
            med = float(np.median(values))
            ax.plot([med, med], [i + offset - 0.15, i + offset + 0.15], color=shade, linewidth=2.5)
    ax.axvline(1.0, color="#7f8c8d", linewidth=0.8)
    for edge in (1 - cmp.min_effect, 1 + cmp.min_effect):
        ax.axvline(edge, color="#7f8c8d", linewidth=0.8, linestyle=":")
    if cmp.interleaved:
        ax.axvline(1 - cmp.min_effect * FLAG_FRACTION, color="#c0392b", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(rows)), [f"{r.key.label}  {r.effect:+.1%}" for r in rows])
    ax.invert_yaxis()
    unit = _basis(cmp)
    ax.set_xlabel(
        "current ÷ baseline requests in the same second  (bar: estimate, band: 95% CI, dashed: flag line)"
        if cmp.interleaved
        else "requests per second ÷ baseline median  (grey: baseline, colour: current)"
    )
    ax.set_title(f"Perf gate: {cmp.headline}\nthroughput per second, {unit}", loc="left", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    return path


def compare_command(
    baseline: Path,
    current: Path | None,
    chart: Path | None = None,
    *,
    remeasure: Path | None = None,
    console: Console | None = None,
    min_effect: float = 0.10,
) -> int:
    """Print the comparison; exit code 1 on a (confirmed, if `remeasure` is given) regression, else 0;
    2 with one line when a folder is missing or nothing is comparable. The chart is written on regression.
    `current` None: `baseline` is one perf-check run, compared within (its `base:` apps are the baseline).
    """
    out = console or Console()
    for folder in (baseline, current, remeasure):
        if folder is not None and not folder.is_dir():
            out.print(f"[bold red]error:[/] no run folder at {folder}", highlight=False, soft_wrap=True)
            return 2

    def measure(run: Path) -> Comparison:
        if current is None:
            return compare_within(run, min_effect=min_effect)
        return compare_runs(baseline, run, min_effect=min_effect)

    try:
        first = measure(current or baseline)
        render(first, out)
        second = None
        if remeasure is not None and first.regressed:
            out.print(f"\nre-measure: {remeasure.name}")
            second = measure(remeasure)
            render(second, out)
    except CompareError as exc:
        out.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    failed = decide_with_remeasure(first, second)
    shown = second if second is not None else first
    if chart is not None and shown.regressed:
        out.print(f"chart: {plot(shown, chart)}", highlight=False)
    if second is not None and not failed:
        out.print("[bold]not confirmed by the re-measure: pass[/]")
    return 1 if failed else 0
