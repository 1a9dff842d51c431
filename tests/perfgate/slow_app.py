"""The real apps behind a middleware that burns a fixed amount of CPU per request (an injected regression).

    PERFGATE_BURN_US=300 bench run --app tests.perfgate.slow_app:sync_app ...

`PERFGATE_BURN_US` (microseconds, default 0) is read when the app is built. `sync_app_k10` (any
number) runs a fixed 10,000 empty loop iterations instead: a fixed amount of *work*, so the slowdown stays
the same fraction of a request when the machine itself gets slower or faster (a fixed time would not).
The gate's trials use these; one run can hold several levels. The burn is a busy loop on
the event loop, before the request reaches the app, so every route (/healthz and /limits included) pays
it, and /limits still reports the wrapped app's own limits. Product code is untouched. Each app is built
on first access, so a process serving `sync_app` never imports the async app's drivers.
"""

from __future__ import annotations

import os
import time

from starlette.types import ASGIApp, Receive, Scope, Send


class BurnCPU:
    """Pure ASGI middleware: spin for `burn_us` microseconds, or `iterations` loop turns, per HTTP request."""

    def __init__(self, app: ASGIApp, burn_us: float = 0.0, iterations: int = 0) -> None:
        self.app = app
        self.burn_s = max(0.0, burn_us) / 1e6
        self.iterations = range(max(0, iterations))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.burn_s > 0:
                end = time.perf_counter() + self.burn_s
                while time.perf_counter() < end:
                    pass
            for _ in self.iterations:
                pass
        await self.app(scope, receive, send)


_built: dict[str, BurnCPU] = {}


def __getattr__(name: str) -> BurnCPU:
    """`sync_app`, `async_app` (and `..._k<N>`), built on first access (uvicorn's getattr(module, attr))."""
    kind, _, burn = name.partition("_app")
    if kind not in ("sync", "async") or not (burn == "" or (burn[:2] == "_k" and burn[2:].isdigit())):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _built:
        if kind == "sync":
            from sync_app.main import create_app
        else:
            from async_app.main import create_app
        if burn:
            _built[name] = BurnCPU(create_app(), iterations=int(burn[2:]) * 1000)
        else:
            _built[name] = BurnCPU(create_app(), float(os.environ.get("PERFGATE_BURN_US", "0") or 0))
    return _built[name]
