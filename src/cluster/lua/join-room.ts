import { PRELUDE_LUA } from './prelude.js';

/**
 * join(request): creates the room when missing and allowed, then admits the user, all checks in
 * one step: ROOM_NOT_FOUND (may not create), ROOM_QUOTA, ROOM_LIMIT, then (MemoryRoomStore's
 * order) KICKED, INVALID_PASSWORD, ROOM_FULL. A member joining again passes the ban and the
 * password again, and takes the cap it comes with now (demoted to it if above).
 *
 * ARGV[3] userId, [4] now, [5] maxRooms, [6..10] config for a new room (as in create-room),
 * [11] initial state JSON, [12] requested role or '', [13] instanceId, [14] profile JSON,
 * [15] the password hash the caller verified the password against, or '', [16] `1` if it matched,
 * [17] `1` if the join may create the room, [18] owner of a new room or '', [19] the owner's
 * maximum of rooms (0: none), [20] maxRole or '', [21] `1`: restore (a member on record is
 * answered as it is, no checks, and moves here unless its seat is held), [22] `1` if the joiner
 * gave a password.
 *
 * Passwords are hashed and checked in TypeScript: when the room's hash is not the one the caller
 * checked, the script writes nothing that matters and answers {'VERIFY', hash}, and the caller
 * runs it again with that hash checked; when it would create the room with a password but got no
 * hash for it, it answers {'HASH'}, and the caller runs it again with the hash of the password.
 *
 * Answers {'JOINED' | 'MEMBER' | 'DEMOTED', flag 0/1, createdAt, state JSON, history position
 * ("<epoch> <seq>" or ''), then per member in join order its record and join number...} |
 * {'VERIFY', hash} | {'HASH'} | {'ROOM_NOT_FOUND'} | {'ROOM_QUOTA', rooms the owner has} |
 * {'ROOM_LIMIT'} | {'KICKED' | 'INVALID_PASSWORD' | 'ROOM_FULL'}. The flag: for JOINED, 1 when the
 * join created the room; for a member, 1 when it was on record for this instance already (not
 * moved here from another), for the caller to tell whether a socket of its own holds it. DEMOTED:
 * a member joining again whose role its new cap lowered. ROOM_FULL also when the members hold
 * all 65536 slots.
 */
