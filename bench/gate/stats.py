"""The gate's statistics: is the current code slower than the baseline code by more than the noise?

Decision rule, for each (app, scenario, users, db_ms) key with valid points on both sides:
1. Samples: requests completed in each second of every repeat's measurement window (the window starts
   after the warm-up and is cut at whole seconds, so every second is a full second of steady load).
   The gate's own runs hold both sides, interleaved (`compare_within`: `base:sync` vs `sync`), so the
   machine's drift hits both alike and nothing is normalised. Two separate runs (`compare_runs`) are
   divided by each run's calibration score (bench/calibrate.py); without one, the output says so.
2. Effect = median(current) / median(baseline) - 1, with a bootstrap CI at analyse.stats.CONFIDENCE (2000
   resamples, fixed seed, seconds resampled within each repeat).
3. One-sided Mann-Whitney U test of "current < baseline" (and "current > baseline" for improvements).
4. "regression" when effect <= -min_effect/2 AND p < alpha AND the CI's upper bound < 0; "improvement" is
   the mirror image; anything else is "no change" (too small, or within noise). `min_effect` (10%) is the
   drop the gate must catch; flagging at half of it splits the noise margin between misses and false
   alarms (flagging at exactly 10% would miss half of all true 10% drops). Drops under 5% never fail.
5. The gate fails only if a re-measured run flags the same key again (bench/gate/flow.py).
p99 latency (from the merged HdrHistograms) is reported next to throughput; it does not decide.
Points of one run differ by more than their seconds do (a point-level share of the noise), so p and the
CI are optimistic on their own: the 5% flag line and the independent re-measure keep false alarms rare,
and scripts/perf-gate-trials measures the rates that result (docs/perf-gate.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hdrh.histogram import HdrHistogram
from scipy.stats import mannwhitneyu, wilcoxon

from bench.analyse.stats import CONFIDENCE, LEVEL
from bench.config import MIN_EFFECT
from bench.gate.samples import CompareError, Key, Samples, pool, read_samples, split_run
from bench.store.loadgen import FloatArray, p99_ms
from bench.store.lock import stack_difference
from bench.store.run import read_meta

TAILS = [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)]  # percentiles of the bootstrap interval

BOOTSTRAP_RESAMPLES = 2000
FLAG_FRACTION = 0.5  # a key is flagged when its estimated change passes this fraction of min_effect
BOOTSTRAP_SEED = 20261124

__all__ = ["CompareError", "Comparison", "KeyResult", "compare_runs", "compare_within", "judge", "resample"]


@dataclass(frozen=True)
class KeyResult:
    key: Key
    baseline: list[FloatArray]  # samples per repeat, normalised when the comparison is
    current: list[FloatArray]
    baseline_rps: float  # requests/s, never normalised (for reading): the mean of paired seconds (the
    # effect is their mean log ratio, so the two agree), else the median (the effect is a ratio of medians)
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
            f"{self.key.label}: throughput {self.effect:+.1%} ({LEVEL} {self.ci[0]:+.1%}..{self.ci[1]:+.1%}, "
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


Stats = tuple[float, tuple[float, float], float, float]  # effect, its CI, p slower, p faster


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
    low, high = (float(v) for v in np.percentile(ratios, TAILS)) if len(ratios) else (-1.0, 1.0)
    return effect, (low, high), _p_value(cur, base, "less"), _p_value(cur, base, "greater")


def _paired(baseline: list[FloatArray], current: list[FloatArray], rng: np.random.Generator) -> Stats:
    """Both sides over the same seconds: each second's log ratio current / baseline (+1 each, so a
    stalled second stays finite), its mean, Wilcoxon signed-rank."""
    ratios = [np.log((c + 1) / (b + 1)) for b, c in zip(baseline, current, strict=True)]
    flat = np.concatenate(ratios)
    boot = resample(ratios, rng, BOOTSTRAP_RESAMPLES).mean(axis=1)
    low, high = (float(v) for v in np.expm1(np.percentile(boot, TAILS)))
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
    min_effect: float = MIN_EFFECT,
    alpha: float = 0.01,
    p99_ms: tuple[float | None, float | None] = (None, None),
) -> KeyResult:
    """The verdict for one key. `paired`: the i-th arrays of `baseline` and `current` cover the same
    seconds (the gate's own runs), so a slower machine in a second slows both sides alike and each
    second's ratio is a sample; otherwise the two sides' seconds are compared as two groups.
    `rps`: the raw requests/s to show (default: the samples' means if paired, else their medians)."""
    stats = _paired if paired else _unpaired
    effect, ci, p_slower, p_faster = stats(baseline, current, np.random.default_rng(BOOTSTRAP_SEED))
    verdict, reason = _verdict(effect, ci, p_slower, p_faster, min_effect, alpha)
    centre = np.mean if paired else np.median
    shown = rps or (float(centre(np.concatenate(baseline))), float(centre(np.concatenate(current))))
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


def _as_list(paths: Path | Sequence[Path]) -> list[Path]:
    return [paths] if isinstance(paths, Path) else list(paths)


def compare_runs(
    baseline: Path | Sequence[Path],
    current: Path | Sequence[Path],
    min_effect: float = MIN_EFFECT,
    alpha: float = 0.01,
) -> Comparison:
    """Compare two runs (or pools of runs: each side may be several run folders of the same code),
    normalised by each run's calibration."""
    base_runs = [read_samples(p) for p in _as_list(baseline)]
    cur_runs = [read_samples(p) for p in _as_list(current)]
    notes: list[str] = []
    notes += stack_notes(_as_list(baseline), _as_list(current))
    uncalibrated = sorted({str(r.path) for r in base_runs + cur_runs if r.calibration is None})
    if uncalibrated:
        notes.append(f"not normalised by calibration (none in {', '.join(uncalibrated)}): raw requests/s")
    return compare_data(base_runs, cur_runs, not uncalibrated, notes, min_effect, alpha)


def stack_notes(baseline: Sequence[Path], current: Sequence[Path]) -> list[str]:
    """A note for each pair of runs that measured different stacks (requirements.lock, package versions)."""
    notes = (
        stack_difference(read_meta(b), read_meta(c))
        for b in dict.fromkeys(baseline)
        for c in dict.fromkeys(current)
    )
    return list(dict.fromkeys(n for n in notes if n))


def compare_within(
    runs: Path | Sequence[Path], min_effect: float = MIN_EFFECT, alpha: float = 0.01
) -> Comparison:
    """The gate's comparison: in each run the baseline code (`base:` apps) and the current code were
    measured interleaved, on the same machine minutes apart, so no calibration is needed. Several runs
    (a first run and its re-measure) are pooled, side by side."""
    pairs = [split_run(read_samples(p)) for p in _as_list(runs)]
    note = "baseline code measured at the same time as the current code, sharing its CPU: paired seconds"
    cmp = compare_data(
        [b for b, _ in pairs], [c for _, c in pairs], False, [note], min_effect, alpha, paired=True
    )
    cmp.interleaved = True
    return cmp


def compare_data(
    base_runs: list[Samples],
    cur_runs: list[Samples],
    normalise: bool,
    notes: list[str],
    min_effect: float = MIN_EFFECT,
    alpha: float = 0.01,
    paired: bool = False,
) -> Comparison:
    """`paired`: the i-th array of each side was measured over the same seconds (`split_run`)."""
    base, base_hdr = pool(base_runs, normalise)
    cur, cur_hdr = pool(cur_runs, normalise)
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

    raw_base, raw_cur = pool(base_runs, False)[0], pool(cur_runs, False)[0]

    centre = np.mean if paired else np.median

    def raw(pool: dict[Key, list[FloatArray]], key: Key) -> float:
        return float(centre(np.concatenate(pool[key])))

    rows = [
        judge(
            key,
            base[key],
            cur[key],
            paired=paired,
            rps=(raw(raw_base, key), raw(raw_cur, key)),
            min_effect=min_effect,
            alpha=alpha,
            p99_ms=(_p99(base_hdr.get(key)), _p99(cur_hdr.get(key))),
        )
        for key in keys
    ]
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


def _p99(hist: HdrHistogram | None) -> float | None:
    value = p99_ms(hist)
    return None if math.isnan(value) else value
