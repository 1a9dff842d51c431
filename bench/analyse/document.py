"""The report as a document: its blocks in order (headings, the generated answer, tables, method notes,
charts), built once from a run and its analysis; render.py turns the same blocks into HTML and Markdown."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.analyse.answer import Sentence, answer
from bench.analyse.paired import CPU_LIMIT
from bench.analyse.plots import Chart
from bench.analyse.stats import CONFIDENCE, LEVEL, POWER
from bench.analyse.summary import Analysis
from bench.analyse.tables import (
    Table,
    ceilings_table,
    comparison_table,
    environment_tables,
    interference_table,
    invalid_table,
    layers_table,
    paired_verdict_table,
    summary_table,
    verdict_table,
    work_table,
)
from bench.analyse.verdict import MARGIN, SAME
from bench.analyse.work import unequal
from bench.config import OTHERS_CPU_LIMIT
from bench.store.lock import stack_line
from bench.store.run import Run, load_samples
from loadtests.probes import PROBES_TEXT


def reproduce_command(meta: dict[str, Any]) -> str:
    command = str(meta.get("command") or "").strip()
    if command.startswith("bench"):
        return f".venv/bin/python -m {command}"
    return command


def incomplete_notice(meta: dict[str, Any]) -> str | None:
    if not meta:
        return "meta.json is missing: the environment and limits of this run are unknown."
    if meta.get("complete") is True:
        return None
    done, planned = meta.get("points_done", "?"), meta.get("points_planned", "?")
    return (
        f"Incomplete run: {done} of {planned} planned points finished (meta.json complete = false). The "
        "verdicts cover only the finished points."
    )


def where_notice(meta: dict[str, Any]) -> str | None:
    """One sentence under the verdicts when some figures could not be measured on this set-up."""
    missing = [
        f"{r['part']}: {r['not_measured']}" for r in meta.get("measured_where") or [] if r.get("not_measured")
    ]
    if not missing:
        return None
    return "Not measured on this set-up (empty cells, not zeros): " + "; ".join(missing) + "."


METHOD_LAYERS = (
    "Microseconds of CPU per request, by layer: two py-spy samplers read each app's stacks 250 times a "
    "second (not pausing it) while it ran alone at the headline load, one profiled point per app and "
    "workload after the other points (never in a verdict); a sample counts for the layer of its innermost "
    "frame of a known package (rules: bench/catalog.py LAYER_RULES). One keeps the thread holding the GIL: "
    "its samples are CPU seconds ('of it holding the GIL' says how much of the measured CPU they cover). "
    "What ran without the GIL (system calls, Argon2's C code) is on no GIL holder's stack: the rest of "
    "'measured' (the telemetry's CPU over the same seconds) goes to the layers where the other sampler, "
    "which keeps every running thread, saw more than the GIL holder's, in proportion ('layers / measured': "
    "100% once placed; above, the GIL holder's samples exceeded the measured CPU). A compiled driver "
    "(asyncmy, asyncpg, mysqlclient) has no Python frames: its CPU counts for the code that called it "
    "(SQLAlchemy's greenlet bridge, the event loop); the pure-Python pair (sync vs async-aiomysql) shows the "
    "driver on both sides. One point per side: differences of a few tens of µs are within its noise. Flame "
    "graphs (the GIL holder's): flamegraphs/*.speedscope.json (open in https://www.speedscope.app)."
)


METHOD_WORK = (
    "Before the other points, each app replayed each scenario alone with one user for a few seconds, and the "
    "load generator read the database's own statement counters after every answer (MariaDB's Com_* status, "
    "PostgreSQL's pg_stat_statements): what the server executed between two answers is the later request's "
    "work. Statements per request, mean over the requests of that name."
)


METHOD_SOLO = (
    "Each verdict compares mean throughput over the valid repeats at the highest load where both apps have "
    "valid points (preferring loads with at least 2 valid repeats each). The {level} of the async/sync ratio "
    "is a log-ratio t interval (delta method, Welch–Satterthwaite degrees of freedom); a CI that includes "
    "1.0 means no significant difference. Latency percentiles come from HdrHistograms merged over repeats. "
    "Invalid points are excluded from every statistic."
)


METHOD_PAIRED = (
    "Where each app alone used its whole CPU (the CPU was the limit), the verdict comes from paired points: "
    "the sync and the async app loaded at the same time, each by its own Locust, sharing the app's CPU, so "
    "whatever slows the machine in a given second slows both ({machine}); the ratio of their requests is "
    "then the ratio of their costs per request, which is their throughput ratio on a whole CPU. One sample "
    "per repeat (the log ratio over the window, both apps started anew for it unless the run said "
    "--same-apps), a Student t interval over repeats. Where an app alone used less than {cpu_limit:.0f}% of "
    "its CPU (the median over its solo repeats: queries that wait in the database, a pool that is the "
    "limit), sharing the CPU would make it the limit and change the answer: the verdict then comes from the "
    "solo points (each app alone, mean requests/s over repeats, a log-ratio t interval), which the machine's "
    "speed hardly moves there. '{same}' when the whole {level} lies inside ±{margin:.0%}; a winner when it "
    "excludes 1 (flagged 'at the ±{margin:.0%} line' when it also reaches inside ±{margin:.0%}); otherwise "
    "not enough evidence. '±' is the interval's half-width; 'would have seen' the smallest difference "
    "detected with {power:.0%} power. Latency and saturation come from the solo points, in the charts and "
    "tables below."
)


def machine_speed(data: Run, result: Analysis) -> str:
    """How much this run's machine changed speed, from its own measurements: the calibration loop's samples,
    the spread of one solo repeat that used the whole CPU, and what else ran on the app's CPU."""
    parts = []
    if len(samples := load_samples(data.run_dir)) >= 2:
        mid = statistics.median(samples)
        parts.append(
            f"a fixed CPU loop timed {len(samples)} times on the app's CPU before and after this run ran at "
            f"{min(samples) / mid:.2f}-{max(samples) / mid:.2f}× its median speed"
        )
    if result.spread:
        parts.append(
            f"the repeats of a solo point that used the whole CPU spread by {result.spread.sd:.0%} (sd, "
            f"pooled over {result.spread.groups} points)"
        )
    if "app_cpus_others" in data.points and len(others := data.points["app_cpus_others"].dropna()):
        over = int((others > OTHERS_CPU_LIMIT).sum())
        left_out = f" ({over} point{'s' * (over != 1)} above {OTHERS_CPU_LIMIT:.0f}%, left out as invalid)"
        parts.append(
            f"anything but the apps took at most {others.max():.0f}% of a core on the app's CPU in a window"
            + (left_out if over else "")
        )
    return "; ".join(parts) if parts else "the machine's speed was not measured in this run"


