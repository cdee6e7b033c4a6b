"""Hypothesis-generated stream command sequences, replayed on postroom and on redis-server.

Sequences mix appends with explicit IDs (so both servers hold the same IDs), trims (exact and
approximate, which depend on node boundaries), deletions and the consumer-group commands. Time is
injected where it matters (XCLAIM TIME) and claims use min-idle 0, so every reply is deterministic
apart from idle/seen times, which are masked.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_stream_groups import mask

KEYS = ("s", "t")
GROUPS = ("g1", "g2")
CONSUMERS = ("c1", "c2", "c3")
FIELDS = ("f", "g", "h")

keys = st.sampled_from(KEYS)
groups = st.sampled_from(GROUPS)
consumers = st.sampled_from(CONSUMERS)
#: IDs of the setup entries (see SETUP) most of the time, so deletes, acks and claims hit something.
known_ids = st.sampled_from([f"{i}-{i % 2}" for i in range(1, 13)])
small_ids = st.one_of(known_ids, known_ids, st.builds(lambda ms, seq: f"{ms}-{seq}", st.integers(0, 40),
                                                      st.integers(0, 3)))
any_ids = st.one_of(small_ids, st.sampled_from(["0", "0-0", "$", "-", "+", "(5", "bad"]))
pairs = st.lists(st.tuples(st.sampled_from(FIELDS), st.sampled_from(["1", "v", "xyz", "10000"])),
                 min_size=1, max_size=3).map(lambda ps: [x for p in ps for x in p])


def trim_options() -> st.SearchStrategy[list[str]]:
    return st.one_of(
        st.just([]),
        st.builds(lambda op, n: ["MAXLEN", op, str(n)], st.sampled_from(["=", "~"]), st.integers(0, 30)),
        st.builds(lambda op, i: ["MINID", op, i], st.sampled_from(["=", "~"]), small_ids),
        st.builds(lambda n, lim: ["MAXLEN", "~", str(n), "LIMIT", str(lim)], st.integers(0, 30), st.integers(0, 50)),
    )


readgroup = st.builds(
    lambda g, c, count, noack, k, i: ["XREADGROUP", "GROUP", g, c, *count, *noack, "STREAMS", k, i],
    groups, consumers, st.sampled_from([[], ["COUNT", "1"], ["COUNT", "3"]]),
    st.sampled_from([[], [], ["NOACK"]]), keys, st.one_of(st.just(">"), st.just("0"), small_ids),
)
claim = st.builds(
    lambda k, g, c, ids, opts: ["XCLAIM", k, g, c, "0", *ids, *opts], keys, groups, consumers,
    st.lists(small_ids, min_size=1, max_size=3),
    st.lists(st.sampled_from([["JUSTID"], ["FORCE"], ["RETRYCOUNT", "5"], ["TIME", "1000"], ["LASTID", "20-0"]]),
             max_size=2).map(lambda os: [x for o in os for x in o]),
)
autoclaim = st.builds(
    lambda k, g, c, start, count, justid: ["XAUTOCLAIM", k, g, c, "0", start, "COUNT", str(count), *justid],
    keys, groups, consumers, st.one_of(small_ids, st.just("0")), st.integers(1, 4), st.sampled_from([[], ["JUSTID"]]),
)
group_admin = st.one_of(
    st.builds(lambda k, g, i, mk: ["XGROUP", "CREATE", k, g, i, *mk], keys, groups,
              st.one_of(small_ids, st.just("$"), st.just("0")), st.sampled_from([[], ["MKSTREAM"]])),
    st.builds(lambda k, g, i: ["XGROUP", "SETID", k, g, i], keys, groups, st.one_of(small_ids, st.just("$"))),
    st.builds(lambda k, g: ["XGROUP", "DESTROY", k, g], keys, groups),
    st.builds(lambda k, g, c: ["XGROUP", "CREATECONSUMER", k, g, c], keys, groups, consumers),
    st.builds(lambda k, g, c: ["XGROUP", "DELCONSUMER", k, g, c], keys, groups, consumers),
)
log = st.one_of(
    st.builds(lambda k, opts, i, fv: ["XADD", k, *opts, i, *fv], keys, trim_options(),
              st.one_of(small_ids, st.builds(lambda ms: f"{ms}-*", st.integers(0, 40))), pairs),
    st.builds(lambda k, opts: ["XTRIM", k, *opts], keys, trim_options().filter(bool)),
    st.builds(lambda k, ids: ["XDEL", k, *ids], keys, st.lists(small_ids, min_size=1, max_size=4)),
    st.builds(lambda k, start, end: ["XRANGE", k, start, end], keys, any_ids, any_ids),
    st.builds(lambda k: ["XREVRANGE", k, "+", "-", "COUNT", "3"], keys),
    st.builds(lambda k, i: ["XREAD", "COUNT", "2", "STREAMS", k, i], keys, st.one_of(small_ids, st.just("$"))),
)
ack = st.builds(lambda k, g, ids: ["XACK", k, g, *ids], keys, groups, st.lists(small_ids, min_size=1, max_size=4))
commands = st.one_of(readgroup, claim, autoclaim, ack, readgroup, log, group_admin)

#: Every sequence starts from two populated streams with groups, so reads and claims have work to do.
SETUP = [
    *(["XADD", key, f"{i}-{i % 2}", "f", str(i), *(["g", "x"] if i % 3 == 0 else [])]
      for key in KEYS for i in range(1, 13)),
    ["XGROUP", "CREATE", "s", "g1", "0"], ["XGROUP", "CREATE", "s", "g2", "5-0"],
    ["XGROUP", "CREATE", "t", "g1", "3-0"], ["XGROUP", "CREATE", "t", "g2", "0"],
    ["XREADGROUP", "GROUP", "g1", "c1", "COUNT", "4", "STREAMS", "s", ">"],
    ["XREADGROUP", "GROUP", "g1", "c2", "COUNT", "3", "STREAMS", "s", "t", ">", ">"],
    ["XREADGROUP", "GROUP", "g2", "c3", "COUNT", "5", "STREAMS", "t", "s", ">", ">"],
]

CHECKS = [
    ["XLEN", "s"], ["XRANGE", "s", "-", "+"], ["XINFO", "STREAM", "s"], ["XINFO", "GROUPS", "s"],
    ["XPENDING", "s", "g1"], ["XPENDING", "s", "g1", "-", "+", "100"], ["XINFO", "STREAM", "s", "FULL"],
    ["XLEN", "t"], ["XINFO", "GROUPS", "t"], ["XPENDING", "t", "g2", "-", "+", "100", "c1"],
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(commands, min_size=1, max_size=30))
def test_random_sequences_match_redis(diff, sequence):
    diff.check("FLUSHALL")
    for command in SETUP + sequence + CHECKS:
        ours, theirs = diff.both(*command)
        assert mask(ours, pending=True) == mask(theirs, pending=True), (
            f"{command!r}: postroom {ours!r} != redis {theirs!r}"
        )


def test_many_entries_with_small_nodes(diff):
    """Node boundaries at the configured entry limit decide what approximate trimming keeps."""
    for client in (diff.ours, diff.theirs):
        client.call("CONFIG", "SET", "stream-node-max-entries", "7")
    try:
        for i in range(1, 120):
            diff.check("XADD", "s", f"{i}-0", "f", str(i))
        diff.check("XDEL", "s", *[f"{i}-0" for i in range(10, 30)])
        diff.check("XTRIM", "s", "MAXLEN", "~", "90")
        diff.check("XTRIM", "s", "MINID", "~", "50")
        diff.check("XADD", "s", "MAXLEN", "~", "40", "200-0", "f", "x")
        diff.check("XINFO", "STREAM", "s")
        diff.check("XRANGE", "s", "-", "+")
    finally:
        for client in (diff.ours, diff.theirs):
            client.call("CONFIG", "SET", "stream-node-max-entries", "100")
