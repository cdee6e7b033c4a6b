"""Stream commands (``t_stream.c``): the log, its readers, and consumer groups.

Parsing follows Redis's argument loops step by step so that the first error Redis would report
is the one we report. Writes propagate deterministically: ``XADD *`` with the ID it generated,
approximate trims with the exact length/ID they reached, and every consumer-group delivery as the
``XCLAIM ... FORCE JUSTID`` + ``XGROUP SETID`` pair Redis sends to its replicas. Propagation forms
are only built when a sink (AOF) listens, to keep the hot paths lean.

Redis 7.0 (the oracle) fixes every reply shape and error text it has; the Redis 8 additions
(XDELEX, XACKDEL, reference policies, XREADGROUP CLAIM, IDMP/XCFGSET, XNACK, MAXCOUNT, MAXSIZE) follow the
Redis command documentation. Reads that go straight to a connection encode entries directly to
RESP (:class:`Encoded`); scripts get plain values.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import notifications as ev
from ..blocking import Block
from ..keyspace.stream import (
    INVALID_ENTRIES_READ,
    MAX_ID,
    SEQ_MASK,
    U64_MAX,
    Consumer,
    Entry,
    Group,
    Nack,
    Producers,
    Stream,
    auto_iid,
    format_id,
    next_id,
)
from ..protocol.replies import NULL_ARRAY, OK, Encoded, ReplyError
from .args import LLONG_MAX, SYNTAX_ERROR, parse_int
from .registry import command, container

if TYPE_CHECKING:
    from ..client import Client
    from ..config import Config
    from ..keyspace.database import Database

INVALID_ID = ReplyError("ERR Invalid stream ID specified as stream command argument")
XADD_TOO_SMALL = ReplyError("ERR The ID specified in XADD is equal or smaller than the target stream top item")
XADD_ZERO = ReplyError("ERR The ID specified in XADD must be greater than 0-0")
EXHAUSTED = ReplyError("ERR The stream has exhausted the last possible ID, unable to add more items")
XADD_ARITY = ReplyError("ERR wrong number of arguments for 'xadd' command")
NO_SUCH_KEY = ReplyError("ERR no such key")
BAD_START = ReplyError("ERR invalid start ID for the interval")
BAD_END = ReplyError("ERR invalid end ID for the interval")
BUSYGROUP = ReplyError("BUSYGROUP Consumer Group name already exists")
GROUP_DESTROYED = ReplyError("NOGROUP the consumer group this client was blocked on no longer exists")
COUNT_POSITIVE = ReplyError("ERR COUNT must be > 0")
BAD_NUMIDS = ReplyError("ERR Number of IDs must be a positive integer")
NUMIDS_MISMATCH = ReplyError("ERR The `numids` parameter must match the number of arguments")
INVALID_DURATION = ReplyError("ERR invalid duration")
INVALID_MAXSIZE = ReplyError("ERR invalid maxsize")
KEY_GONE = ReplyError("UNBLOCKED the stream key no longer exists")
UNBALANCED = ReplyError(
    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
)
XREAD_DEFAULT_BLOCKED_COUNT = 1000  # XREAD_BLOCKED_DEFAULT_COUNT: a woken reader gets at most this many

KEEPREF, DELREF, ACKED = b"keepref", b"delref", b"acked"
POLICIES = (KEEPREF, DELREF, ACKED)

_LL_STRICT = re.compile(rb"0|-?[1-9][0-9]*")
_STRTOULL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")


# -- argument parsing --------------------------------------------------------------------------


def _u64(text: bytes) -> int | None:
    """Redis's ``string2ull``: a strict integer, or whatever ``strtoull`` accepts (sign, spaces)."""
    if text.isdigit():  # the common case; leading zeros are fine, strtoull takes them
        value = int(text)
        return value if value <= U64_MAX else None
    if _LL_STRICT.fullmatch(text):
        value = int(text)
        if value <= LLONG_MAX:
            return value if value >= 0 else None
    match = _STRTOULL.fullmatch(text)
    if match is None:
        return None
    value = int(match.group(2))
    if value > U64_MAX:
        return None
    return (-value) & U64_MAX if match.group(1) == b"-" else value


def parse_id(arg: bytes, missing_seq: int = 0, strict: bool = False) -> int:
    """A stream ID argument (streamGenericParseIDOrReply); ``-``/``+`` only when not ``strict``."""
    ms_text, dash, seq_text = arg.partition(b"-")
    if dash and ms_text.isdigit() and seq_text.isdigit():  # the common ``<ms>-<seq>`` form
        ms, seq = int(ms_text), int(seq_text)
        if ms <= U64_MAX and seq <= U64_MAX:
            return ms << 64 | seq
    if len(arg) > 127:
        raise INVALID_ID
    if arg == b"-" or arg == b"+":
        if strict:
            raise INVALID_ID
        return 0 if arg == b"-" else MAX_ID
    ms = _u64(ms_text)
    if ms is None:
        raise INVALID_ID
    if not dash:
        return ms << 64 | missing_seq
    seq = _u64(seq_text)
    if seq is None:
        raise INVALID_ID
    return ms << 64 | seq


def parse_xadd_id(arg: bytes) -> tuple[int, bool]:
    """The explicit ID of XADD and whether its sequence was given (``<ms>-*`` leaves it open)."""
    if arg.endswith(b"-*") and len(arg) <= 127:
        ms = _u64(arg[:-2])
        if ms is None or b"-" in arg[:-2]:
            raise INVALID_ID
        return ms << 64, False
    return parse_id(arg, strict=True), True


def parse_interval(arg: bytes, missing_seq: int, is_end: bool) -> int:
    """A range bound: ``(`` makes it exclusive (streamParseIntervalIDOrReply)."""
    if len(arg) > 1 and arg[0] == 0x28:  # '('
        value = parse_id(arg[1:], missing_seq, strict=True)
        if is_end:
            if value == 0:
                raise BAD_END
            return value - 1
        if value == MAX_ID:
            raise BAD_START
        return value + 1
    return parse_id(arg, missing_seq)


def parse_count(arg: bytes) -> int:
    count = parse_int(arg)
    return count if count > 0 else 0


class TrimArgs:
    """Parsed MAXLEN/MINID/LIMIT/NOMKSTREAM options and the ID of XADD (streamAddTrimArgs)."""

    __slots__ = ("maxlen", "minid", "approx", "limit", "nomkstream", "id", "seq_given", "id_given", "end", "policy",
                 "pid", "iid")

    def __init__(self) -> None:
        self.maxlen: int | None = None
        self.minid: int | None = None
        self.approx = False
        self.limit = 0
        self.nomkstream = False
        self.id = 0
        self.seq_given = True
        self.id_given = False
        self.end = 0  # index of XADD's ID argument
        self.policy = KEEPREF  # Redis 8.2: what trimming does to consumer-group references
        self.pid: bytes | None = None  # Redis 8.6 idempotent producer; ``iid`` None means IDMPAUTO
        self.iid: bytes | None = None

    @property
    def trims(self) -> bool:
        return self.maxlen is not None or self.minid is not None


