import { PRELUDE_LUA } from './prelude.js';

/**
 * touch. ARGV[3] now, or '' to only schedule a persistent room's idle expiry from the
 * lastActivity it has (rooms stored before that schedule existed). A missing room stays missing.
 * Answers {'OK'} | {'ROOM_NOT_FOUND'}.
 */
export const TOUCH_ROOM_LUA =
  PRELUDE_LUA +
  String.raw`
if redis.call('EXISTS', meta_key) == 0 then
  return { 'ROOM_NOT_FOUND' }
end
if ARGV[3] ~= '' then
  mark_activity(ARGV[3])
elseif is_persistent() then
  redis.call('ZADD', persistent_key, 'NX', redis.call('HGET', meta_key, 'lastActivity'), room_id)
end
return { 'OK' }
`;
