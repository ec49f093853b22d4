-- settle: corrections after the call, and slots given back (gatewise.state.redis).
--
-- ARGV[1]: now in microseconds, or '' to read Redis's clock (as admit.lua).
-- ARGV[2]: the number of adjustments n; KEYS[1..n] are their keys, KEYS[n+1..] slot keys.
-- ARGV[2 + i]: the i-th adjustment, its fields separated by spaces:
--   'r limit period_us delta'   rate: TAT moves by delta ticks, never below now
--                               (stored as 'phase:offset', see admit.lua)
--   'q delta ttl_ms'            quota: used moves by delta, never below 0
-- Returns each adjustment's new used total (0 for rates), in order.

local EPOCH = 1735689600

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = (tonumber(t[1]) - EPOCH) * 1000000 + tonumber(t[2])
end
local n = tonumber(ARGV[2])

local function int(x)
  return string.format('%.0f', x)
end

local out = {}
for i = 1, n do
  local key = KEYS[i]
  local spec = {}
  for field in string.gmatch(ARGV[2 + i], '%S+') do spec[#spec + 1] = field end
  local kind = spec[1]
  if kind == 'r' then
    local limit, period, delta = tonumber(spec[2]), tonumber(spec[3]), tonumber(spec[4])
    local value = redis.call('GET', key)
    if value or delta > 0 then
      local interval = period / limit
      local phase, tat, now_t = now, 0, 0
      if value then -- 'phase:offset', as admit.lua
        local p, offset = string.match(value, '^(-?%d+):(.+)$')
        p = tonumber(p)
        local t = math.floor(tonumber(offset) / interval + 0.5)
        local n = math.floor((now - p) / interval)
        if t > n then phase, tat, now_t = p, t, n end
      end
      tat = tat + delta
      if tat <= now_t then phase, tat = now, 0 end -- a refund cannot bank credit
      local expire_us = math.max(now, math.ceil(phase + tat * interval)) + period - now
      local stored = int(phase) .. ':' .. string.format('%.17g', tat * interval)
      redis.call('SET', key, stored, 'PX', int(math.ceil(expire_us / 1000)))
    end
    out[i] = 0
  else
    local delta, ttl = tonumber(spec[2]), spec[3]
    local stored = tonumber(redis.call('GET', key))
    local used = math.max(0, (stored or 0) + delta)
    if stored or used > 0 then
      redis.call('SET', key, int(used), 'PX', ttl)
    end
    out[i] = used
  end
end

for i = n + 1, #KEYS do
  local key = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now))
  -- The newest slot goes: a leaked (older) one still expires on time.
  redis.call('ZPOPMAX', key)
end
return out
