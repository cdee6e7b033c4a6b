"""Lua scripts for every state change that must be atomic.

Each script touches only keys of one queue (they share the queue's hash tag)
and declares all of them in KEYS, so they run unchanged on a single server
and on a Redis Cluster.  Batch variants take many jobs per call because one
EVALSHA per batch is what makes enqueueing and acknowledging cheap.

Job record (hash ``{tag}:j:<id>``) fields:
  st  state: scheduled | queued | retrying | finished | failed | buried | cancelled
  pr  priority level     e   stream entry id while queued
  p   envelope while scheduled (the stream holds it while queued)
  r   encoded result     err error text          tb traceback
  w   set when a client waits for the result (the finisher then pushes to ``done``)
  n   attempt number     f   finish time (ms)    prog progress (encoded)
  starts  times a redelivered copy was started (what poison detection counts)
"""

from __future__ import annotations

from typing import Any

# Shared Lua helpers, prepended to the scripts that need them.
_HELPERS = """
local function notify(jobkey, donekey, ttl)
  if redis.call('HEXISTS', jobkey, 'w') == 1 then
    redis.call('RPUSH', donekey, '1')
    redis.call('PEXPIRE', donekey, ttl)
  end
end
local function pending(stream, group, eid)
  local ok, found = pcall(redis.call, 'XPENDING', stream, group, eid, eid, 1)
  return ok and #found > 0
end
local function wake(delayed, wakekey, score)
  local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if first[2] == nil or tonumber(first[2]) >= tonumber(score) then
    redis.call('LPUSH', wakekey, '1')
    redis.call('LTRIM', wakekey, 0, 0)
  end
end
"""

# KEYS: stream, delayed, wake, then per job its record (and its unique key
#       when unique_ms > 0).
# ARGV: now_ms, record_ttl_ms, priority, due_ms, unique_ms, then (id, envelope) per job.
# A batch shares task, due time and uniqueness window, which keeps the
# per-job arguments (and so the client's encoding work) to the minimum.
# Returns the id of each job (the existing job's id when a unique key deduplicated
# it), or without uniqueness just how many were added: the caller has the ids.
ENQUEUE = _HELPERS + """
local now, ttl, prio = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local due, uniq = tonumber(ARGV[4]), tonumber(ARGV[5])
local stride = 1
if uniq > 0 then stride = 2 end
local out = {}
local n = (#ARGV - 5) / 2
if due > now and n > 0 then wake(KEYS[2], KEYS[3], due) end
for i = 0, n - 1 do
  local id, env = ARGV[6 + i * 2], ARGV[7 + i * 2]
  local jobkey = KEYS[4 + i * stride]
  local existing = false
  if uniq > 0 then
    local ukey = KEYS[5 + i * stride]
    existing = redis.call('GET', ukey)
    if not existing then redis.call('SET', ukey, id, 'PX', uniq) end
  end
  if existing then
    out[#out + 1] = existing
  else
    if due > now then
      redis.call('ZADD', KEYS[2], due, id)
      redis.call('HSET', jobkey, 'st', 'scheduled', 'pr', prio, 'p', env)
    else
      local eid = redis.call('XADD', KEYS[1], '*', 'j', env)
      redis.call('HSET', jobkey, 'st', 'queued', 'pr', prio, 'e', eid)
    end
    -- a chain step (fixed id, unique) may have been ended before, then revived
    -- by a requeue of the step before it: its old outcome goes
    if uniq > 0 then redis.call('HDEL', jobkey, 'err', 'tb', 'r', 'f') end
    -- A scheduled record holds the envelope: it must outlive the wait.
    if due > now then redis.call('PEXPIRE', jobkey, due - now + ttl) else redis.call('PEXPIRE', jobkey, ttl) end
    out[#out + 1] = id
  end
end
if uniq == 0 then return n end
return out
"""

# KEYS: delayed, stream p0, p1, p2, then one job record per id.
# ARGV: now_ms, upcoming_count, ids...   Moves the given jobs that are due to
# their stream and returns {moved, {id, due_ms, ...}} with the next jobs of
# the set, so the scheduler knows what to pass (and when) next time: one
# round trip per wake-up, with every key declared.  Re-checking the score
# makes concurrent schedulers harmless: a job moves once, by whoever is first.
PROMOTE = """
local now = tonumber(ARGV[1])
local moved = 0
for i = 3, #ARGV do
  local id, jobkey = ARGV[i], KEYS[2 + i]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) <= now then
    redis.call('ZREM', KEYS[1], id)
    local env = redis.call('HGET', jobkey, 'p')
    if env then
      local prio = tonumber(redis.call('HGET', jobkey, 'pr') or '0')
      local eid = redis.call('XADD', KEYS[2 + prio], '*', 'j', env)
      redis.call('HSET', jobkey, 'st', 'queued', 'e', eid)
      redis.call('HDEL', jobkey, 'p')
      moved = moved + 1
    end
  end
end
return {moved, redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')}
"""

