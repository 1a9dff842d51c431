"""The default run's verdicts on synthetic runs with known answers: paired points, the switch to solo points
where the CPU was not the limit, the interference factors, and the sentences of 'What this run says'."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hdrh.histogram import HdrHistogram

from bench.analyse.answer import answer
from bench.analyse.interference import interference
from bench.analyse.paired import analyse_pairs, frame
from bench.analyse.verdict import MARGIN
from bench.store.loadgen import LoadgenResult, Second
from bench.store.run import tidy_points
from loadtests.probes import PROBE_REQUEST

SECONDS = 6


def loadgen(per_second: list[int], probe_ms: float | None = None) -> LoadgenResult:
    lg = LoadgenResult(files=1, requests=sum(per_second), window=(1000.0, 1000.0 + SECONDS))
    lg.seconds = {t: Second(n) for t, n in enumerate(per_second)}
    if probe_ms is not None:
        h = HdrHistogram(1, 60_000_000, 3)
        h.record_value(int(probe_ms * 1000), 99)
        h.record_value(int(probe_ms * 3000), 1)
        lg.hdr_by_name[PROBE_REQUEST] = h
    return lg


def points(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = tidy_points(pd.DataFrame([{k: v for k, v in r.items() if k != "loadgen"} for r in rows]))
    df["loadgen"] = pd.Series([r.get("loadgen") for r in rows], index=df.index, dtype=object)
    return df


def paired_run(
    ratio: float,
    *,
    repeats: int = 4,
    noise: float = 0.01,
    seed: int = 1,
    db_ms: int = 0,
    solo_cpu: float | None = None,
    solo: tuple[float, float] = (480.0, 480.0),
) -> pd.DataFrame:
    """Paired points of sync (first) and async (second) whose requests differ by `ratio`, in a machine whose
    speed swings ±20% from second to second (both sides alike); optionally 3 solo repeats of each."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for order in range(1, repeats + 1):
        speed = 1 + rng.uniform(-0.2, 0.2, SECONDS)
        a = np.round(300 * speed * (1 + rng.normal(0, noise, SECONDS))).astype(int)
        b = np.round(300 * ratio * speed * (1 + rng.normal(0, noise, SECONDS))).astype(int)
        for app, partner, counts in (("sync", "async", a), ("async", "sync", b)):
            rows.append(
                {
                    "app": app,
                    "partner": partner,
                    "order": order,
                    "repeat": order,
                    "scenario": "slow_db",
                    "users": 16,
                    "db_ms": db_ms,
                    "valid": True,
                    "loadgen": loadgen(list(counts)),
                }
            )
    if solo_cpu is not None:
        for repeat in (1, 2, 3):
            for app, rps in zip(("sync", "async"), solo, strict=True):
                rows.append(
                    {
                        "app": app,
                        "order": 100 + repeat,
                        "repeat": repeat,
                        "scenario": "slow_db",
                        "users": 16,
                        "db_ms": db_ms,
                        "valid": True,
                        "rps": rps * (1 + 0.002 * repeat),
                        "app_cpu_mean": solo_cpu,
                    }
                )
    return points(rows)


def only(df: pd.DataFrame) -> pd.Series:
    (row,) = [r for _, r in frame(analyse_pairs(df)).iterrows()]
    return row


def test_ten_percent_more_through_machine_noise_is_a_winner() -> None:
    row = only(paired_run(1.10))
    assert row["winner"] == "second" and row["ratio"] == pytest.approx(1.10, abs=0.02)
    assert row["ratio_low"] > 1 + MARGIN and row["half_width"] < 0.02 and row["instrument"] == "paired"
    assert row["verdict"].startswith("async faster by")


def test_equal_apps_are_the_same_within_the_margin_and_say_what_they_would_have_seen() -> None:
    row = only(paired_run(1.0, seed=3))
    assert row["winner"] == "same" and row["verdict"].startswith("the same within ±5%")
    assert 0 < row["mde"] < MARGIN  # this comparison would have seen a difference this small


def test_a_sync_win_reads_in_the_winners_direction() -> None:
    row = only(paired_run(0.90))
    assert row["winner"] == "first"
    assert row["ratio"] == pytest.approx(0.90, abs=0.02)
    assert re.match(r"sync faster by 1[01]\.\d% \(95% CI \+", row["verdict"]), row["verdict"]


def test_a_winner_whose_interval_reaches_inside_the_margin_says_so() -> None:
    """At 5% the interval straddles the ±5% line: the winner stands (clear of 1), flagged, because another
    run's narrower interval at the same effect may call it the same. At 10% it is clear of the line."""
    for ratio, app, winner, line in (
        (1.05, "async", "second", 1 + MARGIN),
        (1 / 1.05, "sync", "first", 1 - MARGIN),
    ):
        row = only(paired_run(ratio, seed=4))
        assert row["winner"] == winner and row["ratio_low"] < line < row["ratio_high"], row
        assert row["at_line"] and row["verdict"].startswith(f"{app} faster by"), row["verdict"]
        assert "at the ±5% line: may be less than 5%" in row["verdict"]
        first = answer(frame(analyse_pairs(paired_run(ratio, seed=4))), pd.DataFrame(), pd.DataFrame())[0]
        assert "; at the ±5% line)" in first.text, first.text
    clear = only(paired_run(1.10))
    assert not clear["at_line"] and "line" not in clear["verdict"]
    same = only(paired_run(1.0, seed=3))
    assert same["winner"] == "same" and not same["at_line"]


