/**
 * Numbering a room's events and keeping its history, shared by the room scripts (prelude.ts) and
 * the bus's own numbered publish (room-envelope.ts): one counter per room, whichever instance
 * publishes. With resume on, every numbered envelope is also added to the room's stream, the
 * history a resuming client's missed events come from, and the room has an epoch: a name
 * made from Redis's clock when the room's history began. Redis losing the history (a restart
 * without persistence) loses the epoch too, so the next one differs and clients get a snapshot.
 * The keys expire a day after the room's last numbered event, and go with the room when it is
 * deleted (delete-room.ts), so a room created again under its id starts a new epoch.
 *
 * `__HISTORY_CAP__` is replaced when the scripts are defined (withHistoryCap): RESUME_HISTORY_EVENTS
 * with resume on, 0 (no history, no epoch) with it off.
 */
export const NUMBERING_LUA = String.raw`
local HISTORY_CAP = tonumber('__HISTORY_CAP__') or 0
local NUMBERED_KEYS_TTL_MS = 86400000
-- How long the event counter of a room that is gone outlives its last event (delete-room.ts).
local ENDED_ROOM_COUNTER_TTL_MS = 60000

local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function ensure_epoch(epoch_key)
  local epoch = redis.call('GET', epoch_key)
  if not epoch then
    local time = redis.call('TIME')
    epoch = string.format('%08x%08x', tonumber(time[1]), tonumber(time[2]))
    redis.call('SET', epoch_key, epoch, 'PX', NUMBERED_KEYS_TTL_MS)
  end
  return epoch
end

-- Entries are "0-<seq>", so a resume reads the events after its last seq with XRANGE. The
-- events of a room that is gone (deleted, or lost by Redis) are numbered on, so that no instance
-- sees a gap, but not kept, and their counter soon goes too.
local function number_and_publish(seq_key, epoch_key, history_key, channel, envelope, gone)
  local seq = redis.call('INCR', seq_key)
  redis.call('PEXPIRE', seq_key, gone and ENDED_ROOM_COUNTER_TTL_MS or NUMBERED_KEYS_TTL_MS)
  local numbered = string.sub(envelope, 1, -2) .. ',"seq":' .. seq .. '}'
  if HISTORY_CAP > 0 and not gone then
    ensure_epoch(epoch_key)
    redis.call('PEXPIRE', epoch_key, NUMBERED_KEYS_TTL_MS)
    local entry = { 'XADD', history_key, 'MAXLEN', '~', HISTORY_CAP, '0-' .. seq, 'e', numbered, 't', now_ms() }
    local added = redis.pcall(unpack(entry))
    if type(added) == 'table' and added.err then
      -- Entries past this seq (the counter expired before its stream): that history is void.
      redis.call('DEL', history_key)
      redis.call(unpack(entry))
    end
    redis.call('PEXPIRE', history_key, NUMBERED_KEYS_TTL_MS)
  end
  redis.call('PUBLISH', channel, numbered)
  return seq
end
`;

/** The script with its history cap filled in (0: resume off, nothing kept). */
export function withHistoryCap(lua: string, historyCap: number): string {
  return lua.replaceAll('__HISTORY_CAP__', String(historyCap));
}
