import { PRELUDE_LUA } from './prelude.js';

/**
 * setConnected: a member's connection dropped with its seat held, or came back. ARGV[3] userId,
 * [4] 'true' | 'false', [5] now, [6] an instance: with 'true' the one it is connected to now (a
 * resume may come to any instance: the seat moves there); with 'false' the one it must be on (a
 * seat another instance took meanwhile is not marked; answers NONE). The profile JSON ends with
 * `"connected":…,"lastSeen":…}` (member-record.ts writes it in that order), so it changes without
 * decoding the JSON. Answers {'OK', changed 1/0, createdAt, state JSON, history position, member
 * records...} like the join, or {'NONE'}.
 */
export const SET_CONNECTED_LUA =
  PRELUDE_LUA +
  String.raw`
local user_id, connected, now, instance_id = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local record = redis.call('HGET', members_key, user_id)
if not record then
  return { 'NONE' }
end
if connected == 'false' then
  local _, on_instance = parse_member(record)
  if on_instance ~= instance_id then
    return { 'NONE' }
  end
end
local was = string.match(record, '"connected":(%a+),"lastSeen":%d+}$')
local updated, count = string.gsub(record, '"connected":%a+,"lastSeen":%d+}$',
  '"connected":' .. connected .. ',"lastSeen":' .. now .. '}')
if count ~= 1 then
  return redis.error_reply('Malformed member record of ' .. user_id)
end
redis.call('HSET', members_key, user_id, updated)
if connected == 'true' and instance_id ~= '' then
  move_member_here(user_id, updated, instance_id)
end
return append_members({ 'OK', was == connected and 0 or 1, redis.call('HGET', meta_key, 'createdAt'), redis.call('GET', state_key), history_position() })
`;
