"""COMMAND and its subcommands, and every declaration in the command table checked against Redis 7.0.

The per-command tests iterate over whatever the table holds when the tests are collected, so a
command added by any module is checked too: its arity, flags, legacy key triple and ACL
categories must be what redis-server 7.0 reports, and COMMAND GETKEYS must find the same keys.
"""

from __future__ import annotations

import pytest

from postroom.broker import load_command_modules
from postroom.commands.registry import COMMANDS

from .support.resp import RawClient

load_command_modules()

#: Commands postroom adds or takes from a later Redis; the oracle (7.0) does not know them.
NEWER_THAN_ORACLE = {"client|setinfo", "client|no-touch"}
#: Commands whose arity follows a later Redis (ZRANK WITHSCORE is 7.2): ours, and the oracle's.
LATER_ARITY = {"zrank": (-3, 3), "zrevrank": (-3, 3)}


def _all_names() -> list[str]:
    names = []
    for record in COMMANDS.values():
        names.append(record.name)
        names.extend(sub.name for sub in record.subcommands.values())
    return sorted(names)


@pytest.fixture(scope="module")
def raw_pair(postroom_server, oracle_server):
    ours, theirs = RawClient(postroom_server.port), RawClient(oracle_server.port)
    yield ours, theirs
    ours.close()
    theirs.close()


#: Modules whose commands declare their COMMAND INFO tips completely.
TIPS_DECLARED_BY = {"postroom.commands.server", "postroom.commands.info", "postroom.commands.client_cmd",
                    "postroom.commands.introspection"}


def _record(name: str):
    parent, _, sub = name.partition("|")
    record = COMMANDS[parent.encode()]
    return record.subcommands[sub.encode()] if sub else record


def _summary(entry) -> dict:
    """The fields of a COMMAND INFO entry both servers must agree on."""
    kind, items = entry
    assert kind == "*"
    return {
        "name": items[0][1],
        "arity": int(items[1][1]),
        "flags": [flag for _, flag in items[2][1]],
        "keys": tuple(int(items[i][1]) for i in (3, 4, 5)),
        "categories": [category for _, category in items[6][1]],
    }


@pytest.mark.parametrize("name", _all_names())
def test_command_info_matches_redis(raw_pair, name):
    ours, theirs = (client.call("COMMAND", "INFO", name) for client in raw_pair)
    (ours_entry,), (theirs_entry,) = ours[1], theirs[1]
    if name in NEWER_THAN_ORACLE or theirs_entry[1] is None:
        assert ours_entry[1] is not None
        pytest.skip(f"redis-server 7.0 has no {name}")
    ours_summary, theirs_summary = _summary(ours_entry), _summary(theirs_entry)
    if name in LATER_ARITY:
        assert (ours_summary["arity"], theirs_summary["arity"]) == LATER_ARITY[name]
        ours_summary["arity"] = theirs_summary["arity"]
    assert ours_summary == theirs_summary
    record = _record(name)
    if record.tips or (record.handler is not None and record.handler.__module__ in TIPS_DECLARED_BY):
        assert ours_entry[1][7] == theirs_entry[1][7]


@pytest.mark.parametrize("name", _all_names())
def test_command_docs_group_matches_redis(raw_pair, name):
    ours, theirs = (client.call("COMMAND", "DOCS", name) for client in raw_pair)
    if not theirs[1]:
        pytest.skip(f"redis-server 7.0 has no {name}")
    docs = [dict(zip([k for _, k in reply[1][1][1][::2]], reply[1][1][1][1::2], strict=True)) for reply in (ours, theirs)]
    assert docs[0][b"group"] == docs[1][b"group"]


def _sample_line(name: str, arity: int) -> list[str]:
    words = name.split("|")
    total = arity if arity > 0 else -arity + 2
    return words + [f"k{i}" for i in range(total - len(words))]


