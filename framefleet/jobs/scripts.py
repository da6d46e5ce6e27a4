"""The Lua scripts that change a job's state in Redis, each one atomic.

Atomic scripts make every transition idempotent: a segment delivered twice, or reported twice
(its worker died between the report and the acknowledgement), is counted once, because the
counters only move when the segment's id enters the ``done`` or ``failed`` set. The job is
complete when ``done + failed == total``; the call that completes it gets 2 back and sets
``finished`` once.

Leases: a delivery that begins a segment takes its lease (a token and an expiry) and renews it
with heartbeats while it works. A second delivery of a segment whose lease is alive is a
duplicate and does nothing. A lease that expires (its worker was killed, its host lost) is
reaped by whoever notices first; `REAP` lets exactly one of them re-enqueue the segment (or fail
it, once it has used up its attempts), because it only acts while the lease is still expired.

Every script gets the keys of `framefleet.jobs.keys.JobKeys` as KEYS (named ``K.<field>`` by the
generated prelude) and ARGV[1..3] = segment id, now (epoch seconds), ttl (seconds); the job's
own keys' TTL is renewed on every change.
"""

from __future__ import annotations

from framefleet.jobs.keys import lua_prelude

_COMMON = (
    lua_prelude()
    + """
local seg, now, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local function touch()
  for i = 1, #KEYS do
    if KEYS[i] ~= K.leases then redis.call('EXPIRE', KEYS[i], ttl) end
  end
end
local function complete()
  local f = redis.call('HMGET', K.job, 'total', 'done', 'failed', 'finished')
  local total, done, failed = tonumber(f[1] or 0), tonumber(f[2] or 0), tonumber(f[3] or 0)
  touch()
  if not f[4] and done + failed >= total then
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
-- ARGV[4] worker hostname, ARGV[5] pid, ARGV[6] delivery token, ARGV[7] lease seconds,
-- ARGV[8] lease member, ARGV[9] the token of a holder known to be dead ('' if none).
-- Returns {attempt, flag}: flag 0 run it, 1 already done (a duplicate delivery), 2 unknown job
-- (expired or never created), 3 another delivery holds a live lease, 4 failed and not reset
-- (a stale delivery).
if redis.call('EXISTS', K.job) == 0 then return {0, 2} end
local attempts = tonumber(redis.call('HGET', K.attempts, seg) or 0)
if redis.call('SISMEMBER', K.done, seg) == 1 then return {attempts, 1} end
local state = redis.call('HGET', K.state, seg)
if state == 'failed' then return {attempts, 4} end
if state == 'running' and tonumber(redis.call('HGET', K.lease, seg) or 0) > now then
  local holder = redis.call('HGET', K.token, seg)
  if ARGV[9] == '' or holder ~= ARGV[9] then return {attempts, 3} end
end
local n = redis.call('HINCRBY', K.attempts, seg, 1)
local expiry = now + tonumber(ARGV[7])
redis.call('HSET', K.state, seg, 'running')
redis.call('HSET', K.worker, seg, ARGV[4])
redis.call('HSET', K.pid, seg, ARGV[5])
redis.call('HSET', K.token, seg, ARGV[6])
redis.call('HSET', K.lease, seg, expiry)
redis.call('HSET', K.beat, seg, now)
redis.call('ZADD', K.leases, expiry, ARGV[8])
redis.call('HSETNX', K.job, 'started', now)
touch()
return {n, 0}
"""
)

HEARTBEAT = (
    _COMMON
    + """
-- ARGV[4] delivery token, ARGV[5] lease seconds, ARGV[6] lease member.
-- Returns 1 (renewed) or 0 (this delivery no longer holds the lease: stop working on it).
if redis.call('HGET', K.token, seg) ~= ARGV[4] then return 0 end
if redis.call('HGET', K.state, seg) ~= 'running' then return 0 end
local expiry = now + tonumber(ARGV[5])
redis.call('HSET', K.lease, seg, expiry)
redis.call('HSET', K.beat, seg, now)
redis.call('ZADD', K.leases, expiry, ARGV[6])
return 1
"""
)

RELEASE = (
    _COMMON
    + """
-- ARGV[4] delivery token, ARGV[5] lease member. The delivery gives its segment back (it will be
-- retried later): queued again, lease released. Returns 1, or 0 when it held no lease.
if redis.call('HGET', K.token, seg) ~= ARGV[4] then return 0 end
release(ARGV[5])
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
-- ARGV[4] images, ARGV[5] bytes, ARGV[6] decode seconds, ARGV[7] lease member.
-- Returns 0 (already counted), 1 (counted) or 2 (counted, and the job is now complete).
if redis.call('EXISTS', K.job) == 0 then return 0 end
release(ARGV[7])
if redis.call('SADD', K.done, seg) == 0 then return 0 end
redis.call('HINCRBY', K.job, 'done', 1)
redis.call('HINCRBY', K.job, 'images', ARGV[4])
redis.call('HINCRBY', K.job, 'bytes', ARGV[5])
redis.call('HINCRBYFLOAT', K.job, 'decode_seconds', ARGV[6])
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
-- ARGV[4] error message, ARGV[5] lease member. A done segment stays done.
-- Returns as FINISH does.
if redis.call('EXISTS', K.job) == 0 then return 0 end
release(ARGV[5])
if redis.call('SISMEMBER', K.done, seg) == 1 then return 0 end
return fail(ARGV[4])
"""
)

REAP = (
    _COMMON
    + """
-- ARGV[4] lease member, ARGV[5] max attempts, ARGV[6] error for a segment out of attempts
-- (a format string: %d is replaced by the number of deliveries).
-- Acts only while the segment is running with an expired lease. Returns {0} (nothing to do),
-- {1, message JSON} (queued again: the caller publishes the message), or {2, 0|1|2}
-- (failed: out of attempts; the second value as FAIL returns).
if redis.call('EXISTS', K.job) == 0 then
  redis.call('ZREM', K.leases, ARGV[4])
  return {0}
end
if redis.call('HGET', K.state, seg) ~= 'running' then
  redis.call('ZREM', K.leases, ARGV[4])
  return {0}
end
local expiry = tonumber(redis.call('HGET', K.lease, seg) or 0)
if expiry > now then
  redis.call('ZADD', K.leases, expiry, ARGV[4])
  return {0}
end
release(ARGV[4])
local attempts = tonumber(redis.call('HGET', K.attempts, seg) or 0)
if attempts >= tonumber(ARGV[5]) then
  return {2, fail(string.format(ARGV[6], attempts))}
end
redis.call('HSET', K.state, seg, 'queued')
touch()
return {1, redis.call('HGET', K.messages, seg)}
"""
)

RESET_FAILED = (
    _COMMON
    + """
-- Put every failed segment back to 'queued' with its attempts cleared; the job is open again.
-- Returns the ids reset (the caller enqueues their messages next).
local ids = redis.call('SMEMBERS', K.failed)
for _, id in ipairs(ids) do
  redis.call('HSET', K.state, id, 'queued')
  redis.call('HDEL', K.attempts, id)
  redis.call('HDEL', K.error, id)
end
if #ids > 0 then
  redis.call('DEL', K.failed)
  redis.call('HINCRBY', K.job, 'failed', -#ids)
  redis.call('HDEL', K.job, 'finished', 'manifest_done')
end
touch()
return ids
"""
)
