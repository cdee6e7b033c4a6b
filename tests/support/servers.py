"""Servers to test against: postroom in a background thread or subprocess, and the oracle redis-server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from postroom.embedded import Embedded

REDIS_SERVER = shutil.which("redis-server")


def terminate(proc: subprocess.Popen) -> None:
    """Stop a server process politely (SIGTERM lets it flush), forcibly if it takes over 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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
    """A postroom broker for tests, reachable both over TCP (an ephemeral port) and in-process.

    It is an :class:`~postroom.embedded.Embedded` broker that also listens on TCP, so a test can
    talk to the same data over either transport (see the ``transport`` parameter of the fixtures).
    """

    def __init__(self, **settings: str) -> None:
        self.tmp = tempfile.mkdtemp(prefix="postroom-test-")
        options = {"appendonly": "no", "save": "", **settings}
        self.embedded = Embedded(dir=self.tmp, **options)
        self.server = self.embedded.server
        self.broker = self.embedded.broker
        self.port = self.embedded.listen(0)

    def call_in_loop(self, fn, *args):
        """Run ``fn(*args)`` on the broker's loop thread, holding the broker lock; return its result."""
        return self.embedded.call(fn, *args)

    def raw_channel(self):
        """An in-process connection with a socket-like API (``sendall``/``recv``/``close``)."""
        return self.embedded.open_socket()

    def stop(self) -> None:
        self.embedded.close()
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
            terminate(self.proc)
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
        terminate(self.proc)
        shutil.rmtree(self.tmp, ignore_errors=True)
