"""The regression gate's decision rule, on synthetic run folders with known answers (no database)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from hdrh.histogram import HdrHistogram
from rich.console import Console

from bench.cli.compare import compare_command
from bench.gate.flow import decide
from bench.gate.samples import Key
from bench.gate.stats import Comparison, compare_runs, compare_within, judge
from bench.store.loadgen import FloatArray, window_samples
from bench.store.rows import append_row
from bench.store.run import load_calibration
from bench.store.rundir import CALIBRATION_FILE

SECONDS = 10  # window length: 10 samples per repeat
KEY = Key("sync", "read_heavy", 16, 0)


def make_run(
    root: Path,
    name: str,
    rps: float,
    *,
    noise: float = 0.02,
    repeat_noise: float = 0.0,
    calibration: float | None = 1e6,
    repeats: int = 3,
    seed: int = 1,
    apps: tuple[str, ...] = ("sync",),
    invalid_rps: float | None = None,
    rps_of: dict[str, float] | None = None,
) -> Path:
    """A run folder per results/README.md: points.csv, points/<id>/loadgen-1.json, calibration.json.

    Per-second throughput ~ rps * (1 + repeat offset) * (1 + noise), drawn with a fixed seed.
    """
    rng = np.random.default_rng(seed)
    run = root / name
    (run / "points").mkdir(parents=True)
    if calibration is not None:
        cal = {"score": calibration, "samples": [calibration] * 5, "cpus": [1]}
        (run / CALIBRATION_FILE).write_text(json.dumps({"before": cal, "after": cal}))
    rows = [(app, r, (rps_of or {}).get(app, rps), True) for r in range(1, repeats + 1) for app in apps]
    if invalid_rps is not None:
        rows.append((apps[0], repeats + 1, invalid_rps, False))
    for app, repeat, level, valid in rows:
        point_id = f"{app}__read_heavy__u16__d0__r{repeat}"
        mean = level * (1 + rng.normal(0, repeat_noise))
        counts = np.maximum(0, rng.normal(mean, noise * mean, SECONDS)).round().astype(int)
        hist = HdrHistogram(1, 60_000_000, 3)
        hist.record_value(int(16e6 / level), 99)  # 16 users: latency ~ users / rps
        hist.record_value(int(32e6 / level), 1)
        pdir = run / "points" / point_id
        pdir.mkdir()
        loadgen = {
            "pid": 1,
            "mode": "closed",
            "window": {"start": 1000.0, "end": 1000.0 + SECONDS},
            "requests": int(counts.sum()),
            "failures": 0,
            "by_name": {},
            "hdr": hist.encode().decode(),
            "hdr_uncorrected": None,
            "per_second": [{"t": t, "requests": int(c), "failures": 0} for t, c in enumerate(counts)],
            "late": 0,
            "acked": {"users": [], "items": []},
            "failure_samples": [],
        }
        (pdir / "loadgen-1.json").write_text(json.dumps(loadgen))
        append_row(
            run,
            {
                "run_id": name,
                "point_id": point_id,
                "app": app,
                "scenario": "read_heavy",
                "users": 16,
                "db_ms": 0,
                "repeat": repeat,
                "mode": "closed",
                "rps": counts.mean(),
                "valid": valid,
                "invalid_reasons": "" if valid else "failures(3)",
            },
        )
    return run


def only_row(cmp: Comparison) -> tuple[str, str, float]:
    assert len(cmp.rows) == 1
    row = cmp.rows[0]
    return row.verdict, row.reason, row.effect


def test_a_20_percent_drop_with_low_noise_is_a_regression(tmp_path: Path) -> None:
    base = make_run(tmp_path, "base", 1000, seed=1)
    cur = make_run(tmp_path, "cur", 800, seed=2)
    cmp = compare_runs(base, cur)
    verdict, reason, effect = only_row(cmp)
    assert (verdict, reason) == ("regression", "slower")
    assert -0.23 < effect < -0.17
    assert cmp.regressed and cmp.normalised
    row = cmp.rows[0]
    assert row.ci[1] < 0 and row.p_slower < 0.01
    assert row.text.startswith("sync read_heavy u16: throughput -")
    assert "— slower; p99 +" in row.text  # latency ~ 1/throughput: p99 went up 25%
    assert row.p99_change is not None and 0.2 < row.p99_change < 0.3


def test_identical_distributions_are_no_change(tmp_path: Path) -> None:
    cmp = compare_runs(make_run(tmp_path, "base", 1000, seed=1), make_run(tmp_path, "cur", 1000, seed=2))
    verdict, reason, _ = only_row(cmp)
    assert verdict == "no change" and not cmp.regressed
    assert reason == "below the 5% flag line"


def test_a_significant_3_percent_drop_is_below_the_flag_line(tmp_path: Path) -> None:
    base = make_run(tmp_path, "base", 1000, noise=0.005, seed=1)
    cur = make_run(tmp_path, "cur", 970, noise=0.005, seed=2)
    cmp = compare_runs(base, cur)
    verdict, reason, effect = only_row(cmp)
    assert cmp.rows[0].p_slower < 0.001 and cmp.rows[0].ci[1] < 0  # real and significant...
    assert (verdict, reason) == ("no change", "below the 5% flag line")  # ...but too small to fail on
    assert -0.045 < effect < -0.015


def test_a_10_percent_drop_with_this_machines_noise_is_caught(tmp_path: Path) -> None:
    """3% noise per second, like the sync app here: a true 10% drop is flagged in every draw."""
    for seed in range(1, 21, 2):
        base = make_run(tmp_path, f"b{seed}", 1000, noise=0.03, seed=seed)
        cur = make_run(tmp_path, f"c{seed}", 900, noise=0.03, seed=seed + 1)
        assert only_row(compare_runs(base, cur))[0] == "regression", seed


def test_a_15_percent_drop_within_huge_noise_is_no_change(tmp_path: Path) -> None:
    reasons = set()
    for seed in range(1, 11, 2):  # five independent draws, not one lucky one
        base = make_run(tmp_path, f"base{seed}", 1000, noise=0.35, seed=seed)
        cur = make_run(tmp_path, f"cur{seed}", 850, noise=0.35, seed=seed + 1)
        verdict, reason, _ = only_row(compare_runs(base, cur))
        assert verdict == "no change", reason
        reasons.add(reason)
    assert "within noise" in reasons


def test_a_machine_20_percent_slower_everywhere_is_no_change(tmp_path: Path) -> None:
    base = make_run(tmp_path, "base", 1000, calibration=5e6, seed=1)
    cur = make_run(tmp_path, "cur", 800, calibration=4e6, seed=2)
    cmp = compare_runs(base, cur)
    assert cmp.normalised and only_row(cmp)[0] == "no change"
    assert cmp.rows[0].current_rps < 850  # the table still shows the raw requests/s


def test_without_calibration_nothing_is_normalised_and_the_output_says_so(tmp_path: Path) -> None:
    base = make_run(tmp_path, "base", 1000, calibration=5e6, seed=1)
    cur = make_run(tmp_path, "cur", 800, calibration=None, seed=2)
    cmp = compare_runs(base, cur)
    assert not cmp.normalised and only_row(cmp)[0] == "regression"
    assert any("not normalised" in note and "cur" in note for note in cmp.notes)


def test_invalid_points_are_left_out(tmp_path: Path) -> None:
    base = make_run(tmp_path, "base", 1000, seed=1)
    cur = make_run(tmp_path, "cur", 1000, seed=2, invalid_rps=100)
    (base / "points" / "sync__read_heavy__u16__d0__r3" / "loadgen-1.json").write_text("{truncated")
    cmp = compare_runs(base, cur)
    assert only_row(cmp)[0] == "no change"
    assert sum(map(len, cmp.rows[0].baseline)) == 2 * SECONDS  # the damaged point is left out
    assert sum(map(len, cmp.rows[0].current)) == 3 * SECONDS  # the invalid point too
    assert any("2 invalid, empty or unreadable" in note for note in cmp.notes)


def test_window_samples_keep_every_second_and_fill_empty_ones() -> None:
    assert window_samples({0: 5, 1: 10, 3: 10, 4: 7}, (0.0, 5.0)).tolist() == [5, 10, 0, 10, 7]
    assert window_samples({0: 5, 1: 10}, (0.0, 3.0)).tolist() == [5, 10, 0]


def test_one_interleaved_run_compares_its_base_apps_with_the_current_ones(tmp_path: Path) -> None:
    """`base:sync` is the baseline side, `sync` the current one: a 20% drop is caught without any
    calibration, and an unchanged app is not; such a run is read alone by `bench compare RUN`."""
    apps = ("base:sync", "base:async", "sync", "async")
    run = make_run(tmp_path, "interleaved", 1000, calibration=None, apps=apps, rps_of={"sync": 800})

    cmp = compare_within(run)
    verdicts = {r.key.app: r.verdict for r in cmp.rows}
    assert verdicts == {"sync": "regression", "async": "no change"}
    assert not cmp.normalised and cmp.interleaved and any("at the same time" in n for n in cmp.notes)
    out = io.StringIO()
    chart = tmp_path / "gate.png"
    assert compare_command(run, None, chart, console=Console(file=out, width=120)) == 1
    assert "current vs base: apps in interleaved" in out.getvalue() and chart.stat().st_size > 10_000


def machine(seed: int, seconds: int = 36, swing: float = 0.25) -> tuple[FloatArray, np.random.Generator]:
    """Per-second speed of a noisy machine (±25% from second to second), shared by both sides."""
    rng = np.random.default_rng(seed)
    return 1 + rng.uniform(-swing, swing, seconds), rng


def paired(seed: int, drop: float) -> tuple[list[FloatArray], list[FloatArray]]:
    """Six repeats of 6 s; both apps get the machine's speed of each second, plus 3% noise of their own."""
    speed, rng = machine(seed)
    base = 220 * speed * (1 + rng.normal(0, 0.03, speed.size))
    cur = 220 * (1 - drop) * speed * (1 + rng.normal(0, 0.03, speed.size))
    return np.split(base.round(), 6), np.split(cur.round(), 6)


