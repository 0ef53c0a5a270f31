-- One arrival, as jam-balancer's CurrentJam then AddUser place it, in one
-- atomic script: the jam with room with the most members (ties: the smallest
-- id), else a fresh jam; the user joins it, leaving the jam it was in (a user
-- is a member of at most one jam, so an arriving user who was present
-- elsewhere is also a departure). No seat reservations: the script does the
-- question and the join at once.
--
-- KEYS[1]  sorted set of the jams with room, score = -members
-- KEYS[2]  hash user id -> jam id
-- KEYS[3]  counter for fresh jam ids
-- ARGV[1]  user id
-- ARGV[2]  max_users, the capacity of every jam
-- The members of jam J are the set 'members:' .. J.
-- Returns {jam_id, members after the join}.
local room, jam_of, counter = KEYS[1], KEYS[2], KEYS[3]
local user, max_users = ARGV[1], tonumber(ARGV[2])

-- Keeps a jam's place in the room index after its member count changed.
local function place(jam, members)
  if members > 0 and members < max_users then
    redis.call('ZADD', room, -members, jam)
  else
    redis.call('ZREM', room, jam)
  end
end

-- CurrentJam.
local top = redis.call('ZRANGE', room, 0, 0)
local jam = top[1] or ('jam-' .. redis.call('INCR', counter))

-- AddUser.
local previous = redis.call('HGET', jam_of, user)
if previous == jam then
  return {jam, redis.call('SCARD', 'members:' .. jam)}
end
if previous then
  redis.call('SREM', 'members:' .. previous, user)
  place(previous, redis.call('SCARD', 'members:' .. previous))
end
redis.call('SADD', 'members:' .. jam, user)
redis.call('HSET', jam_of, user, jam)
local members = redis.call('SCARD', 'members:' .. jam)
place(jam, members)
return {jam, members}
