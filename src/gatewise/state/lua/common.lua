-- common: what admit.lua and settle.lua share; gatewise.state.redis puts it before each.
--
-- ARGV[1] of both scripts: now in microseconds, or '' to read Redis's clock (TIME, minus
-- EPOCH below). Times are whole microseconds; Lua numbers are doubles, exact below 2^53.

local EPOCH = 1735689600 -- 2025-01-01T00:00:00Z: keeps microsecond counts small

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = (tonumber(t[1]) - EPOCH) * 1000000 + tonumber(t[2])
end

-- Numbers passed to redis.call are formatted with %.14g (lossy above 1e14): format them.
local function int(x)
  return string.format('%.0f', x)
end

-- Settles finished calls: n_adjust corrections (keys KEYS[first ..], their specs
-- ARGV[spec_first ..]), then n_release slot keys given back (the next keys), each with
-- the member to remove in the next ARGV ('': the newest slot). A correction's fields:
--   'r limit period_us delta'   rate: TAT moves by delta ticks, never below now
--                               (stored as 'phase:offset', see admit.lua)
--   'q delta ttl_ms'            quota: used moves by delta, never below 0
-- Returns each correction's new used total (0 for rates), in order.
local function settle(first, n_adjust, n_release, spec_first)
  local out = {}
  for i = 1, n_adjust do
    local key = KEYS[first + i - 1]
    local spec = {}
    for field in string.gmatch(ARGV[spec_first + i - 1], '%S+') do spec[#spec + 1] = field end
    if spec[1] == 'r' then
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
  for j = 0, n_release - 1 do
    local key, member = KEYS[first + n_adjust + j], ARGV[spec_first + n_adjust + j]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now))
    if member ~= '' then
      -- The call's own slot: gone already (expired, or lost in a restart) frees nobody.
      redis.call('ZREM', key, member)
    else
      -- The newest slot goes: a leaked (older) one still expires on time.
      redis.call('ZPOPMAX', key)
    end
  end
  return out
end
