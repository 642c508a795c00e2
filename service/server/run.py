"""``weightinit serve``: uvicorn running the app, with a drain on SIGTERM.

On the first SIGTERM a worker does not stop listening at once (as plain uvicorn does):
``/readyz`` turns 503 so the load balancer stops sending work, new streams get 503 with
``Retry-After`` (and every response ``Connection: close``), and the streams in flight
run to completion. When none is left, or ``WEIGHTINIT_DRAIN_TIMEOUT_S`` has passed,
uvicorn's own graceful shutdown closes the connections and the process exits 0. A
second SIGTERM, or SIGINT, stops at once.

``--workers N`` runs N processes on one socket (uvicorn's supervisor); each builds its
app from the environment (``weightinit.service.server.app:create_app_from_env``) and
drains the same way when the supervisor passes SIGTERM on.
"""

from __future__ import annotations

import copy
import gc
import logging
import os
import signal
import socket
import sys
from types import FrameType

import uvicorn
from pydantic import ValidationError
from uvicorn.config import LOGGING_CONFIG, STARTUP_FAILURE
from uvicorn.supervisors import multiprocess
from weightinit.core import ChunkStream, Spec, build_plan
from weightinit.core.rng import kernels
from weightinit.service.server.app import create_app
from weightinit.service.server.capacity import Capacity
from weightinit.service.server.protocol import ConnectionLimits, ServiceConfig
from weightinit.service.server.settings import Settings, TokenSourceError

