"""Redis 8 stream features, tested from their documentation (the 7.0 oracle does not have them):
XDELEX and XACKDEL with KEEPREF/DELREF/ACKED and the same options on XADD/XTRIM (8.2),
XREADGROUP CLAIM (8.4), XADD IDMP/IDMPAUTO with XCFGSET and XINFO fields (8.6), XNACK (8.8).

Replies are checked raw (RESP2 and RESP3) with the RawClient so the integer codes and shapes are
exactly what the documentation lists.
"""

from __future__ import annotations

import pytest

from .support.resp import RawClient


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def raw(request, postroom_server):
    client = RawClient(postroom_server.port)
    client.call("FLUSHALL")
    if request.param == 3:
        client.call("HELLO", "3")
    yield client
    client.close()


def ints(*values: int) -> tuple:
    return "*", [(":", str(v).encode()) for v in values]


def pending_count(raw, key="s", group="g") -> int:
    return int(raw.call("XPENDING", key, group)[1][0][1])


def ids_of(reply) -> list[bytes]:
    return [entry[1][0][1] for entry in reply[1]]


def first_stream_entries(reply) -> list:
    """The entries of the first stream in an XREAD/XREADGROUP reply (array in RESP2, map in RESP3)."""
    if reply[0] == "%":
        return reply[1][1][1]
    return reply[1][0][1][1][1]


def setup_group(raw, count=3, read=3) -> None:
    for i in range(1, count + 1):
        raw.call("XADD", "s", f"{i}-0", "f", f"v{i}")
    raw.call("XGROUP", "CREATE", "s", "g", "0")
    if read:
        raw.call("XREADGROUP", "GROUP", "g", "c1", "COUNT", str(read), "STREAMS", "s", ">")


# -- XDELEX / XACKDEL (8.2) --------------------------------------------------------------------

def test_xdelex_documented_example(raw):
    for i in (1, 2, 3):
        raw.call("XADD", "mystream", f"1784722083515-{i}", f"field{i}", f"value{i}")
    assert raw.call("XDELEX", "mystream", "KEEPREF", "IDS", "2", "1526919030474-55", "1526919030474-56") == ints(-1, -1)
    assert raw.call("XLEN", "mystream") == (":", b"3")
    assert raw.call("XDELEX", "nokey", "IDS", "2", "1-1", "2-2") == ints(-1, -1)


def test_xdelex_policies(raw):
    setup_group(raw, count=4, read=2)  # 1-0, 2-0 pending in g; 3-0, 4-0 not delivered yet
    raw.call("XACK", "s", "g", "1-0")
    # KEEPREF (default) deletes and leaves the PEL alone.
    assert raw.call("XDELEX", "s", "IDS", "1", "2-0") == ints(1)
    assert pending_count(raw) == 1
    # ACKED keeps what a group still needs: pending (none left here) or never delivered (3-0).
    raw.call("XADD", "s", "5-0", "f", "v5")
    raw.call("XREADGROUP", "GROUP", "g", "c1", "COUNT", "1", "STREAMS", "s", ">")  # 3-0 pending
    assert raw.call("XDELEX", "s", "ACKED", "IDS", "3", "1-0", "3-0", "4-0") == ints(1, 2, 2)
    # DELREF deletes and drops the references everywhere, even dangling ones (2-0).
    assert raw.call("XDELEX", "s", "DELREF", "IDS", "2", "3-0", "2-0") == ints(1, -1)
    assert pending_count(raw) == 0
    assert ids_of(raw.call("XRANGE", "s", "-", "+")) == [b"4-0", b"5-0"]
    info = raw.call("XINFO", "STREAM", "s")[1]
    fields = dict(zip(info[::2], info[1::2], strict=True))
    assert fields[("$", b"max-deleted-entry-id")] == ("$", b"3-0")


def test_xdelex_acked_without_groups_keeps_entries(raw):
    """As documented, ACKED answers 2 when the stream has no consumer groups."""
    raw.call("XADD", "s", "1-0", "f", "v")
    assert raw.call("XDELEX", "s", "ACKED", "IDS", "1", "1-0") == ints(2)
    assert raw.call("XLEN", "s") == (":", b"1")