export const JOIN_ROOM_LUA =
  PRELUDE_LUA +
  String.raw`
local user_id, now = ARGV[3], tonumber(ARGV[4])
local checked_hash, password_ok = ARGV[15], ARGV[16] == '1'
local instance_id, max_role = ARGV[13], ARGV[20]

local function room_info(status, flag)
  return append_members({ status, flag, redis.call('HGET', meta_key, 'createdAt'), redis.call('GET', state_key), history_position() })
end


-- A newcomer's join number (its ZSET score): the first after the room's last whose slot (the
-- number mod 65536) no member holds, or nil when the members hold every slot. As
-- MemoryRoomStore's nextJoinNumber: until the numbers first wrap, each one's slot is new; after,
-- a member that stayed may hold the slot the next one stands for.
local function next_join_number()
  local joins = tonumber(redis.call('HGET', meta_key, 'joins') or '0') + 1
  if joins < 65536 then
    return joins
  end
  local held, count = {}, 0
  local order = redis.call('ZRANGE', order_key, 0, -1, 'WITHSCORES')
  for i = 2, #order, 2 do
    local slot = tonumber(order[i]) % 65536
    if not held[slot] then
      held[slot] = true
      count = count + 1
    end
  end
  if count >= 65536 then
    return nil
  end
  while held[joins % 65536] do
    joins = joins + 1
  end
  return joins
end

-- 1 when a member record is on record for this instance, else 0 (moved here from another).
local function recorded_here(record)
  local _, recorded_instance = parse_member(record)
  return recorded_instance == instance_id and 1 or 0
end

-- A cap of host is no cap.
local function store_cap()
  if max_role == '' or max_role == 'host' then
    redis.call('HDEL', caps_key, user_id)
  else
    redis.call('HSET', caps_key, user_id, max_role)
  end
end

local created = 0
local member = false
if redis.call('EXISTS', meta_key) == 0 then
  if ARGV[17] ~= '1' then
    return { 'ROOM_NOT_FOUND' }
  end
  local owned = quota_exceeded(ARGV[18], ARGV[19])
  if owned then
    return { 'ROOM_QUOTA', owned }
  end
  if redis.call('ZCARD', registry_key) >= tonumber(ARGV[5]) then
    return { 'ROOM_LIMIT' }
  end
  if ARGV[22] == '1' and ARGV[10] == '' then
    return { 'HASH' }
  end
  if ARGV[10] ~= '' and ARGV[10] ~= checked_hash then
    return { 'VERIFY', ARGV[10] }
  end
  insert_room(ARGV[4], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[18])
  created = 1
  if ARGV[21] == '1' then
    -- Registered again after Redis lost the room: /stats says when.
    redis.call('HSET', meta_key, 'recoveredAt', ARGV[4])
  end
else
  member = redis.call('HGET', members_key, user_id)
  if member and ARGV[21] == '1' then
    -- A held seat (not connected) stays on the instance that holds it, whose grace's end removes
    -- it only while it is there: moved here, nobody would remove it.
    local here = recorded_here(member)
    if not string.find(member, '"connected":false,"lastSeen":%d+}$') then
      move_member_here(user_id, member, instance_id)
    end
    return room_info('MEMBER', here)
  end
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

if member then
  local here = recorded_here(member)
  move_member_here(user_id, member, instance_id)
  store_cap()
  local role = parse_member(redis.call('HGET', members_key, user_id))
  if max_role ~= '' and ROLE_RANK[role] > ROLE_RANK[max_role] then
    redis.call('HSET', members_key, user_id, with_role(redis.call('HGET', members_key, user_id), max_role))
    return room_info('DEMOTED', here)
  end
  return room_info('MEMBER', here)
end

local count = redis.call('ZCARD', order_key)
if count >= tonumber(redis.call('HGET', meta_key, 'maxUsers')) then
  return { 'ROOM_FULL' }
end
local join_number = next_join_number()
if not join_number then
  return { 'ROOM_FULL' }
end

-- The first member hosts; others get what they ask for, capped at the room's default role;
-- either capped at the joiner's maxRole. A live member registered again after Redis lost it
-- (restore) keeps the role it had, host only while the room has none: the room may be one
-- Redis lost, whose former host registers from another instance (ensure-host.ts covers a
-- host that does not come back).
local role = 'host'
local requested = ARGV[12]
if ARGV[21] == '1' and requested ~= '' then
  role = requested
  if role == 'host' then
    for _, record in ipairs(redis.call('HVALS', members_key)) do
      if parse_member(record) == 'host' then
        role = 'editor'
        break
      end
    end
  end
elseif count > 0 then
  role = redis.call('HGET', meta_key, 'defaultRole')
  if requested ~= '' and ROLE_RANK[requested] <= ROLE_RANK[role] then
    role = requested
  end
end
if max_role ~= '' and ROLE_RANK[role] > ROLE_RANK[max_role] then
  role = max_role
end

redis.call('HSET', meta_key, 'joins', join_number)
redis.call('ZADD', order_key, join_number, user_id)
redis.call('HSET', members_key, user_id, role .. '\n' .. instance_id .. '\n' .. ARGV[14])
store_cap()
redis.call('HDEL', meta_key, 'emptySince')
redis.call('ZREM', empty_key, room_id)
mark_activity(ARGV[4])
redis.call('ZADD', user_rooms_key(user_id), redis.call('INCR', seq_key), room_id)
redis.call('SADD', instance_members_key(instance_id), room_id .. '\n' .. user_id)
return room_info('JOINED', created)
`;
