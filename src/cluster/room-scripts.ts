import type { Redis } from 'ioredis';
import { COMMIT_STATE_LUA } from './lua/commit-state.js';
import { CREATE_ROOM_LUA } from './lua/create-room.js';
import { DELETE_ROOM_LUA } from './lua/delete-room.js';
import { ENSURE_HOST_LUA } from './lua/ensure-host.js';
import { JOIN_ROOM_LUA } from './lua/join-room.js';
import { withHistoryCap } from './lua/numbering.js';
import { REMOVE_MEMBER_LUA } from './lua/remove-member.js';
import { SET_CONNECTED_LUA } from './lua/set-connected.js';
import { SET_ROLE_LUA } from './lua/set-role.js';
import { TOUCH_ROOM_LUA } from './lua/touch-room.js';
import { ROOM_SCRIPT_KEY_COUNT } from './redis-keys.js';

/** A script reply: a status string first, then strings (Lua numbers arrive as integers). */
export type ScriptReply = [string, ...(string | number | null)[]];

type RoomScript = (...keysThenArgs: (string | number)[]) => Promise<ScriptReply>;

/** The check-and-write steps of RedisRoomStore, one Lua script each (see lua/). */
export interface RoomScripts {
  gmsCreateRoom: RoomScript;
  gmsJoinRoom: RoomScript;
  gmsRemoveMember: RoomScript;
  gmsSetRole: RoomScript;
  gmsDeleteRoom: RoomScript;
  gmsCommitState: RoomScript;
  gmsTouchRoom: RoomScript;
  gmsSetConnected: RoomScript;
  gmsEnsureHost: RoomScript;
}

const SOURCES: Record<keyof RoomScripts, string> = {
  gmsCreateRoom: CREATE_ROOM_LUA,
  gmsJoinRoom: JOIN_ROOM_LUA,
  gmsRemoveMember: REMOVE_MEMBER_LUA,
  gmsSetRole: SET_ROLE_LUA,
  gmsDeleteRoom: DELETE_ROOM_LUA,
  gmsCommitState: COMMIT_STATE_LUA,
  gmsTouchRoom: TOUCH_ROOM_LUA,
  gmsSetConnected: SET_CONNECTED_LUA,
  gmsEnsureHost: ENSURE_HOST_LUA,
};

/**
 * Registers the scripts on the client, with the history cap (RESUME_HISTORY_EVENTS, 0 for
 * none) filled in (ioredis runs them with EVALSHA and falls back to EVAL
 * once per connection when Redis does not know them yet). Defining them again, for a second
 * store on the same client, is harmless: the sources are the same.
 */
export function defineRoomScripts(redis: Redis, historyCap: number): RoomScripts {
  for (const [name, lua] of Object.entries(SOURCES)) {
    redis.defineCommand(name, {
      lua: withHistoryCap(lua, historyCap),
      numberOfKeys: ROOM_SCRIPT_KEY_COUNT,
    });
  }
  return redis as unknown as RoomScripts;
}