def test_xdelex_errors(raw):
    raw.call("XADD", "s", "1-0", "f", "v")
    assert raw.call("XDELEX", "s", "IDS", "0", "1-0")[0] == "-"
    assert raw.call("XDELEX", "s", "IDS", "x", "1-0")[0] == "-"
    assert raw.call("XDELEX", "s", "IDS", "3", "1-0", "2-0")[0] == "-"
    assert raw.call("XDELEX", "s", "IDS", "1", "bad") == ("-", b"ERR Invalid stream ID specified as stream command argument")
    assert raw.call("XDELEX", "s", "FOO", "IDS", "1", "1-0") == ("-", b"ERR syntax error")
    assert raw.call("XDELEX", "s", "KEEPREF", "DELREF", "IDS", "1", "1-0") == ("-", b"ERR syntax error")
    assert raw.call("XDELEX", "s", "IDS", "1", "1-0", "DELREF") == ints(1)  # the IDS block may come first
    raw.call("SET", "str", "x")
    assert raw.call("XDELEX", "str", "IDS", "1", "1-0")[1].startswith(b"WRONGTYPE")


def test_xackdel_documented_example(raw):
    raw.call("XADD", "mystream", "1755870377536-0", "field1", "value1")
    raw.call("XADD", "mystream", "1755870387045-0", "field2", "value2")
    raw.call("XGROUP", "CREATE", "mystream", "mygroup", "0")
    raw.call("XREADGROUP", "GROUP", "mygroup", "consumer1", "COUNT", "2", "STREAMS", "mystream", ">")
    summary = raw.call("XPENDING", "mystream", "mygroup")
    assert summary[1][0] == (":", b"2")
    reply = raw.call("XACKDEL", "mystream", "mygroup", "KEEPREF", "IDS", "2", "1755870377536-0", "1755870387045-0")
    assert reply == ints(1, 1)
    assert raw.call("XPENDING", "mystream", "mygroup")[1][0] == (":", b"0")
    assert raw.call("XRANGE", "mystream", "-", "+") == ("*", [])


def test_xackdel_acked_and_delref_across_groups(raw):
    setup_group(raw, count=2, read=2)
    raw.call("XGROUP", "CREATE", "s", "other", "0")
    raw.call("XREADGROUP", "GROUP", "other", "o1", "COUNT", "1", "STREAMS", "s", ">")  # 1-0 pending there
    # ACKED: acknowledged in g, but "other" still holds 1-0 and has not read 2-0.
    assert raw.call("XACKDEL", "s", "g", "ACKED", "IDS", "2", "1-0", "2-0") == ints(2, 2)
    assert pending_count(raw) == 0 and raw.call("XLEN", "s") == (":", b"2")
    assert raw.call("XACKDEL", "s", "g", "IDS", "1", "1-0") == ints(-1)  # no longer pending in g
    raw.call("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0")
    raw.call("XCLAIM", "s", "g", "c1", "0", "1-0", "FORCE")
    # DELREF: acknowledged, deleted, and gone from "other" too.
    assert raw.call("XACKDEL", "s", "g", "DELREF", "IDS", "1", "1-0") == ints(1)
    assert pending_count(raw, group="other") == 0
    assert raw.call("XACKDEL", "nokey", "g", "IDS", "1", "1-0") == ints(-1)
    assert raw.call("XACKDEL", "s", "nog", "IDS", "1", "1-0")[1].startswith(b"NOGROUP")


