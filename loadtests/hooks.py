"""The recording plugin's hooks into Locust's events: its options, the start and stop of a test on a single
process, a master or a worker, every request, and the recording written when the process quits. Importing
this module registers them (loadtests/common.py imports it, and so every scenario)."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, Runner, WorkerRunner

from loadtests.distributed import RECORDING_MESSAGE, Collector, WorkerSender
from loadtests.options import QUIT_AFTER_S, QUIT_MASTER_S, SPAWN_S, Params, add_arguments
from loadtests.recording import STATE, write_json

log = logging.getLogger("bench")
worker_sender = WorkerSender()
collector = Collector()


def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | None = None,
    context: dict[str, Any] | None = None,
    start_time: float | None = None,
    **_kw: Any,
) -> None:
    if start_time is None:  # a Locust without start_time: derive it
        start_time = time.time() - response_time / 1000
    STATE.recorder.on_request(name, response_time, start_time, exception, context or {}, request_type)


def _on_test_start(environment: Environment, **_kw: Any) -> None:
    opts = environment.parsed_options
    if opts is not None:
        Params.read(opts)
        if not Params.window[0] and Params.duration > 0 and not isinstance(environment.runner, WorkerRunner):
            _plan_window(environment)
    STATE.new_test()
    if isinstance(environment.runner, MasterRunner):
        collector.start(environment.runner)
        return
    STATE.cpu.start()
    if isinstance(environment.runner, WorkerRunner) and Params.out_dir and math.isfinite(Params.window[1]):
        worker_sender.schedule(environment)
    elif (
        environment.runner is not None
        and opts is not None
        and opts.headless
        and math.isfinite(Params.window[1])
    ):
        # Quit as soon as the window is over rather than at `-t`, which counts whole seconds: the harness
        # waited about a second per point for nothing (`-t` stays as the backstop).
        delay = max(0.0, Params.window[1] - time.time()) + QUIT_AFTER_S
        gevent.spawn_later(delay, _quit_after_window, environment.runner)


def _quit_after_window(runner: Runner) -> None:
    STATE.recorder.ended = "window"
    runner.quit()


def _plan_window(environment: Environment) -> None:
    """Window of this test, from now (the master starts its test when every worker has connected); the
    parsed options carry it to the workers with the spawn messages that follow."""
    start = _ready_together() + SPAWN_S + Params.warmup
    Params.window = (start, start + Params.duration)
    opts = environment.parsed_options
    if opts is not None:
        opts.bench_window_start, opts.bench_window_end = Params.window
    if Params.out_dir:
        write_json(Path(Params.out_dir) / "window.json", {"start": start, "end": start + Params.duration})
    if Params.partner_ready and environment.runner is not None:
        # Its -t counted from before the wait: it quits by itself once its window is over (as -t would).
        gevent.spawn_later(max(0.0, Params.window[1] - time.time()) + QUIT_MASTER_S, environment.runner.quit)


def _ready_together() -> float:
    """Now, or for one of a paired point's two masters (each with its own workers) the moment both have
    their workers: each writes when it is ready and waits (bounded) for the other, so both plan the same
    window. Alone past the wait (the other's workers never came), it plans from now: that point is invalid."""
    now = time.time()
    if not (Params.partner_ready and Params.out_dir):
        return now
    write_json(Path(Params.out_dir) / "ready.json", {"t": now})
    deadline = now + Params.partner_wait
    while time.time() < deadline:
        try:
            return max(now, float(json.loads(Path(Params.partner_ready).read_text())["t"]))
        except (OSError, ValueError, KeyError, TypeError):
            gevent.sleep(0.02)  # not yet there (or being written)
    log.warning(
        "bench: the other master of this paired point was not ready within %.0f s", Params.partner_wait
    )
    return time.time()


def _on_init(environment: Environment, **_kw: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(RECORDING_MESSAGE, collector.on_message)


def _on_worker_connect(client_id: str, **_kw: Any) -> None:
    log.warning("bench: worker connected: %s", client_id)  # the harness counts these lines


def _on_test_stop(environment: Environment, **_kw: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        worker_sender.on_test_stop(environment)
    elif isinstance(environment.runner, MasterRunner):
        collector.on_test_stop(environment)


def _write(environment: Environment, **_kw: Any) -> None:
    """A single Locust process writes its own recording when it quits."""
    if Params.out_dir is None or isinstance(environment.runner, MasterRunner | WorkerRunner):
        return
    write_json(Path(Params.out_dir) / f"loadgen-{os.getpid()}.json", STATE.payload())


events.init_command_line_parser.add_listener(add_arguments)
events.init.add_listener(_on_init)
events.worker_connect.add_listener(_on_worker_connect)
events.test_start.add_listener(_on_test_start)
events.test_stop.add_listener(_on_test_stop)
events.request.add_listener(_on_request)
events.quitting.add_listener(_write)
