import { PRELUDE_LUA } from './prelude.js';

/**
 * delete, and the claim of one expired room by deleteExpired (which re-checks the expiry rules
 * here, so a room that got a member or activity since it was listed stays).
 *
 * ARGV[3] `delete` | `expire`; for `delete`: [4] actor userId ('' none), [5] the actor's
 * minimum role; for `expire`: [4] now, [5] emptyRoomTtlMs, [6] roomTimeoutMs, [7] the
 * lastActivity resolution (ms) the idle rules allow for, [8] persistentRoomIdleMs (0: persistent
 * rooms never expire).
 *
 * The room's numbering keys (lua/numbering.ts) go with it: the history, its epoch and its
 * members' join marks (redis-room-history.ts) now, the event counter once the room_deleted that
 * follows is numbered (at the latest ENDED_ROOM_COUNTER_TTL_MS after the room's last event), or
 * now when no member is left to tell.
 *
 * Answers {'OK', reason (`deleted` | `empty` | `idle_timeout`), epoch, member ids in join
 * order...} | {'ROOM_NOT_FOUND'} | {'ACTOR', actor role or ''} (delete) | {'KEEP'} (expire: not
 * expired).
 */
export const DELETE_ROOM_LUA =
  PRELUDE_LUA +
  String.raw`
if redis.call('EXISTS', meta_key) == 0 then
  return { 'ROOM_NOT_FOUND' }
end

local function expiry_reason()
  local now = tonumber(ARGV[4])
  if is_persistent() then
    local idle_ms = tonumber(ARGV[8])
    local last_activity = tonumber(redis.call('HGET', meta_key, 'lastActivity'))
    if idle_ms > 0 and now - last_activity >= idle_ms + tonumber(ARGV[7]) then
      return 'idle_timeout'
    end
    return nil
  end
  local empty_since = redis.call('HGET', meta_key, 'emptySince')
  if empty_since and now - tonumber(empty_since) >= tonumber(ARGV[5]) then
    return 'empty'
  end
  local last_activity = tonumber(redis.call('HGET', meta_key, 'lastActivity'))
  if now - last_activity >= tonumber(ARGV[6]) + tonumber(ARGV[7]) then
    return 'idle_timeout'
  end
  return nil
end

local reason = 'deleted'
if ARGV[3] == 'expire' then
  reason = expiry_reason()
  if not reason then
    return { 'KEEP' }
  end
else
  local refused = actor_refusal(ARGV[4], ARGV[5])
  if refused then
    return refused
  end
end

local reply = { 'OK', reason, redis.call('HGET', meta_key, 'epoch') }
for _, member_id in ipairs(redis.call('ZRANGE', order_key, 0, -1)) do
  local _, instance_id = parse_member(redis.call('HGET', members_key, member_id))
  forget_membership(member_id, instance_id)
  reply[#reply + 1] = member_id
end
local owner = redis.call('HGET', meta_key, 'owner')
if owner then
  redis.call('SREM', owner_rooms_key(owner), room_id)
end
redis.call('UNLINK', meta_key, state_key, order_key, members_key, bans_key, caps_key)
-- Its history goes with it, so a room created again under its id starts a new epoch. Members
-- still to be told get room_deleted numbered on from the counter, and that publish removes it
-- (room-envelope.ts): a counter starting over would make the instances that hear it resync a
-- room they are leaving. Should that publish never come, the counter goes soon anyway.
local tag = prefix .. '{' .. room_id .. '}'
redis.call('UNLINK', tag .. ':history', tag .. ':epoch', tag .. ':joined')
if #reply > 3 then
  redis.call('PEXPIRE', tag .. ':envseq', ENDED_ROOM_COUNTER_TTL_MS)
else
  redis.call('UNLINK', tag .. ':envseq')
end
redis.call('ZREM', registry_key, room_id)
redis.call('ZREM', empty_key, room_id)
redis.call('ZREM', activity_key, room_id)
redis.call('ZREM', persistent_key, room_id)
return reply
`;