@pytest.mark.parametrize("command", ["XTRIM", "XADD"])
def test_trimming_reference_policies(raw, command):
    setup_group(raw, count=6, read=3)  # 1..3 pending, 4..6 undelivered
    raw.call("XACK", "s", "g", "1-0")

    def trim(*options):
        if command == "XTRIM":
            return raw.call("XTRIM", "s", *options)
        return raw.call("XADD", "s", *options, "*", "f", "new")

    trim("ACKED", "MAXLEN", "0")  # only 1-0 was read and acknowledged by every group
    assert ids_of(raw.call("XRANGE", "s", "-", "+", "COUNT", "2")) == [b"2-0", b"3-0"]
    trim("DELREF", "MINID", "3-0")  # 2-0 goes with its reference
    assert pending_count(raw) == 1
    assert ids_of(raw.call("XRANGE", "s", "-", "+", "COUNT", "1")) == [b"3-0"]
    trim("KEEPREF", "MINID", "4-0")  # 3-0 goes, its reference stays (dangling)
    assert pending_count(raw) == 1
    history = first_stream_entries(raw.call("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"))
    assert [entry[1][0] for entry in history] == [("$", b"3-0")]
    assert history[0][1][1] in (("*", None), ("_", b""))  # the payload is gone


def test_trimming_policies_without_groups_trim_normally(raw):
    for i in range(1, 6):
        raw.call("XADD", "s", f"{i}-0", "f", "v")
    assert raw.call("XTRIM", "s", "ACKED", "MAXLEN", "2") == (":", b"3")
    assert raw.call("XTRIM", "s", "DELREF", "MAXLEN", "1") == (":", b"1")


# -- XREADGROUP CLAIM (8.4) --------------------------------------------------------------------

def test_xreadgroup_claim_takes_idle_entries_first(raw, postroom_server):
    setup_group(raw, count=3, read=2)  # c1 holds 1-0, 2-0; 3-0 is new
    raw.call("XCLAIM", "s", "g", "c1", "0", "1-0", "TIME", "1000")  # idle for a very long time
    reply = raw.call("XREADGROUP", "GROUP", "g", "c2", "CLAIM", "60000", "STREAMS", "s", ">")
    entries = [entry[1] for entry in first_stream_entries(reply)]
    assert entries[0][0] == ("$", b"1-0")  # claimed (idle enough), reported first with idle and deliveries
    assert entries[0][1] == ("*", [("$", b"f"), ("$", b"v1")])
    assert int(entries[0][2][1]) > 60000 and entries[0][3] == (":", b"2")
    assert entries[1][0] == ("$", b"3-0") and entries[1][2:] == [(":", b"0"), (":", b"0")]  # then new ones
    assert len(entries) == 2  # 2-0 is not idle enough
    owners = raw.call("XPENDING", "s", "g", "-", "+", "10")
    assert [(e[1][0][1], e[1][1][1]) for e in owners[1]] == [(b"1-0", b"c2"), (b"2-0", b"c1"), (b"3-0", b"c2")]


def test_xreadgroup_claim_respects_count(raw):
    setup_group(raw, count=5, read=3)
    raw.call("XNACK", "s", "g", "FAIL", "IDS", "3", "1-0", "2-0", "3-0")  # released: idle forever
    reply = raw.call("XREADGROUP", "GROUP", "g", "c2", "COUNT", "4", "CLAIM", "10", "STREAMS", "s", ">")
    assert [entry[1][0][1] for entry in first_stream_entries(reply)] == [b"1-0", b"2-0", b"3-0", b"4-0"]
    assert raw.call("XREAD", "CLAIM", "5", "STREAMS", "s", "0")[0] == "-"


# -- IDMP (8.6) --------------------------------------------------------------------------------

