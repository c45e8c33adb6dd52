/**
 * The Redis key layout of `RedisRoomStore`. Every key starts with the caller's `keyPrefix`
 * (`gms:` by default); below, `P` stands for it.
 *
 * Per room, with the room id as a Redis Cluster hash tag so that all of a room lands in one slot:
 *
 * | key               | type   | holds                                                              |
 * | ----------------- | ------ | ------------------------------------------------------------------ |
 * | `P{room}:meta`    | hash   | config (`maxUsers`, `defaultRole`, `persistent` `1`/`0`, `name`?,  |
 * |                   |        | `passwordHash`?), `createdAt`, `lastActivity`, `emptySince` (only  |
 * |                   |        | while empty), `version`, `epoch` (unique per creation), `joins`,   |
 * |                   |        | `owner`? (`<kind>:<id>` of its creator, for the room quota)         |
 * | `P{room}:state`   | string | the RoomState as JSON, its `version` equal to the meta's           |
 * | `P{room}:order`   | zset   | member ids scored by join sequence: the first is the longest-present |
 * | `P{room}:members` | hash   | member id -> `<role>\n<instanceId>\n<profile JSON>`                 |
 * | `P{room}:bans`    | hash   | kicked user id -> bannedUntil (ms)                                 |
 * | `P{room}:caps`    | hash   | member id -> the highest role it may hold (`viewer`/`editor`), for |
 * |                   |        | members joined with a maxRole below host; kept off the records     |
 * | `P{room}:events`  | -      | the pub/sub channel of the room's events (see room-envelope.ts)    |
 * | `P{room}:envseq`  | string | the counter behind the room's event numbers (`seq`)                |
 * | `P{room}:epoch`   | string | the name of the room's history (resume on)                         |
 * | `P{room}:history` | stream | the recent numbered events, ids `0-<seq>` (resume on)              |
 *
 * Global:
 *
 * | key                          | type   | holds                                                       |
 * | ---------------------------- | ------ | ----------------------------------------------------------- |
 * | `Prooms`                     | zset   | every room id scored by its epoch: MAX_ROOMS, list() order  |
 * | `Prooms:seq`                 | string | the counter behind epochs and user-room scores              |
 * | `Pexpiry:empty`              | zset   | empty non-persistent rooms scored by emptySince             |
 * | `Pexpiry:activity`           | zset   | non-persistent rooms scored by lastActivity                 |
 * | `Pexpiry:persistent`         | zset   | persistent rooms scored by lastActivity (idle expiry)       |
 * | `Puser:<userId>:rooms`       | zset   | the rooms a user is in, scored in join order (shareRoom)    |
 * | `Pinstance:<id>:members`     | set    | `roomId\nuserId` of the members an instance joined, so that |
 * |                              |        | presence can remove a dead instance's members later         |
 * | `Powner:<kind>:<id>:rooms`   | set    | the rooms an owner (`user` or `ip`) created that still      |
 * |                              |        | exist: its room quota (SCARD); every deletion removes one   |
 * | `Presume:<sha256 of token>`  | string | a dropped connection's held seats, until the grace ends     |
 * |                              |        | (redis-held-sessions.ts)                                    |
 *
 * Room data has no TTL: rooms leave only through delete/deleteExpired, so a persistent room lasts
 * as long as Redis keeps its data (AOF). The numbering keys (envseq, epoch, history) expire a day
 * after the room's last numbered event (lua/numbering.ts), and go with the room when it is deleted
 * (lua/delete-room.ts); held sessions expire with their grace.
 *
 * Single primary only: a script touches one room's keys *and* global keys (the registry, the
 * expiry schedule, user, instance and owner sets), and the user, instance and owner keys are built
 * inside the scripts from the prefix (their names depend on member records), as are the meta keys
 * of an owner's other rooms when a full quota is checked for rooms gone. That is fine on one Redis
 * primary (with replicas or Sentinel) but not on Redis Cluster, where a script's keys must share
 * a slot and be declared. The hash tags are there so that a cluster version can come later, by
 * moving the global indexes out of the room scripts.
 */

/** The six keys of one room, in the order every room script receives them as KEYS[1..6]. */
export interface RoomKeys {
  meta: string;
  state: string;
  order: string;
  members: string;
  bans: string;
  caps: string;
}

/** The global keys, in the order every room script receives them as KEYS[7..11]. */
export interface GlobalKeys {
  registry: string;
  seq: string;
  expiryEmpty: string;
  expiryActivity: string;
  expiryPersistent: string;
}

export class RedisKeys {
  readonly global: GlobalKeys;

  constructor(readonly prefix: string) {
    if (/[{}\n]/.test(prefix)) {
      throw new Error(
        `A key prefix must not contain braces or newlines: ${JSON.stringify(prefix)}`,
      );
    }
    this.global = {
      registry: `${prefix}rooms`,
      seq: `${prefix}rooms:seq`,
      expiryEmpty: `${prefix}expiry:empty`,
      expiryActivity: `${prefix}expiry:activity`,
      expiryPersistent: `${prefix}expiry:persistent`,
    };
  }

  /** `P{roomId}:` : the hash tag puts every key of a room in the same cluster slot. */
  roomBase(roomId: string): string {
    return `${this.prefix}{${roomId}}:`;
  }

  room(roomId: string): RoomKeys {
    const base = this.roomBase(roomId);
    return {
      meta: `${base}meta`,
      state: `${base}state`,
      order: `${base}order`,
      members: `${base}members`,
      bans: `${base}bans`,
      caps: `${base}caps`,
    };
  }

  /** KEYS[1..11] of every room script: the room's keys, then the global ones. */
  scriptKeys(roomId: string): string[] {
    const room = this.room(roomId);
    const global = this.global;
    return [
      room.meta,
      room.state,
      room.order,
      room.members,
      room.bans,
      room.caps,
      global.registry,
      global.seq,
      global.expiryEmpty,
      global.expiryActivity,
      global.expiryPersistent,
    ];
  }

  /** Also built in Lua (lua/prelude.ts `user_rooms_key`): keep both the same. */
  userRooms(userId: string): string {
    return `${this.prefix}user:${userId}:rooms`;
  }

  /** Also built in Lua (lua/prelude.ts `instance_members_key`): keep both the same. */
  instanceMembers(instanceId: string): string {
    return `${this.prefix}instance:${instanceId}:members`;
  }

  /** Also built in Lua (lua/prelude.ts `owner_rooms_key`): keep both the same. */
  ownerRooms(kind: string, id: string): string {
    return `${this.prefix}owner:${kind}:${id}:rooms`;
  }

  /** An entry of `instanceMembers`. */
  static instanceMember(roomId: string, userId: string): string {
    return `${roomId}\n${userId}`;
  }
}

/** How many keys every room script declares (RedisKeys.scriptKeys). */
export const ROOM_SCRIPT_KEY_COUNT = 11;
