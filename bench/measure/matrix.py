"""The matrix loop: bring the stack up, run every planned point in order with a progress bar, write a
row per point and keep meta.json current, so an interrupted run keeps what it finished."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench import processes
from bench.backends import backend_for, check_url_backends, default_backend
from bench.catalog import SCENARIO_BY_NAME, AppSpec, assign_backends, resolve_app
from bench.config import RunConfig
from bench.measure import calibrate, where
from bench.measure.point import Point, measure, plan_points, plan_profiles, plan_statements
from bench.processes import Pinning
from bench.stack import Stack
from bench.store.loadgen import read_loadgen
from bench.store.rows import append_row
from bench.store.rundir import CALIBRATION_FILE, environment, new_run_dir, now_iso, write_json

console = Console(stderr=True)


class MatrixRun:
    """`run()` writes results/<run-id>/; `run_dir` is known as soon as the folder exists (for Ctrl-C)."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        names = [*cfg.matrix.apps, *(app for pair in cfg.matrix.pairs or () for app in pair)]
        self.apps: list[AppSpec] = [
            cfg.source.apply(resolve_app(a, cfg.pairing.base_root)) for a in dict.fromkeys(names)
        ]
        # `label=module:attr` and `NAME=http://...` run under their label: the plan names apps by label.
        label = {a: spec.name for a, spec in zip(dict.fromkeys(names), self.apps, strict=True)}
        pairs = (
            tuple((label[a], label[b]) for a, b in cfg.matrix.pairs) if cfg.matrix.pairs is not None else None
        )
        apps = tuple(label[a] for a in cfg.matrix.apps)
        cfg = self.cfg = replace(cfg, matrix=replace(cfg.matrix, apps=apps, pairs=pairs))
        chosen = cfg.matrix.backends or tuple(dict.fromkeys(a.entry.backend for a in self.apps if a.entry))
        self.backend_of = assign_backends(self.apps, chosen or (default_backend(),))
        self.backends = list(dict.fromkeys(self.backend_of.values()))  # each runs its own Stack
        check_url_backends(self.backends)
        self.points: list[Point] = plan_points(cfg, self.apps)  # all backends' points shuffled together
        if cfg.matrix.profile:  # last: the profiler never shares a minute with the verdicts' points
            self.points += plan_profiles(cfg, self.apps)
        undeclared = any(a.custom for a in self.apps) or any(
            s not in SCENARIO_BY_NAME for s in cfg.matrix.scenarios
        )
        # The pass reads the server's counters from the load generator: only where it runs here.
        wanted = cfg.matrix.statements or (cfg.matrix.statements is None and undeclared)
        if wanted and not cfg.loadgen.distributed:
            self.points = plan_statements(cfg, self.apps) + self.points  # first: what each route sends
        self.pinning = Pinning.plan(cfg.pin)
        self.run_dir: Path | None = None
        self.meta: dict[str, Any] = {}
        self.worker_hosts: set[str] = set()  # distributed: the load generators' hosts seen so far

    def _write_meta(self, **update: Any) -> None:
        assert self.run_dir is not None
        self.meta.update(update)
        write_json(self.run_dir / "meta.json", self.meta)

    def _calibrate(self) -> dict[str, Any]:
        """The machine's speed on the app's CPUs, for `bench compare` across runs."""
        if self.cfg.output.calibration_samples <= 0:
            return {}
        try:
            return calibrate.measure(
                list(self.pinning.app) or None, samples=self.cfg.output.calibration_samples
            )
        except calibrate.CalibrationError as exc:
            self.meta.setdefault("warnings", []).append(f"calibration failed: {exc}")
            return {}

    def run(self) -> Path:
        cfg = self.cfg
        self.run_dir = new_run_dir(cfg.output.label, cfg.output.out_root)
        self._write_meta(
            run_id=self.run_dir.name,
            command=" ".join(["bench", *cfg.argv[1:]]) if cfg.argv else "",
            argv=list(cfg.argv),
            config=cfg.flat(),
            **environment(),
            pinning=self.pinning.as_dict(),
            started_at=now_iso(),
            finished_at=None,
            complete=False,
            points_planned=len(self.points),
            points_done=0,
        )
        interrupted = False
        calibration: dict[str, Any] = {}
        try:
            with console.status("calibrating the machine (a fixed CPU loop on the app's CPUs)"):
                calibration["before"] = self._calibrate()
            with ExitStack() as up:
                up.enter_context(processes.harness_on(self.pinning.loadgen))
                stacks: dict[str, Stack] = {}
                for name in self.backends:  # one server per backend; an idle one costs no CPU
                    with console.status(f"starting {name}, seeding, starting its apps"):
                        stacks[name] = up.enter_context(self._stack(name))
                self.stacks = stacks
                self._write_meta(
                    databases={name: stack.database_info() for name, stack in stacks.items()},
                    limits={
                        name: app.limits for stack in stacks.values() for name, app in stack.apps.items()
                    },
                    measured_where=where.describe(cfg, stacks.values()),
                )
                self._run_points(stacks)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            processes.stop_all()
            if not interrupted and calibration.get("before"):
                calibration["after"] = self._calibrate()
            if calibration.get("before"):  # none measured (the gate's paired runs): no file
                write_json(self.run_dir / CALIBRATION_FILE, calibration)
            done = self.meta["points_done"]
            self._write_meta(finished_at=now_iso(), complete=not interrupted and done == len(self.points))
        if interrupted:
            raise KeyboardInterrupt
        return self.run_dir

    def _stack(self, backend: str) -> Stack:
        assert self.run_dir is not None
        apps = [a for a in self.apps if self.backend_of[a.name] == backend]
        cfg = self.cfg
        return Stack(
            backend_for(backend),
            apps,
            limits=cfg.limits,
            seed=cfg.seed,
            pinning=self.pinning,
            log_dir=self.run_dir / "logs",
            database=cfg.output.database,
            app_host=cfg.loadgen.app_host,
        )

    def _run_points(self, stacks: dict[str, Stack]) -> None:
        assert self.run_dir is not None
        columns = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        ]
        started, total = time.monotonic(), len(self.points)
        # a bar needs a terminal to redraw it; a log (CI, `make bench > log`) gets one line per point
        with Progress(
            *columns, console=console, transient=False, disable=not console.is_terminal
        ) as progress:
            task = progress.add_task("points", total=total)
            for order, point in enumerate(self.points, 1):
                description = point.point_id + (" + partner" if point.partner else "")
                progress.update(task, description=description)
                if not console.is_terminal:
                    line = progress_line(order, total, description, time.monotonic() - started)
                    console.print(line, markup=False, highlight=False, soft_wrap=True)
                stack = stacks[self.backend_of[point.app]]
                if point.partner and self.cfg.matrix.fresh_apps:  # two new processes, started alike
                    stack.restart_apps([point.app, point.partner])
                rows = measure(stack, point, self.cfg, self.run_dir, order, say=progress.console.print)
                if self.cfg.loadgen.distributed:
                    self.worker_hosts |= set(read_loadgen(self.run_dir / "points" / point.point_id).hosts)
                    self._write_meta(
                        measured_where=where.describe(self.cfg, stacks.values(), self.worker_hosts)
                    )
                for row in rows:
                    if not (point.profile or point.statements):  # their rows stay in their own folders
                        append_row(self.run_dir, row)
                    if not row.valid and not row.requests:
                        stack.stop_app(row.app)  # a stalled app holds connections: restarted next time
                stack.reset()
                self._write_meta(points_done=order)
                for row in rows:
                    if not row.valid:
                        progress.console.print(
                            f"[yellow]invalid[/] {row.point_id}: {escape(row.invalid_reasons)}",
                            soft_wrap=True,
                        )
                progress.advance(task)


def progress_line(order: int, total: int, description: str, elapsed_s: float) -> str:
    """'[12/83] sync__read_heavy__u16__d0__r2: 3 min 10 s elapsed, about 4 min 20 s left' (at the pace so
    far; nothing is left to guess before the first point is done)."""

    def minutes(s: float) -> str:
        return f"{int(s // 60)} min {int(s % 60)} s" if s >= 60 else f"{int(s)} s"

    left = f", about {minutes(elapsed_s / (order - 1) * (total - order + 1))} left" if order > 1 else ""
    return f"[{order}/{total}] {description}: {minutes(elapsed_s)} elapsed{left}"


def run(cfg: RunConfig) -> Path:
    with processes.signals_as_interrupts():
        return MatrixRun(cfg).run()
