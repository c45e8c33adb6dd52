import { PRELUDE_LUA } from './prelude.js';

/**
 * The write half of applyStateChange: TypeScript read the state and computed the next one; this
 * stores it only if the room is still the same incarnation at the version that was read, and
 * publishes the `state_updated` envelope in the same step, so versions are accepted once each and
 * published in order.
 *
 * ARGV[3] epoch read, [4] version read, [5] next version, [6] next state JSON, [7] now,
 * [8] channel, [9] envelope JSON or '' (no publish), [10] actor userId ('' none), [11] the
 * actor's minimum role: checked here again, as the actor may have lost it since the read.
 *
 * Answers {'OK'} | {'CONFLICT'} (the version moved) | {'GONE'} (the room was deleted, maybe
 * recreated) | {'ACTOR', actor role or ''}.
 */
export const COMMIT_STATE_LUA =
  PRELUDE_LUA +
  String.raw`
local current = redis.call('HMGET', meta_key, 'epoch', 'version')
if current[1] ~= ARGV[3] then
  return { 'GONE' }
end
local refused = actor_refusal(ARGV[10], ARGV[11])
if refused then
  return refused
end
if current[2] ~= ARGV[4] then
  return { 'CONFLICT' }
end
redis.call('SET', state_key, ARGV[6])
redis.call('HSET', meta_key, 'version', ARGV[5])
mark_activity(ARGV[7])
if ARGV[9] ~= '' then
  publish_numbered(ARGV[8], ARGV[9])
end
return { 'OK' }
`;
