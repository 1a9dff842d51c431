"""Statistics of bench.analysis on synthetic tables with known answers (no database, no processes)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hdrh.histogram import HdrHistogram

from bench.analyse.stats import mean_ci, pooled_spread, ratio_ci
from bench.analyse.summary import analyse, compare_pairs, headline, invalid_points, summarize
from bench.analyse.verdict import Winner, sweep_verdict
from bench.store.loadgen import merge_histograms, percentiles_ms
from bench.store.run import tidy_points

SYNC_RPS = [500.0, 510.0, 490.0]


def hist(values_us: list[int]) -> HdrHistogram:
    h = HdrHistogram(1, 60_000_000, 3)
    for v in values_us:
        h.record_value(v)
    return h


def points(rows: list[dict[str, Any]]) -> pd.DataFrame:
    base = {"scenario": "read_heavy", "users": 32, "db_ms": 0, "mode": "closed", "valid": True}
    full = []
    for i, row in enumerate(rows):
        r = base | row
        r.setdefault("point_id", f"{r['app']}__{r['scenario']}__u{r['users']}__d{r['db_ms']}__r{r['repeat']}")
        r.setdefault("order", i + 1)
        full.append(r)
    return tidy_points(pd.DataFrame(full))


def sample(app: str, rps: list[float], **extra: Any) -> list[dict[str, Any]]:
    return [{"app": app, "repeat": i + 1, "rps": v, **extra} for i, v in enumerate(rps)]


def test_async_exactly_20_percent_faster() -> None:
    df = points(sample("sync", SYNC_RPS) + sample("async", [v * 1.2 for v in SYNC_RPS]))
    row = compare_pairs(df).iloc[0]
    assert row["ratio"] == pytest.approx(1.2)
    assert row["ratio_low"] < 1.2 < row["ratio_high"]
    assert row["verdict"].startswith("async faster by 20% (95% CI ")
    assert row["winner"] == Winner.SECOND


def test_sync_exactly_20_percent_faster() -> None:
    df = points(sample("sync", [v * 1.2 for v in SYNC_RPS]) + sample("async", SYNC_RPS))
    text = compare_pairs(df).iloc[0]["verdict"]
    assert text.startswith("sync faster by 20% (95% CI ")


def test_identical_samples_are_no_significant_difference() -> None:
    df = points(sample("sync", SYNC_RPS) + sample("async", SYNC_RPS))
    row = compare_pairs(df).iloc[0]
    assert row["ratio"] == pytest.approx(1.0)
    assert row["verdict"] == "no significant difference"


def test_overlapping_noisy_samples_are_no_significant_difference() -> None:
    df = points(sample("sync", [400.0, 600.0]) + sample("async", [450.0, 620.0]))
    assert compare_pairs(df).iloc[0]["verdict"] == "no significant difference"


def test_one_repeat_has_no_ci_and_says_not_enough_repeats() -> None:
    df = points(sample("sync", [500.0]) + sample("async", [700.0]))
    summary = summarize(df)
    assert summary["n"].tolist() == [1, 1]
    assert summary["rps_ci_low"].isna().all() and summary["rps_ci_high"].isna().all()
    assert set(summary["ci_note"]) == {"1 repeat: no CI"}
    row = compare_pairs(df).iloc[0]
    assert row["ratio"] == pytest.approx(1.4)
    assert math.isnan(row["ratio_low"])
    assert row["verdict"] == "not enough repeats"


def test_invalid_points_are_excluded_and_listed() -> None:
    rows = sample("sync", SYNC_RPS) + sample("async", [v * 1.2 for v in SYNC_RPS])
    rows.append(
        {"app": "async", "repeat": 4, "rps": 50_000.0, "valid": "False", "invalid_reasons": "failures(3)"}
    )
    df = points(rows)
    result = analyse(df)
    async_row = result.summary[result.summary["app"] == "async"].iloc[0]
    assert async_row["n"] == 3 and async_row["invalid"] == 1
    assert async_row["rps_mean"] == pytest.approx(np.mean(SYNC_RPS) * 1.2)
    assert result.pairs.iloc[0]["n_async"] == 3
    assert "20%" in result.pairs.iloc[0]["verdict"]
    listed = invalid_points(df)
    assert listed["point_id"].tolist() == ["async__read_heavy__u32__d0__r4"]
    assert listed["invalid_reasons"].tolist() == ["failures(3)"]


def test_merged_histogram_percentiles_are_those_of_the_union() -> None:
    fast = list(range(1_000, 11_000, 10))  # 1000 values, 1..11 ms
    slow = list(range(100_000, 300_000, 2_000))  # 100 values, 100..300 ms
    h_fast, h_slow = hist(fast), hist(slow)
    df = points(
        [
            {"app": "sync", "repeat": 1, "rps": 500.0, "hdr": h_fast, **percentiles_ms(h_fast)},
            {"app": "sync", "repeat": 2, "rps": 510.0, "hdr": h_slow, **percentiles_ms(h_slow)},
        ]
    )
    row = summarize(df).iloc[0]
    union = percentiles_ms(hist(fast + slow))
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        assert row[key] == union[key]
    # The union's p99 sits inside the slow repeat; the average of the two p99s is far from it.
    assert row["p99_ms"] == pytest.approx(np.percentile(np.array(fast + slow) / 1000, 99), rel=0.01)
    averaged = (percentiles_ms(h_fast)["p99_ms"] or 0) / 2 + (percentiles_ms(h_slow)["p99_ms"] or 0) / 2
    assert abs(row["p99_ms"] - averaged) > 50
    assert row["latency_source"] == "merged histograms (2 repeats)"
    assert h_fast.get_total_count() == len(fast)  # inputs untouched


def test_latency_falls_back_to_median_of_repeats_without_histograms() -> None:
    df = points(
        [
            {"app": "sync", "repeat": 1, "rps": 500.0, "p50_ms": 10.0, "p95_ms": 20.0, "p99_ms": 30.0},
            {"app": "sync", "repeat": 2, "rps": 500.0, "p50_ms": 12.0, "p95_ms": 24.0, "p99_ms": 90.0},
            {"app": "sync", "repeat": 3, "rps": 500.0, "p50_ms": 14.0, "p95_ms": 28.0, "p99_ms": 40.0},
        ]
    )
    row = summarize(df).iloc[0]
    assert (row["p50_ms"], row["p95_ms"], row["p99_ms"]) == (12.0, 24.0, 40.0)
    assert row["latency_source"].startswith("median of per-repeat")


def test_merge_histograms_of_nothing_is_none() -> None:
    assert merge_histograms([None, None]) is None


def test_mean_ci_matches_student_t() -> None:
    mean, low, high = mean_ci([10.0, 12.0, 14.0])
    # sd = 2, sem = 2/sqrt(3), t(0.975, 2) = 4.302653
    assert mean == 12.0
    assert high - mean == pytest.approx(4.302653 * 2 / math.sqrt(3), rel=1e-6)
    assert low == pytest.approx(2 * mean - high)


def test_ratio_ci_is_symmetric_on_the_log_scale() -> None:
    ratio, low, high = ratio_ci([120.0, 130.0, 110.0], [100.0, 104.0, 96.0])
    assert ratio == pytest.approx(1.2)
    assert math.log(ratio) - math.log(low) == pytest.approx(math.log(high) - math.log(ratio))


def test_verdict_strings() -> None:
    assert sweep_verdict(1.5, 1.2, 1.8, 3, 3).text == "async faster by 50% (95% CI 20%..80%)"
    assert sweep_verdict(0.5, 0.4, 0.625, 3, 3).text == "sync faster by 100% (95% CI 60%..150%)"
    assert sweep_verdict(1.05, 1.01, 1.09, 2, 2).text == "async faster by 5.0% (95% CI 1.0%..9.0%)"
    assert sweep_verdict(1.1, 0.9, 1.3, 3, 3).text == "no significant difference"
    assert sweep_verdict(1.4, math.nan, math.nan, 1, 3).text == "not enough repeats"
    winners = [
        sweep_verdict(*args).winner
        for args in (
            (1.5, 1.2, 1.8, 3, 3),
            (0.5, 0.4, 0.625, 3, 3),
            (1.1, 0.9, 1.3, 3, 3),
            (1.4, 1.2, 1.6, 1, 3),
        )
    ]
    assert winners == [Winner.SECOND, Winner.FIRST, Winner.UNCLEAR, Winner.UNCLEAR]
    assert sweep_verdict(0.5, 0.4, 0.625, 3, 3, "raw", "orm").text.startswith("raw faster by 100%")


def test_pairs_exist_only_when_both_apps_ran() -> None:
    df = points(sample("sync", SYNC_RPS) + sample("async", SYNC_RPS) + sample("async-aiomysql", SYNC_RPS))
    labels = compare_pairs(df)["pair"].tolist()
    assert labels == ["default drivers: PyMySQL vs asyncmy", "pure-Python drivers: PyMySQL vs aiomysql"]


def test_headline_uses_highest_load_with_enough_repeats_and_each_slow_db_level() -> None:
    rows = []
    for users in (8, 32, 64):
        rows += sample("sync", SYNC_RPS, users=users)
        rows += sample("async", [v * 1.2 for v in SYNC_RPS], users=users)
    rows += [{"app": "sync", "repeat": 1, "users": 128, "rps": 500.0}]  # async never ran at 128
    rows += [{"app": "async", "repeat": 1, "users": 64, "rps": 600.0, "valid": False}]
    for db_ms in (0, 20):
        rows += sample("sync", SYNC_RPS, scenario="slow_db", users=16, db_ms=db_ms)
        rows += sample("async", SYNC_RPS, scenario="slow_db", users=16, db_ms=db_ms)
    top = headline(compare_pairs(points(rows)))
    assert top[["scenario", "load", "db_ms"]].values.tolist() == [
        ["read_heavy", 64, 0],
        ["slow_db", 16, 0],
        ["slow_db", 16, 20],
    ]
    assert top.iloc[0]["verdict"].startswith("async faster by 20%")


def test_open_loop_groups_by_target_rate() -> None:
    rows = [
        {"app": "sync", "repeat": r, "mode": "open", "users": 1, "target_rps": rate, "rps": rate * 0.99}
        for rate in (100, 200)
        for r in (1, 2)
    ]
    summary = summarize(points(rows))
    assert summary["load"].tolist() == [100, 200]
    assert summary["n"].tolist() == [2, 2]


def test_pooled_spread_is_the_pooled_sd_of_logs() -> None:
    groups = [[100.0, 100.0 * math.e**0.2], [50.0, 50.0, 50.0 * math.e**0.3], [70.0], []]
    spread = pooled_spread(groups)
    assert spread is not None
    # log-deviations: ±0.1 (1 df); 0.1 twice and -0.2 once (2 df): (0.02 + 0.06) / 3
    assert spread.sd == pytest.approx(math.sqrt(0.08 / 3))
    assert (spread.df, spread.groups) == (3, 2)
    assert spread.factor() == pytest.approx(math.exp(3.182446 * spread.sd), rel=1e-5)
    assert pooled_spread([[70.0], []]) is None


def test_spread_of_one_repeat_comes_only_from_cpu_bound_groups_with_repeats() -> None:
    bound = [500.0, 600.0]  # the app used its whole CPU: machine speed shows
    rows = sample("sync", bound, app_cpu_mean=99.0) + sample("async", [700.0], app_cpu_mean=98.0)
    rows += sample("sync", [200.0, 400.0], scenario="slow_db", db_ms=50, app_cpu_mean=40.0)  # pool-bound
    result = analyse(points(rows))
    assert result.spread is not None and (result.spread.groups, result.spread.df) == (1, 1)
    assert result.spread.sd == pytest.approx(math.log(600 / 500) / math.sqrt(2))
    assert summarize(points(rows))["app_cpu"].tolist() == [99.0, 98.0, 40.0]
    assert analyse(points(rows[2:])).spread is None  # no CPU-bound group with 2 repeats
