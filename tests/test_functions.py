"""FUNCTION LOAD/DELETE/FLUSH/LIST/DUMP/RESTORE/STATS/KILL/HELP and FCALL/FCALL_RO against the oracle."""

from __future__ import annotations

import pytest

F1 = "redis.register_function('f1', function(keys, args) return {keys[1], args[1]} end)"
LIB = "#!lua name=lib\n" + F1
RO_LIB = (
    "#!lua name=ro\n"
    "redis.register_function{function_name='rget', callback=function(keys) return redis.call('get', keys[1]) end, "
    "flags={'no-writes'}, description='reads'}\n"
    "redis.register_function{function_name='rset', callback=function(keys, args) "
    "return redis.call('set', keys[1], args[1]) end, flags={'no-writes'}}\n"
    "redis.register_function('wset', function(keys, args) return redis.call('set', keys[1], args[1]) end)"
)


def normalized(reply):
    """FUNCTION LIST with libraries and their functions sorted: Redis keeps both in hash tables."""
    kind, libraries = reply
    out = []
    for lib_kind, fields in libraries:
        fields = list(fields)
        index = fields.index(("$", b"functions"))
        functions_kind, functions = fields[index + 1]
        fields[index + 1] = (functions_kind, sorted(functions, key=repr))
        out.append((lib_kind, fields))
    return kind, sorted(out, key=repr)


def check_list(diff, *args):
    ours, theirs = diff.both("FUNCTION", "LIST", *args)
    assert normalized(ours) == normalized(theirs), f"postroom {ours!r} != redis {theirs!r}"


@pytest.fixture
def fdiff(diff):
    diff.check("FUNCTION", "FLUSH")
    yield diff
    diff.check("FUNCTION", "FLUSH")


LOAD_ERRORS = [
    "return 1",
    "#!lua\n" + F1,
    "#!js name=x\n" + F1,
    "#!lua name=x foo=bar\n" + F1,
    "#!lua name=a-b\n" + F1,
    "#!lua name=ok\n",
    "#!lua name=ok\nredis.register_function('bad-name', function() end)",
    "#!lua name=ok\nredis.register_function('f', 1)",
    "#!lua name=ok\nredis.register_function()",
    "#!lua name=ok\nredis.register_function{function_name='f'}",
    "#!lua name=ok\nredis.register_function{function_name='f', callback=function() end, flags={'bogus'}}",
    "#!lua name=ok\nredis.register_function{function_name='f', callback=function() end, foo=1}",
    "#!lua name=ok\nretur",
    "#!lua name=ok\nerror('x')",
    "#!lua name=ok\nredis.call('ping')",
    "#!lua name=ok\nx = 1",
    "#!lua name=ok\nlocal y = KEYS",
    "#!lua name=ok\nlocal y = redis.setresp",
    "#!lua name=ok\nlocal t = {} for k, v in pairs(redis) do end",
    "#!lua name=ok\nredis.register_function('a', function() end)\nredis.register_function('a', function() end)",
]


@pytest.mark.parametrize("code", LOAD_ERRORS)
def test_load_errors(fdiff, code):
    fdiff.check("FUNCTION", "LOAD", code)
    fdiff.check("FUNCTION", "LIST")


def test_load_call_replace_delete(fdiff):
    fdiff.check("FUNCTION", "LOAD", LIB)
    fdiff.check("FCALL", "f1", 1, "k", "a")
    fdiff.check("FUNCTION", "LOAD", LIB)
    fdiff.check("FUNCTION", "LOAD", "REPLACE", LIB)
    fdiff.check("FUNCTION", "LOAD", "BAD", LIB)
    fdiff.check("FUNCTION", "LOAD", "#!lua name=other\n" + F1)
    fdiff.check("FUNCTION", "LOAD", "REPLACE", "#!lua name=lib\nredis.register_function('f2', function() return 2 end)")
    fdiff.check("FCALL", "f1", 0)
    fdiff.check("FCALL", "f2", 0)
    fdiff.check("FUNCTION", "LOAD", "#!lua name=other\n" + F1)
    fdiff.check("FCALL", "f1", 0, "arg")
    fdiff.check("FUNCTION", "DELETE", "nope")
    fdiff.check("FUNCTION", "DELETE", "lib")
    fdiff.check("FCALL", "f2", 0)
    fdiff.check("FUNCTION", "STATS")


