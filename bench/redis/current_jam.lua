-- CurrentJam without a user id, as jam-balancer answers it: among the jams
-- with room, the one with the most members (ties: the smallest id in byte
-- order); if none has room, a fresh id (not stored, as in the balancer).
--
-- KEYS[1]  sorted set of the jams with room, score = -members (so the
--          first member is the answer: Redis orders equal scores by member
--          bytes)
-- KEYS[2]  counter for fresh jam ids
-- Returns {jam_id, members, new_jam (0/1)}.
local top = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if top[1] then
  return {top[1], -tonumber(top[2]), 0}
end
return {'jam-' .. redis.call('INCR', KEYS[2]), 0, 1}
