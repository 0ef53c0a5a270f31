-- Fills jams as jam-bench --prepopulate does in jam-balancer: jam i (id
-- 'pre-%07d') gets 1 + i % max_users members '<jam>-u<k>'.
--
-- KEYS[1]  sorted set of the jams with room, score = -members
-- KEYS[2]  hash user id -> jam id
-- ARGV[1]  number of jams
-- ARGV[2]  max_users
-- Returns the number of users added.
local room, jam_of = KEYS[1], KEYS[2]
local jams, max_users = tonumber(ARGV[1]), tonumber(ARGV[2])
local users = 0
for i = 0, jams - 1 do
  local jam = string.format('pre-%07d', i)
  local members = 1 + i % max_users
  for k = 0, members - 1 do
    local user = jam .. '-u' .. k
    redis.call('SADD', 'members:' .. jam, user)
    redis.call('HSET', jam_of, user, jam)
  end
  users = users + members
  if members < max_users then
    redis.call('ZADD', room, -members, jam)
  end
end
return users
