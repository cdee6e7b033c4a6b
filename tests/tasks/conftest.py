"""Backends for the postroom.tasks suite.

The whole suite runs once per backend.  A backend is one entry in BACKENDS:
a context manager that starts a server (or finds nothing to start and skips
with the reason) and yields a :class:`Backend`.  Adding postroom variants is
one entry each.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

# Tests import the package from the work tree even when it is not installed.
SRC = Path(__file__).resolve().parents[2] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

from postroom.tasks import App, Worker  # noqa: E402

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


@dataclass
class Backend:
    """How tests reach a broker: a URL (usable by subprocesses too) or, for
    in-process brokers, a factory of clients."""

    name: str
    url: str | None = None
    client_factory: Callable[[], Any] | None = None
    async_client_factory: Callable[[], Any] | None = None

    def target(self) -> Any:
        """What an App is built on: in-process clients when the backend has them."""
        return self.client_factory() if self.client_factory is not None else self.url


def free_port() -> int:
    """A loopback port that is free, and whose cluster-bus twin (+10000) is free too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 55000:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def wait_ping(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            if client.ping():
                client.close()
                return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def start_redis(tmp: str, *extra: str) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", tmp, *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_ping(port, proc)
    return port, proc


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


@contextlib.contextmanager
def redis_server_backend() -> Iterator[Backend]:
    if not REDIS_SERVER:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with tempfile.TemporaryDirectory() as tmp:
        port, proc = start_redis(tmp)
        try:
            yield Backend("redis", url=f"redis://127.0.0.1:{port}/0")
        finally:
            stop_all([proc])


@contextlib.contextmanager
def redis_cluster_backend() -> Iterator[Backend]:
    if not (REDIS_SERVER and REDIS_CLI):
        pytest.skip("redis-server/redis-cli are not installed (apt-get install redis-server)")
    with tempfile.TemporaryDirectory() as tmp:
        nodes: list[tuple[int, subprocess.Popen[bytes]]] = []
        try:
            for i in range(3):
                nodes.append(start_redis(tmp, "--cluster-enabled", "yes", "--cluster-config-file",
                                         f"nodes-{i}.conf", "--cluster-node-timeout", "2000"))
            addrs = [f"127.0.0.1:{port}" for port, _ in nodes]
            subprocess.run([REDIS_CLI, "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"],
                           check=True, capture_output=True, timeout=30)
            deadline = time.monotonic() + 20
            for port, _ in nodes:
                c = redis.Redis(port=port)
                while c.cluster("info").get("cluster_state") != "ok":
                    if time.monotonic() > deadline:
                        raise RuntimeError("cluster did not reach cluster_state:ok")
                    time.sleep(0.05)
                c.close()
            yield Backend("cluster", url=f"redis://127.0.0.1:{nodes[0][0]}")
        finally:
            stop_all([p for _, p in nodes])


#: What the framework uses; a postroom build missing any of it is skipped with the list.
NEEDED_COMMANDS = [
    "xadd", "xreadgroup", "xack", "xdel", "xautoclaim", "xclaim", "xpending", "xgroup", "xrange", "xlen",
    "evalsha", "script", "zadd", "zrangebyscore", "zrange", "blpop", "blmove", "rpush", "hset", "hmget", "smismember",
    "client", "pexpire", "multi", "exec",
]


def skip_unless_complete(client: redis.Redis, name: str) -> None:
    """Skip (with the reason) on a postroom that cannot run the framework yet."""
    try:
        client.set_response_callback("COMMAND", lambda reply, **_: reply)  # keep the raw per-command list
        info = client.execute_command("COMMAND", "INFO", *NEEDED_COMMANDS)
        missing = [c for c, entry in zip(NEEDED_COMMANDS, info, strict=True) if not entry]
        if not missing and client.eval("return redis.call('PING')", 0) not in (b"PONG", "PONG"):
            missing = ["redis.call in Lua"]
    except redis.ResponseError as exc:
        missing = [str(exc).split(",")[0]]
    if missing:
        pytest.skip(f"{name} lacks what postroom.tasks needs: {', '.join(missing)}")


@contextlib.contextmanager
def postroom_tcp_backend() -> Iterator[Backend]:
    """postroom's own server over TCP, as ``python -m postroom serve``."""
    if importlib.util.find_spec("postroom.__main__") is None:
        pytest.skip("postroom server not available (no postroom/__main__.py)")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.Popen(
            [sys.executable, "-m", "postroom", "serve", "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
             "--appendonly", "no"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_ping(port, proc, timeout=30)
            client = redis.Redis(port=port)
            skip_unless_complete(client, "postroom (TCP)")
            client.close()
            yield Backend("postroom-tcp", url=f"redis://127.0.0.1:{port}/0")
        finally:
            stop_all([proc])


@contextlib.contextmanager
def postroom_embedded_backend() -> Iterator[Backend]:
    """postroom embedded in this process: in-process clients for the tests' apps,
    plus a TCP listener for the worker subprocesses of the CLI and crash tests."""
    try:
        from postroom.embedded import Embedded
    except ImportError as exc:
        pytest.skip(f"embedded postroom not available ({exc})")
    with Embedded() as broker:
        skip_unless_complete(broker.client(), "postroom (embedded)")
        port = broker.listen(0)
        yield Backend("postroom-embedded", url=f"redis://127.0.0.1:{port}/0", client_factory=broker.client,
                      async_client_factory=broker.async_client)


BACKENDS: dict[str, Callable[[], contextlib.AbstractContextManager[Backend]]] = {
    "redis": redis_server_backend,
    "cluster": redis_cluster_backend,
    "postroom-tcp": postroom_tcp_backend,
    "postroom-embedded": postroom_embedded_backend,
}


@pytest.fixture(scope="session", params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    with BACKENDS[request.param]() as b:
        yield b


@pytest.fixture
def prefix() -> str:
    """A key prefix of its own for each test, so tests never see each other's keys."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_app(backend: Backend, prefix: str) -> Iterator[Callable[..., App]]:
    """Apps on the backend, all on this test's prefix (several apps = several processes' views)."""
    apps: list[App] = []

    def make(**options: Any) -> App:
        options.setdefault("lease", 2.0)
        options.setdefault("async_client", backend.async_client_factory)
        app = App(backend.target(), prefix=prefix, **options)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.client.close()


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    return make_app()


@pytest.fixture
def start_worker() -> Iterator[Callable[..., Worker]]:
    """Start in-process workers; every one still running is stopped at teardown."""
    workers: list[Worker] = []

    def start(app: App, queues: list[str] | None = None, **options: Any) -> Worker:
        options.setdefault("concurrency", 4)
        options.setdefault("block", 0.5)
        w = Worker(app, queues, **options).start()
        workers.append(w)
        return w

    yield start
    for w in workers:
        if not w._stop.is_set():
            w.stop(grace=5)


HERE = Path(__file__).resolve().parent


@pytest.fixture
def cli_env(backend: Backend, prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Environment for tasks_app (worker subprocesses and CLI calls) on this backend and prefix."""
    if backend.url is None:
        pytest.skip(f"{backend.name} has no URL for worker subprocesses")
    env = {"POSTROOM_TASKS_URL": backend.url, "POSTROOM_TASKS_PREFIX": prefix, "POSTROOM_TASKS_LEASE": "1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.syspath_prepend(str(HERE))
    sys.modules.pop("tasks_app", None)
    import tasks_app

    yield {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)])}
    tasks_app.app.client.close()
    sys.modules.pop("tasks_app", None)


@pytest.fixture
def worker_process(cli_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `postroom worker tasks_app:app ARGS` subprocesses (the CLI entry
    point, imported directly); any still running at teardown is killed."""
    procs: list[subprocess.Popen[bytes]] = []
    code = "import sys; from postroom.tasks.cli import worker_main; sys.exit(worker_main(sys.argv[1:]))"

    def start(*args: str) -> subprocess.Popen[bytes]:
        # A session of its own: teardown kills a process pool's children with it.
        proc = subprocess.Popen([sys.executable, "-c", code, "tasks_app:app", "--log-level", "WARNING", *args],
                                env=cli_env, cwd=HERE, start_new_session=True)
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
