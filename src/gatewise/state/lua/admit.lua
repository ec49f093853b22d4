-- admit: check every counter, and charge them all only if all pass (gatewise.state.redis).
--
-- KEYS[i]: the i-th check's key.
-- ARGV[1]: now in microseconds, or '' to read Redis's clock (TIME, minus EPOCH below).
-- ARGV[2]: a token unique to this call (slot members are token..':'..i).
-- ARGV[2 + i]: the i-th check, its fields separated by spaces (few arguments are cheap
-- to send and to parse):
--   'r limit period_us cost'        rate (GCRA in whole ticks, see below)
--   'q limit cost ttl_ms hard'      quota (hard: 1 or 0)
--   's limit ttl_us'                concurrency slots (a sorted set of expiries)
-- Returns one string of integers separated by spaces: the refused check's index (0:
-- allowed), retry_after_us, then per check: remaining, reset_after_us, used.
-- Times are whole microseconds; Lua numbers are doubles, exact below 2^53.

local EPOCH = 1735689600 -- 2025-01-01T00:00:00Z: keeps microsecond counts small

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = (tonumber(t[1]) - EPOCH) * 1000000 + tonumber(t[2])
end
local token = ARGV[2]

local rates, quotas, slots = {}, {}, {} -- staged values, so a key named twice sees the first
local expiries = {} -- rate key -> µs from now until it may go

-- Numbers passed to redis.call are formatted with %.14g (lossy above 1e14): format them.
local function int(x)
  return string.format('%.0f', x)
end

local specs = {}
for i = 1, #KEYS do
  local spec = {}
  for field in string.gmatch(ARGV[2 + i], '%S+') do spec[#spec + 1] = field end
  specs[i] = spec
end

local function arg(i, j)
  return specs[i][j]
end

-- A rate key holds 'phase:offset': the µs its TAT was last reset to now, and the TAT
-- minus that phase, a whole number of ticks T = period / limit times T. Counting whole
-- ticks from a phase keeps every comparison exact in doubles (the memory store counts in
-- 1/limit µs instead); both stores are tested against one exact rational reference.
local function rate_position(key, interval)
  local staged = rates[key]
  local value = staged or redis.call('GET', key)
  if value then
    local phase, offset = string.match(value, '^(-?%d+):(.+)$')
    phase = tonumber(phase)
    local now_t = math.floor((now - phase) / interval)
    local tat = math.floor(tonumber(offset) / interval + 0.5)
    if tat > now_t then return phase, tat, now_t end
  end
  return now, 0, 0
end

local function stored_used(key)
  local staged = quotas[key]
  if staged then return staged end
  return tonumber(redis.call('GET', key)) or 0
end

local function live_slots(key)
  local staged = slots[key]
  if staged then return staged end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now))
  return {count = redis.call('ZCARD', key), adds = {}}
end

-- Checks check i; charges it (staged) when charge is true. Returns the state triple and,
-- when refused, the retry-after in microseconds.
local function check(i, charge)
  local key, kind = KEYS[i], arg(i, 1)
  local limit = tonumber(arg(i, 2))
  if kind == 'r' then
    local period = tonumber(arg(i, 3))
    local cost = charge and tonumber(arg(i, 4)) or 0
    local interval = period / limit
    local phase, tat, now_t = rate_position(key, interval)
    tat = tat + cost
    if charge and tat - now_t > limit then
      return nil, math.max(0, math.ceil(phase + (tat - limit) * interval - now))
    end
    if charge then
      rates[key] = int(phase) .. ':' .. string.format('%.17g', tat * interval)
      expiries[key] = math.max(now, math.ceil(phase + tat * interval)) + period - now
    end
    return {math.max(0, limit - (tat - now_t)), math.max(0, math.ceil(phase + tat * interval - now)), 0}
  elseif kind == 'q' then
    local cost = charge and tonumber(arg(i, 3)) or 0
    local used = stored_used(key) + cost
    if charge and arg(i, 5) == '1' and used > limit then return nil, 0 end
    if charge then quotas[key] = used end
    return {math.max(0, limit - used), 0, used}
  else
    local taken = live_slots(key)
    if not charge then return {math.max(0, limit - taken.count), 0, 0} end
    if taken.count >= limit then return nil, 0 end
    local adds = {}
    for _, add in ipairs(taken.adds) do adds[#adds + 1] = add end
    adds[#adds + 1] = {now + tonumber(arg(i, 3)), token .. ':' .. i}
    slots[key] = {count = taken.count + 1, adds = adds}
    return {limit - taken.count - 1, 0, 0}
  end
end

local out = {0, 0}
for i = 1, #KEYS do
  local state, retry = check(i, true)
  if not state then
    -- Refused: charge nothing, and report every counter as it stands.
    rates, quotas, slots = {}, {}, {}
    out = {i, int(retry)}
    for j = 1, #KEYS do
      local peek = check(j, false)
      out[#out + 1], out[#out + 2], out[#out + 3] = int(peek[1]), int(peek[2]), int(peek[3])
    end
    return table.concat(out, ' ')
  end
  out[#out + 1], out[#out + 2], out[#out + 3] = int(state[1]), int(state[2]), int(state[3])
end

for i = 1, #KEYS do
  local key, kind = KEYS[i], arg(i, 1)
  if kind == 'r' and rates[key] then
    redis.call('SET', key, rates[key], 'PX', int(math.ceil(expiries[key] / 1000)))
    rates[key] = nil
  elseif kind == 'q' and quotas[key] then
    redis.call('SET', key, int(quotas[key]), 'PX', arg(i, 4))
    quotas[key] = nil
  elseif kind == 's' and slots[key] then
    for _, add in ipairs(slots[key].adds) do
      redis.call('ZADD', key, int(add[1]), add[2])
    end
    redis.call('PEXPIRE', key, int(math.ceil(tonumber(arg(i, 3)) / 1000)))
    slots[key] = nil
  end
end
return table.concat(out, ' ')
