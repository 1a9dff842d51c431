"""`bench` as the tests call it: `bench run`'s flags, command line and environment, and its run folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.config import REPO_ROOT

RUN_TIMEOUT_S = 240
# A short run: what every test's `bench run` uses unless it says otherwise.
SHORT: dict[str, object] = {"users": 4, "repeats": 1, "duration": 2, "warmup": 0.5}
PAIRED: dict[str, Any] = {"paired_repeats": 1, "paired_duration": 2}  # one paired point as short
BOTH = ("sync", "async")


def flags(
    *, apps: Sequence[str] = ("sync",), scenarios: Sequence[str] = ("read_heavy",), **options: object
) -> list[str]:
    """`-a`/`-s` for each app and scenario, then one `--name value` per option over SHORT's: underscores
    become dashes, True is a bare flag, False its `--no-` form, None leaves the option out.

    For example `flags(users="2,4", statements=False)`.
    """
    argv = [*(f for app in apps for f in ("-a", app)), *(f for s in scenarios for f in ("-s", s))]
    for name, value in (SHORT | options).items():
        option = "--" + name.replace("_", "-")
        if value is True:
            argv.append(option)
        elif value is False:
            argv.append("--no-" + option[2:])
        elif value is not None:
            argv += [option, str(value)]
    return argv


def command(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`python -m bench ARGS` from the repository, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    """The command refused its input with exit 2 and one line that names each of `words`."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and all(w in lines[0] for w in words), lines[0]


def bench_env() -> dict[str, str]:
    """The harness seeds and writes the test database, never the one a user benchmarks."""
    return {**os.environ, "DB_NAME": "app_test", "PYTHONUNBUFFERED": "1"}


def run_args(*args: str, out: Path) -> list[str]:
    """`run` with a small seed, writing under `out`, no report (the tests build theirs), then `args`."""
    return ["run", "--seed-users", "200", "--out", str(out), "--no-report", *args]


def bench(*args: str, out: Path) -> list[str]:
    """The command line of `bench run` (run_args)."""
    return [sys.executable, "-m", "bench", *run_args(*args, out=out)]


def only_run_dir(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def finished(
    *args: str, out: Path, env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """`bench run` to its end, which must be a success (the last of stderr is the failure's message)."""
    proc = command(*run_args(*args, out=out), env=env or bench_env(), timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def in_background(
    argv: list[str], *, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None, merged: bool = False
) -> subprocess.Popen[str]:
    """A command started in its own session (a signal the test sends reaches it, not pytest), its stderr kept
    (`merged`: its stdout and stderr together, on stdout)."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env or bench_env(),
        stdout=subprocess.PIPE if merged else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_bench(
    *args: str, out: Path, env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT_S
) -> Path:
    """`bench run` to a successful end: its run folder."""
    finished(*args, out=out, env=env, timeout=timeout)
    return only_run_dir(out)
