"""EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT against the oracle: conversions, errors, sandbox, libraries."""

from __future__ import annotations

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Scripts whose reply (value or error) must match redis-server's byte for byte, RESP2 and RESP3.
SCRIPTS = [
    # Lua -> Redis conversions
    "return 1", "return -7", "return 3.99", "return -3.99", "return 1e20", "return 0/0", "return 1/0",
    "return 'text'", "return true", "return false", "return nil",
    "return {1, 2, 'x', {3, {4}}}", "return {1, false, 3}", "return {1, nil, 3}", "return {}",
    "return {ok='fine'}", "return {err='MYERR bad'}", "return {err='-x y'}", "return {err=''}",
    "return {err=1}", "return {ok=1}", "return {err='x', ok='y'}",
    "return {double=3.5}", "return {double=0.1}", "return {big_number='123'}",
    "return {map={a=1}}", "return {set={a=true}}",
    "return redis.status_reply('fine')", "return redis.error_reply('bad')",
    "return redis.error_reply('-bad thing')", "return redis.error_reply('-CODE')",
    "return redis.error_reply()", "return redis.status_reply()",
    "return redis.error_reply('bad thing').err", "return redis.status_reply('x').ok",
    # setresp(3) conversions
    "redis.setresp(3); return true", "redis.setresp(3); return false", "redis.setresp(3); return {double=1.5}",
    "redis.setresp(3); return redis.call('ping')", "redis.setresp(3); return type(redis.call('get', 'nokey'))",
    "redis.setresp(2); return type(redis.call('get', 'nokey'))",
    "return redis.setresp(4)", "return redis.setresp()",
    # Redis -> Lua conversions
    "return redis.call('ping')", "return type(redis.call('ping'))", "return redis.call('ping').ok",
    "return redis.call('set', 'k', 'v')", "return redis.call('get', 'k')", "return redis.call('incr', 'n')",
    "return redis.call('incrbyfloat', 'f', '1.5')", "return redis.call('rpush', 'l', 'a', 'b', 'c')",
    "return redis.call('lrange', 'l', 0, -1)", "return type(redis.call('get', 'nokey'))",
    "return redis.pcall('incr', 'l')", "return type(redis.pcall('incr', 'l'))",
    "local t = redis.pcall('incr', 'l'); return t.err",
    "return redis.call('set', 'a', 0.1)", "return {redis.call('set', 'a', 1.5), redis.call('get', 'a')}",
    "redis.call('set', 'a', 1e20); return redis.call('get', 'a')",
    "redis.call('set', 'a', 12); return redis.call('get', 'a')",
    # redis.call / redis.pcall errors
    "return redis.call('incr', 'x', 'y')", "return redis.call('nosuch')", "return redis.pcall('nosuch')",
    "return redis.call()", "return redis.call(1)", "return redis.call({})", "return redis.call('set', 'a', {})",
    "return redis.call('set', 'a', nil)", "return redis.pcall('set', 'a', {})",
    "return redis.call('config')", "return redis.call('config', 'nosuch')", "return redis.pcall('config', 'nosuch')",
    "return redis.call('eval', 'return 1', '0')", "return redis.call('multi')", "return redis.call('watch', 'x')",
    "return redis.call('subscribe', 'x')", "return redis.call('set', 'a', 'b', 'px')",
    "redis.call('set', 's', 'bar'); return redis.call('incr', 's')",
    "redis.call('set', 's', 'bar'); return redis.pcall('incr', 's')",
    "return pcall(redis.call, 'incr', 'l')", "local ok, e = pcall(redis.call, 'incr', 'l'); return e.err",
    "local ok, e = pcall(error, {err='X y'}); return e.err",
    # script errors and positions
    "error('boom')", "error({err='MY boom'})", "error({err='-x y'})",
    "local function f() error('deep') end f()", "\n\nerror('third line')",
    "local x = nil; return x.field", "return 1 + {}", "retur", "return (",
    # sandbox
    "x = 1", "return os", "return io", "return debug", "return require", "return loadfile", "return dofile",
    "return package", "return print", "return getfenv", "return setfenv", "return newproxy", "return _G.x",
    "redis.call = nil", "string.foo = 1", "rawset(_G, 'x', 1)", "KEYS = 1", "setmetatable(_G, {})",
    "return getmetatable(_G)", "return loadstring('x=1')()", "return loadstring('return 1')()",
    "local t = {} setmetatable(t, {}) return 1",
    "local t = {} for k, v in pairs(_G) do t[#t + 1] = k .. ':' .. type(v) end table.sort(t) return t",
    "local t = {} for k, v in pairs(redis) do t[#t + 1] = k .. ':' .. type(v) end table.sort(t) return t",
    "return _VERSION", "return tostring(0.1)", "return string.format('%d', 3)", "return math.random()",
    # the redis library
    "return redis.sha1hex('')", "return redis.sha1hex('abc')", "return redis.sha1hex()",
    "return redis.REDIS_VERSION", "return redis.REDIS_VERSION_NUM",
    "return redis.log(redis.LOG_WARNING, 'x')", "return redis.log()", "return redis.log(99, 'x')",
    "return redis.set_repl(redis.REPL_ALL)", "return redis.set_repl()", "return redis.set_repl(99)",
    "return redis.breakpoint()", "return redis.debug('x')", "return redis.replicate_commands()",
    "return redis.acl_check_cmd('get', 'x')", "return redis.acl_check_cmd('nosuch')", "return redis.acl_check_cmd()",
    "return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}",
    "return {redis.REPL_NONE, redis.REPL_AOF, redis.REPL_REPLICA, redis.REPL_SLAVE, redis.REPL_ALL}",
    # cjson, cmsgpack, bit, struct
    "return cjson.encode({1, 2, {a=1}})", "return cjson.encode({})", "return cjson.encode('a/b\"c')",
    "return cjson.encode({1.5, -3, 1e20, true, false})", "return cjson.encode(cjson.null)",
    "local t = cjson.decode('[1,2,{\"a\":[true,false]}]'); return {t[1], t[2], type(t[3].a[1])}",
    "return cjson.decode('{\"a\":\"b\"}').a", "return type(cjson.decode('null'))",
    "return cjson.decode('null') == cjson.null",
    "return cmsgpack.pack(1)", "return cmsgpack.pack({1, 2, 3})", "return cmsgpack.pack({a=1})",
    "return cmsgpack.pack('abc', 1.5, -1)", "return {cmsgpack.unpack(cmsgpack.pack(1, 'a', {1, 2}))}",
    "return cmsgpack.unpack(cmsgpack.pack({x='y'})).x",
    "return bit.band(0xff, 0x0f)", "return bit.bor(1, 2, 4)", "return bit.bxor(5, 3)", "return bit.bnot(0)",
    "return bit.lshift(1, 31)", "return bit.rshift(-1, 28)", "return bit.arshift(-256, 4)",
    "return bit.rol(0x12345678, 8)", "return bit.ror(0x12345678, 8)", "return bit.bswap(0x12345678)",
    "return bit.tohex(255)", "return bit.tohex(-1, -4)", "return bit.tobit(2^32 + 5)",
    "return struct.pack('>I', 1)", "return struct.pack('<h', -2)", "return struct.pack('>i8', 5)",
    "return struct.pack('BBc3', 1, 2, 'abcdef')", "return {struct.unpack('>I', '\\0\\0\\1\\0')}",
    "return {struct.unpack('<hB', struct.pack('<hB', -2, 7))}", "return struct.size('>iI')",
    "return {struct.unpack('s', 'ab\\0cd')}",
]

