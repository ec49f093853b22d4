-- admit: settle finished calls, then check every counter, and charge them all only if all
-- pass (gatewise.state.redis). Runs after common.lua (now, int(), settle()).
--
-- ARGV[2]: a token unique to this call (slot members are token..':'..i).
-- ARGV[3]: 'n_adjust n_release': corrections and slot releases of finished calls that this
--   call carries (one round trip for both): KEYS[1..n_adjust] with specs ARGV[4..], then
--   n_release slot keys with their members (see settle() in common.lua). They apply
--   first, whatever the decision: they are facts about calls that are over.
-- Then KEYS[base + i] (base = n_adjust + n_release): the i-th check's key, and
-- ARGV[3 + base + i]: the i-th check, its fields separated by spaces (few arguments
-- are cheap to send and to parse):
--   'r limit period_us cost'        rate (GCRA in whole ticks, see below)
--   'q limit cost ttl_ms hard'      quota (hard: 1 or 0)
--   's limit ttl_us'                concurrency slots (a sorted set of expiries)
-- Returns one string of integers separated by spaces: the refused check's index (0:
-- allowed), retry_after_us, then per check: remaining, reset_after_us, used; then each
-- carried correction's new used total (0 for rates).

local token = ARGV[2]
local n_adjust, n_release = string.match(ARGV[3], '^(%d+) (%d+)$')
n_adjust, n_release = tonumber(n_adjust), tonumber(n_release)
local settled = settle(1, n_adjust, n_release, 4)

-- The checks' keys and specs, after the settlement's.
local base, arg_base = n_adjust + n_release, 3 + n_adjust + n_release
local CHECKS = {}
for i = 1, #KEYS - base do CHECKS[i] = KEYS[base + i] end

local rates, quotas, slots = {}, {}, {} -- staged values, so a key named twice sees the first
local expiries = {} -- rate key -> µs from now until it may go

local specs = {}
for i = 1, #CHECKS do
  local spec = {}
  for field in string.gmatch(ARGV[arg_base + i], '%S+') do spec[#spec + 1] = field end
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
  local key, kind = CHECKS[i], arg(i, 1)
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

-- The carried corrections' totals, after the checks' figures.
local function reply(out)
  for _, used in ipairs(settled) do out[#out + 1] = int(used) end
  return table.concat(out, ' ')
end

local out = {0, 0}
for i = 1, #CHECKS do
  local state, retry = check(i, true)
  if not state then
    -- Refused: charge nothing, and report every counter as it stands.
    rates, quotas, slots = {}, {}, {}
    out = {i, int(retry)}
    for j = 1, #CHECKS do
      local peek = check(j, false)
      out[#out + 1], out[#out + 2], out[#out + 3] = int(peek[1]), int(peek[2]), int(peek[3])
    end
    return reply(out)
  end
  out[#out + 1], out[#out + 2], out[#out + 3] = int(state[1]), int(state[2]), int(state[3])
end

for i = 1, #CHECKS do
  local key, kind = CHECKS[i], arg(i, 1)
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
    -- Calls to other models may share the key with longer-lived slots: only extend it.
    local ttl_ms = math.ceil(tonumber(arg(i, 3)) / 1000)
    if redis.call('PTTL', key) < ttl_ms then redis.call('PEXPIRE', key, int(ttl_ms)) end
    slots[key] = nil
  end
end
return reply(out)
