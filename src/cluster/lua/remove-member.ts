import { PRELUDE_LUA } from './prelude.js';

/**
 * leave and kick. ARGV[3] `leave` | `kick`, [4] userId, [5] now, [6] bannedUntil (kick) or, for
 * leave, the instance the member must be on ('' for any): a socket closing on an instance the
 * member has moved away from must not remove it. Leave: [7] '' or the resume grace (ms): a seat
 * marked not connected less than that long ago is held for a resume, and stays. Kick: [7] actor
 * userId ('' none), [8] the actor's minimum role.
 * A kick bans the user until bannedUntil, then both remove it, handing the host role over to the
 * longest-present member when the host left.
 *
 * Answers {'OK', remaining[, promoted record]} | {'NONE'} (leave: not a member, or no room) |
 * {'ROOM_NOT_FOUND'} | {'ACTOR', actor role or ''} | {'USER_NOT_FOUND'} (kick).
 */
export const REMOVE_MEMBER_LUA =
  PRELUDE_LUA +
  String.raw`
local mode, user_id = ARGV[3], ARGV[4]
local exists = redis.call('EXISTS', meta_key) == 1
local member = exists and redis.call('ZSCORE', order_key, user_id)
if mode == 'leave' then
  if not member then
    return { 'NONE' }
  end
  if ARGV[6] ~= '' then
    local record = redis.call('HGET', members_key, user_id)
    local _, instance_id = parse_member(record)
    if instance_id ~= ARGV[6] then
      return { 'NONE' }
    end
    local grace = tonumber(ARGV[7] or '')
    local held_since = grace and string.match(record, '"connected":false,"lastSeen":(%d+)}$')
    if held_since and tonumber(ARGV[5]) - tonumber(held_since) < grace then
      return { 'NONE' }
    end
  end
else
  if not exists then
    return { 'ROOM_NOT_FOUND' }
  end
  local refused = actor_refusal(ARGV[7], ARGV[8])
  if refused then
    return refused
  end
  if not member then
    return { 'USER_NOT_FOUND' }
  end
  redis.call('HSET', bans_key, user_id, ARGV[6])
end
return remove_member(user_id, ARGV[5])
`;