@dataclass
class Block:
    """One piece of the report, rendered to HTML and to Markdown alike."""

    kind: str  # "h1" | "h2" | "h3" | "p" | "note" | "banner" | "table" | "answer" | "charts" | "code"
    text: str = ""
    anchor: str = ""
    table: Table | None = None
    sentences: Sequence[Sentence] = ()
    charts: Sequence[Chart] = ()


def blocks(data: Run, result: Analysis, charts: Sequence[Chart]) -> list[Block]:
    meta = data.meta
    run_id = meta.get("run_id") or data.run_dir.name
    out = [Block("h1", f"Sync or async? Run {run_id}")]
    machine = f"{meta.get('cpu_model') or 'CPU not recorded'}, {meta.get('cpu_count') or '?'} CPUs"
    out.append(
        Block(
            "note", f"Measured on {machine}, Python {meta.get('python') or '?'}. Stack: {stack_line(meta)}."
        )
    )
    if notice := incomplete_notice(meta):
        out.append(Block("banner", notice))
    out += [Block("banner", f"Damaged point, left out: {problem}") for problem in data.problems]
    sentences = answer(result.paired, result.summary, result.interference, result.layer_pairs, result.work)
    if sentences:
        out += [Block("h2", "What this run says", "answer"), Block("answer", sentences=sentences)]
    out.append(Block("h2", "Verdicts", "verdicts"))
    verdicts = paired_verdict_table(result) if not result.paired.empty else None
    if verdicts is not None and verdicts.rows:
        method = METHOD_PAIRED.format(
            machine=machine_speed(data, result),
            cpu_limit=CPU_LIMIT,
            same=SAME,
            level=LEVEL,
            margin=MARGIN,
            power=POWER,
        )
        out += [Block("table", table=verdicts), Block("note", method)]
    else:
        out += [
            Block("table", table=verdict_table(result, sorted(set(data.points["app"])))),
            Block("note", METHOD_SOLO.format(level=f"{CONFIDENCE:.0%} confidence interval")),
        ]
    if where := where_notice(meta):
        out.append(Block("note", where))
    if found := unequal(result.work):
        out.append(
            Block(
                "banner",
                "Different work: "
                + "; ".join(f"{u.scenario}: {u.text}" for u in found)
                + ". A verdict between these apps compares their work as well as their speed.",
            )
        )
    if not result.work.empty:
        out += [
            Block("h2", "Statements per route", "statements"),
            Block("table", table=work_table(result.work)),
            Block("note", METHOD_WORK),
        ]
    if not result.layer_pairs.empty:
        out += [
            Block("h2", "Where a request's CPU goes", "layers"),
            Block("table", table=layers_table(result.layer_pairs)),
            Block("note", METHOD_LAYERS),
        ]
    out += [Block("h2", "Charts", "charts"), Block("charts", charts=charts)]
    if not result.interference.empty:
        out += [
            Block("h2", "Interference: does one request hold up the others?", "interference"),
            Block("table", table=interference_table(result)),
            Block(
                "note",
                f"Probes: {PROBES_TEXT}; the other users keep one kind of work busy. p50/p99 from each "
                "repeat's own histogram of the probes; the factor is the mean ratio over repeats with a "
                "log-ratio t interval.",
            ),
        ]
    if (ceilings := ceilings_table(result)).rows:
        out += [
            Block("h2", "Ceilings: what the ORM and the framework cost", "ceilings"),
            Block("table", table=ceilings),
            Block(
                "note",
                "The same routes and the same statements on the bare driver (raw PyMySQL with a plain pool, "
                "raw asyncmy with its pool), without the ORM, the Session and response-model validation, "
                "paired with the idiomatic app over the same seconds.",
            ),
        ]
    out += [Block("h2", "All measurements", "numbers"), Block("h3", "Solo points: per app and workload")]
    out.append(Block("table", table=summary_table(result)))
    if not result.pairs.empty:
        out += [
            Block("h3", "Solo sync/async comparisons (descriptive)"),
            Block("table", table=comparison_table(result)),
        ]
    out.append(Block("h2", "Environment and limits", "environment"))
    for title, table in environment_tables(meta):
        out += [Block("h3", title), Block("table", table=table)]
    invalid = invalid_table(result)
    out += [Block("h2", "Invalid points", "invalid")]
    out.append(Block("table", table=invalid) if invalid.rows else Block("p", "No invalid points."))
    command = reproduce_command(meta)
    out += [Block("h2", "Reproduce this run", "reproduce")]
    out.append(Block("code", command) if command else Block("p", "The command is not recorded in meta.json."))
    return out
