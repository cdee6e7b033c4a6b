"""A subscriber that stops reading is dropped at its output buffer limit; nobody else is affected.

postroom runs in its own process so that its peak RSS (``VmHWM``) measures the server alone. One
subscriber subscribes and never reads again; two fast subscribers read everything; a publisher
sends 1 GB in 64 KB messages. The publisher keeps at most a few MB in flight beyond what the fast
subscribers have received, so they never approach a limit themselves, while the slow one's
pending output grows until the hard limit (32 MB by default for pubsub clients) closes it.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from .support.resp import RawClient, encode_command
from .support.servers import PostroomProcess

MESSAGE_SIZE = 64 * 1024
TOTAL_BYTES = 1 << 30
MESSAGES = TOTAL_BYTES // MESSAGE_SIZE
BATCH = 16  # PUBLISH commands per pipelined write
WINDOW = 64  # messages the fast subscribers may lag behind (4 MB, half the 8 MB soft limit)
CHANNEL = b"firehose"


def frame(sequence: int) -> bytes:
    payload = struct.pack(">Q", sequence) + b"x" * (MESSAGE_SIZE - 8)
    return b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(CHANNEL), CHANNEL, len(payload), payload)


FRAME_SIZE = len(frame(0))
HEADER_SIZE = FRAME_SIZE - MESSAGE_SIZE - 2


class FastSubscriber(threading.Thread):
    """Reads every message and checks each arrives whole, in order."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.client = RawClient(port, timeout=60)
        assert self.client.call("SUBSCRIBE", CHANNEL)[1][2] == (":", b"1")
        self.received = 0
        self.progress = threading.Condition()
        self.error: BaseException | None = None

    def run(self) -> None:
        sock = self.client.sock
        buffer = bytearray(self.client.buf)
        expected_header = frame(0)[:HEADER_SIZE]
        try:
            while self.received < MESSAGES:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("fast subscriber disconnected")
                buffer += chunk
                whole = len(buffer) // FRAME_SIZE
                for i in range(whole):
                    start = i * FRAME_SIZE
                    assert buffer[start:start + HEADER_SIZE] == expected_header
                    sequence = struct.unpack_from(">Q", buffer, start + HEADER_SIZE)[0]
                    assert sequence == self.received + i, (sequence, self.received + i)
                del buffer[: whole * FRAME_SIZE]
                with self.progress:
                    self.received += whole
                    self.progress.notify_all()
        except BaseException as exc:  # reported by the test thread
            self.error = exc
            with self.progress:
                self.progress.notify_all()

    def wait_for(self, count: int) -> None:
        with self.progress:
            while self.received < count and self.error is None:
                self.progress.wait(30)
        if self.error is not None:
            raise self.error


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_slow_subscriber_is_dropped_and_memory_stays_bounded(tmp_path):
    server = PostroomProcess(tmp_path)
    try:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        slow.sendall(encode_command(("SUBSCRIBE", CHANNEL)))
        assert slow.recv(1024).startswith(b"*3\r\n$9\r\nsubscribe\r\n")
        fast = [FastSubscriber(server.port) for _ in range(2)]
        for subscriber in fast:
            subscriber.start()
        publisher = RawClient(server.port, timeout=60)
        receivers: list[int] = []
        body = b"x" * (MESSAGE_SIZE - 8)
        for first in range(0, MESSAGES, BATCH):
            for subscriber in fast:
                subscriber.wait_for(first - WINDOW)
            batch = [encode_command((b"PUBLISH", CHANNEL, struct.pack(">Q", n) + body)) for n in range(first, first + BATCH)]
            publisher.send_raw(b"".join(batch))
            receivers.extend(int(publisher.read()[1]) for _ in batch)
        for subscriber in fast:
            subscriber.wait_for(MESSAGES)
            assert subscriber.received == MESSAGES

        # The slow subscriber was dropped once its pending output passed the 32 MB hard limit:
        # the messages published before that reached three subscribers, every later one two.
        dropped_at = receivers.index(2)
        assert set(receivers[:dropped_at]) == {3} and set(receivers[dropped_at:]) == {2}
        assert 32 * 2**20 <= dropped_at * FRAME_SIZE <= 64 * 2**20 + 32 * 2**20  # limit + socket buffers
        assert publisher.call("PUBSUB", "NUMSUB", CHANNEL)[1][1] == (":", b"2")
        slow.settimeout(30)
        drained = 0
        while chunk := _recv_or_empty(slow):
            drained += len(chunk)
        assert drained < dropped_at * FRAME_SIZE  # the connection ends, without the later messages

        peak = peak_rss_mb(server.proc.pid)
        assert peak < 200, f"server peak RSS {peak:.0f} MB"
        print(f"slow subscriber dropped after {dropped_at} messages; server peak RSS {peak:.0f} MB")
        publisher.close()
        slow.close()
    finally:
        server.stop()


def _recv_or_empty(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 20)
    except ConnectionResetError:
        return b""


