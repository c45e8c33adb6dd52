import { PRELUDE_LUA } from './prelude.js';

/**
 * adopt: a member whose session moved to another instance now belongs to that one. ARGV[3]
 * userId, [4] the instance it is on now. Answers {'OK'} | {'NONE'} (not a member).
 */
export const ADOPT_MEMBER_LUA =
  PRELUDE_LUA +
  String.raw`
local user_id, instance_id = ARGV[3], ARGV[4]
local record = redis.call('HGET', members_key, user_id)
if not record then
  return { 'NONE' }
end
local role, old_instance, profile = parse_member(record)
if old_instance ~= instance_id then
  redis.call('HSET', members_key, user_id, role .. '\n' .. instance_id .. '\n' .. profile)
  redis.call('SREM', instance_members_key(old_instance), room_id .. '\n' .. user_id)
  redis.call('SADD', instance_members_key(instance_id), room_id .. '\n' .. user_id)
end
return { 'OK' }
`;
