import { PRELUDE_LUA } from './prelude.js';

/**
 * setRole. ARGV[3] target userId, [4] role, [5] actor userId ('' none), [6] the actor's minimum
 * role. Making someone host demotes every other host to editor first, in join order. A role
 * above the target's cap changes nothing.
 *
 * Answers {'OK', changed records..., target record last} | {'ROOM_NOT_FOUND'} |
 * {'ACTOR', actor role or ''} | {'USER_NOT_FOUND'} | {'FORBIDDEN', the target's cap}.
 */
export const SET_ROLE_LUA =
  PRELUDE_LUA +
  String.raw`
local target_id, role = ARGV[3], ARGV[4]
if redis.call('EXISTS', meta_key) == 0 then
  return { 'ROOM_NOT_FOUND' }
end
local refused = actor_refusal(ARGV[5], ARGV[6])
if refused then
  return refused
end
local target = redis.call('HGET', members_key, target_id)
if not target then
  return { 'USER_NOT_FOUND' }
end
local cap = redis.call('HGET', caps_key, target_id)
if cap and ROLE_RANK[role] > ROLE_RANK[cap] then
  return { 'FORBIDDEN', cap }
end
local reply = { 'OK' }
if role == 'host' and parse_member(target) ~= 'host' then
  for _, member_id in ipairs(redis.call('ZRANGE', order_key, 0, -1)) do
    local record = redis.call('HGET', members_key, member_id)
    if parse_member(record) == 'host' then
      local demoted = with_role(record, 'editor')
      redis.call('HSET', members_key, member_id, demoted)
      reply[#reply + 1] = demoted
    end
  end
end
local updated = with_role(target, role)
redis.call('HSET', members_key, target_id, updated)
reply[#reply + 1] = updated
return reply
`;
