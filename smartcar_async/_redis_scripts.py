"""The Lua scripts behind :mod:`smartcar_async.redis`, one atomic step each.

Conventions shared by every script that needs a time:

- ``KEYS[1]`` is the fleet's clock key and ``ARGV[1]`` a frozen time for tests
  (empty in production). ``clock()`` reads Redis' own ``TIME`` and keeps it
  monotonic with a high-water mark in the clock key, so a step back of the
  Redis host's clock stops time (buckets refill later, leases last longer:
  the safe side) instead of reversing it. The workers' clocks are never read.
- Times are integral microseconds since the epoch. Lua 5.1 numbers are
  doubles, exact for integers to 2**53 (year 2255 in microseconds), but
  ``tostring`` and ``..`` print only 14 digits: every number that goes back
  to Redis goes through ``fmt`` (``%.0f``).
- Numbers come back to the caller as strings (``fmt``), never as Lua numbers,
  which Redis would truncate to integers anyway.
"""

from __future__ import annotations

from typing import Final

_PRELUDE: Final = """
local function fmt(n) return string.format('%.0f', n) end
local function clock()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local seen = tonumber(redis.call('GET', KEYS[1]) or '0')
  if now <= seen then return seen end
  redis.call('SET', KEYS[1], fmt(now))
  return now
end
-- The microseconds a gate (a hash with 'until') stays closed after now; 0 if open.
local function gate_left(key, now)
  local untl = tonumber(redis.call('HGET', key, 'until') or '0')
  if untl > now then return untl - now end
  return 0
end
-- GCRA with reservation: the theoretical arrival time (TAT) moves on by cost
-- intervals at every call, so a later caller always gets a later time.
local function reserve(key, now, cost, interval, capacity)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new_tat = tat + cost * interval
  local wait = new_tat - capacity * interval - now
  if wait < 0 then wait = 0 end
  -- Once the TAT is past the bucket is full again: the key is not needed.
  redis.call('SET', key, fmt(new_tat), 'PXAT', fmt(math.ceil(new_tat / 1000)))
  return wait
end
"""

#: Current (monotonic) Redis time. KEYS: clock. ARGV: frozen.
NOW: Final = _PRELUDE + "return fmt(clock())\n"

#: KEYS: clock, bucket. ARGV: frozen, cost, interval_us, capacity.
#: Returns {wait_us, now_us}.
ACQUIRE: Final = (
    _PRELUDE
    + """
local now = clock()
local wait = reserve(KEYS[2], now, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
return {fmt(wait), fmt(now)}
"""
)

#: Tokens the bucket would grant now, without taking any.
#: KEYS: clock, bucket. ARGV: frozen, interval_us, capacity. Returns {available*interval, now}.
PEEK: Final = (
    _PRELUDE
    + """
local now = clock()
local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
if tat < now then tat = now end
local room = tonumber(ARGV[3]) * tonumber(ARGV[2]) - (tat - now)
if room < 0 then room = 0 end
return {fmt(room), fmt(now)}
"""
)

#: Gates first, then the bucket, in one step: while a gate is closed nothing is reserved.
#: KEYS: clock, app gate, vehicle gate (or the app gate again), bucket.
#: ARGV: frozen, cost, interval_us, capacity.
#: Returns {wait_us, what}: what is 'app' or 'vehicle' (a gate; nothing reserved)
#: or 'bucket' (reserved; wait may be 0).
ADMIT: Final = (
    _PRELUDE
    + """
local now = clock()
local app = gate_left(KEYS[2], now)
local vehicle = gate_left(KEYS[3], now)
if app > 0 or vehicle > 0 then
  if app >= vehicle then return {fmt(app), 'app'} end
  return {fmt(vehicle), 'vehicle'}
end
local wait = reserve(KEYS[4], now, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
return {fmt(wait), 'bucket'}
"""
)

