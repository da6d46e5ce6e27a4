"""The Lua scripts that change a job's state in Redis, each one atomic.

Atomic scripts make every transition idempotent: a segment delivered twice, or reported twice
(its worker died between the report and the acknowledgement), is counted once, because the
counters only move when the segment's id enters the ``done`` or ``failed`` set. The job is
complete when ``done + failed == total``; the call that completes it gets 2 back and sets
``finished`` once. A later change to the counts of a finished job (a segment failed by the
reaper that its late worker then finishes) gets 2 back too: the job manifest is out of date and
must be written again.

Leases: a delivery that begins a segment takes its lease (a token and an expiry) and renews it
with heartbeats while it works. A second delivery of a segment whose lease is alive is a
duplicate and does nothing. A lease that expires (its worker was killed, its host lost) is
reaped by whoever notices first; `REAP` lets exactly one of them re-enqueue the segment (or fail
it, once it has used up its attempts), because it only acts while the lease is still expired.
A delivery reports with its token, so that a stale one (its lease was reaped and the segment
handed to another delivery) cannot break the live one: see `FINISH` and `FAIL`.

Time is Redis's own (``TIME``), never the caller's: the hosts' clocks may disagree, and a lease
must expire at the same moment for the worker that renews it and for every reaper.

Every script gets the keys of `framefleet.jobs.keys.JobKeys` as KEYS (named ``K.<field>`` by the
generated prelude) and ARGV[1..2] = segment id, ttl (seconds); the job's own keys' TTL is renewed
on every change.
"""

from __future__ import annotations

from framefleet.jobs.keys import lua_prelude

_COMMON = (
    lua_prelude()
    + """
local seg, ttl = ARGV[1], ARGV[2]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local function touch()
  for i = 1, #KEYS do
    if KEYS[i] ~= K.leases then redis.call('EXPIRE', KEYS[i], ttl) end
  end
end
local function complete()
  local f = redis.call('HMGET', K.job, 'total', 'done', 'failed', 'finished')
  local total, done, failed = tonumber(f[1] or 0), tonumber(f[2] or 0), tonumber(f[3] or 0)
  touch()
  if f[4] then return 2 end  -- finished already: its manifest no longer matches the counts
  if done + failed >= total then
    redis.call('HSET', K.job, 'finished', now)
    return 2
  end
  return 1
end
local function release(member)
  redis.call('HDEL', K.token, seg)
  redis.call('HDEL', K.lease, seg)
  redis.call('ZREM', K.leases, member)
end
-- Whether a delivery other than `token` holds a live lease on the segment.
local function held_by_other(token)
  local holder = redis.call('HGET', K.token, seg)
  if not holder or holder == token then return false end
  if redis.call('HGET', K.state, seg) ~= 'running' then return false end
  return tonumber(redis.call('HGET', K.lease, seg) or 0) > now
end
local function fail(error)
  redis.call('HSET', K.state, seg, 'failed')
  redis.call('HSET', K.error, seg, error)
  if redis.call('SADD', K.failed, seg) == 0 then
    touch()
    return 0
  end
  redis.call('HINCRBY', K.job, 'failed', 1)
  return complete()
end
"""
)

BEGIN = (
    _COMMON
    + """
-- ARGV[3] worker hostname, ARGV[4] pid, ARGV[5] delivery token, ARGV[6] lease seconds,
-- ARGV[7] lease member, ARGV[8] the token of a holder known to be dead ('' if none).
-- Returns {attempt, flag}: flag 0 run it, 1 already done (a duplicate delivery), 2 unknown job
-- (expired or never created), 3 another delivery holds a live lease, 4 failed and not reset
-- (a stale delivery).
if redis.call('EXISTS', K.job) == 0 then return {0, 2} end
local attempts = tonumber(redis.call('HGET', K.attempts, seg) or 0)
if redis.call('SISMEMBER', K.done, seg) == 1 then return {attempts, 1} end
local state = redis.call('HGET', K.state, seg)
if state == 'failed' then return {attempts, 4} end
if held_by_other(ARGV[5]) then
  if ARGV[8] == '' or redis.call('HGET', K.token, seg) ~= ARGV[8] then return {attempts, 3} end
end
local n = redis.call('HINCRBY', K.attempts, seg, 1)
local expiry = now + tonumber(ARGV[6])
redis.call('HSET', K.state, seg, 'running')
redis.call('HSET', K.worker, seg, ARGV[3])
redis.call('HSET', K.pid, seg, ARGV[4])
redis.call('HSET', K.token, seg, ARGV[5])
redis.call('HSET', K.lease, seg, expiry)
redis.call('HSET', K.beat, seg, now)
redis.call('ZADD', K.leases, expiry, ARGV[7])
redis.call('HSETNX', K.job, 'started', now)
touch()
return {n, 0}
"""
)

HEARTBEAT = (
    _COMMON
    + """
-- ARGV[3] delivery token, ARGV[4] lease seconds, ARGV[5] lease member.
-- Returns 1 (renewed) or 0 (this delivery no longer holds the lease: stop working on it).
if redis.call('HGET', K.token, seg) ~= ARGV[3] then return 0 end
if redis.call('HGET', K.state, seg) ~= 'running' then
  -- Counted by a stale delivery while this one ran (see FINISH): its lease is over.
  release(ARGV[5])
  return 0
end
local expiry = now + tonumber(ARGV[4])
redis.call('HSET', K.lease, seg, expiry)
redis.call('HSET', K.beat, seg, now)
redis.call('ZADD', K.leases, expiry, ARGV[5])
return 1
"""
)

