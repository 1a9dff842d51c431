"""CPU-bound work in pure Python, for the interference experiment's `/cpu?ms=N` route."""

from __future__ import annotations

import time


def burn_cpu(ms: int) -> int:
    """Spin in the interpreter until this thread has used `ms` ms of CPU time (not wall time: other threads
    may run in between, and the work stays the same). The loop holds the GIL except at the interpreter's
    switch interval, as pure-Python request handling does. Returns the loop turns done."""
    end = time.thread_time() + ms / 1000
    turns = 0
    while time.thread_time() < end:
        turns += 1
    return turns
