import { PRELUDE_LUA } from './prelude.js';

/**
 * ensureHost: a room with members but no host (Redis came back empty and its former host did
 * not register again: it left during the outage) gets one, the longest-present member whose cap
 * allows it, as when a host leaves. Answers {'OK'} | {'OK', promoted record} | {'NONE'}.
 */
export const ENSURE_HOST_LUA =
  PRELUDE_LUA +
  String.raw`
if redis.call('EXISTS', meta_key) == 0 then
  return { 'NONE' }
end
local order = redis.call('ZRANGE', order_key, 0, -1)
for _, member_id in ipairs(order) do
  if parse_member(redis.call('HGET', members_key, member_id)) == 'host' then
    return { 'OK' }
  end
end
for _, successor in ipairs(order) do
  if redis.call('HEXISTS', caps_key, successor) == 0 then
    local promoted = with_role(redis.call('HGET', members_key, successor), 'host')
    redis.call('HSET', members_key, successor, promoted)
    return { 'OK', promoted }
  end
end
return { 'OK' }
`;
