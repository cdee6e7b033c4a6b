"""One network connection: bytes from the socket to the broker and replies back.

The :class:`Connection` is an ``asyncio.Protocol``: ``data_received`` feeds the request reader and
runs every complete request before writing all their replies with one ``transport.write``
(pipelining costs one syscall per read, not per command). A blocked client stops running
requests; what it sends meanwhile waits in the reader until the broker serves it. A protocol
error answers Redis's error and closes this connection only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from ..protocol.reader import QueryBufferLimit, RequestReader
from ..serving import serve_requests
from .output_limits import over_limit

if TYPE_CHECKING:
    from ..broker import Broker
    from ..client import Client

log = logging.getLogger("postroom.server")

#: The type of ``broker.lock`` when one thread owns the data (see docs/ARCHITECTURE.md): entering
#: it does nothing but costs two Python calls, which ``data_received`` skips on every read.
_NO_LOCK = contextlib.nullcontext


class Connection(asyncio.Protocol):
    """A client connection over TCP or a unix socket."""

    __slots__ = ("broker", "server", "client", "transport", "reader", "_flush_scheduled", "_closing", "_held")

    def __init__(self, broker: Broker, server: object) -> None:
        self.broker = broker
        self.server = server
        self.client: Client | None = None
        self.transport: asyncio.Transport | None = None
        self.reader: RequestReader | None = None
        self._flush_scheduled = False
        self._closing = False
        self._held = 0  # replies waiting for the AOF (see _flush)

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        local = transport.get_extra_info("sockname")
        kind = "unix" if isinstance(peer, str) or peer is None or peer == "" else "tcp"
        broker = self.broker
        if len(broker.clients) >= broker.config["maxclients"]:
            broker.server_stats.rejected_connections += 1
            transport.write(b"-ERR max number of clients reached\r\n")
            transport.close()
            self._closing = True
            return
        with broker.lock:
            client = broker.connect(kind, _format_addr(peer), _format_addr(local), sock.fileno() if sock else -1)
        client.flush_soon = self._schedule_flush
        client.close_connection = self._close_from_broker
        client.write_buffer_size = transport.get_write_buffer_size  # type: ignore[attr-defined]
        self.client = client
        config = broker.config
        self.reader = RequestReader(
            max_bulk_len=config["proto-max-bulk-len"],
            max_query_buffer=config["client-query-buffer-limit"],
            authenticated=client.authenticated,
        )

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        reader = self.reader
        assert reader is not None
        stats = self.broker.server_stats
        stats.net_input_bytes += len(data)
        stats.reads_processed += 1
        try:
            reader.feed(data)
        except QueryBufferLimit:
            log.warning("Closing client that reached max query buffer length: id=%s", self.client.id)  # type: ignore[union-attr]
            self._abort()
            return
        lock = self.broker.lock
        if lock.__class__ is _NO_LOCK:
            self._process()  # the server's no-op lock: skip its two Python-level calls per read
        else:
            with lock:
                self._process()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self.client is not None:
            with self.broker.lock:
                self.broker.disconnect(self.client)

    def pause_writing(self) -> None:  # the kernel buffer is full; output accumulates in the transport
        pass

    def resume_writing(self) -> None:
        pass

    # -- request processing ----------------------------------------------------------------

    def _process(self) -> None:
        client = self.client
        reader = self.reader
        assert client is not None and reader is not None
        try:
            serve_requests(self.broker, client, reader)
        except QueryBufferLimit:
            self._abort()
            return
        self._flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and not self._closing:
            self._flush_scheduled = True
            loop = self.broker.loop
            assert loop is not None
            if threading.get_ident() == self.broker.loop_thread:
                loop.call_soon(self._deferred_flush)
            else:  # an embedded client's write served this connection from another thread
                loop.call_soon_threadsafe(self._deferred_flush)

    def _deferred_flush(self) -> None:
        self._flush_scheduled = False
        if self._closing:
            return
        client = self.client
        with self.broker.lock:
            if client is not None and client.waiter is None and self.reader is not None and self.reader.may_have_requests:
                self._process()  # a served blocked client runs the requests that waited
            else:
                self._flush()

    def _flush(self) -> None:
        client = self.client
        transport = self.transport
        assert client is not None and transport is not None
        out = client.out
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            durability = self.broker.durability
            if durability is not None and (self._held or durability.pending):
                # Sent once the writes before it are on disk (see Persistence.pending); the
                # bytes are taken now, so replies to later commands cannot overtake or join them.
                self._held += 1
                durability.hold_reply(lambda: self._send_held(data), self._abort)
                return
            if self._write(data):
                return
        if client.close_after_reply and not self._held:
            self._closing = True
            transport.close()

    def _send_held(self, data: bytes) -> None:
        self._held -= 1
        if self._closing or self._write(data):
            return
        client = self.client
        if client is not None and client.close_after_reply and not self._held and not client.out:
            self._closing = True
            self.transport.close()  # type: ignore[union-attr]

    def _write(self, data: bytes) -> bool:
        """Send ``data``; ``True`` if that put the client over its output-buffer limit (it is dropped)."""
        transport = self.transport
        client = self.client
        assert transport is not None and client is not None
        transport.write(data)
        stats = self.broker.server_stats
        stats.net_output_bytes += len(data)
        stats.writes_processed += 1
        pending = transport.get_write_buffer_size()
        if (pending or client.obuf_soft_since) and over_limit(client, pending):
            self._abort()
            return True
        return False

    def _close_from_broker(self) -> None:
        """CLIENT KILL, QUIT, SHUTDOWN: flush what is queued, then close."""
        if self.client is not None:
            self.client.close_after_reply = True
            self._schedule_flush()

    def _abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    @property
    def output_buffer_size(self) -> int:
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None else 0


def _format_addr(addr: object) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = str(addr[0])
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    if isinstance(addr, str):
        return addr
    return ""
