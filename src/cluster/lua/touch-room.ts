import { PRELUDE_LUA } from './prelude.js';

/** touch. ARGV[3] now. A missing room stays missing. Answers {'OK'} | {'ROOM_NOT_FOUND'}. */
export const TOUCH_ROOM_LUA =
  PRELUDE_LUA +
  String.raw`
if redis.call('EXISTS', meta_key) == 0 then
  return { 'ROOM_NOT_FOUND' }
end
mark_activity(ARGV[3])
return { 'OK' }
`;
