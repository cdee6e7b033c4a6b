-- postroom's Lua sandbox: the environment Redis 7.0 gives scripts, built once per runtime.
--
-- Called with the Python callbacks and the library tables; returns the functions the Python
-- side drives.  Everything the sandbox needs from the unrestricted runtime (debug.sethook,
-- debug.getinfo, setfenv, ...) is captured here as upvalues before those globals disappear.

local py, libs = ...

local G = _G
local error, type, select, setfenv, setmetatable, getmetatable = error, type, select, setfenv, setmetatable, getmetatable
local rawset, rawget, next, tostring, xpcall = rawset, rawget, next, tostring, xpcall
local getinfo, sethook = debug.getinfo, debug.sethook
local sfind, ssub, sgsub = string.find, string.sub, string.gsub
local INTERNAL = debug.getinfo(1, 'S').source

-- Read-only tables -------------------------------------------------------------------------
-- Redis patches Lua with read-only tables; here each protected table is an empty proxy whose
-- reads go to the real table and whose writes raise.  `real` maps proxies to their tables so
-- that pairs/next/ipairs/rawget/rawset keep working on them.

local real = setmetatable({}, {__mode = 'k'})

local function readonly_error()
    error('Attempt to modify a readonly table', 2)
end

local function protect(t)
    local proxy = {}
    real[proxy] = t
    setmetatable(proxy, {__index = t, __newindex = readonly_error, __metatable = {}})
    return proxy
end

-- The globals scripts see --------------------------------------------------------------------

local env = {}
for _, name in ipairs({
    'assert', 'collectgarbage', 'error', 'gcinfo', 'getmetatable', 'ipairs', 'next', 'pairs',
    'rawequal', 'rawget', 'select', 'setmetatable', 'tonumber', 'tostring', 'type', 'unpack',
    '_VERSION',
}) do
    env[name] = G[name]
end
env.math = protect(math)
env.string = protect(string)
env.table = protect(table)
env.coroutine = protect(coroutine)
for name, lib in pairs(libs) do
    env[name] = protect(lib)
end

setmetatable(env, {__index = function(_, key)
    error("Script attempted to access nonexistent global variable '" .. tostring(key) .. "'", 2)
end})

local globals = protect(env)
env._G = globals

local function unwrap(t)
    return real[t] or t
end

env.pairs = function(t) return next, unwrap(t), nil end
env.next = function(t, k) return next(unwrap(t), k) end
env.ipairs = function(t)
    local r = unwrap(t)
    return function(_, i)
        i = i + 1
        local v = r[i]
        if v ~= nil then return i, v end
    end, r, 0
end
env.rawget = function(t, k) return rawget(unwrap(t), k) end
env.rawset = function(t, k, v)
    if real[t] then error({err = 'ERR Attempt to modify a readonly table'}) end
    return rawset(t, k, v)
end
env.setmetatable = function(t, mt)
    if real[t] then error({err = 'ERR Attempt to modify a readonly table'}) end
    return setmetatable(t, mt)
end
env.loadstring = function(code, name)
    local f, err = loadstring(code, name)
    if f then setfenv(f, globals) end
    return f, err
end
env.load = function(chunk, name)
    local f, err = load(chunk, name)
    if f then setfenv(f, globals) end
    return f, err
end

-- Errors ---------------------------------------------------------------------------------------
-- Redis's error handler turns every error into a table {err=, source=, line=} naming the script
-- line that raised it; internal frames (this file, C functions) are skipped.

-- Python callbacks (redis.call, the libraries) raise Python exceptions, which reach Lua as
-- userdata; py.error_value turns them back into Redis's error table (redis.call) or a message.

local py_error_value = py.error_value

local function python_error(err, info)
    local tbl, message = py_error_value(err)
    if tbl then return tbl end
    if info then message = info.short_src .. ':' .. tostring(info.currentline) .. ': ' .. message end
    return message
end

local function error_handler(err)
    local level, info = 2, nil
    while true do
        info = getinfo(level, 'Sl')
        if info == nil or (info.what ~= 'C' and info.source ~= INTERNAL) then break end
        level = level + 1
    end
    if type(err) == 'userdata' then
        err = python_error(err, info)
    end
    if type(err) ~= 'table' then
        err = {err = 'ERR ' .. tostring(err)}
    end
    if info then
        err.source = info.source
        err.line = info.currentline
    end
    return err
end

-- Redis's pcall hands the script the `err` string of an error table.
local function caught(ok, ...)
    if ok then return ok, ... end
    local err = ...
    if type(err) == 'userdata' then
        err = python_error(err, getinfo(3, 'Sl'))
    end
    if type(err) == 'table' and type(err.err) == 'string' then
        err = err.err
    end
    return false, err
end

env.pcall = function(f, ...)
    return caught(pcall(f, ...))
end
env.xpcall = function(f, handler)
    return xpcall(f, function(err)
        if type(err) == 'userdata' then err = python_error(err, getinfo(2, 'Sl')) end
        return handler(err)
    end)