RELEASE = (
    _COMMON
    + """
-- ARGV[3] delivery token, ARGV[4] lease member. The delivery gives its segment back (it will be
-- retried later): queued again, lease released. Returns 1, or 0 when it held no lease.
if redis.call('HGET', K.token, seg) ~= ARGV[3] then return 0 end
release(ARGV[4])
if redis.call('HGET', K.state, seg) == 'running' then
  redis.call('HSET', K.state, seg, 'queued')
end
touch()
return 1
"""
)

FINISH = (
    _COMMON
    + """
-- ARGV[3] images, ARGV[4] bytes, ARGV[5] decode seconds, ARGV[6] lease member, ARGV[7] the
-- delivery's token ('' from a caller that holds no lease).
-- Returns 0 (already counted), 1 (counted) or 2 (counted, and the job is now complete, or was
-- complete already and its manifest must be written again).
--
-- A stale delivery (its lease reaped, the segment handed to another delivery) still counts the
-- segment done: its images and its manifest are complete, written atomically, the same bytes
-- any delivery writes. It does not touch the live holder's lease: the holder's next heartbeat
-- finds the segment done, releases its own lease and stops at its next image. What the holder
-- wrote until then is the same images, atomically replaced, so stopping it loses nothing; were
-- its lease released here instead, it would stop all the same, but a reaper could not tell its
-- lease from a dead one's.
if redis.call('EXISTS', K.job) == 0 then return 0 end
if not held_by_other(ARGV[7]) then release(ARGV[6]) end
if redis.call('SADD', K.done, seg) == 0 then
  touch()
  return 0
end
redis.call('HINCRBY', K.job, 'done', 1)
redis.call('HINCRBY', K.job, 'images', ARGV[3])
redis.call('HINCRBY', K.job, 'bytes', ARGV[4])
redis.call('HINCRBYFLOAT', K.job, 'decode_seconds', ARGV[5])
redis.call('HSET', K.state, seg, 'done')
redis.call('HDEL', K.error, seg)
if redis.call('SREM', K.failed, seg) == 1 then
  redis.call('HINCRBY', K.job, 'failed', -1)
end
return complete()
"""
)

FAIL = (
    _COMMON
    + """
-- ARGV[3] error message, ARGV[4] lease member, ARGV[5] the delivery's token ('' from a caller
-- that holds no lease). A done segment stays done. While another delivery holds a live lease,
-- nothing changes and 0 is returned: this one is stale (its lease was reaped and the segment
-- handed on), and its failure (a hang that hit the time limit) is not the live delivery's.
-- Otherwise returns as FINISH does.
if redis.call('EXISTS', K.job) == 0 then return 0 end
if held_by_other(ARGV[5]) then return 0 end
release(ARGV[4])
if redis.call('SISMEMBER', K.done, seg) == 1 then return 0 end
return fail(ARGV[3])
"""
)

REAP = (
    _COMMON
    + """
-- ARGV[3] lease member, ARGV[4] max attempts, ARGV[5] error for a segment out of attempts
-- (a format string: %d is replaced by the number of deliveries).
-- Acts only while the segment is running with an expired lease. Returns {0} (nothing to do),
-- {1, message JSON} (queued again: the caller publishes the message), or {2, 0|1|2}
-- (failed: out of attempts; the second value as FAIL returns).
if redis.call('EXISTS', K.job) == 0 then
  redis.call('ZREM', K.leases, ARGV[3])
  return {0}
end
if redis.call('HGET', K.state, seg) ~= 'running' then
  redis.call('ZREM', K.leases, ARGV[3])
  return {0}
end
local expiry = tonumber(redis.call('HGET', K.lease, seg) or 0)
if expiry > now then
  redis.call('ZADD', K.leases, expiry, ARGV[3])
  return {0}
end
release(ARGV[3])
local attempts = tonumber(redis.call('HGET', K.attempts, seg) or 0)
if attempts >= tonumber(ARGV[4]) then
  return {2, fail(string.format(ARGV[5], attempts))}
end
redis.call('HSET', K.state, seg, 'queued')
touch()
return {1, redis.call('HGET', K.messages, seg)}
"""
)

RESET_FAILED = (
    _COMMON
    + """
-- ARGV[3] the start of the error of a segment that was never planned (its recording could not
-- be): those stay failed, since their message is only a stand-in that cannot be run.
-- Put every other failed segment back to 'queued' with its attempts cleared; the job is open
-- again. Returns the ids reset (the caller enqueues their messages next).
local ids = {}
for _, id in ipairs(redis.call('SMEMBERS', K.failed)) do
  local error = redis.call('HGET', K.error, id) or ''
  if string.sub(error, 1, #ARGV[3]) ~= ARGV[3] then
    ids[#ids + 1] = id
    redis.call('SREM', K.failed, id)
    redis.call('HSET', K.state, id, 'queued')
    redis.call('HDEL', K.attempts, id)
    redis.call('HDEL', K.error, id)
  end
end
if #ids > 0 then
  redis.call('HINCRBY', K.job, 'failed', -#ids)
  redis.call('HDEL', K.job, 'finished', 'manifest_done')
end
touch()
return ids
"""
)

REGISTER_WORKER = """
-- KEYS[1] the workers zset, KEYS[2] their queues hash; ARGV[1] hostname, ARGV[2] its queues
-- (a,b), ARGV[3] seconds after which a silent worker is forgotten.
-- A worker's heartbeat, in Redis's time; workers silent for longer are pruned (names change with
-- every container, so without pruning both keys grow for ever).
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local horizon = now - tonumber(ARGV[3])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', horizon)
for _, name in ipairs(gone) do
  redis.call('ZREM', KEYS[1], name)
  redis.call('HDEL', KEYS[2], name)
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return #gone
"""