KEYED = [
    ("return {KEYS[1], KEYS[2], ARGV[1], ARGV[2]}", 2, "k1", "k2", "a1", "a2"),
    ("return #KEYS + #ARGV", 2, "a", "b", "c"),
    ("return redis.call('set', KEYS[1])", 0),
    ("return redis.call('set', KEYS[1], ARGV[1])", 1, "k", "v"),
    ("return 1", 3, "a"),
    ("return 1", -1),
    ("return 1", "abc"),
    ("return 1", "1.5"),
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_eval_matches_redis(diff, script):
    diff.check("EVAL", script, 0)
    diff.check("SCRIPT", "FLUSH")


@pytest.mark.parametrize("call", KEYED, ids=[c[0][:30] for c in KEYED])
def test_eval_keys_and_argv(diff, call):
    diff.check("EVAL", *call)


def test_eval_wrong_arity(diff):
    diff.check("EVAL", "return 1")
    diff.check("EVALSHA", "x")
    diff.check("EVAL_RO", "return 1")


def test_evalsha_and_script_cache(diff):
    sha = diff.check("SCRIPT", "LOAD", "return ARGV[1]")[1]
    diff.check("EVALSHA", sha, 0, "hello")
    diff.check("EVALSHA", sha.upper(), 0, "hello")
    diff.check("EVALSHA_RO", sha, 0, "ro")
    diff.check("SCRIPT", "EXISTS", sha, "0" * 40)
    diff.check("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8dx", 0)
    diff.check("EVALSHA", "short", 0)
    diff.check("EVAL", "return 'cached by eval'", 0)
    diff.check("SCRIPT", "EXISTS", "fd0e3beb0df7fb4e2d6bdbedb73f3fdcd4b82bc8")
    diff.check("SCRIPT", "FLUSH", "ASYNC")
    diff.check("SCRIPT", "EXISTS", sha)
    diff.check("EVALSHA", sha, 0)
    diff.check("SCRIPT", "FLUSH", "SYNC")
    diff.check("SCRIPT", "FLUSH", "BAD")
    diff.check("SCRIPT", "FLUSH", "SYNC", "ASYNC")
    diff.check("SCRIPT", "LOAD", "retur")
    diff.check("SCRIPT", "EXISTS")
    diff.check("SCRIPT", "NOPE")
    diff.check("SCRIPT", "HELP")
    diff.check("SCRIPT", "KILL")
    diff.check("SCRIPT", "LOAD", "a", "b")


def test_read_only_scripts(diff):
    diff.check("EVAL_RO", "return redis.call('set', 'a', 'b')", 0)
    diff.check("EVAL_RO", "return redis.call('get', 'a')", 0)
    sha = diff.check("SCRIPT", "LOAD", "return redis.call('set', 'a', 'b')")[1]
    diff.check("EVALSHA_RO", sha, 0)
    diff.check("EVAL_RO", "return redis.pcall('incr', 'a')", 0)
    diff.check("EXISTS", "a")


SHEBANGS = [
    "#!lua\nreturn 1",
    "#!lua flags=no-writes\nreturn redis.call('set', 'a', 'b')",
    "#!lua flags=no-writes\nreturn redis.call('get', 'a')",
    "#!lua flags=no-writes,allow-oom,allow-stale,no-cluster,allow-cross-slot-keys\nreturn 1",
    "#!lua flags=bad\nreturn 1",
    "#!luajit\nreturn 1",
    "#!lua name=x\nreturn 1",
    "#!lua\nerror('line two')",
]


@pytest.mark.parametrize("script", SHEBANGS)
def test_script_shebang(diff, script):
    diff.check("EVAL", script, 0)


def test_shebang_with_eval_ro(diff):
    diff.check("EVAL_RO", "#!lua\nreturn redis.call('set', 'a', 'b')", 0)
    diff.check("EVAL_RO", "#!lua flags=no-writes\nreturn 1", 0)


def test_select_inside_script_does_not_leak(diff):
    diff.check("EVAL", "redis.call('select', 3); return redis.call('set', 'in3', 'x')", 0)
    diff.check("EXISTS", "in3")
    diff.check("SELECT", 3)
    diff.check("GET", "in3")


def test_blocking_commands_do_not_block_in_scripts(diff):
    diff.check("EVAL", "return redis.call('blpop', 'nolist', 0)", 0)
    diff.check("EVAL", "return redis.pcall('blmove', 'a', 'b', 'left', 'left', 0)", 0)


def test_script_writes_invalidate_watch(diff, postroom_server, oracle_server):
    from .test_transactions import Pair

    diff.check("WATCH", "w")
    other = Pair(diff, postroom_server, oracle_server)
    try:
        other.check("EVAL", "return redis.call('set', KEYS[1], 'x')", 1, "w")
    finally:
        other.close()
    diff.check("MULTI")
    diff.check("GET", "w")
    diff.check("EXEC")


def test_memory_is_capped(postroom_server):
    from postroom.commands.scripting import scripting_of

    engine = scripting_of(postroom_server.broker).engine
    client = redis.Redis(port=postroom_server.port)
    limit = engine.lua.get_max_memory()
    postroom_server.call_in_loop(engine.lua.set_max_memory, engine.lua.get_memory_used() + 4 * 1024 * 1024)
    try:
        with pytest.raises(redis.ResponseError, match="not enough memory"):
            client.eval("local t = {} for i = 1, 1e8 do t[i] = string.rep('x', 1000) .. i end", 0)
        assert client.eval("return 'still alive'", 0) == b"still alive"
    finally:
        postroom_server.call_in_loop(engine.lua.set_max_memory, limit)
        client.close()


def test_redis_py_register_script(r):
    incr = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert incr(keys=["counter"], args=[5]) == 5
    assert incr(keys=["counter"], args=[2]) == 7
    r.script_flush()
    assert incr(keys=["counter"], args=[1]) == 8  # NOSCRIPT, then redis-py falls back to EVAL
    with r.pipeline() as pipe:
        incr(keys=["counter"], args=[1], client=pipe)
        pipe.get("counter")
        assert pipe.execute() == [9, b"9"]


# -- hypothesis: random command sequences inside a script, replies converted both ways -------------

RUN_ALL = """
if ARGV[1] == '3' then redis.setresp(3) end
local out, i = {}, 2
while i <= #ARGV do
    local n = tonumber(ARGV[i])
    local cmd = {}
    for j = 1, n do cmd[j] = ARGV[i + j] end
    out[#out + 1] = redis.pcall(unpack(cmd))
    i = i + n + 1
end
return out
"""

_key = st.sampled_from(["k", "l", "z", "h"])
_value = st.sampled_from(["1", "-2", "x", "3.5", ""])
script_commands = st.one_of(
    st.tuples(st.just("SET"), _key, _value), st.tuples(st.just("GET"), _key), st.tuples(st.just("INCR"), _key),
    st.tuples(st.just("INCRBYFLOAT"), _key, st.just("1.5")), st.tuples(st.just("DEL"), _key),
    st.tuples(st.just("RPUSH"), _key, _value), st.tuples(st.just("LPOP"), _key),
    st.tuples(st.just("LRANGE"), _key, st.just("0"), st.just("-1")), st.tuples(st.just("EXISTS"), _key),
    st.tuples(st.just("APPEND"), _key, _value), st.tuples(st.just("TYPE"), _key),
    st.tuples(st.just("ZADD"), _key, st.sampled_from(["1", "2.5", "-inf"]), _value),
    st.tuples(st.just("ZRANGE"), _key, st.just("0"), st.just("-1"), st.just("WITHSCORES")),
    st.tuples(st.just("ZSCORE"), _key, _value), st.tuples(st.just("EXPIRE"), _key, st.just("100")),
    st.tuples(st.just("TTL"), _key), st.tuples(st.just("PING")), st.tuples(st.just("NOSUCH"), _key),
    st.tuples(st.just("GET")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(resp=st.sampled_from(["2", "3"]), commands=st.lists(script_commands, min_size=1, max_size=12))
def test_random_command_sequences_in_scripts(diff, resp, commands):
    diff.check("FLUSHALL")
    argv = [resp]
    for command in commands:
        argv.append(str(len(command)))
        argv.extend(command)
    diff.check("EVAL", RUN_ALL, 0, *argv)


# -- hypothesis: the bundled libraries against redis-server's C implementations ---------------------

_numbers = st.one_of(st.integers(-(2**40), 2**40), st.sampled_from([0, -1, 2**31, 2**32 + 7, -(2**31) - 1, 0.5, 1.5,
                                                                     2.5, -2.5, 1e10 + 0.5]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=st.sampled_from(["tobit", "bnot", "bswap", "band", "bor", "bxor", "lshift", "rshift", "arshift", "rol",
                           "ror", "tohex"]), a=_numbers, b=st.integers(-40, 40))
def test_bit_library(diff, op, a, b):
    unary = op in ("tobit", "bnot", "bswap")
    call = f"bit.{op}({a!r})" if unary else f"bit.{op}({a!r}, {b})"
    diff.check("EVAL", f"return tostring({call})", 0)


_json_scalars = st.one_of(st.integers(-(10**12), 10**12).map(str), st.sampled_from(["1.5", "-0.25", "1e300", "3.14159"]),
                          st.text(alphabet="ab/\\\"\n\t é", max_size=5).map(lambda t: "'" + t.encode(
                              "unicode_escape").decode().replace("'", "\\'") + "'"),
                          st.sampled_from(["true", "false", "cjson.null"]))
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4).map(lambda items: "{" + ", ".join(items) + "}"),
                            st.dictionaries(st.sampled_from(["a", "b", "k1"]), inner, max_size=3).map(
                                lambda d: "{" + ", ".join(f"{k}={v}" for k, v in sorted(d.items())) + "}")),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_json_values)
def test_cjson_and_cmsgpack(diff, value):
    single_key = value.count("=") <= 1  # several keys: hash order decides the output, compare a round trip
    if single_key:
        diff.check("EVAL", f"return cjson.encode({value})", 0)
        diff.check("EVAL", f"return cmsgpack.pack({value})", 0)
    diff.check("EVAL", f"return cjson.encode(cjson.decode(cjson.encode({{{value}}}))[1] == nil)", 0)
    diff.check("EVAL", f"local v = cmsgpack.unpack(cmsgpack.pack({value})) return type(v)", 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from([">i", "<i", ">I", "<h", ">H", "b", "B", ">l", "<L", ">i3", "<I2", ">d", "<f", "i8"]),
       n=st.integers(-(2**31), 2**31 - 1))
def test_struct_library(diff, fmt, n):
    diff.check("EVAL", f"return struct.pack('{fmt}', {n})", 0)
    diff.check("EVAL", f"return {{struct.unpack('{fmt}', struct.pack('{fmt}', {n}))}}", 0)
    diff.check("EVAL", f"return struct.size('{fmt}')", 0)


@pytest.mark.parametrize("script", [
    "return tostring(redis.call.__class__)",
    "return tostring(cjson.null.__class__)",
    "return tostring(cjson.encode.__globals__)",
    "return tostring(struct.pack.__self__)",
])
def test_python_objects_are_opaque(r, script):
    """The redis library's Python callables must not lead a script into Python (redis-server: an error too)."""
    with pytest.raises(redis.ResponseError) as error:
        r.eval(script, 0)
    assert "class" not in str(error.value) and "globals" not in str(error.value).split("script:")[0].lower()