#: Close a gate until now + seconds unless it already closes later.
#: KEYS: clock, gate. ARGV: frozen, duration_us, code. Returns {1 if moved else 0, left_us}.
BLOCK: Final = (
    _PRELUDE
    + """
local now = clock()
local untl = now + tonumber(ARGV[2])
local current = tonumber(redis.call('HGET', KEYS[2], 'until') or '0')
if current >= untl then return {0, fmt(current - now)} end
redis.call('HSET', KEYS[2], 'until', fmt(untl), 'code', ARGV[3])
redis.call('PEXPIREAT', KEYS[2], fmt(math.ceil(untl / 1000)))
return {1, fmt(untl - now)}
"""
)

#: KEYS: clock, app gate, vehicle gate (or the app gate again). ARGV: frozen.
#: Returns the microseconds until both are open.
BLOCKED_FOR: Final = (
    _PRELUDE
    + """
local now = clock()
return fmt(math.max(gate_left(KEYS[2], now), gate_left(KEYS[3], now)))
"""
)

#: Compare-and-delete. KEYS: lock. ARGV: owner. Returns 1 if it was ours.
UNLOCK: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: Compare-and-extend. KEYS: lock. ARGV: owner, ttl_ms. Returns 1 if still ours.
RELOCK: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

#: The token compare-and-swap. KEYS: tokens. ARGV: replacing ('' = nothing stored,
#: else '=' .. token), access, refresh, access expiry, refresh expiry ('' = unknown).
SAVE_TOKENS: Final = """
local stored = redis.call('HGET', KEYS[1], 'refresh')
if ARGV[1] == '' then
  if stored then return 0 end
elseif stored ~= string.sub(ARGV[1], 2) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'access', ARGV[2], 'refresh', ARGV[3], 'access_expires_at', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'refresh_expires_at', ARGV[5]) end
return 1
"""

#: First loader wins. KEYS: clock, schedule, meta.
#: ARGV: frozen, digest, rounds, first due_us ('' = now), vehicle ids...
#: Returns 1 loaded, 0 already loaded with the same list, -1 loaded with another list
#: or another rounds count.
LOAD_SCHEDULE: Final = (
    _PRELUDE
    + """
local now = clock()
local digest = redis.call('HGET', KEYS[3], 'digest')
if digest then
  if digest == ARGV[2] and redis.call('HGET', KEYS[3], 'rounds') == ARGV[3] then return 0 end
  return -1
end
local due = now
if ARGV[4] ~= '' then due = tonumber(ARGV[4]) end
local score = fmt(due)
for i = 5, #ARGV do redis.call('ZADD', KEYS[2], score, ARGV[i]) end
redis.call('HSET', KEYS[3], 'digest', ARGV[2], 'rounds', ARGV[3],
           'vehicles', fmt(#ARGV - 4), 'loaded_at', fmt(now))
return 1
"""
)

# A lease's info field: "<due_us> <worker id>" (the id may hold spaces: split at the first).
_LEASES: Final = """
local function lease_due(info)
  return tonumber(string.sub(info, 1, string.find(info, ' ', 1, true) - 1))
end
local function lease_worker(info)
  return string.sub(info, string.find(info, ' ', 1, true) + 1)
end
-- Expired leases (until <= now) go back to the schedule at their old due time.
local function return_expired(schedule, leases, info, now)
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', fmt(now))
  for _, vid in ipairs(expired) do
    local held = redis.call('HGET', info, vid)
    local due = now
    if held then due = lease_due(held) end
    redis.call('ZADD', schedule, fmt(due), vid)
    redis.call('ZREM', leases, vid)
    redis.call('HDEL', info, vid)
  end
  return #expired
end
"""

#: KEYS: clock, schedule, leases, lease info, rounds.
#: ARGV: frozen, worker, ahead_us, max_n, lease_us.
#: Returns {now, lease until, reclaimed, vid, due, polls done, vid, due, done, ...}.
CLAIM: Final = (
    _PRELUDE
    + _LEASES
    + """
local now = clock()
local worker = ARGV[2]
local untl = fmt(now + tonumber(ARGV[5]))
local reclaimed = return_expired(KEYS[2], KEYS[3], KEYS[4], now)
local result = {fmt(now), untl, fmt(reclaimed)}
local limit = tonumber(ARGV[4])
if limit > 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', fmt(now + tonumber(ARGV[3])),
                         'WITHSCORES', 'LIMIT', 0, limit)
  for i = 1, #due, 2 do
    local vid = due[i]
    local score = fmt(tonumber(due[i + 1]))
    redis.call('ZREM', KEYS[2], vid)
    redis.call('ZADD', KEYS[3], untl, vid)
    redis.call('HSET', KEYS[4], vid, score .. ' ' .. worker)
    table.insert(result, vid)
    table.insert(result, score)
    table.insert(result, redis.call('HGET', KEYS[5], vid) or '0')
  end
end
return result
"""
)

