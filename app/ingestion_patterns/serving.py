"""Run an aiohttp app factory under gunicorn with aiohttp's gunicorn worker.

Both HTTP services (the webhook receiver and the mock source API) are served this way, locally and
in their container images, so what the tests exercise is what production runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from gunicorn.app.base import BaseApplication

AppFactory = Callable[[], Awaitable[web.Application]]


class _GunicornApp(BaseApplication):
    def __init__(self, factory: AppFactory, options: dict[str, Any]):
        self._factory = factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if value is not None:
                self.cfg.set(key, value)

    def load(self) -> AppFactory:
        # aiohttp's worker awaits an async factory once per worker process.
        return self._factory


def serve(
    factory: AppFactory,
    *,
    host: str,
    port: int,
    workers: int = 1,
    keepalive: int = 75,
    graceful_timeout: int = 30,
    proc_name: str = "ingestion-patterns",
    access_log: bool = False,
    env: dict[str, str] | None = None,
) -> None:
    """Block serving ``factory`` until gunicorn is told to stop (SIGTERM/SIGINT).

    ``keepalive`` defaults above common proxy idle timeouts (nginx/envoy: 60 s) so the proxy, not
    the server, closes idle upstream connections; otherwise a request can race a server-side close.
    ``env`` is set by gunicorn's master before it loads the app in the workers.
    """
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "aiohttp.GunicornWebWorker",
        "keepalive": keepalive,
        "graceful_timeout": graceful_timeout,
        "timeout": 60,
        "proc_name": proc_name,
        "accesslog": "-" if access_log else None,
        "backlog": 2048,
        # gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl), which
        # several servers on one machine would fight over, and a read-only root filesystem refuses.
        "control_socket_disable": True,
        "raw_env": [f"{name}={value}" for name, value in (env or {}).items()],
    }
    _GunicornApp(factory, options).run()