def test_idmp_returns_the_original_id(raw):
    first = raw.call("XADD", "s", "IDMP", "producer-1", "iid-1", "*", "field", "value")
    again = raw.call("XADD", "s", "IDMP", "producer-1", "iid-1", "*", "field", "other")
    assert first == again and raw.call("XLEN", "s") == (":", b"1")
    other = raw.call("XADD", "s", "IDMP", "producer-2", "iid-1", "*", "field", "value")
    assert other != first and raw.call("XLEN", "s") == (":", b"2")
    auto = raw.call("XADD", "s", "IDMPAUTO", "p", "*", "a", "1", "b", "2")
    assert raw.call("XADD", "s", "IDMPAUTO", "p", "*", "a", "1", "b", "2") == auto
    assert raw.call("XADD", "s", "IDMPAUTO", "p", "*", "a", "1", "b", "3") != auto
    info = raw.call("XINFO", "STREAM", "s")[1]
    fields = {k[1]: v for k, v in zip(info[::2], info[1::2], strict=True)}
    assert [k[1] for k in info[::2]][7:13] == [b"idmp-duration", b"idmp-maxsize", b"pids-tracked",
                                                 b"iids-tracked", b"iids-added", b"iids-duplicates"]
    assert fields[b"idmp-duration"] == (":", b"100") and fields[b"idmp-maxsize"] == (":", b"100")
    assert fields[b"pids-tracked"] == (":", b"3") and fields[b"iids-tracked"] == (":", b"4")
    assert fields[b"iids-added"] == (":", b"4") and fields[b"iids-duplicates"] == (":", b"2")
    assert raw.call("XADD", "s", "IDMP", "p", "i", "5-0", "f", "v")[0] == "-"


def test_idmp_maxsize_and_xcfgset(raw):
    raw.call("XADD", "s", "*", "f", "v")
    assert raw.call("XCFGSET", "s", "IDMP-MAXSIZE", "2") == ("+", b"OK")
    ids = [raw.call("XADD", "s", "IDMP", "p", f"i{n}", "*", "f", "v") for n in range(3)]
    assert raw.call("XADD", "s", "IDMP", "p", "i0", "*", "f", "v") != ids[0]  # evicted: a new entry
    assert raw.call("XADD", "s", "IDMP", "p", "i2", "*", "f", "v") == ids[2]
    assert raw.call("XCFGSET", "s", "IDMP-DURATION", "300", "IDMP-MAXSIZE", "500") == ("+", b"OK")
    info = raw.call("XINFO", "STREAM", "s")[1]
    fields = {k[1]: v for k, v in zip(info[::2], info[1::2], strict=True)}
    assert fields[b"iids-tracked"] == (":", b"0") and fields[b"idmp-duration"] == (":", b"300")
    assert raw.call("XCFGSET", "s", "IDMP-DURATION", "0") == ("-", b"ERR invalid duration")
    assert raw.call("XCFGSET", "s", "IDMP-DURATION", "86401") == ("-", b"ERR invalid duration")
    assert raw.call("XCFGSET", "s", "IDMP-MAXSIZE", "10001") == ("-", b"ERR invalid maxsize")
    assert raw.call("XCFGSET", "s") == ("-", b"ERR syntax error")
    assert raw.call("XCFGSET", "nokey", "IDMP-MAXSIZE", "5") == ("-", b"ERR no such key")
    raw.call("SET", "str", "x")
    assert raw.call("XCFGSET", "str", "IDMP-MAXSIZE", "5")[1].startswith(b"WRONGTYPE")


# -- XNACK (8.8) -------------------------------------------------------------------------------

def test_xnack_documented_example(raw):
    raw.call("XADD", "mystream", "1526569498055-0", "field", "value1")
    raw.call("XADD", "mystream", "1526569498056-0", "field", "value2")
    raw.call("XGROUP", "CREATE", "mystream", "mygroup", "0")
    raw.call("XREADGROUP", "GROUP", "mygroup", "consumer1", "STREAMS", "mystream", ">")
    assert raw.call("XNACK", "mystream", "mygroup", "FAIL", "IDS", "2", "1526569498055-0",
                    "1526569498056-0") == (":", b"2")
    assert raw.call("XPENDING", "mystream", "mygroup", "-", "+", "10") == ("*", [
        ("*", [("$", b"1526569498055-0"), ("$", b""), (":", b"-1"), (":", b"1")]),
        ("*", [("$", b"1526569498056-0"), ("$", b""), (":", b"-1"), (":", b"1")]),
    ])
    assert raw.call("XNACK", "mystream", "mygroup", "SILENT", "IDS", "1", "1526569498055-0") == (":", b"1")
    assert raw.call("XNACK", "mystream", "mygroup", "FAIL", "IDS", "1", "1526569498056-0", "RETRYCOUNT",
                    "5") == (":", b"1")
    assert raw.call("XNACK", "mystream", "mygroup", "FATAL", "IDS", "1", "1526569498055-0") == (":", b"1")
    counts = [entry[1][3] for entry in raw.call("XPENDING", "mystream", "mygroup", "-", "+", "10")[1]]
    assert counts == [(":", b"9223372036854775807"), (":", b"5")]


