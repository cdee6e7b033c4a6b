"""Servers to test against: postroom in a background thread or subprocess, and the oracle redis-server."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from postroom.config import Config
from postroom.server import Server, install_event_loop_policy

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on port {port}")
            time.sleep(0.01)


class PostroomThread:
    """A postroom server on an ephemeral port, running its own event loop in a daemon thread."""

    def __init__(self, **settings: str) -> None:
        self.tmp = tempfile.mkdtemp(prefix="postroom-test-")
        config = Config()
        config.set("port", "0", startup=True)
        config.set("bind", "127.0.0.1", startup=True)
        config.set("dir", self.tmp, startup=True)
        config.set("appendonly", "no", startup=True)
        config.set("save", "", startup=True)
        for name, value in settings.items():
            config.set(name.replace("_", "-"), value, startup=True)
        self.server = Server(config)
        self.broker = self.server.broker
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="postroom-test-server", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        self.port = self.server.ports[0]

    def _run(self) -> None:
        install_event_loop_policy()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            try:
                await self.server.start()
            except BaseException as exc:  # surfaced to the constructor
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            await self.server.wait_stopped()
            await self.server.close()

        asyncio.run(main())

    def call_in_loop(self, fn, *args):
        """Run ``fn(*args)`` on the server's loop thread and return its result."""
        assert self._loop is not None
        done = threading.Event()
        box: list = []

        def run() -> None:
            try:
                box.append((True, fn(*args)))
            except BaseException as exc:
                box.append((False, exc))
            done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def stop(self) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.server.request_shutdown, False, True)
            self._thread.join(10)
        shutil.rmtree(self.tmp, ignore_errors=True)


class PostroomProcess:
    """``python -m postroom serve`` in a subprocess, for tests that kill or restart the server."""

    def __init__(self, directory: str | Path, port: int | None = None, *args: str) -> None:
        self.dir = str(directory)
        self.port = port or free_port()
        self.args = args
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        cmd = [sys.executable, "-m", "postroom", "serve", "--port", str(self.port), "--bind", "127.0.0.1",
               "--dir", self.dir, *self.args]
        self.log = open(os.path.join(self.dir, "server.log"), "ab")  # noqa: SIM115 (lives as long as the process)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, timeout=30)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()


class OracleServer:
    """The real redis-server on an ephemeral port, in a temp dir, persistence off."""

    def __init__(self, *args: str) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self.tmp = tempfile.mkdtemp(prefix="oracle-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.tmp, "--daemonize", "no", "--loglevel", "warning", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)
