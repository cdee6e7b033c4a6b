"""Running a client's queued requests: the loop every transport shares (TCP, unix socket, embedded).

A transport feeds bytes into the client's :class:`~postroom.protocol.RequestReader`, then calls
:func:`serve_requests`, then writes out ``client.out``. The loop stops when input runs out, when
the client blocks (BLPOP...) or is paused (CLIENT PAUSE), or when it must close; what was not run
stays in the reader until the transport calls again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .protocol.reader import ProtocolError, RequestReader

if TYPE_CHECKING:
    from .broker import Broker
    from .client import Client


def serve_requests(broker: Broker, client: Client, reader: RequestReader) -> None:
    """Execute ``client``'s complete requests in order; the caller holds ``broker.lock``.

    A protocol error is answered with Redis's text and marks the client to close after the reply.
    :class:`~postroom.protocol.QueryBufferLimit` propagates: the transport drops the connection.
    """
    execute = broker.execute
    broker.refresh_clock()
    client.last_active_ms = broker.now_ms
    try:
        while client.waiter is None and not client.close_after_reply:
            request = reader.next_request()
            if request is None:
                break
            reader.authenticated = client.authenticated
            if broker.client_pause is not None and broker.client_pause.postpone(client, request):
                break  # CLIENT PAUSE: parked until the pause ends (commands/client_cmd.py)
            execute(client, request)
    except ProtocolError as error:
        client.out.append(b"-ERR " + error.message.encode() + b"\r\n")
        client.close_after_reply = True
    client.pending_input = reader.buffered
