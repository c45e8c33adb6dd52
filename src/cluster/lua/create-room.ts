import { PRELUDE_LUA } from './prelude.js';

/**
 * create(room, maxRooms). ARGV[3] maxRooms, [4] createdAt, [5..9] config (persistent `1`/`0`,
 * maxUsers, defaultRole, name or '', passwordHash or ''), [10] initial state JSON, [11] owner
 * (`<kind>:<id>`) or '', [12] the owner's maximum of rooms (0: none), [13] `1` when a password
 * is still to be hashed: once every check passes, {'HASH'} asks for the hash (the caller runs the
 * script again with it), so that a refused create costs no hash.
 * Answers {'OK'} | {'HASH'} | {'ROOM_EXISTS'} | {'ROOM_QUOTA', rooms the owner has} |
 * {'ROOM_LIMIT'}.
 */
export const CREATE_ROOM_LUA =
  PRELUDE_LUA +
  String.raw`
if redis.call('EXISTS', meta_key) == 1 then
  return { 'ROOM_EXISTS' }
end
local owned = quota_exceeded(ARGV[11], ARGV[12])
if owned then
  return { 'ROOM_QUOTA', owned }
end
if redis.call('ZCARD', registry_key) >= tonumber(ARGV[3]) then
  return { 'ROOM_LIMIT' }
end
if ARGV[13] == '1' then
  return { 'HASH' }
end
insert_room(ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11])
return { 'OK' }
`;