def test_one_repeat_gives_no_interval() -> None:
    row = only(paired_run(1.10, repeats=1))
    assert row["winner"] == "unclear" and row["verdict"].startswith("one repeat: no interval")


def test_where_the_cpu_was_not_the_limit_the_solo_points_decide() -> None:
    """Pool-bound at 20 ms: shared, the CPU becomes the limit and the pair differs by 8%; alone, each app
    used 40% of its CPU and both served 480 req/s: the verdict is the solo one."""
    shared = paired_run(1.08, db_ms=20, solo_cpu=40.0, solo=(480.0, 480.0))
    row = only(shared)
    assert (
        row["instrument"] == "solo"
        and row["winner"] == "same"
        and row["ratio"] == pytest.approx(1.0, abs=0.01)
    )
    busy = only(paired_run(1.08, db_ms=20, solo_cpu=99.0, solo=(480.0, 480.0)))
    assert busy["instrument"] == "paired" and busy["winner"] == "second"


def test_one_stalled_solo_point_does_not_switch_the_instrument() -> None:
    """CPU-bound alone (97%, 96%) but one solo repeat stalled at 75%: the median says the CPU was the limit,
    so the verdict stays paired (a mean of 89% would hand it to the solo points and their stalled repeat)."""
    df = paired_run(1.02, db_ms=5, solo_cpu=97.0, solo=(1400.0, 1500.0))
    stalled = df.index[(df["app"] == "sync") & (df["partner"].fillna("") == "")][0]
    df.loc[stalled, ["app_cpu_mean", "rps"]] = (75.0, 870.0)
    row = only(df)
    assert row["instrument"] == "paired" and row["cpu_first"] == 97.0, row
    assert row["ratio"] == pytest.approx(1.02, abs=0.01)


def test_interference_factors_and_the_answer() -> None:
    rows: list[dict[str, Any]] = []
    for repeat in (1, 2, 3):
        for app, slow in (("sync", 12.0), ("async-blocking", 40.0)):
            for kind, ms in (("none", 5.0), ("cpu", slow)):
                rows.append(
                    {
                        "app": app,
                        "order": len(rows) + 1,
                        "repeat": repeat,
                        "scenario": f"interference_{kind}",
                        "users": 12,
                        "valid": True,
                        "loadgen": loadgen([80] * SECONDS, ms * (1 + 0.01 * repeat)),
                    }
                )
    table = interference(points(rows))
    assert list(table["app"]) == ["sync", "async-blocking"] and set(table["kind"]) == {"cpu"}
    factors = dict(zip(table["app"], table["p99_factor"], strict=True))
    assert factors["sync"] == pytest.approx(12 / 5, rel=0.02) and factors["async-blocking"] == pytest.approx(
        8, rel=0.02
    )
    text = " ".join(s.text for s in answer(frame([]), pd.DataFrame(), table))
    assert "beside pure-Python CPU work: sync 2.4×" in text and "async-blocking 8.0×" in text
    assert (
        "not measured in this run (`make bench-variants`)" not in text
    )  # no paired data: no ceiling sentence


def test_the_answer_says_who_served_more_and_where_the_crossover_is() -> None:
    df = pd.concat(
        [
            paired_run(0.93, db_ms=0, seed=5),
            paired_run(1.03, db_ms=5, seed=7),
            paired_run(1.08, db_ms=20, seed=6),
        ],
        ignore_index=True,
    )
    df.loc[df["db_ms"] == 5, "order"] += 10
    df.loc[df["db_ms"] == 20, "order"] += 20
    results = frame(analyse_pairs(df))
    small = results[results["db_ms"] == 5].iloc[0]  # async ahead by 3%: clear of 1, inside ±5%
    assert small["winner"] == "same" and small["ratio_low"] > 1, small
    sentences = answer(results, pd.DataFrame(), pd.DataFrame())
    first = sentences[0].text
    assert re.search(r"async served more on slow_db 20 ms \(\+[78]\.\d%, CI \+", first), first
    assert re.search(r"sync served more on slow_db 0 ms \(\+[78]\.\d%, CI \+", first), first
    crossover = next(s for s in sentences if s.link == "chart-crossover")
    # "Ahead" follows the interval, so the 3% at 5 ms counts although its verdict is "the same within ±5%".
    assert "async is ahead (95% CI) at 5 and 20 ms of database time" in crossover.text
    assert "sync is ahead (95% CI) at 0 ms of database time" in crossover.text
    assert any("Interference was not measured" in s.text for s in sentences)