def test_paired_seconds_see_a_10_percent_drop_through_25_percent_machine_noise() -> None:
    """The gate's own case: the machine swings ±25% from second to second, more than the drop, but both
    sides of a second swing together, so their ratio shows it."""
    for seed in range(10):
        base, cur = paired(seed, 0.10)
        row = judge(KEY, base, cur, paired=True)
        assert row.verdict == "regression" and -0.12 < row.effect < -0.08, (seed, row.text)
        assert row.ci[0] < -0.10 < row.ci[1] or abs(row.effect + 0.10) < 0.01


def test_paired_seconds_of_unchanged_code_are_no_change() -> None:
    verdicts = {judge(KEY, *paired(seed, 0.0), paired=True).verdict for seed in range(20)}
    assert verdicts == {"no change"}
    base, cur = paired(1, 0.03)
    row = judge(KEY, base, cur, paired=True)  # real but small: below the flag line, whatever p says
    assert (row.verdict, row.reason) == ("no change", "below the 5% flag line") and row.p_slower < 0.01


def test_a_regression_fails_only_when_the_remeasure_flags_it_too(tmp_path: Path) -> None:
    base = make_run(tmp_path, "base", 1000, seed=1)
    slow = compare_runs(base, make_run(tmp_path, "slow", 800, seed=2))
    slow_again = compare_runs(base, make_run(tmp_path, "slow2", 790, seed=3))
    fine = compare_runs(base, make_run(tmp_path, "fine", 1000, seed=4))
    assert decide(slow, fine) is False  # flagged once, not twice: pass
    assert decide(slow, slow_again) is True
    assert decide(fine, slow) is False  # the first run decides whether to re-measure
    assert decide(slow, None) is True