def test_fcall_errors(fdiff):
    fdiff.check("FUNCTION", "LOAD", LIB)
    fdiff.check("FCALL", "nope", 0)
    fdiff.check("FCALL", "f1", -1)
    fdiff.check("FCALL", "f1", 5)
    fdiff.check("FCALL", "f1", "x")
    fdiff.check("FCALL", "f1")
    fdiff.check("FCALL_RO", "f1", 0)


def test_read_only_functions(fdiff):
    fdiff.check("FUNCTION", "LOAD", RO_LIB)
    fdiff.check("SET", "k", "v")
    fdiff.check("FCALL_RO", "rget", 1, "k")
    fdiff.check("FCALL", "rget", 1, "k")
    fdiff.check("FCALL_RO", "rset", 1, "k", "x")
    fdiff.check("FCALL", "rset", 1, "k", "x")
    fdiff.check("FCALL_RO", "wset", 1, "k", "x")
    fdiff.check("FCALL", "wset", 1, "k", "x")
    fdiff.check("GET", "k")
    check_list(fdiff)
    check_list(fdiff, "WITHCODE")
    fdiff.check("FUNCTION", "STATS")


def test_function_runtime_environment(fdiff):
    code = (
        "#!lua name=env\n"
        "local function names(t) local r = {} for k in pairs(t) do r[#r + 1] = k end table.sort(r) return r end\n"
        "redis.register_function('redis_names', function() return names(redis) end)\n"
        "redis.register_function('err', function() return redis.call('nosuch') end)\n"
        "redis.register_function('perr', function() return redis.pcall('nosuch') end)\n"
        "redis.register_function('boom', function() error('boom') end)\n"
        "redis.register_function('resp3', function() redis.setresp(3) return redis.call('hgetall', 'none') end)\n"
        "redis.register_function('glob', function() x = 1 end)\n"
    )
    fdiff.check("FUNCTION", "LOAD", code)
    for name in ("redis_names", "err", "perr", "boom", "resp3", "glob"):
        fdiff.check("FCALL", name, 0)


def test_list_options(fdiff):
    fdiff.check("FUNCTION", "LOAD", LIB)
    fdiff.check("FUNCTION", "LIST", "LIBRARYNAME", "li*")
    fdiff.check("FUNCTION", "LIST", "LIBRARYNAME", "x*")
    fdiff.check("FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "lib")
    fdiff.check("FUNCTION", "LIST", "BAD")
    fdiff.check("FUNCTION", "LIST", "LIBRARYNAME")


def test_dump_restore(fdiff):
    fdiff.check("FUNCTION", "DUMP")
    fdiff.check("FUNCTION", "LOAD", LIB)
    payload = fdiff.check("FUNCTION", "DUMP")[1]
    fdiff.check("FUNCTION", "RESTORE", payload)
    fdiff.check("FUNCTION", "RESTORE", payload, "REPLACE")
    fdiff.check("FUNCTION", "RESTORE", payload, "FLUSH")
    fdiff.check("FUNCTION", "RESTORE", payload, "APPEND")
    fdiff.check("FUNCTION", "RESTORE", payload, "BAD")
    fdiff.check("FUNCTION", "RESTORE", b"garbage")
    fdiff.check("FUNCTION", "RESTORE", payload[:-1] + bytes([payload[-1] ^ 1]))
    fdiff.check("FUNCTION", "FLUSH")
    fdiff.check("FUNCTION", "RESTORE", payload)
    fdiff.check("FCALL", "f1", 1, "k", "a")


def test_flush_kill_help(fdiff):
    fdiff.check("FUNCTION", "FLUSH", "BAD")
    fdiff.check("FUNCTION", "FLUSH", "ASYNC")
    fdiff.check("FUNCTION", "FLUSH", "SYNC")
    fdiff.check("FUNCTION", "KILL")
    fdiff.check("FUNCTION", "HELP")
    fdiff.check("FUNCTION", "NOPE")
    fdiff.check("FUNCTION")


def test_redis_py_functions(r):
    import redis

    r.function_flush()
    code = "#!lua name=mylib\nredis.register_function('echo', function(k, a) return a[1] end)"
    assert r.function_load(code) == b"mylib"
    assert r.fcall("echo", 0, "hi") == b"hi"
    with pytest.raises(redis.ResponseError, match="write flag"):
        r.fcall_ro("echo", 0, "hi")
    assert r.function_list()[0][b"library_name" if r.get_connection_kwargs().get("protocol") == 3 else 1] == b"mylib"
    r.function_delete("mylib")
    assert r.function_list() == []