def test_xnack_release_and_reclaim(raw):
    setup_group(raw, count=3, read=3)
    assert raw.call("XNACK", "s", "g", "SILENT", "IDS", "2", "2-0", "9-0") == (":", b"1")  # 9-0 not pending
    summary = raw.call("XPENDING", "s", "g")[1]
    assert summary[3] == ("*", [("*", [("$", b"c1"), ("$", b"2")])])  # released entry has no owner
    claimed = raw.call("XAUTOCLAIM", "s", "g", "c2", "3600000", "0", "JUSTID")
    assert claimed[1][1] == ("*", [("$", b"2-0")])  # released entries are claimable at once
    assert raw.call("XNACK", "s", "g", "FAIL", "IDS", "1", "3-0", "FORCE") == (":", b"1")
    assert raw.call("XACK", "s", "g", "3-0") == (":", b"1")
    assert raw.call("XNACK", "s", "g", "FAIL", "IDS", "1", "3-0", "FORCE") == (":", b"1")  # FORCE re-creates
    assert raw.call("XNACK", "s", "g", "FAIL", "IDS", "1", "77-0", "FORCE") == (":", b"0")  # not in the stream
    assert raw.call("XNACK", "s", "g", "MAYBE", "IDS", "1", "3-0") == ("-", b"ERR syntax error")
    assert raw.call("XNACK", "s", "nog", "FAIL", "IDS", "1", "3-0")[1].startswith(b"NOGROUP")


# -- MAXCOUNT and MAXSIZE (8.10) ---------------------------------------------------------------------------

def _served(reply) -> dict[bytes, list[bytes]]:
    """Stream name -> entry IDs of an XREAD/XREADGROUP reply, RESP2 or RESP3."""
    if reply[0] == "%":
        pairs = zip(reply[1][::2], reply[1][1::2], strict=True)
    else:
        pairs = ((item[1][0], item[1][1]) for item in reply[1])
    return {key[1]: [entry[1][0][1] for entry in entries[1]] for key, entries in pairs}


def test_maxcount_bounds_the_whole_reply(raw):
    for key in ("a", "b", "c"):
        for i in range(1, 6):
            raw.call("XADD", key, f"{i}-0", "f", "v")
    reply = raw.call("XREAD", "COUNT", "2", "MAXCOUNT", "3", "STREAMS", "a", "b", "c", "0", "0", "0")
    assert _served(reply) == {b"a": [b"1-0", b"2-0"], b"b": [b"1-0"]}  # COUNT per stream, MAXCOUNT in all
    assert _served(raw.call("XREAD", "MAXCOUNT", "7", "STREAMS", "a", "b", "4-0", "0")) == {
        b"a": [b"5-0"], b"b": [b"1-0", b"2-0", b"3-0", b"4-0", b"5-0"]}
    raw.call("XGROUP", "CREATE", "a", "g", "0")
    raw.call("XGROUP", "CREATE", "b", "g", "0")
    reply = raw.call("XREADGROUP", "GROUP", "g", "c", "MAXCOUNT", "6", "STREAMS", "a", "b", ">", ">")
    assert _served(reply) == {b"a": [b"1-0", b"2-0", b"3-0", b"4-0", b"5-0"], b"b": [b"1-0"]}
    assert pending_count(raw, "a") == 5 and pending_count(raw, "b") == 1
    assert raw.call("XREAD", "MAXCOUNT", "0", "STREAMS", "a", "0")[0] == "-"
    assert raw.call("XREAD", "MAXCOUNT", "x", "STREAMS", "a", "0")[0] == "-"