def parse_trim_args(client: Client, argv: list[bytes], xadd: bool) -> TrimArgs:
    """streamParseAddOrTrimArgsOrReply: options until the ID (XADD) or the end (XTRIM)."""
    args = TrimArgs()
    limit_given = False
    i = 2
    argc = len(argv)
    while i < argc:
        more = argc - 1 - i
        opt = argv[i]
        lower = opt.lower()
        if xadd and opt == b"*":
            break
        if lower in (b"maxlen", b"minid") and more:
            if args.trims:
                raise ReplyError("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
            args.approx = False
            following = argv[i + 1]
            if more >= 2 and following in (b"~", b"="):
                args.approx = following == b"~"
                i += 1
            if lower == b"maxlen":
                maxlen = parse_int(argv[i + 1])
                if maxlen < 0:
                    raise ReplyError("ERR The MAXLEN argument must be >= 0.")
                args.maxlen = maxlen
            else:
                args.minid = parse_id(argv[i + 1], strict=True)
            i += 1
        elif lower == b"limit" and more:
            limit = parse_int(argv[i + 1])
            if limit < 0:
                raise ReplyError("ERR The LIMIT argument must be >= 0.")
            args.limit = limit
            limit_given = True
            i += 1
        elif xadd and lower == b"nomkstream":
            args.nomkstream = True
        elif lower in POLICIES:
            args.policy = lower
        elif xadd and lower == b"idmp" and more >= 2 and args.pid is None:
            args.pid, args.iid = argv[i + 1], argv[i + 2]
            i += 2
        elif xadd and lower == b"idmpauto" and more and args.pid is None:
            args.pid = argv[i + 1]
            i += 1
        elif xadd:
            args.id, args.seq_given = parse_xadd_id(opt)
            args.id_given = True
            break
        else:
            raise SYNTAX_ERROR
        i += 1
    args.end = i
    if args.pid is not None and args.id_given and client.kind != "aof":  # replay carries concrete IDs
        raise ReplyError("ERR IDMP and IDMPAUTO can be used only with auto-generated IDs (*)")
    if args.limit and not args.trims:
        raise ReplyError("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    if not xadd and not args.trims:
        raise ReplyError("ERR syntax error, XTRIM must be called with a trimming strategy")
    if limit_given:
        if not args.approx:
            raise ReplyError("ERR syntax error, LIMIT cannot be used without the special ~ option")
    elif args.approx:
        max_entries = client.broker.config["stream-node-max-entries"]
        args.limit = 100 * max_entries
        if args.limit <= 0 or args.limit > 10000:
            args.limit = 10000
    else:
        args.limit = 0
    return args


def _trim(stream: Stream, args: TrimArgs) -> int:
    if args.policy == KEEPREF or not stream.groups:  # without groups the policy changes nothing
        return stream.trim(args.maxlen, args.minid, args.approx, args.limit)
    removed = stream.trim_by_reference(args.maxlen, args.minid, args.approx, args.limit, args.policy == ACKED)
    if args.policy == DELREF:
        for stream_id in removed:
            stream.drop_references(stream_id)
    return len(removed)


def _trim_spec(stream: Stream, args: TrimArgs) -> list[bytes]:
    """The exact trim this command performed, for propagation (streamRewriteTrimArgument).

    ``ACKED`` trimming skips entries by group state, which the replica shares: it is replayed as
    given. The other policies removed exactly the oldest entries, so the reached threshold is sent.
    """
    policy = [] if args.policy == KEEPREF else [args.policy.upper()]
    if args.policy == ACKED:
        threshold = b"%d" % args.maxlen if args.maxlen is not None else format_id(args.minid or 0)
        limit = [b"LIMIT", b"%d" % args.limit] if args.approx else []
        return [*policy, b"MAXLEN" if args.maxlen is not None else b"MINID", b"~" if args.approx else b"=",
                threshold, *limit]
    if args.maxlen is not None:
        return [*policy, b"MAXLEN", b"=", b"%d" % (stream.length if args.approx else args.maxlen)]
    minid = (stream.first_id if stream.length else stream.last_id + 1) if args.approx else args.minid
    return [*policy, b"MINID", b"=", format_id(min(minid, MAX_ID))]  # type: ignore[type-var]


# -- replies -----------------------------------------------------------------------------------


def entries_reply(entries: list[Entry]) -> list[Any]:
    return [[format_id(stream_id), values] for stream_id, values in entries]


def read_range(client: Client, stream: Stream, lo: int, count: int, hi: int = MAX_ID) -> tuple[list[int], Any]:
    """Entries ``lo..hi`` for a reply: pre-encoded for connections, values for scripts."""
    if client.kind == "lua":
        entries = stream.range(lo, hi, count)
        return [stream_id for stream_id, _values in entries], entries_reply(entries)
    ids, encoded = stream.range_resp(lo, hi, count)
    return ids, Encoded(encoded)


def _lookup(client: Client, key: bytes) -> Stream | None:
    return client.db.get_typed(key, Stream)


#: Node size limits per configuration, kept current by change listeners: XADD must not pay two
#: configuration lookups per call.
_NODE_LIMITS: dict[Config, tuple[int, int]] = {}


def _node_limits(client: Client) -> tuple[int, int]:
    config = client.broker.config
    limits = _NODE_LIMITS.get(config)
    if limits is None:

        def refresh(_value: object = None) -> None:
            _NODE_LIMITS[config] = (config["stream-node-max-entries"], config["stream-node-max-bytes"])

        config.on_change("stream-node-max-entries", refresh)
        config.on_change("stream-node-max-bytes", refresh)
        refresh()
        limits = _NODE_LIMITS[config]
    return limits


# -- XADD and the log --------------------------------------------------------------------------


@command("xadd", arity=-5, flags="write denyoom fast", keys=(1, 1, 1), group="stream",
         summary="Appends a new message to a stream. Creates the key if it doesn't exist.", since="5.0.0")
def xadd(client: Client, argv: list[bytes]) -> Any:
    """XADD key [NOMKSTREAM] [KEEPREF | DELREF | ACKED] [IDMPAUTO producer-id | IDMP producer-id idempotent-id] [<MAXLEN | MINID> [= | ~] threshold [LIMIT count]] <* | id> field value [field value ...]"""
    key = argv[1]
    db = client.db
    if argv[2] == b"*":  # no options
        if len(argv) & 1:
            stream = db.get_typed(key, Stream)
            if stream is not None:
                return _append_now(client, db, key, stream, argv)
        args = None
        field_pos = 3
    else:
        args = parse_trim_args(client, argv, xadd=True)
        field_pos = args.end + 1
    pairs = len(argv) - field_pos
    if pairs < 2 or pairs % 2:
        raise XADD_ARITY
    if args is not None and args.id_given and args.seq_given and args.id == 0:
        raise XADD_ZERO
    stream = db.get_typed(key, Stream)
    created = stream is None
    if created:
        if args is not None and args.nomkstream:
            return None
        stream = Stream()
    if args is not None and args.pid is not None:
        producers = stream.producers
        if producers is None:
            producers = stream.producers = Producers()
        iid = args.iid if args.iid is not None else auto_iid(argv[field_pos:])
        original = producers.lookup(args.pid, iid, client.broker.now_ms)
        if original is not None:
            return format_id(original)  # a retry of an append already made: nothing is added
    last = stream.last_id
    if last == MAX_ID:
        raise EXHAUSTED
    if args is None or not args.id_given:
        stream_id = next_id(last, client.broker.now_ms)
    elif args.seq_given:
        stream_id = args.id
    elif last >> 64 == args.id >> 64:
        if last & SEQ_MASK == U64_MAX:
            raise XADD_TOO_SMALL
        stream_id = last + 1
    else:
        stream_id = args.id
    if stream_id <= last:
        raise XADD_TOO_SMALL
    if created:
        db.add(key, stream)
    max_entries, max_bytes = _node_limits(client)
    stream.append(stream_id, argv, field_pos, max_entries, max_bytes)
    if args is not None and args.pid is not None:
        stream.producers.record(args.pid, iid, stream_id, client.broker.now_ms)  # type: ignore[union-attr]
    reply = format_id(stream_id)
    client.touch(key)
    client.notify(ev.STREAM, b"xadd", key)
    if args is not None and args.trims and _trim(stream, args):
        client.notify(ev.STREAM, b"xtrim", key)
    if client.broker.propagation_sinks:
        head = [argv[0], key]
        if args is not None:
            if args.nomkstream:
                head.append(b"NOMKSTREAM")
            if args.pid is not None:
                head += [b"IDMP", args.pid, iid]  # IDMPAUTO's derived ID travels explicitly
            if args.trims:
                head += _trim_spec(stream, args)
        client.propagate_as(head + [reply] + argv[field_pos:])
    if not created:
        client.broker.signal_ready(db, key)
    return reply


def _append_now(client: Client, db: Database, key: bytes, stream: Stream, argv: list[bytes]) -> bytes:
    """The hot path: ``XADD key * field value ...`` on an existing stream."""
    last = stream.last_id
    if last == MAX_ID:
        raise EXHAUSTED
    broker = client.broker
    now = broker.now_ms
    stream_id = now << 64 if now > last >> 64 else last + 1
    stream.append(stream_id, argv, 3, *_node_limits(client))
    reply = b"%d-%d" % (stream_id >> 64, stream_id & SEQ_MASK)
    client.touch(key)
    client.notify(ev.STREAM, b"xadd", key)
    if broker.propagation_sinks:
        client.propagate_as([argv[0], key, reply, *argv[3:]])
    broker.signal_ready(db, key)
    return reply


@command("xlen", arity=2, flags="readonly fast", keys=(1, 1, 1), group="stream",
         summary="Return the number of messages in a stream.", since="5.0.0")
def xlen(client: Client, argv: list[bytes]) -> int:
    """XLEN key"""
    stream = _lookup(client, argv[1])
    return 0 if stream is None else stream.length


def _range(client: Client, argv: list[bytes], reverse: bool) -> Any:
    start_arg, end_arg = (argv[3], argv[2]) if reverse else (argv[2], argv[3])
    start = parse_interval(start_arg, 0, is_end=False)
    end = parse_interval(end_arg, U64_MAX, is_end=True)
    count = -1
    i = 4
    while i < len(argv):
        if argv[i].lower() == b"count" and i + 1 < len(argv):
            count = parse_count(argv[i + 1])
            i += 2
        else:
            raise SYNTAX_ERROR
    stream = _lookup(client, argv[1])
    if stream is None:
        return []
    if count == 0:
        return NULL_ARRAY
    if reverse:
        return entries_reply(stream.range(start, end, max(count, 0), reverse))
    return read_range(client, stream, start, max(count, 0), end)[1]


@command("xrange", arity=-4, flags="readonly", keys=(1, 1, 1), group="stream",
         summary="Returns the messages from a stream within a range of IDs.", since="5.0.0")
def xrange(client: Client, argv: list[bytes]) -> Any:
    """XRANGE key start end [COUNT count]"""
    return _range(client, argv, reverse=False)


@command("xrevrange", arity=-4, flags="readonly", keys=(1, 1, 1), group="stream",
         summary="Returns the messages from a stream within a range of IDs in reverse order.", since="5.0.0")
def xrevrange(client: Client, argv: list[bytes]) -> Any:
    """XREVRANGE key end start [COUNT count]"""
    return _range(client, argv, reverse=True)


@command("xdel", arity=-3, flags="write fast", keys=(1, 1, 1), group="stream",
         summary="Returns the number of messages after removing them from a stream.", since="5.0.0")
def xdel(client: Client, argv: list[bytes]) -> int:
    """XDEL key id [id ...]"""
    key = argv[1]
    stream = _lookup(client, key)
    if stream is None:
        return 0
    ids = [parse_id(arg, strict=True) for arg in argv[2:]]
    deleted = sum(map(_Deletion(stream).delete, ids))
    if deleted:
        _deleted(client, key, deleted)
    return deleted


class _Deletion:
    """Deleting entries one by one as XDEL does: tombstone bookkeeping, first ID kept current."""

    __slots__ = ("stream",)

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def delete(self, stream_id: int) -> bool:
        stream = self.stream
        if not stream.delete(stream_id):
            return False
        if stream_id > stream.max_deleted_id:
            stream.max_deleted_id = stream_id
        if not stream.length:
            stream.first_id = 0
        elif stream_id == stream.first_id:
            stream.first_id = stream.edge_id()
        return True


def _deleted(client: Client, key: bytes, count: int) -> None:
    client.touch(key)
    client.broker.dirty += count - 1
    client.notify(ev.STREAM, b"xdel", key)


def parse_ids_block(argv: list[bytes], start: int, options: dict[bytes, int]) -> tuple[list[int], dict[bytes, Any]]:
    """Redis 8's ``IDS numids id [id ...]`` block, anywhere among the options after ``start``.

    ``options`` maps each accepted option (lowercase) to its number of arguments; the result maps
    the options given to their argument (or ``True``).
    """
    ids: list[int] | None = None
    given: dict[bytes, Any] = {}
    i = start
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"ids" and ids is None and i + 1 < len(argv):
            numids = parse_int(argv[i + 1], BAD_NUMIDS)
            if numids <= 0:
                raise BAD_NUMIDS
            if i + 2 + numids > len(argv):
                raise NUMIDS_MISMATCH
            ids = [parse_id(arg, strict=True) for arg in argv[i + 2 : i + 2 + numids]]
            i += 2 + numids
        elif opt in options and i + options[opt] < len(argv):
            given[opt] = argv[i + 1] if options[opt] else True
            i += 1 + options[opt]
        else:
            raise SYNTAX_ERROR
    if ids is None:
        raise SYNTAX_ERROR
    return ids, given


def _policy(given: dict[bytes, Any]) -> bytes:
    chosen = [policy for policy in POLICIES if policy in given]
    if len(chosen) > 1:
        raise SYNTAX_ERROR
    return chosen[0] if chosen else KEEPREF


_POLICY_OPTIONS = {KEEPREF: 0, DELREF: 0, ACKED: 0}


@command("xdelex", arity=-5, flags="write fast", keys=(1, 1, 1), group="stream",
         summary="Deletes one or multiple entries from the stream.", since="8.2.0")
def xdelex(client: Client, argv: list[bytes]) -> list[int]:
    """XDELEX key [KEEPREF | DELREF | ACKED] IDS numids id [id ...]"""
    key = argv[1]
    ids, given = parse_ids_block(argv, 2, _POLICY_OPTIONS)
    policy = _policy(given)
    stream = _lookup(client, key)
    if stream is None:
        return [-1] * len(ids)
    deletion = _Deletion(stream)
    reply = []
    for stream_id in ids:
        if stream_id not in stream:
            if policy == DELREF and stream.drop_references(stream_id):
                client.broker.dirty += 1
            reply.append(-1)
        elif policy == ACKED and (not stream.groups or stream.referenced(stream_id)):
            reply.append(2)  # still needed by a group (or, as documented, there are no groups)
        else:
            deletion.delete(stream_id)
            if policy == DELREF:
                stream.drop_references(stream_id)
            reply.append(1)
    if 1 in reply:
        _deleted(client, key, reply.count(1))
    return reply


@command("xackdel", arity=-6, flags="write fast", keys=(1, 1, 1), group="stream",
         summary="Acknowledges and conditionally deletes one or multiple entries for a stream consumer group.",
         since="8.2.0")
def xackdel(client: Client, argv: list[bytes]) -> list[int]:
    """XACKDEL key group [KEEPREF | DELREF | ACKED] IDS numids id [id ...]"""
    key = argv[1]
    ids, given = parse_ids_block(argv, 3, _POLICY_OPTIONS)
    policy = _policy(given)
    stream = _lookup(client, key)
    if stream is None:
        return [-1] * len(ids)
    group = stream.groups.get(argv[2])
    if group is None:
        raise ReplyError(f"NOGROUP No such key '{_text(key)}' or consumer group '{_text(argv[2])}'")
    deletion = _Deletion(stream)
    reply = []
    for stream_id in ids:
        if group.forget(stream_id) is None:
            reply.append(-1)  # not pending in this group: nothing to acknowledge
            continue
        client.broker.dirty += 1
        if policy == ACKED and stream.referenced(stream_id):
            reply.append(2)
            continue
        removed = deletion.delete(stream_id)
        if policy == DELREF:
            stream.drop_references(stream_id)
        reply.append(1 if removed else -1)
    if 1 in reply:
        _deleted(client, key, reply.count(1))
    return reply


@command("xcfgset", arity=-2, flags="write fast", keys=(1, 1, 1), group="stream",
         summary="Sets the IDMP configuration parameters for a stream.", since="8.6.0")
def xcfgset(client: Client, argv: list[bytes]) -> str:
    """XCFGSET key [IDMP-DURATION idmp-duration] [IDMP-MAXSIZE idmp-maxsize]"""
    duration = maxsize = None
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"idmp-duration" and i + 1 < len(argv):
            duration = parse_int(argv[i + 1], INVALID_DURATION)
            if not 1 <= duration <= 86400:
                raise INVALID_DURATION
        elif opt == b"idmp-maxsize" and i + 1 < len(argv):
            maxsize = parse_int(argv[i + 1], INVALID_MAXSIZE)
            if not 1 <= maxsize <= 10000:
                raise INVALID_MAXSIZE
        else:
            raise SYNTAX_ERROR
        i += 2
    if duration is None and maxsize is None:
        raise SYNTAX_ERROR
    stream = _lookup(client, argv[1])
    if stream is None:
        raise NO_SUCH_KEY
    if stream.producers is None:
        stream.producers = Producers()
    stream.producers.configure(duration, maxsize)
    client.touch(argv[1])
    return OK


NACK_MODES = (b"silent", b"fail", b"fatal")


@command("xnack", arity=-7, flags="write fast", keys=(1, 1, 1), group="stream",
         summary="Releases pending messages back to the group's PEL without acknowledging them, making them "
                 "available for re-delivery.", since="8.8.0")
def xnack(client: Client, argv: list[bytes]) -> int:
    """XNACK key group <SILENT | FAIL | FATAL> IDS numids id [id ...] [RETRYCOUNT count] [FORCE]"""
    key = argv[1]
    mode = argv[3].lower()
    if mode not in NACK_MODES:
        raise SYNTAX_ERROR
    ids, given = parse_ids_block(argv, 4, {b"retrycount": 1, b"force": 0})
    retrycount = None
    if b"retrycount" in given:
        retrycount = parse_int(given[b"retrycount"])
        if retrycount < 0:
            raise ReplyError("ERR Invalid RETRYCOUNT option argument for XNACK")
    stream, group = _group_or_nogroup(client, key, argv[2])
    released = 0
    for stream_id in ids:
        nack = group.pel.get(stream_id)
        if nack is None:
            if b"force" not in given or stream_id not in stream:
                continue
            nack = Nack(None, 0, 0)
            group.pel.add(stream_id, nack)
        elif mode == b"silent":
            nack.delivery_count = max(nack.delivery_count - 1, 0)
        nack.disown(stream_id)
        nack.delivery_time = 0  # claimable whatever the min-idle-time, oldest of all
        if mode == b"fatal":
            nack.delivery_count = LLONG_MAX
        if retrycount is not None:
            nack.delivery_count = retrycount
        released += 1
    client.broker.dirty += released
    return released


@command("xtrim", arity=-4, flags="write", keys=(1, 1, 1), group="stream",
         summary="Deletes messages from the beginning of a stream.", since="5.0.0")
def xtrim(client: Client, argv: list[bytes]) -> int:
    """XTRIM key <MAXLEN | MINID> [= | ~] threshold [LIMIT count] [KEEPREF | DELREF | ACKED]"""
    key = argv[1]
    args = parse_trim_args(client, argv, xadd=False)
    stream = _lookup(client, key)
    if stream is None:
        return 0
    deleted = _trim(stream, args)
    if deleted:
        client.notify(ev.STREAM, b"xtrim", key)
        client.touch(key)
        client.broker.dirty += deleted - 1
        if client.broker.propagation_sinks:
            client.propagate_as([argv[0], key, *_trim_spec(stream, args)])
    return deleted


@command("xsetid", arity=-3, flags="write denyoom fast", keys=(1, 1, 1), group="stream",
         summary="An internal command for replicating stream values.", since="5.0.0")
def xsetid(client: Client, argv: list[bytes]) -> str:
    """XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]"""
    key = argv[1]
    new_id = parse_id(argv[2], strict=True)
    entries_added = -1
    max_deleted = 0
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"entriesadded" and i + 1 < len(argv):
            entries_added = parse_int(argv[i + 1])
            if entries_added < 0:
                raise ReplyError("ERR entries_added must be positive")
        elif opt == b"maxdeletedid" and i + 1 < len(argv):
            max_deleted = parse_id(argv[i + 1], strict=True)
            if new_id < max_deleted:
                raise ReplyError("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
        else:
            raise SYNTAX_ERROR
        i += 2
    stream = _lookup(client, key)
    if stream is None:
        raise NO_SUCH_KEY
    if stream.length:
        if new_id < stream.edge_id(last=True):
            raise ReplyError("ERR The ID specified in XSETID is smaller than the target stream top item")
        if entries_added != -1 and stream.length > entries_added:
            raise ReplyError("ERR The entries_added specified in XSETID is smaller than the target stream length")
    stream.last_id = new_id
    if entries_added != -1:
        stream.entries_added = entries_added
    if max_deleted:
        stream.max_deleted_id = max_deleted
    client.touch(key)
    client.notify(ev.STREAM, b"xsetid", key)
    return OK


# -- XREAD / XREADGROUP ------------------------------------------------------------------------


def _streams_keys(argv: list[bytes]) -> list[int]:
    """Key positions of XREAD/XREADGROUP: the first half of what follows STREAMS."""
    for i in range(1, len(argv)):
        if argv[i].lower() == b"streams":
            count = (len(argv) - i - 1) // 2
            return list(range(i + 1, i + 1 + count))
    return []


class ReadArgs:
    """Parsed XREAD/XREADGROUP options."""

    __slots__ = ("timeout", "count", "count_given", "noack", "group", "consumer", "streams_at", "nstreams", "claim",
                 "maxcount", "maxsize")

    def __init__(self) -> None:
        self.timeout = -1
        self.count = 0
        self.count_given = False
        self.noack = False
        self.group: bytes | None = None
        self.consumer = b""
        self.streams_at = 0
        self.nstreams = 0
        self.claim: int | None = None  # XREADGROUP CLAIM min-idle-time (Redis 8.4)
        self.maxcount = 0  # MAXCOUNT (Redis 8.10): entries in the whole reply; 0 is no limit
        self.maxsize = 0  # MAXSIZE (Redis 8.10): bytes of entries in the whole reply; 0 is no limit


def parse_read_args(argv: list[bytes], xreadgroup: bool) -> ReadArgs:
    args = ReadArgs()
    argc = len(argv)
    i = 1
    while i < argc:
        more = argc - i - 1
        opt = argv[i].lower()
        if opt == b"block" and more:
            i += 1
            args.timeout = _parse_block_ms(argv[i])
        elif opt == b"count" and more:
            i += 1
            args.count = parse_count(argv[i])
            args.count_given = True
        elif opt == b"streams" and more:
            args.streams_at = i + 1
            remaining = argc - args.streams_at
            if remaining % 2:
                raise UNBALANCED
            args.nstreams = remaining // 2
            break
        elif opt == b"group" and more >= 2:
            if not xreadgroup:
                raise ReplyError("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.")
            args.group = argv[i + 1]
            args.consumer = argv[i + 2]
            i += 2
        elif opt == b"maxcount" and more:
            i += 1
            args.maxcount = parse_int(argv[i])
            if args.maxcount <= 0:
                raise ReplyError("ERR MAXCOUNT must be a positive integer")
        elif opt == b"maxsize" and more:
            i += 1
            args.maxsize = parse_int(argv[i])
            if args.maxsize <= 0:
                raise ReplyError("ERR MAXSIZE must be a positive integer")
        elif opt == b"claim" and more:
            if not xreadgroup:
                raise ReplyError("ERR The CLAIM option is only supported by XREADGROUP. You called XREAD instead.")
            i += 1
            args.claim = parse_int(argv[i])
            if args.claim < 0:
                raise ReplyError("ERR min-idle-time must be a positive integer")
        elif opt == b"noack":
            if not xreadgroup:
                raise ReplyError("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.")
            args.noack = True
        else:
            raise SYNTAX_ERROR
        i += 1
    if not args.streams_at:
        raise SYNTAX_ERROR
    if xreadgroup and args.group is None:
        raise ReplyError("ERR Missing GROUP option for XREADGROUP")
    return args


class Budget:
    """The cumulative limits of Redis 8.10, across the streams of one XREAD/XREADGROUP reply.

    MAXCOUNT bounds the entries, MAXSIZE (a soft cap) the bytes of their RESP encoding; COUNT
    stays per stream. Streams are served in the order named; once a limit is reached the rest
    are skipped. The first entry of the reply is always served, however large, so that a reader
    always makes progress.
    """

    __slots__ = ("count", "left", "bytes_left", "served", "_fitted", "_full")

    def __init__(self, args: ReadArgs) -> None:
        self.count = args.count
        self.left = args.maxcount or None
        self.bytes_left = args.maxsize or None
        self.served = 0  # entries in the reply so far
        self._fitted = 0  # bytes of what fit() admitted, spent by take()
        self._full = False  # fit() found an entry that does not fit: take() spends the budget

    @property
    def spent(self) -> bool:
        return self.left == 0 or self.bytes_left == 0

    def limit(self) -> int:
        """The COUNT for the next stream (0: unlimited)."""
        if self.left is None:
            return self.count
        return min(self.count, self.left) if self.count else self.left

    def candidates(self) -> int:
        """How many entries to look at for :meth:`fit`: within COUNT/MAXCOUNT, and no more than
        the byte budget could hold (an entry takes at least 16 bytes), plus an oversized first."""
        assert self.bytes_left is not None
        cap = self.bytes_left // 16 + 1
        limit = self.limit()
        return min(limit, cap) if limit else cap

    def fit(self, entries: Iterable[tuple[int, list[bytes] | None]]) -> int:
        """How many of ``entries`` (the next stream's candidates, in order, at most
        :meth:`candidates`) MAXSIZE admits; 0 when there are none or the budget is spent."""
        assert self.bytes_left is not None
        admitted = fitted = 0
        for stream_id, values in entries:
            size = entry_size(stream_id, values)
            if fitted + size > self.bytes_left and self.served + admitted:
                self._full = True
                break
            fitted += size
            admitted += 1
            if fitted >= self.bytes_left:
                self._full = True
                break
        self._fitted = fitted
        if not admitted and self._full:
            self.bytes_left = 0
        return admitted

    def take(self, served: int) -> None:
        self.served += served
        if self.left is not None:
            self.left -= served
        if self.bytes_left is not None:
            self.bytes_left = 0 if self._full else max(0, self.bytes_left - self._fitted)
            self._fitted = 0


def entry_size(stream_id: int, values: list[bytes] | None) -> int:
    """Bytes of ``[id, [field, value, ...]]`` in RESP (a deleted pending entry replies nil)."""
    size = 4 + _bulk_size(len(format_id(stream_id)))
    if values is None:
        return size + 4
    size += 3 + len(str(len(values)))
    for value in values:
        size += _bulk_size(len(value))
    return size


def _bulk_size(length: int) -> int:
    return length + len(str(length)) + 5  # $<length>\r\n<bytes>\r\n


def _parse_block_ms(arg: bytes) -> int:
    """BLOCK milliseconds (getTimeoutFromObjectOrReply with UNIT_MILLISECONDS)."""
    try:
        value = float(arg)
    except ValueError:
        raise ReplyError("ERR timeout is not an integer or out of range")
    if value != value or value in (float("inf"), float("-inf")) or b"_" in arg:
        raise ReplyError("ERR timeout is not an integer or out of range")
    if not value.is_integer() or not _LL_STRICT.fullmatch(arg):
        raise ReplyError("ERR timeout is not an integer or out of range")
    ms = int(arg)
    if ms < 0:
        raise ReplyError("ERR timeout is negative")
    return ms


def _reading_block(argv: list[bytes], args: ReadArgs, resolved: list[bytes]) -> Block:
    """Park the reader; the retry has ``$`` resolved and the default blocked COUNT applied."""
    keys = argv[args.streams_at : args.streams_at + args.nstreams]
    retry = argv[: args.streams_at + args.nstreams] + resolved
    if not args.count_given:
        retry[1:1] = [b"COUNT", b"%d" % XREAD_DEFAULT_BLOCKED_COUNT]
    return Block(keys, args.timeout, NULL_ARRAY, retry, wake_on_delete=args.group is not None)


def _lookup_in(db: Database, key: bytes) -> Stream | None:
    return db.get_typed(key, Stream)


def _stream_or_none(db: Database, key: bytes) -> Stream | None:
    value = db.get(key)
    return value if type(value) is Stream else None


def _stream_map(client: Client, served: list[tuple[bytes, Any]]) -> Any:
    if client.resp == 2:
        return [[key, entries] for key, entries in served]
    return dict(served)


@command("xread", arity=-4, flags="readonly blocking", key_finder=_streams_keys, group="stream",
         summary="Returns messages from multiple streams with IDs greater than the ones requested. "
                 "Blocks until a message is available otherwise.", since="5.0.0")
def xread(client: Client, argv: list[bytes]) -> Any:
    """XREAD [COUNT count] [MAXCOUNT maxcount] [MAXSIZE maxsize] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]"""
    args = parse_read_args(argv, xreadgroup=False)
    db = client.db
    # A woken reader whose key changed type keeps waiting, as in Redis.
    lookup = _stream_or_none if client.waiter is not None else _lookup_in
    first_key = args.streams_at
    first_id = first_key + args.nstreams
    after: list[int] = []
    resolved: list[bytes] = []
    last_entry: list[bool] = []
    for i in range(args.nstreams):
        stream = lookup(db, argv[first_key + i])
        arg = argv[first_id + i]
        if arg == b"$":
            after.append(stream.last_id if stream is not None else 0)
            resolved.append(format_id(after[-1]))
            last_entry.append(False)
        elif arg == b">":
            raise ReplyError(
                "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."
            )
        elif arg == b"+":
            after.append(0)
            resolved.append(format_id(stream.last_id if stream is not None else 0))
            last_entry.append(True)
        else:
            after.append(parse_id(arg, strict=True))
            resolved.append(arg)
            last_entry.append(False)
    served = []
    budget = Budget(args)
    for i in range(args.nstreams):
        key = argv[first_key + i]
        stream = lookup(db, key)
        if stream is None or not stream.length or budget.spent:
            continue
        if last_entry[i]:
            entries = stream.range(0, MAX_ID, 1, reverse=True)
        elif stream.last_id > after[i] and after[i] < MAX_ID:
            limit = budget.limit()
            if budget.bytes_left is not None:
                limit = budget.fit(stream.range(after[i] + 1, MAX_ID, budget.candidates()))
                if not limit:
                    continue
            ids, reply = read_range(client, stream, after[i] + 1, limit)
            budget.take(len(ids))
            if ids:
                served.append((key, reply))
            continue
        else:
            continue
        if entries and budget.bytes_left is not None and not budget.fit(entries):
            continue
        if entries:
            budget.take(len(entries))
            served.append((key, entries_reply(entries)))
    if served:
        return _stream_map(client, served)
    if args.timeout >= 0:
        return _reading_block(argv, args, resolved)
    return NULL_ARRAY


def _claim_idle(client: Client, argv: list[bytes], args: ReadArgs, groups: list[Group], after: list[int | None],
                propagate: list[list[bytes]] | None, limit: int) -> list[list[Any]]:
    """XREADGROUP CLAIM: per stream, the pending entries idle for at least min-idle-time, claimed
    for the reader, longest idle first across all streams, within COUNT. Each is replied as
    ``[id, fields, idle, deliveries so far]``."""
    now = client.broker.now_ms
    candidates = []
    for i, group in enumerate(groups):
        if after[i] is not None:
            continue  # CLAIM only applies to ">"
        stream = client.db.data[argv[args.streams_at + i]]
        for stream_id, nack in group.pel.map.items():
            if now - nack.delivery_time >= args.claim and stream_id in stream:  # type: ignore[operator]
                candidates.append((nack.delivery_time, i, stream_id, nack))
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    if limit:
        candidates = candidates[:limit]
    claimed: list[list[Any]] = [[] for _ in groups]
    for _time, i, stream_id, nack in candidates:
        key = argv[args.streams_at + i]
        stream = client.db.data[key]
        consumer = _get_consumer(client, key, groups[i], args.consumer, propagate)
        idle, previous = _idle(nack, now), nack.delivery_count
        _claim(client, key, stream, groups[i], consumer, stream_id, nack, now, -1, False)
        claimed[i].append([format_id(stream_id), stream.get(stream_id), max(idle, 0), previous])
        if propagate is not None:
            propagate.append(_xclaim_argv(key, groups[i], consumer.name, stream_id, nack))
    return claimed


def _wake_when_idle(client: Client, argv: list[bytes], args: ReadArgs, groups: list[Group],
                    after: list[int | None]) -> None:
    """A blocked CLAIM reader is retried when the next pending entry reaches min-idle-time."""
    broker = client.broker
    if broker.loop is None:
        return
    now = broker.now_ms
    keys = argv[args.streams_at : args.streams_at + args.nstreams]
    soonest = None
    for i, group in enumerate(groups):
        if after[i] is not None:
            continue
        stream = client.db.data[keys[i]]
        for stream_id, nack in group.pel.map.items():
            due = nack.delivery_time + args.claim  # type: ignore[operator]
            if due > now and (soonest is None or due < soonest) and stream_id in stream:
                soonest = due
    if soonest is None:
        return
    db_index = client.db.index

    def wake() -> None:
        with broker.lock:
            for key in keys:
                broker.blocking.signal_ready(db_index, key)
            broker.blocking.serve_ready()

    broker.call_later((soonest - now) / 1000, wake)


def _deliver_new(client: Client, key: bytes, stream: Stream, group: Group, consumer: Consumer,
                 args: ReadArgs, propagate: list[list[bytes]] | None, structured: bool = False) -> tuple[int, Any]:
    """Serve ``>``: entries after the group's last ID, each added to the PELs unless NOACK.

    Returns how many were delivered and the reply for them."""
    if group.last_id == MAX_ID:
        return 0, []
    if structured:
        entries = stream.range(group.last_id + 1, MAX_ID, args.count)
        ids = [stream_id for stream_id, _values in entries]
        reply: Any = entries_reply(entries)
    else:
        ids, reply = read_range(client, stream, group.last_id + 1, args.count)
    if not ids:
        return 0, []
    now = client.broker.now_ms
    if stream.max_deleted_id or group.entries_read == INVALID_ENTRIES_READ:
        for stream_id in ids:
            if group.entries_read != INVALID_ENTRIES_READ and not stream.has_tombstones(stream_id):
                group.entries_read += 1
            elif stream.entries_added:
                group.entries_read = stream.estimate_entries_read(stream_id)
    else:
        group.entries_read += len(ids)
    group.last_id = ids[-1]
    if not args.noack:
        group_pel = group.pel
        own_pel = consumer.pel
        for stream_id in ids:
            nack = group_pel.get(stream_id)
            if nack is None:
                nack = Nack(consumer, now)
                group_pel.add(stream_id, nack)
            else:
                nack.disown(stream_id)
                nack.consumer = consumer
                nack.delivery_time = now
                nack.delivery_count = 1
            own_pel.add(stream_id, nack)
            if propagate is not None:
                propagate.append(_xclaim_argv(key, group, consumer.name, stream_id, nack))
        consumer.active_time = now
    if propagate is not None:
        propagate.append(_setid_argv(key, group))
    return len(ids), reply


def _deliver_history(client: Client, stream: Stream, group: Group, consumer: Consumer, after: int,
                     count: int, key: bytes, propagate: list[list[bytes]] | None) -> list[Any]:
    """Serve an explicit ID: the consumer's own pending entries after it (deleted ones as nil)."""
    reply: list[Any] = []
    if after == MAX_ID:
        return reply
    now = client.broker.now_ms
    for stream_id, nack in list(consumer.pel.range(after + 1, MAX_ID)):
        values = stream.get(stream_id)
        if values is None:
            reply.append([format_id(stream_id), NULL_ARRAY])
        else:
            nack.delivery_time = now
            nack.delivery_count += 1
            reply.append([format_id(stream_id), values])
            if propagate is not None:
                propagate.append(_xclaim_argv(key, group, consumer.name, stream_id, nack))
        if len(reply) == count:
            break
    return reply


def _xclaim_argv(key: bytes, group: Group, consumer: bytes, stream_id: int, nack: Nack) -> list[bytes]:
    """How Redis propagates a PEL change (streamPropagateXCLAIM)."""
    return [b"XCLAIM", key, group.name, consumer, b"0", format_id(stream_id), b"TIME", b"%d" % nack.delivery_time,
            b"RETRYCOUNT", b"%d" % nack.delivery_count, b"FORCE", b"JUSTID", b"LASTID", format_id(group.last_id)]


def _setid_argv(key: bytes, group: Group) -> list[bytes]:
    """How Redis propagates a group's last ID (streamPropagateGroupID)."""
    return [b"XGROUP", b"SETID", key, group.name, format_id(group.last_id), b"ENTRIESREAD",
            b"%d" % group.entries_read]


def _get_consumer(client: Client, key: bytes, group: Group, name: bytes,
                  propagate: list[list[bytes]] | None) -> Consumer:
    consumer = group.consumers.get(name)
    if consumer is None:
        consumer = group.add_consumer(name, client.broker.now_ms)
        client.notify(ev.STREAM, b"xgroup-createconsumer", key)
        if propagate is not None:
            propagate.append([b"XGROUP", b"CREATECONSUMER", key, group.name, name])
    return consumer


@command("xreadgroup", arity=-7, flags="write blocking", key_finder=_streams_keys, group="stream",
         summary="Returns new or historical messages from a stream for a consumer in a group. "
                 "Blocks until a message is available otherwise.", since="5.0.0")
def xreadgroup(client: Client, argv: list[bytes]) -> Any:
    """XREADGROUP GROUP group consumer [COUNT count] [MAXCOUNT maxcount] [MAXSIZE maxsize] [BLOCK milliseconds] [CLAIM min-idle-time] [NOACK] STREAMS key [key ...] id [id ...]"""
    args = parse_read_args(argv, xreadgroup=True)
    db = client.db
    retried = client.waiter is not None
    group_name = args.group
    assert group_name is not None
    first_key = args.streams_at
    first_id = first_key + args.nstreams
    groups: list[Group] = []
    after: list[int | None] = []
    for i in range(args.nstreams):
        key = argv[first_key + i]
        stream = db.get_typed(key, Stream) if not retried else db.get(key)
        if retried and type(stream) is not Stream:
            raise KEY_GONE
        group = stream.groups.get(group_name) if stream is not None else None
        if group is None:
            if retried:
                raise GROUP_DESTROYED
            raise ReplyError(
                f"NOGROUP No such key '{_text(key)}' or consumer group '{_text(group_name)}' in XREADGROUP "
                "with GROUP option"
            )
        groups.append(group)
        arg = argv[first_id + i]
        if arg == b"$":
            raise ReplyError(
                "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this "
                "consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just "
                "return an empty result set."
            )
        after.append(None if arg == b">" else parse_id(arg, strict=True))
    propagate: list[list[bytes]] | None = [] if client.broker.propagation_sinks else None
    served = []
    now = client.broker.now_ms
    claimed = None
    budget = Budget(args)
    if args.claim is not None:
        # COUNT bounds claimed and new entries together, across streams (and so does MAXCOUNT).
        total = min(n for n in (args.count, args.maxcount, LLONG_MAX) if n)
        budget.count, budget.left = 0, (None if total == LLONG_MAX else total)
        claimed = _claim_idle(client, argv, args, groups, after, propagate, budget.limit())
        budget.take(sum(map(len, claimed)))
        if budget.bytes_left is not None:  # claimed entries come first and spend MAXSIZE first
            budget.bytes_left = max(0, budget.bytes_left - sum(
                entry_size(parse_id(entry[0]), entry[1]) for entries in claimed for entry in entries))
    for i in range(args.nstreams):
        key = argv[first_key + i]
        stream = db.data[key]
        group = groups[i]
        start = after[i]
        args.count = budget.limit()
        if budget.bytes_left is not None and not budget.spent:
            args.count = budget.fit(_candidates(stream, group, args.consumer, start, budget.candidates()))
        if claimed is not None and start is None:
            consumer = _get_consumer(client, key, group, args.consumer, propagate)
            consumer.seen_time = now
            fresh: list[Any] = []
            if not budget.spent:
                fresh = _deliver_new(client, key, stream, group, consumer, args, propagate, structured=True)[1]
                budget.take(len(fresh))
            entries = claimed[i] + [[entry_id, values, 0, 0] for entry_id, values in fresh]
            if entries:
                served.append((key, entries))
            continue
        if budget.spent:
            continue
        if start is None and not (stream.length and stream.last_id > group.last_id):
            idle = group.consumers.get(args.consumer)
            if idle is not None:
                idle.seen_time = now  # an attempt counts for ``idle`` (Redis 7.2), success for ``inactive``
            continue
        consumer = _get_consumer(client, key, group, args.consumer, propagate)
        consumer.seen_time = now
        if start is None:
            delivered, reply = _deliver_new(client, key, stream, group, consumer, args, propagate)
        else:
            reply = _deliver_history(client, stream, group, consumer, start, args.count, key, propagate)
            delivered = len(reply)
        budget.take(delivered)
        served.append((key, reply))
    if served:
        client.broker.dirty += 1
        client.propagate_as(*(propagate or []))
        return _stream_map(client, served)
    if args.timeout >= 0:
        if args.claim is not None:
            _wake_when_idle(client, argv, args, groups, after)
        return _reading_block(argv, args, argv[first_id:])
    return NULL_ARRAY


def _candidates(stream: Stream, group: Group, consumer_name: bytes, start: int | None,
                limit: int) -> Iterable[tuple[int, list[bytes] | None]]:
    """What XREADGROUP would serve from one stream, for MAXSIZE: new entries for ``>``,
    otherwise the consumer's pending entries after ``start`` (deleted ones as ``None``)."""
    if start is None:
        return stream.range(group.last_id + 1, MAX_ID, limit) if group.last_id < MAX_ID else []
    consumer = group.consumers.get(consumer_name)
    if consumer is None or start == MAX_ID:
        return []
    pending = []
    for stream_id, _nack in consumer.pel.range(start + 1, MAX_ID):
        pending.append((stream_id, stream.get(stream_id)))
        if len(pending) == limit:
            break
    return pending


def _text(arg: bytes) -> str:
    return arg.decode("utf-8", "replace")


# -- consumer groups ---------------------------------------------------------------------------

XGROUP = container("xgroup", group="stream", summary="A container for consumer groups commands", since="5.0.0")


def _group_target(client: Client, argv: list[bytes], mkstream: bool, need_group: bool) -> tuple[Stream | None,
                                                                                           Group | None]:
    stream = client.db.get_typed(argv[2], Stream)
    group = stream.groups.get(argv[3]) if stream is not None else None
    if not mkstream:
        if stream is None:
            raise ReplyError(
                "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use "
                "the MKSTREAM option to create an empty stream automatically."
            )
        if group is None and need_group:
            raise ReplyError(
                f"NOGROUP No such consumer group '{_text(argv[3])}' for key name '{_text(argv[2])}'"
            )
    return stream, group


def _subcommand_syntax(argv: list[bytes]) -> ReplyError:
    return ReplyError(
        f"ERR unknown subcommand or wrong number of arguments for '{_text(argv[1])}'. Try XGROUP HELP."
    )


def _parse_group_options(argv: list[bytes], create: bool) -> tuple[bool, int]:
    mkstream = False
    entries_read = INVALID_ENTRIES_READ
    i = 5
    while i < len(argv):
        opt = argv[i].lower()
        if create and opt == b"mkstream":
            mkstream = True
            i += 1
        elif opt == b"entriesread" and i + 1 < len(argv):
            entries_read = parse_int(argv[i + 1])
            if entries_read < 0 and entries_read != INVALID_ENTRIES_READ:
                raise ReplyError("ERR value for ENTRIESREAD must be positive or -1")
            i += 2
        else:
            raise _subcommand_syntax(argv)
    return mkstream, entries_read


@command("xgroup|create", arity=-5, flags="write denyoom", keys=(2, 2, 1), group="stream",
         summary="Creates a consumer group.", since="5.0.0")
def xgroup_create(client: Client, argv: list[bytes]) -> Any:
    """XGROUP CREATE key group <id | $> [MKSTREAM] [ENTRIESREAD entries-read]"""
    mkstream, entries_read = _parse_group_options(argv, create=True)
    stream, group = _group_target(client, argv, mkstream, need_group=False)
    if len(argv) > 8:
        raise _subcommand_syntax(argv)
    if argv[4] == b"$":
        last = stream.last_id if stream is not None else 0
    else:
        last = parse_id(argv[4], strict=True)
    key = argv[2]
    if stream is None:
        stream = Stream()
        client.db.add(key, stream)
        client.touch(key)
    if group is not None:
        raise BUSYGROUP
    stream.groups[argv[3]] = Group(argv[3], last, entries_read)
    client.broker.dirty += 1
    client.notify(ev.STREAM, b"xgroup-create", key)
    return OK


@command("xgroup|setid", arity=-5, flags="write", keys=(2, 2, 1), group="stream",
         summary="Sets the last-delivered ID of a consumer group.", since="5.0.0")
def xgroup_setid(client: Client, argv: list[bytes]) -> Any:
    """XGROUP SETID key group <id | $> [ENTRIESREAD entries-read]"""
    _mkstream, entries_read = _parse_group_options(argv, create=False)
    stream, group = _group_target(client, argv, False, need_group=True)
    assert stream is not None and group is not None
    if len(argv) not in (5, 7):
        raise _subcommand_syntax(argv)
    group.last_id = stream.last_id if argv[4] == b"$" else parse_id(argv[4])
    group.entries_read = entries_read
    client.broker.dirty += 1  # group state only: Redis signals no WATCH
    client.notify(ev.STREAM, b"xgroup-setid", argv[2])
    return OK


@command("xgroup|destroy", arity=4, flags="write", keys=(2, 2, 1), group="stream",
         summary="Destroys a consumer group.", since="5.0.0")
def xgroup_destroy(client: Client, argv: list[bytes]) -> int:
    """XGROUP DESTROY key group"""
    stream, group = _group_target(client, argv, False, need_group=False)
    assert stream is not None
    if group is None:
        return 0
    del stream.groups[argv[3]]
    client.broker.dirty += 1  # group state only: Redis signals no WATCH
    client.notify(ev.STREAM, b"xgroup-destroy", argv[2])
    client.broker.signal_ready(client.db, argv[2])
    return 1


@command("xgroup|createconsumer", arity=5, flags="write denyoom", keys=(2, 2, 1), group="stream",
         summary="Creates a consumer in a consumer group.", since="6.2.0")
def xgroup_createconsumer(client: Client, argv: list[bytes]) -> int:
    """XGROUP CREATECONSUMER key group consumer"""
    _stream, group = _group_target(client, argv, False, need_group=True)
    assert group is not None
    if argv[4] in group.consumers:
        return 0
    group.add_consumer(argv[4], client.broker.now_ms)
    client.broker.dirty += 1  # group state only: Redis signals no WATCH
    client.notify(ev.STREAM, b"xgroup-createconsumer", argv[2])
    return 1


@command("xgroup|delconsumer", arity=5, flags="write", keys=(2, 2, 1), group="stream",
         summary="Deletes a consumer from a consumer group.", since="5.0.0")
def xgroup_delconsumer(client: Client, argv: list[bytes]) -> int:
    """XGROUP DELCONSUMER key group consumer"""
    _stream, group = _group_target(client, argv, False, need_group=True)
    assert group is not None
    consumer = group.consumers.get(argv[4])
    if consumer is None:
        return 0
    pending = len(consumer.pel)
    group.delete_consumer(consumer)
    client.broker.dirty += 1  # group state only: Redis signals no WATCH
    client.notify(ev.STREAM, b"xgroup-delconsumer", argv[2])
    return pending


XGROUP_HELP = [
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
]


@command("xgroup|help", arity=2, flags="loading stale", group="stream",
         summary="Returns helpful text about the different subcommands.", since="5.0.0")
def xgroup_help(client: Client, argv: list[bytes]) -> list[str]:
    """XGROUP HELP"""
    return XGROUP_HELP


def _group_or_nogroup(client: Client, key: bytes, name: bytes) -> tuple[Stream, Group]:
    stream = _lookup(client, key)
    group = stream.groups.get(name) if stream is not None else None
    if group is None:
        raise ReplyError(f"NOGROUP No such key '{_text(key)}' or consumer group '{_text(name)}'")
    return stream, group  # type: ignore[return-value]


@command("xack", arity=-4, flags="write fast", keys=(1, 1, 1), group="stream",
         summary="Returns the number of messages that were successfully acknowledged by the consumer group "
                 "member of a stream.", since="5.0.0")
def xack(client: Client, argv: list[bytes]) -> int:
    """XACK key group id [id ...]"""
    stream = _lookup(client, argv[1])
    group = stream.groups.get(argv[2]) if stream is not None else None
    if group is None:
        return 0
    ids = [parse_id(arg, strict=True) for arg in argv[3:]]
    forget = group.forget
    acknowledged = 0
    for stream_id in ids:
        if forget(stream_id) is not None:
            acknowledged += 1
    client.broker.dirty += acknowledged  # XACK changes state but, as in Redis, touches no WATCH
    return acknowledged


@command("xpending", arity=-3, flags="readonly", keys=(1, 1, 1), group="stream",
         summary="Returns the information and entries from a stream consumer group's pending entries list.",
         since="5.0.0")
def xpending(client: Client, argv: list[bytes]) -> Any:
    """XPENDING key group [[IDLE min-idle-time] start end count [consumer]]"""
    argc = len(argv)
    if argc != 3 and not 6 <= argc <= 9:
        raise SYNTAX_ERROR
    min_idle = 0
    consumer_name = None
    if argc >= 6:
        at = 3
        if argv[3].lower() == b"idle":
            min_idle = parse_int(argv[4])
            if argc < 8:
                raise SYNTAX_ERROR
            at = 5
        count = parse_count(argv[at + 2])
        start = parse_interval(argv[at], 0, is_end=False)
        end = parse_interval(argv[at + 1], U64_MAX, is_end=True)
        if at + 3 < argc:
            consumer_name = argv[at + 3]
    _stream, group = _group_or_nogroup(client, argv[1], argv[2])
    pel = group.pel
    if argc == 3:
        if not len(pel):
            return [0, None, None, NULL_ARRAY]
        owners = [[name, b"%d" % len(group.consumers[name].pel)] for name in sorted(group.consumers)
                  if len(group.consumers[name].pel)]
        return [len(pel), format_id(pel.first()), format_id(pel.last()), owners]
    if consumer_name is not None:
        consumer = group.consumers.get(consumer_name)
        if consumer is None:
            return []
        pel = consumer.pel
    now = client.broker.now_ms
    out: list[Any] = []
    if not count:
        return out
    for stream_id, nack in pel.range(start, end):
        idle = now - nack.delivery_time
        if min_idle and idle < min_idle:
            continue
        out.append([format_id(stream_id), nack.owner_name, _idle(nack, now), nack.delivery_count])
        if len(out) == count:
            break
    return out


def _idle(nack: Nack, now: int) -> int:
    """Milliseconds since the last delivery; -1 for an entry released with XNACK (no delivery time)."""
    if nack.consumer is None and nack.delivery_time == 0:
        return -1
    return max(now - nack.delivery_time, 0)


def _claim(client: Client, key: bytes, stream: Stream, group: Group, consumer: Consumer, stream_id: int,
           nack: Nack, delivery_time: int, retrycount: int, justid: bool) -> None:
    """Move ``nack`` to ``consumer`` with a new delivery time (and count)."""
    if nack.consumer is not consumer:
        if nack.consumer is not None:
            nack.consumer.pel.pop(stream_id)
        nack.consumer = consumer
        consumer.pel.add(stream_id, nack)
    nack.delivery_time = delivery_time
    if retrycount >= 0:
        nack.delivery_count = retrycount
    elif not justid:
        nack.delivery_count += 1
    consumer.active_time = client.broker.now_ms


def _claimed_reply(stream: Stream, stream_id: int, justid: bool) -> Any:
    if justid:
        return format_id(stream_id)
    return [format_id(stream_id), stream.get(stream_id)]


@command("xclaim", arity=-6, flags="write fast", keys=(1, 1, 1), group="stream",
         summary="Changes, or acquires, ownership of a message in a consumer group, as if the message was "
                 "delivered a consumer group member.", since="5.0.0")
def xclaim(client: Client, argv: list[bytes]) -> Any:
    """XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]"""
    key = argv[1]
    stream, group = _group_or_nogroup(client, key, argv[2])
    min_idle = max(parse_int(argv[4], ReplyError("ERR Invalid min-idle-time argument for XCLAIM")), 0)
    ids = []
    j = 5
    while j < len(argv):
        try:
            ids.append(parse_id(argv[j], strict=True))
        except ReplyError:
            break
        j += 1
    now = client.broker.now_ms
    retrycount = -1
    delivery_time = -1
    force = justid = False
    last_id = 0
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt == b"idle" and more:
            j += 1
            delivery_time = now - parse_int(argv[j], ReplyError("ERR Invalid IDLE option argument for XCLAIM"))
        elif opt == b"time" and more:
            j += 1
            delivery_time = parse_int(argv[j], ReplyError("ERR Invalid TIME option argument for XCLAIM"))
        elif opt == b"retrycount" and more:
            j += 1
            retrycount = parse_int(argv[j], ReplyError("ERR Invalid RETRYCOUNT option argument for XCLAIM"))
        elif opt == b"lastid" and more:
            j += 1
            last_id = parse_id(argv[j], strict=True)
        else:
            raise ReplyError(f"ERR Unrecognized XCLAIM option '{_text(argv[j])}'")
        j += 1
    propagate: list[list[bytes]] | None = [] if client.broker.propagation_sinks else None
    setid = False
    if last_id > group.last_id:
        group.last_id = last_id
        setid = True
    if delivery_time == -1 or delivery_time < 0 or delivery_time > now:
        delivery_time = now
    consumer = None
    reply = []
    changed = False
    for stream_id in ids:
        nack = group.pel.get(stream_id)
        if stream_id not in stream:
            if nack is not None:
                if propagate is not None:
                    propagate.append(_xclaim_argv(key, group, nack.owner_name, stream_id, nack))
                group.forget(stream_id)
                changed = True
                setid = False
            continue
        if force and nack is None:
            nack = Nack(None, now)  # type: ignore[arg-type]
            group.pel.add(stream_id, nack)
        if nack is None:
            continue
        if nack.consumer is not None and min_idle and now - nack.delivery_time < min_idle:
            continue
        if consumer is None:
            consumer = _get_consumer(client, key, group, argv[3], propagate)
        _claim(client, key, stream, group, consumer, stream_id, nack, delivery_time, retrycount, justid)
        reply.append(_claimed_reply(stream, stream_id, justid))
        changed = True
        setid = False
        if propagate is not None:
            propagate.append(_xclaim_argv(key, group, consumer.name, stream_id, nack))
    if setid:
        changed = True
        if propagate is not None:
            propagate.append(_setid_argv(key, group))
    if consumer is not None:
        consumer.seen_time = now
    if changed or consumer is not None:
        client.broker.dirty += 1
        client.propagate_as(*(propagate or []))
    return reply


@command("xautoclaim", arity=-6, flags="write fast", keys=(1, 1, 1), group="stream",
         summary="Changes, or acquires, ownership of messages in a consumer group, as if the messages were "
                 "delivered to as consumer group member.", since="6.2.0")
def xautoclaim(client: Client, argv: list[bytes]) -> Any:
    """XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]"""
    key = argv[1]
    min_idle = max(parse_int(argv[4], ReplyError("ERR Invalid min-idle-time argument for XAUTOCLAIM")), 0)
    start = parse_interval(argv[5], 0, is_end=False)
    count = 100
    justid = False
    j = 6
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"count" and more:
            count = parse_int(argv[j + 1], COUNT_POSITIVE)  # getRangeLongFromObjectOrReply
            if not 1 <= count <= LLONG_MAX // 16:
                raise COUNT_POSITIVE
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            raise SYNTAX_ERROR
        j += 1
    stream, group = _group_or_nogroup(client, key, argv[2])
    propagate: list[list[bytes]] | None = [] if client.broker.propagation_sinks else None
    now = client.broker.now_ms
    attempts = count * 10
    keys = group.pel.sorted_ids()
    index = bisect_left(keys, start)
    consumer = None
    claimed: list[Any] = []
    deleted: list[bytes] = []
    while attempts and count and index < len(keys):
        attempts -= 1
        stream_id = keys[index]
        index += 1
        nack = group.pel.get(stream_id)
        assert nack is not None
        if stream_id not in stream:
            if propagate is not None:
                propagate.append(_xclaim_argv(key, group, nack.owner_name, stream_id, nack))
            group.forget(stream_id)
            deleted.append(format_id(stream_id))
            count -= 1
            continue
        if min_idle and now - nack.delivery_time < min_idle:
            continue
        if consumer is None:
            consumer = _get_consumer(client, key, group, argv[3], propagate)
        _claim(client, key, stream, group, consumer, stream_id, nack, now, -1, justid)
        claimed.append(_claimed_reply(stream, stream_id, justid))
        count -= 1
        if propagate is not None:
            propagate.append(_xclaim_argv(key, group, consumer.name, stream_id, nack))
    cursor = format_id(keys[index]) if index < len(keys) else b"0-0"
    if consumer is not None:
        consumer.seen_time = now
    if claimed or deleted or consumer is not None:
        client.broker.dirty += 1
        client.propagate_as(*(propagate or []))
    return [cursor, claimed, deleted]


# -- XINFO -------------------------------------------------------------------------------------

XINFO = container("xinfo", group="stream", summary="A container for stream introspection commands",
                  since="5.0.0")


XINFO_STREAM_SYNTAX = ReplyError("ERR unknown subcommand or wrong number of arguments for 'STREAM'. Try XINFO HELP.")


def radix_tree_nodes(keys: list[int]) -> int:
    """How many nodes Redis's radix tree has for these node keys (128-bit big-endian IDs)."""
    if not keys:
        return 1
    return _rax_nodes([k.to_bytes(16, "big") for k in keys], 0)


def _rax_nodes(keys: list[bytes], depth: int) -> int:
    if depth == 16:
        return 1
    first, last = keys[0], keys[-1]  # sorted: the common prefix of all is that of first and last
    common = depth
    while common < 16 and first[common] == last[common]:
        common += 1
    if common > depth:
        return 1 + _rax_nodes(keys, common)
    total = 1
    begin = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i][depth] != keys[begin][depth]:
            total += _rax_nodes(keys[begin:i], depth + 1)
            begin = i
    return total


def _entry_or_null(stream: Stream, last: bool) -> Any:
    entries = stream.range(0, MAX_ID, 1, reverse=last)
    return entries_reply(entries)[0] if entries else None


@command("xinfo|stream", arity=-3, flags="readonly", keys=(2, 2, 1), group="stream",
         summary="Returns information about a stream.", since="5.0.0")
def xinfo_stream(client: Client, argv: list[bytes]) -> Any:
    """XINFO STREAM key [FULL [COUNT count]]"""
    stream = _lookup(client, argv[2])
    if stream is None:
        raise NO_SUCH_KEY
    full = False
    count = 10
    if len(argv) > 3:
        if argv[3].lower() != b"full":
            raise XINFO_STREAM_SYNTAX
        full = True
        if len(argv) > 4:
            if len(argv) != 6 or argv[4].lower() != b"count":
                raise XINFO_STREAM_SYNTAX
            count = parse_int(argv[5])
            if count < 0:
                count = 10
    info: dict[str, Any] = {
        "length": stream.length,
        "radix-tree-keys": len(stream.keys),
        "radix-tree-nodes": radix_tree_nodes(stream.keys),
        "last-generated-id": format_id(stream.last_id),
        "max-deleted-entry-id": format_id(stream.max_deleted_id),
        "entries-added": stream.entries_added,
        "recorded-first-entry-id": format_id(stream.first_id),
    }
    if stream.producers is not None:  # shown once idempotency is used on the stream (Redis 8.6)
        info.update(stream.producers.info())
    if not full:
        info["groups"] = len(stream.groups)
        info["first-entry"] = _entry_or_null(stream, last=False)
        info["last-entry"] = _entry_or_null(stream, last=True)
        return _keys_as_bulk(info)
    info["entries"] = entries_reply(stream.range(0, MAX_ID, count))
    info["groups"] = [_full_group(client, stream, stream.groups[name], count) for name in sorted(stream.groups)]
    return _keys_as_bulk(info)


def _full_group(client: Client, stream: Stream, group: Group, count: int) -> dict[bytes, Any]:
    pending = []
    for stream_id in group.pel.sorted_ids():
        if count and len(pending) == count:
            break
        nack = group.pel.map[stream_id]
        pending.append([format_id(stream_id), nack.owner_name, nack.delivery_time, nack.delivery_count])
    consumers = []
    for name in sorted(group.consumers):
        consumer = group.consumers[name]
        own = []
        for stream_id in consumer.pel.sorted_ids():
            if count and len(own) == count:
                break
            nack = consumer.pel.map[stream_id]
            own.append([format_id(stream_id), nack.delivery_time, nack.delivery_count])
        consumers.append(_keys_as_bulk({
            "name": name, "seen-time": consumer.seen_time, "pel-count": len(consumer.pel), "pending": own,
        }))
    return _keys_as_bulk({
        "name": group.name,
        "last-delivered-id": format_id(group.last_id),
        "entries-read": _entries_read(group),
        "lag": stream.lag(group),
        "pel-count": len(group.pel),
        "pending": pending,
        "consumers": consumers,
    })


def _entries_read(group: Group) -> int | None:
    return None if group.entries_read == INVALID_ENTRIES_READ else group.entries_read


def _keys_as_bulk(info: dict[str, Any]) -> dict[bytes, Any]:
    return {name.encode(): value for name, value in info.items()}


@command("xinfo|groups", arity=3, flags="readonly", keys=(2, 2, 1), group="stream",
         summary="Returns a list of the consumer groups of a stream.", since="5.0.0")
def xinfo_groups(client: Client, argv: list[bytes]) -> Any:
    """XINFO GROUPS key"""
    stream = _lookup(client, argv[2])
    if stream is None:
        raise NO_SUCH_KEY
    out = []
    for name in sorted(stream.groups):
        group = stream.groups[name]
        out.append(_keys_as_bulk({
            "name": name,
            "consumers": len(group.consumers),
            "pending": len(group.pel),
            "last-delivered-id": format_id(group.last_id),
            "entries-read": _entries_read(group),
            "lag": stream.lag(group),
        }))
    return out


@command("xinfo|consumers", arity=4, flags="readonly", keys=(2, 2, 1), group="stream",
         summary="Returns a list of the consumers in a consumer group.", since="5.0.0")
def xinfo_consumers(client: Client, argv: list[bytes]) -> Any:
    """XINFO CONSUMERS key group"""
    stream = _lookup(client, argv[2])
    if stream is None:
        raise NO_SUCH_KEY
    group = stream.groups.get(argv[3])
    if group is None:
        raise ReplyError(f"NOGROUP No such consumer group '{_text(argv[3])}' for key name '{_text(argv[2])}'")
    now = client.broker.now_ms
    out = []
    for name in sorted(group.consumers):
        consumer = group.consumers[name]
        out.append(_keys_as_bulk({
            "name": name,
            "pending": len(consumer.pel),
            "idle": max(now - consumer.seen_time, 0),
            "inactive": -1 if consumer.active_time < 0 else max(now - consumer.active_time, 0),
        }))
    return out


XINFO_HELP = [
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
]


@command("xinfo|help", arity=2, flags="loading stale", group="stream",
         summary="Returns helpful text about the different subcommands.", since="5.0.0")
def xinfo_help(client: Client, argv: list[bytes]) -> list[str]:
    """XINFO HELP"""
    return XINFO_HELP

