"""Locust's distributed mode: each worker sends its recording to the master, which writes a file per worker.

Where the recording goes. A single Locust process writes `loadgen-<pid>.json` into `--bench-out-dir` when
it quits. In Locust's distributed mode (`bench run --loadgen-workers N`, and `--loadgen-processes N`) the
workers write nothing: each sends its whole recording to the master in one `bench_recording` message
shortly after the window ends, and the master writes `loadgen-w<index>.json` per worker into its own
`--bench-out-dir`. Nothing depends on a disk shared with the workers.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import MasterRunner

from loadtests.options import REPORT_TIMEOUT_S, SEND_DELAY_S, Params
from loadtests.recording import STATE, write_json

RECORDING_MESSAGE = "bench_recording"

log = logging.getLogger("bench")


class WorkerSender:
    """A worker sends its recording to the master once, shortly after the window ends (or when its test
    stops before that). It stops its users first, so the acknowledged ids are final: a write deleted
    after the recording left would otherwise be missed by the acknowledged-write check."""

    def __init__(self) -> None:
        self.pending: gevent.Greenlet | None = None

    def schedule(self, environment: Environment) -> None:
        self.cancel()
        delay = max(0.0, Params.window[1] - time.time()) + SEND_DELAY_S
        self.pending = gevent.spawn_later(delay, self.stop_and_send, environment)

    def cancel(self) -> None:
        if self.pending is not None and not self.pending.ready():
            self.pending.kill(block=False)

    def stop_and_send(self, environment: Environment) -> None:
        self.pending = None  # test_stop below must not send a second time
        if environment.runner is not None:
            environment.runner.stop()  # waits up to the master's --stop-timeout for running tasks
        self.send(environment)

    def send(self, environment: Environment) -> None:
        self.pending = None
        data = STATE.payload() | {"sent_at": time.time()}
        if environment.runner is not None:
            environment.runner.send_message(RECORDING_MESSAGE, data)

    def on_test_stop(self, environment: Environment) -> None:
        if self.pending is not None and not self.pending.ready():
            self.cancel()
            self.send(environment)


class Collector:
    """The master's side: the recording of every worker that started the test, written as it arrives; at
    test stop, a bounded wait for those that have not sent theirs yet. A worker that joined mid-test (one
    restarted after a crash, say) measured part of the window only: its recording is left out, so the
    point shows the missing one."""

    def __init__(self) -> None:
        self.started: set[str] = set()  # the workers connected when the test started
        self.received: dict[str, int] = {}  # worker id -> its index

    def start(self, runner: MasterRunner) -> None:
        self.started = {node.id for node in runner.clients.all}
        self.received = {}

    def on_message(self, environment: Environment, msg: Any, **_kw: Any) -> None:
        runner = environment.runner
        assert isinstance(runner, MasterRunner)
        if msg.node_id not in self.started:
            log.warning("bench: recording of %s left out: it joined after the test started", msg.node_id)
            return
        data = dict(msg.data)
        sent_at = data.pop("sent_at", None)
        index = runner.get_worker_index(msg.node_id)
        data["worker_index"] = index
        data["clock_offset_s"] = round(time.time() - float(sent_at), 3) if sent_at else None
        self.received[msg.node_id] = index
        if Params.out_dir:
            write_json(Path(Params.out_dir) / f"loadgen-w{index}.json", data)

    def on_test_stop(self, environment: Environment) -> None:
        if not Params.out_dir or not math.isfinite(Params.window[1]):
            return
        expected = len(self.started)
        deadline = max(time.time(), Params.window[1] + SEND_DELAY_S) + REPORT_TIMEOUT_S
        while len(self.received) < expected and time.time() < deadline:
            gevent.sleep(0.1)
        if len(self.received) < expected:
            log.warning("bench: recordings from %d of %d workers", len(self.received), expected)