end
env.__redis__err__handler = error_handler

-- The redis library ---------------------------------------------------------------------------

local redis = {}

-- The functions that can raise are Python callables, which Lua sees as C functions: unlike a
-- Lua function, `return redis.call(...)` does not tail-call them away from the script's frame,
-- so errors name the script line as Redis's do.  `type` reports them as functions.
redis.call = py.call
redis.pcall = py.pcall

local python_functions = {}
for _, name in ipairs({'call', 'pcall', 'sha1hex', 'log', 'setresp', 'set_repl', 'acl_check_cmd'}) do
    python_functions[py[name]] = true
end
for _, lib in pairs(libs) do
    for key, value in pairs(lib) do
        if type(value) == 'userdata' and key ~= 'null' then python_functions[value] = true end
    end
end
env.type = function(value)
    local kind = type(value)
    if kind == 'userdata' and python_functions[value] then return 'function' end
    return kind
end

function redis.error_reply(message)
    if type(message) ~= 'string' and type(message) ~= 'number' then
        return {err = 'ERR wrong number or type of arguments'}
    end
    -- Redis prefixes a '-' when missing, then reads "-CODE text"; a single word gets the ERR code.
    message = tostring(message)
    if ssub(message, 1, 1) == '-' then message = ssub(message, 2) end
    local code, text = 'ERR', message
    local space = sfind(message, ' ', 1, true)
    if space then
        code, text = ssub(message, 1, space - 1), ssub(message, space + 1)
    end
    text = sgsub(sgsub(text, '^[\r\n]+', ''), '[\r\n]+$', '')
    return {err = code .. ' ' .. text}
end

function redis.status_reply(message)
    if type(message) ~= 'string' and type(message) ~= 'number' then
        return {err = 'ERR wrong number or type of arguments'}
    end
    return {ok = tostring(message)}
end

redis.sha1hex = py.sha1hex
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.log = py.log
redis.setresp = py.setresp
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_REPLICA, redis.REPL_SLAVE, redis.REPL_ALL = 0, 1, 2, 2, 3

redis.set_repl = py.set_repl

function redis.replicate_commands()
    return true
end

function redis.breakpoint()
    return false
end

function redis.debug()
end

redis.acl_check_cmd = py.acl_check_cmd

redis.REDIS_VERSION = py.version
redis.REDIS_VERSION_NUM = py.version_num

env.redis = protect(redis)

-- Runaway scripts ------------------------------------------------------------------------------
-- The count hook calls back into Python every `hook_every` instructions; Python answers other
-- clients while the script is busy and says whether the script must die.

local pyhook = py.hook
local hook_every = py.hook_every
local every_line = false
local hook
hook = function()
    local message = pyhook()
    if message then
        -- From now on fire on every line, so that a pcall around the loop cannot swallow the kill.
        every_line = true
        sethook(hook, 'l')
        error({err = message})
    end
end
sethook(hook, '', hook_every)

local function reset_hook()
    every_line = false
    sethook(hook, '', hook_every)
end

-- Entry points --------------------------------------------------------------------------------

local function compile(code, name)
    local f, err = loadstring(code, name)
    if f == nil then return nil, err end
    setfenv(f, globals)
    return f
end

-- KEYS and ARGV from the command's arguments; the common shapes take a single table constructor.
local function split_args(nkeys, ...)
    if nkeys == 0 then return {}, {...} end
    local n = select('#', ...)
    if n == nkeys then return {...}, {} end
    local args, keys, argv = {...}, {}, {}
    for i = 1, nkeys do keys[i] = args[i] end
    for i = nkeys + 1, n do argv[i - nkeys] = args[i] end
    return keys, argv
end

local function run_script(f, nkeys, ...)
    if every_line then reset_hook() end
    env.KEYS, env.ARGV = split_args(nkeys, ...)
    return xpcall(f, error_handler)
end

local function run_function(f, nkeys, ...)
    if every_line then reset_hook() end
    local keys, argv = split_args(nkeys, ...)
    return xpcall(function() return f(keys, argv) end, error_handler)
end

-- Libraries (FUNCTION LOAD): every library shares one globals proxy.  While a library's code
-- runs, its reads go to a minimal table (redis.register_function, redis.log and the version
-- constants, as Redis allows); afterwards the functions it registered see the full environment.

local load_redis = {
    log = redis.log, LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    REDIS_VERSION = redis.REDIS_VERSION, REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
}
setmetatable(load_redis, getmetatable(env))
local load_env = setmetatable({redis = protect(load_redis)}, getmetatable(env))
-- At run time functions see the eval environment, except that their redis table lacks the
-- eval-only debugger helpers (breakpoint, debug, replicate_commands).
local function_redis = {}
for key, value in pairs(redis) do function_redis[key] = value end
function_redis.breakpoint, function_redis.debug, function_redis.replicate_commands = nil, nil, nil
local function_env = setmetatable({redis = protect(function_redis)}, {__index = env})
local library_mt = {__index = function_env, __newindex = readonly_error, __metatable = {}}
local library_globals = setmetatable({}, library_mt)

