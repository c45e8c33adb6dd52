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
move_member_here(user_id, record, instance_id)
return { 'OK' }
`;