@pytest.mark.parametrize("name", [n for n in _all_names() if "|" not in n])
def test_getkeys_matches_redis(raw_pair, name):
    record = COMMANDS[name.encode()]
    if record.first_key <= 0 or record.key_finder is not None:
        pytest.skip("no simple key range")
    line = _sample_line(name, LATER_ARITY[name][1] if name in LATER_ARITY else record.arity)
    ours, theirs = (client.call("COMMAND", "GETKEYS", *line) for client in raw_pair)
    if theirs[0] == "-" and b"Invalid command" in theirs[1]:
        pytest.skip(f"redis-server 7.0 has no {name}")
    assert ours == theirs, line


def test_command_errors_and_help(diff):
    diff.check("COMMAND", "HELP")
    diff.check("COMMAND", "NOPE")
    diff.check("COMMAND", "COUNT", "x")
    diff.check("COMMAND", "INFO", "no-such-command")
    diff.check("COMMAND", "INFO", "get", "no-such-command", "GET")
    diff.check("COMMAND", "DOCS", "no-such-command")
    diff.check("COMMAND", "GETKEYS")
    diff.check("COMMAND", "GETKEYS", "get")
    diff.check("COMMAND", "GETKEYS", "no-such-command", "a")
    diff.check("COMMAND", "GETKEYS", "ping", "x")
    diff.check("COMMAND", "GETKEYS", "get", "a", "b")
    diff.check("COMMAND", "GETKEYS", "set", "a", "b")
    diff.check("COMMAND", "GETKEYS", "SET", "a", "b", "EX", "10")
    diff.check("COMMAND", "GETKEYS", "client", "nope", "x")
    diff.check("COMMAND", "GETKEYS", "config", "get", "x")
    diff.check("COMMAND", "GETKEYS", "memory", "usage", "key")
    diff.check("COMMAND", "GETKEYSANDFLAGS", "get", "a")
    diff.check("COMMAND", "LIST", "FILTERBY")
    diff.check("COMMAND", "LIST", "FILTERBY", "nope", "x")
    diff.check("COMMAND", "LIST", "FILTERBY", "MODULE", "x")
    diff.check("COMMAND", "LIST", "FILTERBY", "ACLCAT", "no-such-category")
    diff.check("COMMAND", "LIST", "extra")


def test_command_info_reply_shape_matches_redis(diff):
    for name in ("get", "set", "ping", "config", "client|list", "info"):
        ours, theirs = diff.both("COMMAND", "INFO", name)
        entry, redis_entry = ours[1][0][1], theirs[1][0][1]
        assert [kind for kind, _ in entry] == [kind for kind, _ in redis_entry], name
    ours, theirs = diff.both("COMMAND", "INFO", "get")
    spec, redis_spec = ours[1][0][1][8], theirs[1][0][1][8]
    assert spec == redis_spec  # GET: RO access, index 1, range 0/1/0


def test_count_list_and_command_agree(postroom_server):
    client = RawClient(postroom_server.port)
    count = client.call("COMMAND", "COUNT")
    assert count == (":", b"%d" % len(COMMANDS))
    assert len(client.call("COMMAND", "LIST")[1]) == len(_all_names())
    assert len(client.call("COMMAND")[1]) == len(COMMANDS)
    client.close()


def test_list_filterby_pattern_and_aclcat_match_redis(diff):
    redis_knows = {name for _, name in diff.theirs.call("COMMAND", "LIST")[1]}
    ours, theirs = diff.both("COMMAND", "LIST", "FILTERBY", "PATTERN", "client*")
    mine = {name for _, name in ours[1]}
    assert mine & redis_knows == {name for _, name in theirs[1]} & {n.encode() for n in _all_names()}
    assert {b"client|list", b"client|kill", b"client"} <= mine
    for category in ("admin", "connection", "string"):
        ours, theirs = diff.both("COMMAND", "LIST", "FILTERBY", "ACLCAT", category)
        implemented = {name.encode() for name in _all_names()}
        expected = {name for _, name in theirs[1]} & implemented
        assert {name for _, name in ours[1]} & redis_knows == expected, category


def test_docs_of_a_container_lists_subcommands(diff):
    ours, theirs = diff.both("COMMAND", "DOCS", "client")
    docs = [dict(zip([k for _, k in r[1][1][1][::2]], r[1][1][1][1::2], strict=True)) for r in (ours, theirs)]
    assert docs[0][b"group"] == docs[1][b"group"] == ("$", b"connection")
    assert docs[0][b"complexity"] == docs[1][b"complexity"] == ("$", b"Depends on subcommand.")
    mine = {name for _, name in docs[0][b"subcommands"][1][::2]}
    assert {name for _, name in docs[1][b"subcommands"][1][::2]} & mine >= {b"client|list", b"client|kill"}


