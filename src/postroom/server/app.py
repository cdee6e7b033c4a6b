"""The network server: listeners, the periodic cron, signals and shutdown.

:class:`Server` binds the configured TCP addresses and unix socket, runs the broker's cron ``hz``
times a second and stops cleanly on SIGINT/SIGTERM or SHUTDOWN. It uses uvloop when it is
installed (it is a dependency on every platform that has it) and plain asyncio otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable

from ..broker import Broker
from ..config import Config
from ..persistence import Persistence
from ..persistence.loader import AofLoadError
from .connection import Connection

log = logging.getLogger("postroom.server")


class Server:
    """Serves one :class:`Broker` over TCP and/or a unix socket."""

    def __init__(self, config: Config | None = None, broker: Broker | None = None) -> None:
        self.broker = broker or Broker(config)
        self.config = self.broker.config
        self._servers: list[asyncio.base_events.Server] = []
        self._stopped: asyncio.Event | None = None
        self._cron: asyncio.TimerHandle | None = None
        self.ports: list[int] = []
        self.persistence = Persistence(self.broker)
        self.startup_hooks: list[Callable[[Server], None]] = []
        self.shutdown_hooks: list[Callable[[Server, bool, bool], None]] = [
            lambda _server, save, force: self.persistence.prepare_shutdown(save, force)
        ]

    async def start(self) -> None:
        """Bind listeners and start the cron; returns once the server accepts connections."""
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self.broker.loop = loop
        self.broker.loop_thread = threading.get_ident()
        self.broker.shutdown_requested = self.request_shutdown
        os.makedirs(self.config["dir"], exist_ok=True)
        self.persistence.start()  # load before accepting clients
        for hook in self.startup_hooks:
            hook(self)
        await self.bind_tcp()
        path = self.config["unixsocket"]
        if path:
            if os.path.exists(path):
                os.unlink(path)
            server = await loop.create_unix_server(self._protocol_factory, path)
            perm = self.config["unixsocketperm"]
            if perm and perm != "0":
                os.chmod(path, int(perm, 8))
            self._servers.append(server)
        self._schedule_cron()
        where = ", ".join(
            [f"{s.getsockname()[0]}:{s.getsockname()[1]}" for srv in self._servers for s in srv.sockets
             if s.family != socket.AF_UNIX] + ([path] if path else [])
        )
        log.info("postroom ready to accept connections on %s (pid %d)", where or "nothing (embedded)", os.getpid())

    def _protocol_factory(self) -> Connection:
        return Connection(self.broker, self)

    async def bind_tcp(self) -> None:
        """Listen on every ``bind`` address at ``port``; an address prefixed with ``-`` is optional."""
        loop = asyncio.get_running_loop()
        port = self.config["port"]
        for address in self.config["bind"].split():
            optional = address.startswith("-")
            host = address.lstrip("-")
            try:
                server = await loop.create_server(
                    self._protocol_factory, host, port, backlog=self.config["tcp-backlog"], reuse_address=True
                )
            except OSError as exc:
                if optional:
                    log.info("Skipping optional bind address %s: %s", host, exc)
                    continue
                raise
            self._servers.append(server)
            for sock in server.sockets:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.ports.append(sock.getsockname()[1])
            if port == 0:
                port = self.ports[-1]  # every address shares the first ephemeral port

    def _schedule_cron(self) -> None:
        hz = max(1, self.config["hz"])
        self._cron = asyncio.get_running_loop().call_later(1 / hz, self._run_cron)

    def _run_cron(self) -> None:
        try:
            with self.broker.lock:
                self.broker.cron()
        finally:
            self._schedule_cron()

    def request_shutdown(self, save: bool, force: bool = False) -> None:
        """SHUTDOWN and signals: stop accepting, run shutdown hooks (final save), stop the loop.

        A hook's ``ReplyError`` (a failed save) keeps the server running, unless ``force``.
        """
        for hook in self.shutdown_hooks:
            hook(self, save, force)
        if self._stopped is not None:
            self._stopped.set()

    async def wait_stopped(self) -> None:
        assert self._stopped is not None
        await self._stopped.wait()

    async def close(self) -> None:
        if self._cron is not None:
            self._cron.cancel()
        for server in self._servers:
            server.close()
        with self.broker.lock:
            for client in list(self.broker.clients.values()):
                client.close_connection()
            self.persistence.stop()  # after the last command any client could send
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        path = self.config["unixsocket"]
        if path and os.path.exists(path):
            os.unlink(path)

    async def serve_forever(self) -> None:
        """Start, wait for SIGINT/SIGTERM or SHUTDOWN, then close."""
        await self.start()
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_signal, sig)
        await self.wait_stopped()
        await self.close()
        log.info("postroom is now ready to exit, bye bye...")

    def _on_signal(self, sig: int) -> None:
        log.warning("Received %s scheduling shutdown...", signal.Signals(sig).name)
        self.request_shutdown(save=bool(self.config["save"]))  # Redis saves only with save points


def install_event_loop_policy() -> str:
    """Use uvloop when available; return the loop's name for the startup log."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def run(config: Config) -> None:
    """Run a server until it is told to stop (the ``postroom serve`` entry point)."""
    loop_name = install_event_loop_policy()
    log.info("Starting postroom with the %s event loop", loop_name)
    try:
        asyncio.run(Server(config).serve_forever())
    except (AofLoadError, FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        raise SystemExit(1)
