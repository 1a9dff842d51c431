"""A sampling profiler (py-spy) on an app's processes over a point's measurement window.

`bench run --profile` adds profiled points: the same load as a solo point, with py-spy attached to the app
for the window, never used for a verdict. Each writes into its point folder `profile.txt` (py-spy's raw
collapsed stacks: `frame;frame;... count`, each frame `function (package/path.py:line)`, root first) and
`profile.json` (the rate, the samples and errors py-spy counted, the window), and from a second py-spy
that keeps every running thread, `profile-running.txt`. bench/analyse/layers.py turns the stacks into CPU
per request by layer.

py-spy samples each thread `RATE_HZ` times a second and keeps the samples of threads that were running
(on the CPU or runnable), so samples / rate is CPU seconds. It runs on the load generator's CPUs, never on
the app's; in its default (blocking) mode it pauses the app for each sample, which is what that costs: the
run's profiled points compare their throughput with the same app's solo points (docs/methods.md).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import processes
from bench.processes import ManagedProcess
from bench.store.rundir import PROFILE_RUNNING, PROFILE_STACKS

RATE_HZ = 250  # samples per second: 1,000 in a 4 s window for a busy app
# Why these (measured 2026-12-04 on an AMD EPYC, 2 cores; docs/methods.md "Where a request's CPU goes"):
# - py-spy's default pauses the app for every sample: it served 18-49% fewer requests, and paused, every
#   thread reads as running (2-11x the measured CPU), or, with --gil, the event loop's thread as the holder
#   (a 200 µs busy loop in the sync app's driver showed as 6 µs).
# - Without --gil, threads waiting for the one CPU count as running too (the sync app: 1.5x).
# - --nonblocking costs nothing measurable but fails to read 25-40% of the samples, nearly all of them the
#   main thread's (the event loop): in the sync app its samples failed 38% of the time, worker threads' 4%.
#   --threads names each sample's thread, so bench/analyse/layers.py adds the failed reads to the main
#   thread's layers. The GIL holder's samples plus the failed reads came to 0.97-1.01x the measured CPU for
#   the async apps and 0.88-0.97x for the sync app, whose threads also spend CPU in system calls without
#   the GIL.
FLAGS = ("--nonblocking", "--gil", "--threads")
# A second py-spy beside it, without --gil, reads every running thread: the CPU spent without the GIL
# (system calls of the sync app's threads, Argon2's C code) is on no GIL holder's stack, and these stacks
# say where it goes (bench/analyse/layers.py places the measured remainder by them).
RUNNING_FLAGS = ("--nonblocking", "--threads")
# It reads every thread (the sync app has 40) at each sample: at 250 Hz beside the first it took enough of
# the load generator's CPU to cut a profiled point's requests by 25-34% (run 20261205-022100-bench); its
# samples only share out the remainder, so a fifth of the rate does.
RUNNING_RATE_HZ = 50
# --subprocesses only for an app of several worker processes: with it py-spy tries the app's own process 5
# times (20 without) to read a first stack, which --nonblocking fails to read a third of the time and more
# under load, then gives up ("No python processes found in process N or any of its subprocesses"): one of
# six recordings of a busy sync app lost in three runs of tests/test_layers.py (2026-12-05, AMD EPYC).
# A uvicorn of one worker is a single process; several: an idle supervisor whose workers py-spy follows.
_COUNTS = re.compile(r"Samples: (\d+) Errors: (\d+)")


class ProfilerError(Exception):
    """py-spy is missing or cannot attach; the message says how to fix it."""


def pyspy() -> str:
    """The py-spy executable beside this interpreter (requirements.lock installs it), or on PATH."""
    here = Path(sys.executable).parent / "py-spy"
    found = str(here) if here.is_file() else shutil.which("py-spy")
    if found is None:
        raise ProfilerError("py-spy is not installed: run `make venv` (requirements.lock has it)")
    return found


@dataclass
class Recording:
    """One py-spy process recording one process (and its subprocesses) for `seconds`."""

    proc: ManagedProcess
    stacks: Path
    rate: int
    flags: tuple[str, ...]

    @classmethod
    def start(
        cls, pid: int, stacks: Path, seconds: int, rate: int, flags: tuple[str, ...], cpus: Sequence[int]
    ) -> Recording:
        argv = [
            pyspy(),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--duration",
            str(seconds),
            "--format",
            "raw",
            "--output",
            str(stacks),
            *flags,
        ]
        log = stacks.with_name(f"py-spy-{stacks.stem}.log")
        return cls(processes.spawn("py-spy", argv, cpus=cpus, log_path=log), stacks, rate, flags)

    def finish(self, timeout: float) -> dict[str, object]:
        """Wait for py-spy to write its file; what it counted (`samples`, `errors`), or why it failed."""
        code = self.proc.wait(timeout)
        self.proc.stop()
        log = self.proc.log_path.read_text(errors="replace") if self.proc.log_path else ""
        counts = _COUNTS.search(log)
        out: dict[str, object] = {"rate_hz": self.rate, "flags": " ".join(self.flags)}
        if code != 0 or counts is None or not self.stacks.is_file():
            last = next((line for line in reversed(log.splitlines()) if line.strip()), "no output")
            return out | {"error": f"py-spy exited {code}: {last.strip()[:200]}"}
        return out | {"samples": int(counts[1]), "errors": int(counts[2])}


@dataclass
class Profile:
    """The two recordings of a profiled point: the GIL holder's stacks, and every running thread's."""

    gil: Recording
    running: Recording
    rate: int
    seconds: int

    @classmethod
    def start(
        cls, pid: int, folder: Path, seconds: float, cpus: Sequence[int] = (), *, processes: int = 1
    ) -> Profile:
        """`processes`: the app's worker processes (uvicorn --workers); py-spy follows them from `pid`."""
        whole = max(1, round(seconds))  # py-spy takes whole seconds
        more = ("--subprocesses",) if processes > 1 else ()
        gil = Recording.start(pid, folder / PROFILE_STACKS, whole, RATE_HZ, (*FLAGS, *more), cpus)
        running = Recording.start(
            pid, folder / PROFILE_RUNNING, whole, RUNNING_RATE_HZ, (*RUNNING_FLAGS, *more), cpus
        )
        return cls(gil, running, RATE_HZ, whole)

    def finish(self, timeout: float) -> dict[str, object]:
        """profile.json's `profiler`: the GIL holder's counts (`samples`, `errors`, or `error`) at the top,
        the running threads' under `running`."""
        gil = self.gil.finish(timeout)
        running = self.running.finish(timeout)
        return {"seconds": self.seconds, **gil, "running": running}

    def stop(self) -> None:
        self.gil.proc.stop()
        self.running.proc.stop()


def version() -> str | None:
    try:
        out = subprocess.run([pyspy(), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (ProfilerError, OSError, subprocess.SubprocessError):
        return None
    return out.strip().removeprefix("py-spy ") or None
