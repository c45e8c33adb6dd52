import { PRELUDE_LUA } from './prelude.js';

/**
 * join(request): creates the room when missing, then admits the user, all checks in one step:
 * ROOM_LIMIT, then (MemoryRoomStore's order) KICKED, INVALID_PASSWORD, ROOM_FULL.
 *
 * ARGV[3] userId, [4] now, [5] maxRooms, [6..10] config for a new room (as in create-room),
 * [11] initial state JSON, [12] requested role or '', [13] instanceId, [14] profile JSON,
 * [15] the password hash the caller verified the password against, or '', [16] `1` if it matched.
 *
 * Passwords are checked in TypeScript (verifyPassword): when the room's hash is not the one the
 * caller checked, the script writes nothing that matters and answers {'VERIFY', hash}, and the
 * caller runs it again with that hash checked.
 *
 * Answers {'JOINED' | 'MEMBER', createdRoom 0/1, createdAt, state JSON, member records in join
 * order...} | {'VERIFY', hash} | {'ROOM_LIMIT'} | {'KICKED' | 'INVALID_PASSWORD' | 'ROOM_FULL'}.
 */
export const JOIN_ROOM_LUA =
  PRELUDE_LUA +
  String.raw`
local user_id, now = ARGV[3], tonumber(ARGV[4])
local checked_hash, password_ok = ARGV[15], ARGV[16] == '1'

local function room_info(status, created)
  local reply = { status, created, redis.call('HGET', meta_key, 'createdAt'), redis.call('GET', state_key) }
  for _, member_id in ipairs(redis.call('ZRANGE', order_key, 0, -1)) do
    reply[#reply + 1] = redis.call('HGET', members_key, member_id)
  end
  return reply
end

local created = 0
if redis.call('EXISTS', meta_key) == 0 then
  if redis.call('ZCARD', registry_key) >= tonumber(ARGV[5]) then
    return { 'ROOM_LIMIT' }
  end
  if ARGV[10] ~= '' and ARGV[10] ~= checked_hash then
    return { 'VERIFY', ARGV[10] }
  end
  insert_room(ARGV[4], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11])
  created = 1
elseif redis.call('ZSCORE', order_key, user_id) then
  -- Already a member, maybe through another instance (a session that moved): it is here now.
  local record = redis.call('HGET', members_key, user_id)
  local role, old_instance, profile = parse_member(record)
  if old_instance ~= ARGV[13] then
    redis.call('HSET', members_key, user_id, role .. '\n' .. ARGV[13] .. '\n' .. profile)
    redis.call('SREM', instance_members_key(old_instance), room_id .. '\n' .. user_id)
    redis.call('SADD', instance_members_key(ARGV[13]), room_id .. '\n' .. user_id)
  end
  return room_info('MEMBER', 0)
end

local banned_until = redis.call('HGET', bans_key, user_id)
if banned_until then
  if tonumber(banned_until) > now then
    return { 'KICKED' }
  end
  redis.call('HDEL', bans_key, user_id)
end

local password_hash = redis.call('HGET', meta_key, 'passwordHash')
if password_hash then
  if password_hash ~= checked_hash then
    return { 'VERIFY', password_hash }
  end
  if not password_ok then
    return { 'INVALID_PASSWORD' }
  end
end

local count = redis.call('ZCARD', order_key)
if count >= tonumber(redis.call('HGET', meta_key, 'maxUsers')) then
  return { 'ROOM_FULL' }
end

-- The first member hosts; others get what they ask for, capped at the room's default role.
local role = 'host'
if count > 0 then
  role = redis.call('HGET', meta_key, 'defaultRole')
  local requested = ARGV[12]
  if requested ~= '' and ROLE_RANK[requested] <= ROLE_RANK[role] then
    role = requested
  end
end

local instance_id = ARGV[13]
redis.call('ZADD', order_key, redis.call('HINCRBY', meta_key, 'joins', 1), user_id)
redis.call('HSET', members_key, user_id, role .. '\n' .. instance_id .. '\n' .. ARGV[14])
redis.call('HDEL', meta_key, 'emptySince')
redis.call('ZREM', empty_key, room_id)
mark_activity(ARGV[4])
redis.call('ZADD', user_rooms_key(user_id), redis.call('INCR', seq_key), room_id)
redis.call('SADD', instance_members_key(instance_id), room_id .. '\n' .. user_id)
return room_info('JOINED', created)
`;
