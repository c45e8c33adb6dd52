import { NUMBERING_LUA } from './numbering.js';

/**
 * Shared head of every room script (Lua, sent with EVALSHA through ioredis `defineCommand`).
 *
 * KEYS (redis-keys.ts `scriptKeys`): the room's meta, state, order, members, bans, caps, then the
 * global registry, seq, expiry:empty, expiry:activity, expiry:persistent. ARGV[1] is the key
 * prefix, ARGV[2] the room id; each script's own arguments follow. Scripts answer with a table whose first element is a
 * status string, and leave error messages to TypeScript so that they match MemoryRoomStore's.
 */
export const PRELUDE_LUA =
  String.raw`
local meta_key, state_key, order_key, members_key, bans_key, caps_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local registry_key, seq_key, empty_key, activity_key, persistent_key = KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local prefix, room_id = ARGV[1], ARGV[2]
local ROLE_RANK = { viewer = 0, editor = 1, host = 2 }

-- Keys named after a member, an owner or another room: keep in step with RedisKeys.userRooms,
-- instanceMembers, ownerRooms and room().meta.
local function user_rooms_key(user_id)
  return prefix .. 'user:' .. user_id .. ':rooms'
end
local function instance_members_key(instance_id)
  return prefix .. 'instance:' .. instance_id .. ':members'
end
local function owner_rooms_key(owner)
  return prefix .. 'owner:' .. owner .. ':rooms'
end
-- Appends each member's record and join number (its ZSET score, whence its slot) in join order.
local function append_members(reply)
  local order = redis.call('ZRANGE', order_key, 0, -1, 'WITHSCORES')
  for i = 1, #order, 2 do
    reply[#reply + 1] = redis.call('HGET', members_key, order[i])
    reply[#reply + 1] = order[i + 1]
  end
  return reply
end
local function meta_key_of(other_room_id)
  return prefix .. '{' .. other_room_id .. '}:meta'
end

-- nil when the owner ('' for none) may create one more room under max_rooms (0: no limit), else
-- how many it has. Entries of rooms that are gone or owned anew are dropped first, so a count
-- never drifts for long.
local function quota_exceeded(owner, max_rooms)
  max_rooms = tonumber(max_rooms)
  if owner == '' or max_rooms <= 0 then
    return nil
  end
  local key = owner_rooms_key(owner)
  local count = redis.call('SCARD', key)
  if count < max_rooms then
    return nil
  end
  for _, owned in ipairs(redis.call('SMEMBERS', key)) do
    if redis.call('HGET', meta_key_of(owned), 'owner') ~= owner then
      redis.call('SREM', key, owned)
      count = count - 1
    end
  end
  if count < max_rooms then
    return nil
  end
  return count
end

-- A member record is "<role>\n<instanceId>\n<profile JSON>", so a role changes without JSON.
local function parse_member(record)
  return string.match(record, '^([^\n]*)\n([^\n]*)\n(.*)$')
end
-- A member whose session moved from another instance (record: its member record) is on this
-- instance now: its record and both instances' member sets say so.
local function move_member_here(user_id, record, instance_id)
  local role, old_instance, profile = parse_member(record)
  if old_instance ~= instance_id then
    redis.call('HSET', members_key, user_id, role .. '\n' .. instance_id .. '\n' .. profile)
    redis.call('SREM', instance_members_key(old_instance), room_id .. '\n' .. user_id)
    redis.call('SADD', instance_members_key(instance_id), room_id .. '\n' .. user_id)
  end
end
-- The member a write is made for (actor_id; '' for the server itself) must hold at least
-- min_role now, checked in the same step as the write: the role the gateway saw may be gone.
-- Answers nil, or {'ACTOR', its role or '' for no member}, for TypeScript to word the refusal.
local function actor_refusal(actor_id, min_role)
  if actor_id == '' then
    return nil
  end
  local record = redis.call('HGET', members_key, actor_id)
  if not record then
    return { 'ACTOR', '' }
  end
  local role = parse_member(record)
  if ROLE_RANK[role] < ROLE_RANK[min_role] then
    return { 'ACTOR', role }
  end
  return nil
end
local function with_role(record, role)
  local _, instance_id, profile = parse_member(record)
  return role .. '\n' .. instance_id .. '\n' .. profile
end

-- Publishes a room envelope (JSON ending in '}') with the room's next envelope number as its
-- "seq", so that an instance that misses one (a subscriber reconnect, an output-buffer limit)
-- sees the gap, and keeps it in the room's history for clients that resume.
` +
  NUMBERING_LUA +
  String.raw`
local function publish_numbered(channel, envelope)
  local tag = prefix .. '{' .. room_id .. '}'
  number_and_publish(tag .. ':envseq', tag .. ':epoch', tag .. ':history', channel, envelope)
end

-- "<epoch> <seq>": where the room's history stands, for a snapshot taken in this script; '' with
-- resume off. A room without one gets its epoch now, so that a joiner can resume from it.
local function history_position()
  if HISTORY_CAP == 0 then
    return ''
  end
  local tag = prefix .. '{' .. room_id .. '}'
  return ensure_epoch(tag .. ':epoch') .. ' ' .. (redis.call('GET', tag .. ':envseq') or '0')
end

local function is_persistent()
  return redis.call('HGET', meta_key, 'persistent') == '1'
end

local function mark_activity(now)
  redis.call('HSET', meta_key, 'lastActivity', now)
  if is_persistent() then
    redis.call('ZADD', persistent_key, now, room_id)
  else
    redis.call('ZADD', activity_key, now, room_id)
  end
end

local function forget_membership(user_id, instance_id)
  redis.call('ZREM', user_rooms_key(user_id), room_id)
  redis.call('SREM', instance_members_key(instance_id), room_id .. '\n' .. user_id)
end

-- A new room: no members, the initial state, empty since its creation; owner '' for none.
local function insert_room(created_at, persistent, max_users, default_role, name, password_hash, initial_state, owner)
  local epoch = redis.call('INCR', seq_key)
  redis.call('DEL', order_key, members_key, bans_key, caps_key)
  redis.call('HSET', meta_key, 'createdAt', created_at, 'lastActivity', created_at,
    'emptySince', created_at, 'maxUsers', max_users, 'defaultRole', default_role,
    'persistent', persistent, 'version', 0, 'epoch', epoch, 'joins', 0)
  if name ~= '' then
    redis.call('HSET', meta_key, 'name', name)
  end
  if password_hash ~= '' then
    redis.call('HSET', meta_key, 'passwordHash', password_hash)
  end
  if owner ~= '' then
    redis.call('HSET', meta_key, 'owner', owner)
    redis.call('SADD', owner_rooms_key(owner), room_id)
  end
  redis.call('SET', state_key, initial_state)
  redis.call('ZADD', registry_key, epoch, room_id)
  if persistent == '1' then
    redis.call('ZADD', persistent_key, created_at, room_id)
  else
    redis.call('ZADD', empty_key, created_at, room_id)
    redis.call('ZADD', activity_key, created_at, room_id)
  end
end

-- Removes a member; if the host left, the longest-present member whose cap allows it becomes
-- host (none may). Answers {'OK', remaining[, promoted record]}.
local function remove_member(user_id, now)
  local role, instance_id = parse_member(redis.call('HGET', members_key, user_id))
  redis.call('ZREM', order_key, user_id)
  redis.call('HDEL', members_key, user_id)
  redis.call('HDEL', caps_key, user_id)
  forget_membership(user_id, instance_id)
  mark_activity(now)
  local remaining = redis.call('ZCARD', order_key)
  if remaining == 0 then
    redis.call('HSET', meta_key, 'emptySince', now)
    if not is_persistent() then
      redis.call('ZADD', empty_key, now, room_id)
    end
    return { 'OK', 0 }
  end
  if role ~= 'host' then
    return { 'OK', remaining }
  end
  for _, successor in ipairs(redis.call('ZRANGE', order_key, 0, -1)) do
    if redis.call('HEXISTS', caps_key, successor) == 0 then
      local promoted = with_role(redis.call('HGET', members_key, successor), 'host')
      redis.call('HSET', members_key, successor, promoted)
      return { 'OK', remaining, promoted }
    end
  end
  return { 'OK', remaining }
end
`;