# KEYS: stream, delayed, dead, wake, cancel, then (job, done) per job.
# ARGV: group, now_ms, result_ttl_ms, dead_maxlen, record_ttl_ms, then
#       (entry_id, job_id, outcome, a, b, c) per job, where outcome is
#   ok       a=result
#   retry    a=new envelope, b=due_ms, c=error          (back to the delayed set)
#   bury     a=envelope, b=error, c=traceback           (dead-letter stream)
#   cancel                                              (cancelled while running)
#   requeue  a=envelope                                 (handed back on shutdown)
# An entry that is no longer pending was finished by another delivery (a
# reclaimed duplicate): its outcome is dropped so the record stays consistent.
# A job whose cancellation was asked for is cancelled instead of going back
# into play (retry, or handed back by a worker shutting down).  Returns the
# outcome applied to each job ('' when dropped), which is what chains follow.
FINISH = _HELPERS + """
local group, now, ttl, deadmax, recttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local applied = {}
local n = (#ARGV - 5) / 6
for i = 0, n - 1 do
  local a = 6 + i * 6
  local eid, id, outcome = ARGV[a], ARGV[a+1], ARGV[a+2]
  local jobkey, donekey = KEYS[6 + i * 2], KEYS[7 + i * 2]
  applied[i + 1] = ''
  if redis.call('XACK', KEYS[1], group, eid) == 1 then
    redis.call('XDEL', KEYS[1], eid)
    if redis.call('SREM', KEYS[5], id) == 1 and (outcome == 'retry' or outcome == 'requeue') then
      outcome = 'cancel'
    end
    applied[i + 1] = outcome
    if outcome == 'ok' then
      redis.call('HSET', jobkey, 'st', 'finished', 'r', ARGV[a+3], 'f', now)
      redis.call('HDEL', jobkey, 'e', 'err', 'tb')
      redis.call('PEXPIRE', jobkey, ttl)
      notify(jobkey, donekey, ttl)
    elseif outcome == 'retry' then
      local due = tonumber(ARGV[a+4])
      wake(KEYS[2], KEYS[4], due)
      redis.call('ZADD', KEYS[2], due, id)
      redis.call('HSET', jobkey, 'st', 'retrying', 'p', ARGV[a+3], 'err', ARGV[a+5])
      redis.call('HDEL', jobkey, 'e')
      -- the record holds the envelope until the retry is due: keep it that long
      local need = due - tonumber(now) + recttl
      if redis.call('PTTL', jobkey) < need then redis.call('PEXPIRE', jobkey, need) end
    elseif outcome == 'bury' then
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', deadmax, '*', 'id', id, 'j', ARGV[a+3],
                 'err', ARGV[a+4], 'tb', ARGV[a+5], 'at', now)
      redis.call('HSET', jobkey, 'st', 'buried', 'err', ARGV[a+4], 'tb', ARGV[a+5], 'f', now)
      redis.call('HDEL', jobkey, 'e')
      redis.call('PEXPIRE', jobkey, ttl)
      notify(jobkey, donekey, ttl)
    elseif outcome == 'cancel' then
      redis.call('HSET', jobkey, 'st', 'cancelled', 'f', now)
      redis.call('HDEL', jobkey, 'e')
      redis.call('PEXPIRE', jobkey, ttl)
      notify(jobkey, donekey, ttl)
    elseif outcome == 'requeue' then
      local new = redis.call('XADD', KEYS[1], '*', 'j', ARGV[a+3])
      redis.call('HSET', jobkey, 'e', new)
    end
  end
end
return applied
"""

# KEYS: job, delayed, cancel, stream p0, p1, p2, done.   ARGV: id, group, now_ms, ttl_ms
# Returns the state after the call: cancelled, cancelling (running: the
# worker stops it) or the unchanged terminal state.
CANCEL = _HELPERS + """
local st = redis.call('HGET', KEYS[1], 'st')
if not st then return false end
local function cancelled()
  redis.call('HSET', KEYS[1], 'st', 'cancelled', 'f', ARGV[3])
  redis.call('HDEL', KEYS[1], 'p', 'e')
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  notify(KEYS[1], KEYS[7], ARGV[4])
  return 'cancelled'
end
if st == 'scheduled' or st == 'retrying' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return cancelled()
end
if st == 'queued' then
  local eid = redis.call('HGET', KEYS[1], 'e')
  local stream = KEYS[4 + tonumber(redis.call('HGET', KEYS[1], 'pr') or '0')]
  if pending(stream, ARGV[2], eid) then
    redis.call('SADD', KEYS[3], ARGV[1])
    return 'cancelling'
  end
  redis.call('XDEL', stream, eid)
  return cancelled()
end
return st
"""