local function load_library(code, name, register)
    local f, err = loadstring(code, name)
    if f == nil then return false, {err = 'ERR ' .. tostring(err)} end
    setfenv(f, library_globals)
    load_redis.register_function = register
    library_mt.__index = load_env
    local ok, result = xpcall(f, error_handler)
    library_mt.__index = function_env
    load_redis.register_function = nil
    return ok, result
end

-- Replies: a table a script returns is encoded to RESP here, in the caller's protocol, as
-- Redis's luaReplyToRedisReply does (rawget of err/ok/double/big_number/map/set/verbatim_string,
-- arrays up to the first nil, numbers truncated by the C cast that %d performs).  Doing it in Lua
-- costs one call instead of one Python-to-Lua lookup per field and element.

local rawget_, sformat, sgsub_, tconcat = rawget, string.format, string.gsub, table.concat

local function one_line(text)
    return (sgsub_(text, '[\r\n]', ' '))
end

local encode_value

local function encode_table(v, out, n, resp, script_resp)
    local field = rawget_(v, 'err')
    if type(field) == 'string' then
        n = n + 1; out[n] = '-' .. one_line(field) .. '\r\n'
        return n
    end
    field = rawget_(v, 'ok')
    if type(field) == 'string' then
        n = n + 1; out[n] = '+' .. field .. '\r\n'
        return n
    end
    field = rawget_(v, 'double')
    if type(field) == 'number' then
        local text = sformat('%.17g', field)
        n = n + 1
        if resp == 3 then out[n] = ',' .. text .. '\r\n' else out[n] = '$' .. #text .. '\r\n' .. text .. '\r\n' end
        return n
    end
    field = rawget_(v, 'big_number')
    if type(field) == 'string' then
        n = n + 1
        if resp == 3 then out[n] = '(' .. field .. '\r\n' else out[n] = '$' .. #field .. '\r\n' .. field .. '\r\n' end
        return n
    end
    field = rawget_(v, 'map')
    if type(field) == 'table' then
        local header = n + 1
        n = header
        local count = 0
        for key, value in next, field do
            n = encode_value(key, out, n, resp, script_resp)
            n = encode_value(value, out, n, resp, script_resp)
            count = count + 1
        end
        out[header] = resp == 3 and ('%' .. count .. '\r\n') or ('*' .. 2 * count .. '\r\n')
        return n
    end
    field = rawget_(v, 'set')
    if type(field) == 'table' then
        local header = n + 1
        n = header
        local count = 0
        for key in next, field do
            n = encode_value(key, out, n, resp, script_resp)
            count = count + 1
        end
        out[header] = (resp == 3 and '~' or '*') .. count .. '\r\n'
        return n
    end
    field = rawget_(v, 'verbatim_string')
    if type(field) == 'table' and type(rawget_(field, 'string')) == 'string' and type(rawget_(field, 'format')) == 'string' then
        local text, format = rawget_(field, 'string'), rawget_(field, 'format')
        n = n + 1
        if resp == 3 then
            out[n] = '=' .. (#text + 4) .. '\r\n' .. format .. ':' .. text .. '\r\n'
        else
            out[n] = '$' .. #text .. '\r\n' .. text .. '\r\n'
        end
        return n
    end
    local header = n + 1
    n = header
    local count = 0
    while true do
        local item = rawget_(v, count + 1)
        if item == nil then break end
        count = count + 1
        n = encode_value(item, out, n, resp, script_resp)
    end
    out[header] = '*' .. count .. '\r\n'
    return n
end

encode_value = function(v, out, n, resp, script_resp)
    local kind = type(v)
    n = n + 1
    if kind == 'string' then
        out[n] = '$' .. #v .. '\r\n' .. v .. '\r\n'
    elseif kind == 'number' then
        out[n] = sformat(':%d\r\n', v)
    elseif kind == 'table' then
        return encode_table(v, out, n - 1, resp, script_resp)
    elseif kind == 'boolean' and script_resp == 3 then
        if resp == 3 then out[n] = v and '#t\r\n' or '#f\r\n' else out[n] = v and ':1\r\n' or ':0\r\n' end
    elseif v == true then
        out[n] = ':1\r\n'
    else
        out[n] = resp == 3 and '_\r\n' or '$-1\r\n'
    end
    return n
end

-- The reply for a table a script returned: (true, message) for an error table, else (false, RESP).
local function encode_reply(v, resp, script_resp)
    local field = rawget_(v, 'err')
    if type(field) == 'string' then return true, field end
    local out = {}
    encode_table(v, out, 0, resp, script_resp)
    return false, tconcat(out)
end

return encode_reply, compile, run_script, run_function, load_library