# -- COMMAND DOCS arguments (built from each handler's syntax line, postroom/commands/syntax.py) ----

#: Where our syntax line and Redis 7.0's argument tree legitimately differ: options of a later
#: Redis (the streams' 8.x options, ZRANK WITHSCORE of 7.2), and trees Redis writes another way
#: for the same syntax (a repeated value wrapped in a block, SKIPME taking a string, STREAMS as a
#: block, DEBUG and COMMAND GETKEYS documented without arguments).
DOCS_SHAPE_DIFFERS = {
    "xadd", "xtrim", "xread", "xreadgroup", "zrank", "zrevrank",
    "config|get", "psubscribe", "client|list", "client|kill", "debug", "command|getkeys",
    "command|getkeysandflags",
}


def _all_docs(port: int) -> dict[bytes, dict]:
    import redis

    connection = redis.Redis(port=port, protocol=3).connection_pool.get_connection()
    try:
        connection.send_command("COMMAND", "DOCS")
        return connection.read_response()
    finally:
        connection.disconnect()


@pytest.fixture(scope="module")
def docs_pair(postroom_server, oracle_server):
    return _all_docs(postroom_server.port), _all_docs(oracle_server.port)


def _shape(arguments) -> list:
    """An argument tree without names (ours are the syntax line's, Redis's its own)."""
    shape = []
    for argument in arguments or ():
        kind = argument[b"type"]
        item = [kind if kind in (b"key", b"pure-token", b"oneof", b"block") else b"value",
                argument.get(b"token"), sorted(argument.get(b"flags", ()))]
        if kind in (b"oneof", b"block"):
            item.append(_shape(argument[b"arguments"]))
        shape.append(item)
    return shape


def _docs_entry(docs: dict, name: str) -> dict | None:
    parent, _, sub = name.encode().partition(b"|")
    entry = docs.get(parent)
    if entry is not None and sub:
        entry = (entry.get(b"subcommands") or {}).get(name.encode())
    return entry


@pytest.mark.parametrize("name", _all_names())
def test_command_docs_arguments_have_redis_shape(docs_pair, name):
    ours, theirs = (_docs_entry(docs, name) for docs in docs_pair)
    assert ours is not None
    if theirs is None:
        pytest.skip(f"redis-server 7.0 has no {name}")
    if name in DOCS_SHAPE_DIFFERS:
        assert _shape(ours.get(b"arguments")) != _shape(theirs.get(b"arguments"))  # else: drop it from the set
    else:
        assert _shape(ours.get(b"arguments")) == _shape(theirs.get(b"arguments"))


def test_command_docs_arguments_of_set():
    """The full tree of one command: names from the syntax line, types inferred, key positions."""
    from postroom.commands.syntax import arguments

    tree = arguments("SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | KEEPTTL]", name_words=1)
    assert tree == [
        {b"name": b"key", b"type": b"key", b"key_spec_index": 0},
        {b"name": b"value", b"type": b"string"},
        {b"name": b"nx-xx", b"type": b"oneof", b"flags": [b"optional"], b"arguments": [
            {b"name": b"nx", b"type": b"pure-token", b"token": b"NX"},
            {b"name": b"xx", b"type": b"pure-token", b"token": b"XX"}]},
        {b"name": b"get", b"type": b"pure-token", b"token": b"GET", b"flags": [b"optional"]},
        {b"name": b"seconds-milliseconds-keepttl", b"type": b"oneof", b"flags": [b"optional"], b"arguments": [
            {b"name": b"seconds", b"type": b"integer", b"token": b"EX"},
            {b"name": b"milliseconds", b"type": b"integer", b"token": b"PX"},
            {b"name": b"keepttl", b"type": b"pure-token", b"token": b"KEEPTTL"}]},
    ]
    with pytest.raises(ValueError):
        arguments("SET key [NX", name_words=1)