# KEYS: job, stream p0, p1, p2.  ARGV: group
# Returns {state, result, error, traceback, progress}; a queued job whose entry
# is pending in the group is reported as running.
STATUS = _HELPERS + """
local v = redis.call('HMGET', KEYS[1], 'st', 'r', 'err', 'tb', 'prog', 'e', 'pr')
if v[1] == 'queued' and v[6] then
  local stream = KEYS[2 + tonumber(v[7] or '0')]
  if pending(stream, ARGV[1], v[6]) then v[1] = 'running' end
end
return {v[1], v[2], v[3], v[4], v[5]}
"""

# KEYS: job.  ARGV: record_ttl_ms, future (1: the job may not exist yet).
# Marks a waiter unless the job is already over, atomically with respect to
# FINISH so that no wake-up is lost.  A job not created yet (a later step of a
# chain: future) gets a waiter-only record that expires like any other; for
# any other job a missing record means it is unknown or expired: 'missing'.
# Returns the state.
WAIT = """
local st = redis.call('HGET', KEYS[1], 'st')
if st == 'finished' or st == 'buried' or st == 'cancelled' then return st end
if not st and ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
redis.call('HSET', KEYS[1], 'w', '1')
if not st then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return st
"""

# KEYS: rate key.  ARGV: limit, period_ms, now_ms.
# GCRA (a token bucket kept as one timestamp): returns 0 when the call may
# run now, else the number of milliseconds until the slot reserved for it.
# A refused call reserves its slot too: each waiting job gets a slot of its
# own and runs once, at it, instead of the whole backlog being refused again
# and again at every free slot (and any one job starving).
RATE = """
local limit, period, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1)
local wait = new_tat - period - now
if wait > 0 then return math.ceil(wait) end
return 0
"""

# KEYS: dead, stream, job, done.  ARGV: dead entry id, envelope, priority, ttl_ms
# Moves one buried job back to its queue as a fresh attempt.  The wake-up
# token of its burial goes too: a caller waiting for the result would
# otherwise find it at once, again and again, until the new attempt ends.
REQUEUE_DEAD = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return false end
local eid = redis.call('XADD', KEYS[2], '*', 'j', ARGV[2])
redis.call('DEL', KEYS[4])
redis.call('HSET', KEYS[3], 'st', 'queued', 'e', eid, 'pr', ARGV[3])
redis.call('HDEL', KEYS[3], 'r', 'err', 'tb', 'f', 'p', 'starts')
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return eid
"""

# KEYS: job.  Counts a start of a redelivered job on its record (if the
# record still exists: never recreate one without its TTL).  Returns the count.
STARTED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'starts', 1)
"""

# KEYS: job, done.  ARGV: state (buried | cancelled), error, now_ms, ttl_ms
# Ends a job that will never run: a later step of a chain whose earlier step
# failed or was cancelled.  Its record may exist already (a caller waiting on
# it) or not; a job already over is left as it is.
RESOLVE = _HELPERS + """
local st = redis.call('HGET', KEYS[1], 'st')
if st == 'finished' or st == 'buried' or st == 'cancelled' then return st end
redis.call('HSET', KEYS[1], 'st', ARGV[1], 'err', ARGV[2], 'f', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
notify(KEYS[1], KEYS[2], ARGV[4])
return ARGV[1]
"""

_ALL = {
    "enqueue": ENQUEUE,
    "promote": PROMOTE,
    "finish": FINISH,
    "cancel": CANCEL,
    "status": STATUS,
    "wait": WAIT,
    "rate": RATE,
    "requeue_dead": REQUEUE_DEAD,
    "started": STARTED,
    "resolve": RESOLVE,
}


class Scripts:
    """The scripts registered on one client (EVALSHA with EVAL fallback)."""

    def __init__(self, client: Any) -> None:
        for name, text in _ALL.items():
            setattr(self, name, client.register_script(text))

    enqueue: Any
    promote: Any
    finish: Any
    cancel: Any
    status: Any
    wait: Any
    rate: Any
    requeue_dead: Any
    started: Any
    resolve: Any