@pytest.fixture
def limits(postroom_server):
    """CONFIG SET client-output-buffer-limit on the shared server, restored afterwards."""
    control = RawClient(postroom_server.port)
    before = control.call("CONFIG", "GET", "client-output-buffer-limit")[1][1][1]
    yield lambda text: control.call("CONFIG", "SET", "client-output-buffer-limit", text)
    control.call("CONFIG", "SET", "client-output-buffer-limit", before)
    control.close()


def stalled_subscriber(port: int, channel: bytes, name: str = "stalled") -> socket.socket:
    """A subscriber with a small receive buffer that will never read again."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.sendall(encode_command(("CLIENT", "SETNAME", name)))
    assert sock.recv(1024) == b"+OK\r\n"
    sock.sendall(encode_command(("SUBSCRIBE", channel)))
    assert sock.recv(1024).startswith(b"*3\r\n$9\r\nsubscribe\r\n")
    return sock


def numsub(client: RawClient, channel: bytes) -> int:
    return int(client.call("PUBSUB", "NUMSUB", channel)[1][1][1])


def test_hard_limit_drops_at_once(postroom_server, limits):
    assert limits("pubsub 256kb 0 0") == ("+", b"OK")
    publisher = RawClient(postroom_server.port)
    sock = stalled_subscriber(postroom_server.port, b"hard-limit")
    counts = [int(publisher.call("PUBLISH", b"hard-limit", b"y" * MESSAGE_SIZE)[1]) for _ in range(200)]
    assert counts[0] == 1 and counts[-1] == 0  # dropped while publishing 12.5 MB
    assert numsub(publisher, b"hard-limit") == 0
    sock.close()
    publisher.close()


def test_soft_limit_drops_only_after_its_seconds(postroom_server, limits):
    assert limits("pubsub 0 128kb 1") == ("+", b"OK")
    publisher = RawClient(postroom_server.port)
    sock = stalled_subscriber(postroom_server.port, b"soft-limit")
    counts = [int(publisher.call("PUBLISH", b"soft-limit", b"y" * MESSAGE_SIZE)[1]) for _ in range(200)]
    assert set(counts) == {1}  # far above the soft limit, but not for a whole second yet
    time.sleep(1.1)  # the rule is about time spent above the limit: nothing to wait on but the clock
    publisher.call("PUBLISH", b"soft-limit", b"late")  # delivered, then found above the limit too long
    assert numsub(publisher, b"soft-limit") == 0
    sock.close()
    publisher.close()


def test_client_list_shows_subscriptions(postroom_server):
    client = RawClient(postroom_server.port)
    client.call("CLIENT", "SETNAME", "counted")
    client.send("SUBSCRIBE", "a", "b")
    client.read(), client.read()
    client.send("PSUBSCRIBE", "p*")
    client.read()
    client.send("SSUBSCRIBE", "s")
    client.read()
    observer = RawClient(postroom_server.port)
    listing = observer.call("CLIENT", "LIST")[1].decode()
    line = next(line for line in listing.splitlines() if " name=counted " in line)
    assert " sub=2 psub=1 ssub=1 " in line
    client.close()
    observer.close()


def test_normal_clients_have_their_own_limit(postroom_server, limits):
    assert limits("normal 1mb 0 0") == ("+", b"OK")
    writer = RawClient(postroom_server.port)
    writer.call("SET", "big-value", b"v" * 256 * 1024)
    writer.close()
    setup = RawClient(postroom_server.port)
    reader = socket.create_connection(("127.0.0.1", postroom_server.port))
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    reader.sendall(encode_command(("GET", "big-value")) * 40)  # 10 MB of replies nobody reads
    reader.settimeout(30)
    received = 0
    while chunk := _recv_or_empty(reader):
        received += len(chunk)
    assert received < 10 * 2**20  # closed before all the replies were delivered
    assert setup.call("PING") == ("+", b"PONG")
    setup.call("DEL", "big-value")
    setup.close()
    reader.close()


def test_client_list_shows_pending_output(postroom_server):
    publisher = RawClient(postroom_server.port)
    sock = stalled_subscriber(postroom_server.port, b"omem-shown", "omem-shown")
    for _ in range(100):  # 6.4 MB: well past the socket buffers, under the 8 MB soft limit
        publisher.call("PUBLISH", b"omem-shown", b"y" * MESSAGE_SIZE)
    listing = publisher.call("CLIENT", "LIST")[1].decode()
    line = next(line for line in listing.splitlines() if " name=omem-shown " in line)
    omem = int(line.split(" omem=")[1].split()[0])
    assert 1 << 20 < omem < 7 << 20
    sock.close()
    publisher.close()


def test_config_output_buffer_limit_matches_redis(diff):
    diff.check("CONFIG", "GET", "client-output-buffer-limit")
    for text in ("pubsub 1mb 2mb", "foo 1 2 3", "pubsub x 2 3", "pubsub 1 2 -3", "replica 1kb 2k 3",
                 "PUBSUB 1 2 3", "normal 1 2 3 normal 4 5 6", "pubsub 1gb 0 0"):
        diff.check("CONFIG", "SET", "client-output-buffer-limit", text)
        diff.check("CONFIG", "GET", "client-output-buffer-limit")
    diff.check("CONFIG", "SET", "client-output-buffer-limit",
               "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60")
