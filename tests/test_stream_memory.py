"""Stream memory: packed storage per entry, and resident growth against redis-server's.

The slow test starts both servers as processes, appends the same 100,000 entries to each and
compares postroom's RSS growth with redis-server's ``used_memory_rss`` growth (the full-size
1,000,000-entry run is ``bench/stream_bench.py``). Both then answer reads, trims and deletes alike.
"""

from __future__ import annotations

import pytest
from bench.stream_bench import SCENARIOS, four_fields, servers, verify_large
from bench.stream_bench import fill as fill_server

from postroom.keyspace.stream import Stream


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_packed_bytes_per_entry(scenario):
    """Node buffers hold little more than the values: names once per node, IDs as small deltas."""
    make = SCENARIOS[scenario]
    stream = Stream()
    entries = 20_000
    payload = 0
    for i in range(entries):
        argv = [b"XADD", b"s", b"*", *make(i)]
        fields = argv[3::2]
        payload += sum(map(len, argv[4::2]))
        if scenario == "mixed":
            payload += sum(map(len, fields))
        stream.append((1_700_000_000_000 + i // 4) << 64 | i % 4, argv, 3, 100, 4096)
    stored = sum(len(node.buf) for node in stream.nodes)
    overhead = (stored - payload) / entries
    assert overhead <= (12 if scenario == "mixed" else 9), f"{overhead:.1f} bytes of overhead per entry"
    assert stream.range(0, (1 << 128) - 1, 3)[2] == ((1_700_000_000_000 << 64) | 2, make(2))


@pytest.mark.slow
def test_resident_growth_not_above_redis():
    entries = 100_000
    with servers() as pair:
        growth = []
        for server in pair:
            before = server.rss()
            fill_server(server, "s", entries, four_fields)
            growth.append(server.rss() - before)
        redis_growth, postroom_growth = growth
        assert redis_growth > 0
        assert postroom_growth <= redis_growth, (
            f"postroom grew {postroom_growth / entries:.1f} B/entry, redis {redis_growth / entries:.1f} B/entry"
        )
        verify_large(pair, entries)
