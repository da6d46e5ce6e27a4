"""The Lua scripts that change a job's state in Redis, each one atomic.

Atomic scripts make every transition idempotent: a segment delivered twice, or reported twice
(its worker died between the report and the acknowledgement), is counted once, because the
counters only move when the segment's id enters the ``done`` or ``failed`` set. The job is
complete when ``done + failed == total``; the call that completes it gets 2 back and sets
``finished`` once.

Every script takes the job's keys in `JOB_KEY_SUFFIXES` order as KEYS, and ARGV[1..3] =
segment id, now (epoch seconds), ttl (seconds); the keys' TTL is renewed on every change.
"""

from __future__ import annotations

JOB_KEY_SUFFIXES = (
    "",  # 1 job hash: spec, totals, counters, times
    ":segments",  # 2 segment id -> message JSON
    ":state",  # 3 segment id -> queued|running|done|failed|skipped
    ":attempts",  # 4 segment id -> deliveries so far
    ":worker",  # 5 segment id -> worker hostname (last delivery)
    ":pid",  # 6 segment id -> worker process id (last delivery)
    ":error",  # 7 segment id -> error message of a failed segment
    ":done",  # 8 set of segment ids counted done
    ":failed",  # 9 set of segment ids counted failed
)

_COMMON = """
local seg, now, ttl = ARGV[1], ARGV[2], ARGV[3]
local function touch()
  for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ttl) end
end
local function complete()
  local f = redis.call('HMGET', KEYS[1], 'total', 'done', 'failed', 'finished')
  local total, done, failed = tonumber(f[1] or 0), tonumber(f[2] or 0), tonumber(f[3] or 0)
  touch()
  if not f[4] and done + failed >= total then
    redis.call('HSET', KEYS[1], 'finished', now)
    return 2
  end
  return 1
end
"""

BEGIN = (
    _COMMON
    + """
-- ARGV[4] worker hostname, ARGV[5] pid. Returns {attempt, flag}: flag 0 run it,
-- 1 already done (a duplicate delivery), 2 unknown job (expired or never created).
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 2} end
if redis.call('SISMEMBER', KEYS[8], seg) == 1 then
  return {tonumber(redis.call('HGET', KEYS[4], seg) or 0), 1}
end
local n = redis.call('HINCRBY', KEYS[4], seg, 1)
redis.call('HSET', KEYS[3], seg, 'running')
redis.call('HSET', KEYS[5], seg, ARGV[4])
redis.call('HSET', KEYS[6], seg, ARGV[5])
redis.call('HSETNX', KEYS[1], 'started', now)
touch()
return {n, 0}
"""
)

FINISH = (
    _COMMON
    + """
-- ARGV[4] images, ARGV[5] bytes, ARGV[6] decode seconds.
-- Returns 0 (already counted), 1 (counted) or 2 (counted, and the job is now complete).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SADD', KEYS[8], seg) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'done', 1)
redis.call('HINCRBY', KEYS[1], 'images', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[5])
redis.call('HINCRBYFLOAT', KEYS[1], 'decode_seconds', ARGV[6])
redis.call('HSET', KEYS[3], seg, 'done')
redis.call('HDEL', KEYS[7], seg)
if redis.call('SREM', KEYS[9], seg) == 1 then
  redis.call('HINCRBY', KEYS[1], 'failed', -1)
end
return complete()
"""
)

FAIL = (
    _COMMON
    + """
-- ARGV[4] error message. A done segment stays done. Returns as FINISH does.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SISMEMBER', KEYS[8], seg) == 1 then return 0 end
redis.call('HSET', KEYS[3], seg, 'failed')
redis.call('HSET', KEYS[7], seg, ARGV[4])
if redis.call('SADD', KEYS[9], seg) == 0 then
  touch()
  return 0
end
redis.call('HINCRBY', KEYS[1], 'failed', 1)
return complete()
"""
)

RESET_FAILED = (
    _COMMON
    + """
-- Put every failed segment back to 'queued' with its attempts cleared; the job is open again.
-- Returns the ids reset (the caller enqueues their messages next).
local ids = redis.call('SMEMBERS', KEYS[9])
for _, id in ipairs(ids) do
  redis.call('HSET', KEYS[3], id, 'queued')
  redis.call('HDEL', KEYS[4], id)
  redis.call('HDEL', KEYS[7], id)
end
if #ids > 0 then
  redis.call('DEL', KEYS[9])
  redis.call('HINCRBY', KEYS[1], 'failed', -#ids)
  redis.call('HDEL', KEYS[1], 'finished', 'manifest_done')
end
touch()
return ids
"""
)
