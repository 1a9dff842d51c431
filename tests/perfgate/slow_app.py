"""The real apps behind a middleware that burns a fixed amount of CPU per request (an injected regression).

    PERFGATE_BURN_US=300 bench run --app tests.perfgate.slow_app:sync_app ...

`PERFGATE_BURN_US` (microseconds, default 0) is read when the app is built; `sync_app_us150` (any
number) burns that many instead, so one run can hold several levels. The burn is a busy loop on
the event loop, before the request reaches the app, so every route (/healthz and /limits included) pays
it, and /limits still reports the wrapped app's own limits. Product code is untouched. Each app is built
on first access, so a process serving `sync_app` never imports the async app's drivers.
"""

from __future__ import annotations

import os
import time

from starlette.types import ASGIApp, Receive, Scope, Send


class BurnCPU:
    """Pure ASGI middleware: spin for `burn_us` microseconds on every HTTP request."""

    def __init__(self, app: ASGIApp, burn_us: float) -> None:
        self.app = app
        self.burn_s = max(0.0, burn_us) / 1e6

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.burn_s > 0:
            end = time.perf_counter() + self.burn_s
            while time.perf_counter() < end:
                pass
        await self.app(scope, receive, send)


def wrap(app: ASGIApp, burn_us: float | None = None) -> BurnCPU:
    return BurnCPU(app, float(os.environ.get("PERFGATE_BURN_US", "0") or 0) if burn_us is None else burn_us)


_built: dict[str, BurnCPU] = {}


def __getattr__(name: str) -> BurnCPU:
    """`sync_app`, `async_app` (and `..._us<N>`), built on first access (uvicorn does getattr(module, attr))."""
    kind, _, burn = name.partition("_app")
    if kind not in ("sync", "async") or not (burn == "" or (burn[:3] == "_us" and burn[3:].isdigit())):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _built:
        if kind == "sync":
            from sync_app.main import create_app
        else:
            from async_app.main import create_app
        _built[name] = wrap(create_app(), float(burn[3:]) if burn else None)
    return _built[name]
