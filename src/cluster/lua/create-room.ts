import { PRELUDE_LUA } from './prelude.js';

/**
 * create(room, maxRooms). ARGV[3] maxRooms, [4] createdAt, [5..9] config (persistent `1`/`0`,
 * maxUsers, defaultRole, name or '', passwordHash or ''), [10] initial state JSON.
 * Answers {'OK'} | {'ROOM_EXISTS'} | {'ROOM_LIMIT'}.
 */
export const CREATE_ROOM_LUA =
  PRELUDE_LUA +
  String.raw`
if redis.call('EXISTS', meta_key) == 1 then
  return { 'ROOM_EXISTS' }
end
if redis.call('ZCARD', registry_key) >= tonumber(ARGV[3]) then
  return { 'ROOM_LIMIT' }
end
insert_room(ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
return { 'OK' }
`;