def test_compare_command_exit_codes(tmp_path: Path) -> None:
    base = make_run(tmp_path, "base", 1000, seed=1)
    same = make_run(tmp_path, "same", 1000, seed=2)
    slow = make_run(tmp_path, "slow", 800, seed=3)
    fine_again = make_run(tmp_path, "fine", 1000, seed=4)
    unrelated = make_run(tmp_path, "unrelated", 1000, seed=5, apps=("async",))
    out = io.StringIO()
    console = Console(file=out, width=160)
    chart = tmp_path / "charts" / "gate.png"

    assert compare_command(base, same, chart, console=console) == 0
    assert not chart.exists()
    assert compare_command(base, slow, chart, console=console) == 1
    assert chart.stat().st_size > 10_000
    assert "REGRESSION in 1 of 1" in out.getvalue()
    assert compare_command(base, slow, None, remeasure=fine_again, console=console) == 0
    assert "not confirmed by the re-measure" in out.getvalue()

    for missing in (tmp_path / "nope", tmp_path / "charts"):  # no folder; a folder without points.csv
        out.seek(0)
        out.truncate()
        assert compare_command(base, missing, None, console=console) == 2
        assert len(out.getvalue().strip().splitlines()) == 1
    assert compare_command(base, unrelated, None, console=console) == 2
    assert "no comparable points" in out.getvalue()


def test_load_calibration_is_the_median_of_before_and_after(tmp_path: Path) -> None:
    assert load_calibration(tmp_path) is None
    (tmp_path / CALIBRATION_FILE).write_text(
        json.dumps({"before": {"samples": [1.0, 2.0, 3.0]}, "after": {"samples": [4.0, 5.0]}})
    )
    assert load_calibration(tmp_path) == 3.0