# One entry "[id, [f, <value>]]" with an ID like "1-0" and a 10-byte value is 41 bytes of RESP:
# *2 (4) + $3 1-0 (9) + *2 (4) + $1 f (7) + $10 <value> (17).
ENTRY_BYTES = 41


def test_maxsize_bounds_the_bytes_of_the_whole_reply(raw):
    for key in ("a", "b"):
        for i in range(1, 4):
            raw.call("XADD", key, f"{i}-0", "f", "0123456789")
    reply = raw.call("XREAD", "MAXSIZE", str(2 * ENTRY_BYTES), "STREAMS", "a", "b", "0", "0")
    assert _served(reply) == {b"a": [b"1-0", b"2-0"]}  # the budget is spent: b is skipped
    reply = raw.call("XREAD", "MAXSIZE", str(4 * ENTRY_BYTES + 10), "STREAMS", "a", "b", "0", "0")
    assert _served(reply) == {b"a": [b"1-0", b"2-0", b"3-0"], b"b": [b"1-0"]}  # a fifth entry does not fit
    reply = raw.call("XREAD", "COUNT", "1", "MAXSIZE", "10000", "STREAMS", "a", "b", "0", "0")
    assert _served(reply) == {b"a": [b"1-0"], b"b": [b"1-0"]}  # COUNT still bounds each stream
    reply = raw.call("XREAD", "MAXCOUNT", "2", "MAXSIZE", "10000", "STREAMS", "a", "b", "0", "0")
    assert _served(reply) == {b"a": [b"1-0", b"2-0"]}  # whichever limit comes first


def test_maxsize_always_serves_a_first_entry_larger_than_the_cap(raw):
    raw.call("XADD", "big", "1-0", "f", "x" * 1000)
    raw.call("XADD", "big", "2-0", "f", "y")
    assert _served(raw.call("XREAD", "MAXSIZE", "1", "STREAMS", "big", "0")) == {b"big": [b"1-0"]}
    assert raw.call("XREAD", "MAXSIZE", "1", "STREAMS", "big", "2-0")[1] in (None, b"")  # nothing new: nil, as without MAXSIZE


def test_maxsize_in_a_group_delivers_only_what_it_returns(raw):
    for i in range(1, 5):
        raw.call("XADD", "s", f"{i}-0", "f", "0123456789")
    raw.call("XGROUP", "CREATE", "s", "g", "0")
    reply = raw.call("XREADGROUP", "GROUP", "g", "c", "MAXSIZE", str(2 * ENTRY_BYTES), "STREAMS", "s", ">")
    assert _served(reply) == {b"s": [b"1-0", b"2-0"]}
    assert pending_count(raw, "s") == 2  # the entries left out were not delivered
    reply = raw.call("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")
    assert _served(reply) == {b"s": [b"3-0", b"4-0"]}
    reply = raw.call("XREADGROUP", "GROUP", "g", "c", "MAXSIZE", str(3 * ENTRY_BYTES), "STREAMS", "s", "0")
    assert _served(reply) == {b"s": [b"1-0", b"2-0", b"3-0"]}  # the consumer's history, bounded the same way


def test_maxsize_must_be_a_positive_integer(raw):
    raw.call("XADD", "s", "1-0", "f", "v")
    assert raw.call("XREAD", "MAXSIZE", "0", "STREAMS", "s", "0") == ("-", b"ERR MAXSIZE must be a positive integer")
    assert raw.call("XREAD", "MAXSIZE", "-5", "STREAMS", "s", "0") == ("-", b"ERR MAXSIZE must be a positive integer")
    assert raw.call("XREAD", "MAXSIZE", "x", "STREAMS", "s", "0") == (
        "-", b"ERR value is not an integer or out of range")


