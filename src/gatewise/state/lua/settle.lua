-- settle: corrections after calls, and slots given back (gatewise.state.redis), for when no
-- admission comes soon enough to carry them (admit.lua settles first, the same way).
-- Runs after common.lua, which reads ARGV[1] (now) and defines settle().
--
-- ARGV[2]: the number of corrections n; KEYS[1..n] are their keys, KEYS[n+1..] slot keys.
-- ARGV[2 + i]: the i-th correction (see settle() in common.lua), then each slot's member.
-- Returns each correction's new used total (0 for rates), in order.

local n = tonumber(ARGV[2])
return settle(1, n, #KEYS - n, 3)