APP_FACTORY = "weightinit.service.server.app:create_app_from_env"
logger = logging.getLogger("weightinit.server")


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first SIGTERM drains streams before shutting down."""

    def __init__(self, config: uvicorn.Config, capacity: Capacity | None = None,
                 drain_timeout_s: float = 30.0) -> None:
        super().__init__(config)
        self.capacity = capacity
        self.drain_timeout_s = drain_timeout_s

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        if self.capacity is None:  # a worker process: its own app, from the environment
            settings = Settings()
            app = create_app(settings)
            log_auth_state(settings)
            warm_up()
            self.config.app, self.config.factory = app, False
            if isinstance(self.config, ServiceConfig):  # limits as this worker reads them
                self.config.connection_limits = connection_limits(settings)
            self.capacity = app.state.services.capacity
            self.drain_timeout_s = settings.drain_timeout_s
        super().run(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        assert self.capacity is not None  # signals are captured once run() has built it
        if sig == signal.SIGTERM and not self.capacity.draining and not self.should_exit:
            self.capacity.start_drain(self.drain_timeout_s)
            logger.info("SIGTERM: draining %d stream(s), at most %.0f s",
                        self.capacity.in_flight, self.drain_timeout_s)
            return
        if sig == signal.SIGTERM:
            self.should_exit = True  # not re-raised at exit: a drained stop exits 0
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        assert self.capacity is not None
        if self.capacity.drain_finished() and not self.should_exit:
            # What is left of the drain budget bounds uvicorn's wait for connections.
            self.config.timeout_graceful_shutdown = max(1, round(
                self.capacity.drain_remaining_s()))
            self.should_exit = True
        return await super().on_tick(counter)


def warm_up() -> None:
    """Load numba and generate a tiny model of every common dtype and distribution once
    with it, so the kernels are compiled (or loaded from their cache) before the first
    request (a server must not pay numba's load on a request), then freeze the startup
    heap."""
    kernels.expect(kernels.LAZY_LOAD_ELEMENTS)  # unless WEIGHTINIT_DISABLE_NUMBA
    inits = [{"name": "uniform", "low": -1.0, "high": 1.0},
             {"name": "normal", "mean": 0.0, "std": 1.0},
             {"name": "truncated_normal", "mean": 0.0, "std": 1.0}, "he_normal", "zeros"]
    layers = [{"type": "tensor", "name": f"{dtype}.{i}", "shape": [4, 4], "init": init,
               "dtype": dtype}
              for dtype in ("float32", "bfloat16", "float16", "float64")
              for i, init in enumerate(inits)]
    plan = build_plan(Spec.model_validate({"seed": 0, "layers": layers}))
    for with_stats in (False, True):
        for _ in ChunkStream(plan, with_stats=with_stats):
            pass
    # Everything alive now (modules, the app) lives as long as the process: moved out of
    # the collector's sight, a full collection no longer walks ~160 000 startup objects.
    gc.collect()
    gc.freeze()


def _log_config(level: str) -> dict:
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["weightinit"] = {"handlers": ["default"], "level": level.upper(),
                                       "propagate": False}
    return config


def log_auth_state(settings: Settings) -> None:
    """Say at start whether authentication is on, and with how many tokens (never which)."""
    count = len(settings.tokens())
    if count:
        logger.info("authentication on: %d bearer token(s)", count)
    else:
        logger.warning("authentication off: no bearer token configured "
                       "(WEIGHTINIT_API_TOKENS, WEIGHTINIT_API_TOKENS_FILE)")


def connection_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        idle_timeout_s=settings.idle_timeout_s,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        send_timeout_s=settings.send_timeout_s,
    )


def server_config(settings: Settings, app: object, workers: int = 1) -> ServiceConfig:
    """The uvicorn configuration of the service: address, logging, shutdown and the
    guarded protocol with the settings' connection limits."""
    return ServiceConfig(
        app,
        connection_limits=connection_limits(settings),
        factory=isinstance(app, str),
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level=settings.log_level,
        log_config=_log_config(settings.log_level),
        access_log=False,  # the app writes its own, with the request ID
        timeout_graceful_shutdown=max(1, round(settings.drain_timeout_s)),
        server_header=False,
        lifespan="off",
        # A worker imports numpy, numba and FastAPI before it can answer the supervisor's
        # first ping; uvicorn's default 5 s kills slow starters on a busy machine.
        timeout_worker_healthcheck=60,
    )


class WorkerProcess(multiprocess.Process):
    """uvicorn's worker process, running a ``DrainingServer`` instead of a plain one.

    The server is built cheaply here (the supervisor's health-check thread reads it);
    the app and the kernel warm-up come in ``DrainingServer.run``.
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        self.draining_server: DrainingServer | None = None  # made in the worker, on use
        super().__init__(config, sockets)

    @property
    def server(self) -> uvicorn.Server:
        if self.draining_server is None:
            self.draining_server = DrainingServer(self.config)
        return self.draining_server


class Supervisor(multiprocess.Multiprocess):
    """uvicorn's supervisor, starting (and replacing) ``WorkerProcess`` workers."""

    def new_process(self) -> WorkerProcess:
        process = WorkerProcess(self.config, self.sockets)
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes.extend(self.new_process() for _ in range(self.processes_num))

    def keep_subprocess_alive(self) -> None:
        """Replace a worker that died or hangs (uvicorn's rule, with our process class)."""
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                logger.error("worker %s failed to start: stopping", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.info("worker %s died: starting another", process.pid)
            self.processes[index] = self.new_process()

    def restart_all(self) -> None:
        """SIGHUP: replace every worker, one at a time."""
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self.new_process()
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                return
            old.terminate()
            old.join()
            self.processes[index] = new


def _setting_errors(error: Exception) -> list[str]:
    if isinstance(error, ValidationError):
        return [f"invalid setting WEIGHTINIT_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                for e in error.errors()]
    if isinstance(error, TokenSourceError):
        return [f"{error}: refusing to start with authentication silently off"]
    return [f"cannot read the token file: {error}"]


def serve(host: str | None = None, port: int | None = None, workers: int | None = None) -> int:
    """Run the service until stopped; arguments left ``None`` come from the settings."""
    overrides = {k: v for k, v in (("host", host), ("port", port), ("workers", workers))
                 if v is not None}
    try:
        settings = Settings(**overrides)
        settings.tokens()  # a missing token file is a startup error, not a 500 later
    except (ValidationError, OSError, TokenSourceError) as error:
        for line in _setting_errors(error):
            print(f"weightinit serve: {line}", file=sys.stderr)
        return 2
    if settings.workers == 1:
        app = create_app(settings)
        config = server_config(settings, app, 1)  # configures logging
        log_auth_state(settings)
        warm_up()
        server = DrainingServer(config, app.state.services.capacity, settings.drain_timeout_s)
        server.run()
        return 0 if server.started else 1
    # Workers rebuild the settings from the environment: pass the CLI's address on (the
    # worker count is the supervisor's business, not the workers').
    os.environ.update({f"WEIGHTINIT_{k.upper()}": str(v) for k, v in overrides.items()
                       if k != "workers"})
    config = server_config(settings, APP_FACTORY, settings.workers)
    sock: socket.socket = config.bind_socket()
    Supervisor(config, sockets=[sock]).run()
    return 0