#: Complete leases still held (until > now) by this worker: count the poll, and
#: schedule the next one unless the vehicle has had its rounds.
#: KEYS: clock, schedule, leases, lease info, rounds, meta.
#: ARGV: frozen, worker, then per vehicle: vid, next due_us, claimed due_us ('' = any).
#: The claimed due names the lease a poll was made under: a reschedule whose first
#: attempt took effect but whose answer was lost (Redis went down) is sent again, and
#: by then the same worker may hold a NEW lease of that vehicle, claimed at the due
#: time that first attempt set; counting the old poll against it would end a round
#: nobody polled.
#: Returns one entry per vehicle: its polls done, or -1 if refused.
RESCHEDULE: Final = (
    _PRELUDE
    + _LEASES
    + """
local now = clock()
local worker = ARGV[2]
local target = tonumber(redis.call('HGET', KEYS[6], 'rounds') or '0')
local out = {}
for i = 3, #ARGV, 3 do
  local vid = ARGV[i]
  local held = redis.call('HGET', KEYS[4], vid)
  local untl = redis.call('ZSCORE', KEYS[3], vid)
  local claimed = ARGV[i + 2]
  local done = -1
  if held and untl and tonumber(untl) > now and lease_worker(held) == worker
     and (claimed == '' or lease_due(held) == tonumber(claimed)) then
    redis.call('ZREM', KEYS[3], vid)
    redis.call('HDEL', KEYS[4], vid)
    done = redis.call('HINCRBY', KEYS[5], vid, 1)
    if target == 0 or done < target then redis.call('ZADD', KEYS[2], ARGV[i + 1], vid) end
  end
  table.insert(out, done)
end
return out
"""
)

#: Give leases back unpolled, at their old due time (a worker leaving).
#: KEYS: clock, schedule, leases, lease info. ARGV: frozen, worker, vids... (none: all of
#: the worker's). Returns how many were given back.
RELEASE: Final = (
    _PRELUDE
    + _LEASES
    + """
local worker = ARGV[2]
local vids = {}
if #ARGV > 2 then
  for i = 3, #ARGV do table.insert(vids, ARGV[i]) end
else
  local all = redis.call('HGETALL', KEYS[4])
  for i = 1, #all, 2 do
    if lease_worker(all[i + 1]) == worker then table.insert(vids, all[i]) end
  end
end
local n = 0
for _, vid in ipairs(vids) do
  local held = redis.call('HGET', KEYS[4], vid)
  if held and lease_worker(held) == worker then
    redis.call('ZADD', KEYS[2], fmt(lease_due(held)), vid)
    redis.call('ZREM', KEYS[3], vid)
    redis.call('HDEL', KEYS[4], vid)
    n = n + 1
  end
end
return n
"""
)

#: Extend leases still held by this worker. KEYS: clock, leases, lease info.
#: ARGV: frozen, worker, lease_us, vids... Returns how many were extended.
RENEW: Final = (
    _PRELUDE
    + _LEASES
    + """
local now = clock()
local worker = ARGV[2]
local untl = fmt(now + tonumber(ARGV[3]))
local n = 0
for i = 4, #ARGV do
  local vid = ARGV[i]
  local held = redis.call('HGET', KEYS[3], vid)
  local current = redis.call('ZSCORE', KEYS[2], vid)
  if held and current and tonumber(current) > now and lease_worker(held) == worker then
    redis.call('ZADD', KEYS[2], untl, vid)
    n = n + 1
  end
end
return n
"""
)