def test_released_entries_survive_a_snapshot(postroom_server):
    """A PEL entry owned by nobody (XNACK) is written and read back by the snapshot format."""
    from postroom.persistence.snapshot import decode_value, encode_value

    client = RawClient(postroom_server.port)
    try:
        client.call("FLUSHALL")
        for i in (1, 2):
            client.call("XADD", "s", f"{i}-0", "f", "v")
        client.call("XGROUP", "CREATE", "s", "g", "0")
        client.call("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")
        client.call("XNACK", "s", "g", "FATAL", "IDS", "1", "1-0")
        broker = postroom_server.broker

        def round_trip():
            kind, body = encode_value(broker.dbs[0].data[b"s"])
            return decode_value(kind, body, broker, broker.now_ms)

        copy = postroom_server.call_in_loop(round_trip)
    finally:
        client.close()
    group = copy.groups[b"g"]
    released, owned = group.pel.get(1 << 64), group.pel.get(2 << 64)
    assert released.consumer is None and released.delivery_count == 2**63 - 1
    assert owned.consumer is group.consumers[b"c"] and list(group.consumers[b"c"].pel.map) == [2 << 64]


def test_blocked_claim_reader_gets_entries_that_become_idle(postroom_server):
    """CLAIM's condition may become true while the reader blocks: it is served then, no write needed."""
    import time

    admin = RawClient(postroom_server.port)
    waiter = RawClient(postroom_server.port)
    try:
        admin.call("FLUSHALL")
        admin.call("XADD", "s", "1-0", "f", "v")
        admin.call("XGROUP", "CREATE", "s", "g", "0")
        admin.call("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">")
        started = time.monotonic()
        reply = waiter.call("XREADGROUP", "GROUP", "g", "c2", "BLOCK", "5000", "CLAIM", "150", "STREAMS", "s", ">")
        waited = time.monotonic() - started
        entries = reply[1][0][1][1][1]
        assert [entry[1][0] for entry in entries] == [("$", b"1-0")]
        assert 0.1 < waited < 4
        owners = admin.call("XPENDING", "s", "g", "-", "+", "10")[1]
        assert owners[0][1][1] == ("$", b"c2")
    finally:
        admin.close()
        waiter.close()


def test_idmp_propagates_and_replays():
    """IDMP/IDMPAUTO appends propagate with the concrete ID and the idempotent ID, and an AOF replay
    of that form rebuilds the same entries and the same tracking (a retry after replay is deduplicated)."""
    from postroom.broker import Broker

    source = Broker()
    written: list[list[bytes]] = []
    source.propagation_sinks.append(lambda db, argvs: written.extend(argvs))
    producer = source.connect()
    source.execute(producer, [b"XADD", b"s", b"IDMPAUTO", b"p", b"*", b"a", b"1"])
    source.execute(producer, [b"XADD", b"s", b"IDMP", b"p", b"i1", b"MAXLEN", b"5", b"*", b"a", b"2"])
    adds = [argv for argv in written if argv[0] == b"XADD"]
    assert len(adds) == 2 and adds[0][2] == b"IDMP" and adds[0][3] == b"p" and adds[0][5] != b"*"
    assert adds[1][2:5] == [b"IDMP", b"p", b"i1"] and adds[1][5:8] == [b"MAXLEN", b"=", b"5"]

    replica = Broker()
    loader = replica.connect("aof")
    for argv in adds:
        replica.execute(loader, argv)
    assert replica.dbs[0].data[b"s"].range(0, (1 << 128) - 1) == source.dbs[0].data[b"s"].range(0, (1 << 128) - 1)
    client = replica.connect()
    client.out.clear()
    replica.execute(client, [b"XADD", b"s", b"IDMP", b"p", b"i1", b"*", b"a", b"3"])
    assert b"".join(client.out) == b"$%d\r\n%b\r\n" % (len(adds[1][8]), adds[1][8])
    client.out.clear()
    replica.execute(client, [b"XADD", b"s", b"IDMP", b"p", b"i1", b"1-1", b"a", b"3"])
    assert b"".join(client.out).startswith(b"-ERR")
