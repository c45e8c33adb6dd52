import type { Redis } from 'ioredis';
import WebSocket from 'ws';
import type { Role, RoomInfo, RoomState, ServerEventMap } from '../../src/protocol/protocol.js';
import { decodeMember } from '../../src/cluster/member-record.js';
import { applyStateChange } from '../../src/state/room-state.js';
import {
  connectRedis,
  RedisServer,
  startInstanceProcess,
  startTestCluster,
  stopInstanceProcess,
  waitFor,
  type InstanceProcess,
  type TestCluster,
} from '../support/cluster.js';
import { delay, TestClient, type Received } from '../support/test-client.js';
import { mulberry32 } from '../support/fuzz-frames.js';

/**
 * Chaos, bounded and seeded (CHAOS_SEED, default 1): eight clients over three rooms on three
 * instances (two in this process, one spawned from dist/main.js that is killed with SIGKILL and
 * started again) join, leave, change the state and roles, drop their sockets without a close
 * frame and reconnect, while Redis is restarted once, empty. Each client keeps its view of every
 * room it is in from the events alone. Once things settle, every connected member's view
 * (members, roles, connected flags, state version and content) must be the store's, and the store
 * must hold no member without a live socket. A failure names the seed:
 * `CHAOS_SEED=<n> npx jest test/cluster/chaos`.
 *
 * It runs twice: with resume off (a drop is a leave), and with resume on (docs/resume.md), where a
 * dropped client comes back on any instance with its token and its `{epoch, lastSeq}` per room,
 * and applies the replayed events (`recovered: true`) or the snapshot (`recovered: false`) to the
 * view it kept; or joins again when the token is refused; or rejoins without resuming; or does not
 * come back at all (its seats must go when the grace is over). With resume on, the events a client
 * gets of a room within one epoch must also carry strictly increasing `seq`s over the whole run,
 * across every reconnect: a replay neither repeats an event nor goes back.
 */

const SEED = Number(process.env.CHAOS_SEED ?? '1');
const STEPS = 150;
const USERS = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7'];
const ROOMS = ['chaos-a', 'chaos-b', 'chaos-c'];
const PRESENCE_TTL_MS = 3000;
/** The grace of the resume-on case: short, so that seats held and not resumed go within the run. */
const RESUME_GRACE_MS = 2000;
/** How long the cluster may take to agree with every client once the chaos stops. */
const SETTLE_MS = 15_000;

interface ChaosMode {
  readonly name: string;
  /** RECONNECT_GRACE_MS; 0 is resume off. */
  readonly graceMs: number;
}

const MODES: readonly ChaosMode[] = [
  { name: 'resume off: a drop is a leave', graceMs: 0 },
  { name: 'resume on: dropped clients resume on any instance', graceMs: RESUME_GRACE_MS },
];

/** A member as a client sees it. */
interface Seen {
  role: Role;
  connected: boolean;
}

/** What a client believes of one room, from the events it got. */
interface View {
  members: Map<string, Seen>;
  state: RoomState;
  /** Set when a state update skipped versions; a later snapshot clears it. */
  gap?: string;
}

/** Where a client stands in a room's history (resume on): what its `resume` sends. */
interface Position {
  epoch: string;
  lastSeq: number;
}

/** One user: at most one socket at a time, and its views of the rooms it is in. */
class ChaosUser {
  client?: TestClient;
  instance = -1;
  readonly views = new Map<string, View>();
  /** The last events it got, for the failure message. */
  readonly recent: string[] = [];
  /** Resume on: the newest token, and the position per room, as docs/resume.md has a client keep. */
  token?: string;
  readonly positions = new Map<string, Position>();
  /** Resume on: its socket dropped, and it means to resume (it keeps its views meanwhile). */
  dropped = false;
  /** Gone for good until then (resume on): it does not come back within the grace. */
  awayUntil = 0;
  /** The `resume` request in flight, whose RESUME_FAILED means: join the rooms again. */
  private pendingResume?: string;
  /** The highest `seq` of an event got per room and epoch, over the whole run. */
  private readonly lastSeqOf = new Map<string, number>();
  /**
   * Per room, the `seq`s got since one went back: after Redis lost a room, the instance registers
   * its members again and their events (numbered in the new epoch) may come before the snapshot
   * that names that epoch. They count for the epoch of the room's next snapshot, and only when it
   * is a new one; otherwise, or if none comes, they repeated or went back.
   */
  private readonly unplaced = new Map<string, { epoch: string; after: number; seqs: number[] }>();
  private readonly seqErrors: string[] = [];
  /** The rooms it joined, and what its resumes came to. */
  readonly outcomes = { joins: 0, recovered: 0, snapshots: 0, lost: 0 };

  constructor(
    readonly userId: string,
    private readonly resumeOn: boolean,
  ) {}

  get online(): boolean {
    return this.client?.socket.readyState === WebSocket.OPEN;
  }

  /**
   * Takes a fresh socket; what arrived before this listener was attached is replayed first. A
   * resuming client keeps its views; any other starts from nothing.
   */
  attach(client: TestClient, instance: number, resuming = false): void {
    this.client = client;
    this.instance = instance;
    this.dropped = false;
    // TestClient.connect took `connected` off the backlog: its token is the one to keep.
    this.token = client.connected?.resumeToken;
    if (!resuming) {
      this.forgetRooms();
    }
    const backlog = client.received.slice();
    client.socket.on('message', (raw) => {
      if (this.client === client) {
        this.handle(JSON.parse((raw as Buffer).toString()) as Received);
      }
    });
    client.socket.on('close', () => {
      if (this.client === client) {
        this.note(`socket closed (${String(client.closeCode)})`);
        this.lostSocket();
      }
    });
    for (const message of backlog) {
      this.handle(message);
    }
  }

  /** Drops the socket without a close frame (terminate); `abandon`: and never resumes it. */
  drop(abandon: boolean, awayMs: number): void {
    const client = this.client;
    client?.socket.terminate();
    this.note(abandon ? 'dropped its socket, gone for good' : 'dropped its socket');
    this.lostSocket();
    if (abandon) {
      this.forgetRooms();
      this.token = undefined;
      this.dropped = false;
      this.awayUntil = Date.now() + awayMs;
    }
  }

  /** The rooms it had: what a resume lists, or a rejoin joins. */
  roomIds(): string[] {
    return [...new Set([...this.views.keys(), ...this.positions.keys()])];
  }

  /** What its `resume` sends: each room it had, with its position when it has one. */
  resumeRooms(): Array<{ roomId: string; epoch?: string; lastSeq?: number }> {
    return this.roomIds().map((roomId) => ({ roomId, ...this.positions.get(roomId) }));
  }

  /** Sends `resume` on the socket that came with an accepted `?resume=`. */
  sendResume(): void {
    this.pendingResume = this.client?.request('resume', { rooms: this.resumeRooms() });
  }

  /** Joins again every room it had, from nothing (no resume, or a refused one). */
  rejoin(roomIds = this.roomIds()): void {
    for (const roomId of roomIds) {
      this.views.delete(roomId);
      this.positions.delete(roomId);
      this.client?.request('join_room', { roomId, name: this.userId });
    }
  }

  note(line: string): void {
    this.recent.push(line);
    if (this.recent.length > 40) {
      this.recent.shift();
    }
  }

  private lostSocket(): void {
    this.client = undefined;
    this.pendingResume = undefined;
    if (this.resumeOn && this.roomIds().length > 0) {
      this.dropped = true; // it keeps what it had, to resume
    } else {
      this.forgetRooms();
    }
  }

  private forgetRooms(): void {
    this.views.clear();
    this.positions.clear();
  }

  private handle({ event, data }: Received): void {
    if (event !== 'connected') {
      this.note(`${event} ${JSON.stringify(data).slice(0, 200)}`);
    }
    this.countSeq(data as { roomId?: string; seq?: number });
    switch (event) {
      case 'connected':
        this.token = (data as ServerEventMap['connected']).resumeToken;
        return;
      case 'room_joined':
        this.outcomes.joins += 1;
        this.snapshot((data as ServerEventMap['room_joined']).roomInfo);
        return;
      case 'room_left':
      case 'kicked':
      case 'room_deleted': {
        const { roomId } = data as { roomId: string };
        this.views.delete(roomId);
        this.positions.delete(roomId);
        return;
      }
      case 'user_joined':
      case 'user_updated': {
        const { roomId, user } = data as ServerEventMap['user_joined'];
        this.views
          .get(roomId)
          ?.members.set(user.id, { role: user.role, connected: user.connected });
        return;
      }
      case 'user_left': {
        const { roomId, userId } = data as ServerEventMap['user_left'];
        this.views.get(roomId)?.members.delete(userId);
        return;
      }
      case 'state_updated':
        this.stateUpdated(data as ServerEventMap['state_updated']);
        return;
      case 'resumed':
        this.resumed(data as ServerEventMap['resumed']);
        return;
      case 'error': {
        const error = data as ServerEventMap['error'];
        if (error.requestId !== undefined && error.requestId === this.pendingResume) {
          this.pendingResume = undefined;
          this.note(`resume refused (${error.code}): joins again`);
          this.rejoin();
        }
        return;
      }
      case 'message':
      case 'pong':
      case 'hello':
      case 'room_created':
      case 'state':
      case 'token_refreshed':
        return; // nothing the view holds
    }
  }

  /** Events whose `seq` repeated or went back, within one room and epoch. */
  get seqProblems(): string[] {
    return [
      ...this.seqErrors,
      ...[...this.unplaced].map(
        ([roomId, { epoch, after, seqs }]) =>
          `${this.userId} in ${roomId} (epoch ${epoch}) got seqs ${seqs.join(',')} after ${after}, ` +
          'and no snapshot of a new epoch since',
      ),
    ];
  }

  /** From every event with a room and a seq: the position advances, and never goes back. */
  private countSeq({ roomId, seq }: { roomId?: string; seq?: number }): void {
    if (roomId === undefined || seq === undefined) {
      return;
    }
    const position = this.positions.get(roomId);
    if (!position) {
      return; // not (yet) a member: nothing to resume from
    }
    position.lastSeq = Math.max(position.lastSeq, seq);
    const unplaced = this.unplaced.get(roomId);
    if (unplaced) {
      if (seq <= unplaced.seqs[unplaced.seqs.length - 1]) {
        this.seqErrors.push(
          `${this.userId} in ${roomId} got seq ${seq} after ${unplaced.seqs.join(',')}`,
        );
      }
      unplaced.seqs.push(seq);
      return;
    }
    const key = `${roomId}@${position.epoch}`;
    const last = this.lastSeqOf.get(key);
    if (last !== undefined && seq <= last) {
      this.unplaced.set(roomId, { epoch: position.epoch, after: last, seqs: [seq] });
      return;
    }
    this.lastSeqOf.set(key, seq);
  }

  /** A snapshot names the room's epoch: the seqs that went back before it belong to it if new. */
  private placeSeqs(roomId: string, epoch: string | undefined): void {
    const unplaced = this.unplaced.get(roomId);
    if (!unplaced || epoch === undefined || epoch === unplaced.epoch) {
      return;
    }
    this.unplaced.delete(roomId);
    const key = `${roomId}@${epoch}`;
    const first = unplaced.seqs[0];
    const last = this.lastSeqOf.get(key);
    if (last !== undefined && first <= last) {
      this.seqErrors.push(
        `${this.userId} in ${roomId} (epoch ${epoch}) got seq ${first} after ${last}`,
      );
    }
    this.lastSeqOf.set(key, Math.max(last ?? 0, unplaced.seqs[unplaced.seqs.length - 1]));
  }

  /** The reply to `resume`: recovered rooms keep their view (the missed events follow). */
  private resumed({ rooms, lost }: ServerEventMap['resumed']): void {
    this.pendingResume = undefined;
    this.outcomes.lost += lost.length;
    for (const room of rooms) {
      if (room.recovered) {
        this.outcomes.recovered += 1;
        const position = this.positions.get(room.roomId);
        if (!this.views.has(room.roomId) || position?.epoch !== room.epoch) {
          this.seqErrors.push(
            `${this.userId}: ${room.roomId} recovered in epoch ${room.epoch}, but the client ` +
              `had ${position ? `epoch ${position.epoch}` : 'no position'}`,
          );
        }
        this.positions.set(room.roomId, {
          epoch: room.epoch,
          lastSeq: Math.max(position?.lastSeq ?? 0, room.seq),
        });
      } else {
        this.outcomes.snapshots += 1;
        this.snapshot(room.roomInfo);
      }
    }
    for (const roomId of lost) {
      this.views.delete(roomId);
      this.positions.delete(roomId);
    }
  }

  private snapshot(roomInfo: RoomInfo): void {
    this.placeSeqs(roomInfo.roomId, roomInfo.epoch);
    this.views.set(roomInfo.roomId, {
      members: new Map(
        roomInfo.users.map((user) => [user.id, { role: user.role, connected: user.connected }]),
      ),
      state: roomInfo.state,
    });
    if (roomInfo.epoch !== undefined && roomInfo.seq !== undefined) {
      this.positions.set(roomInfo.roomId, { epoch: roomInfo.epoch, lastSeq: roomInfo.seq });
    }
  }

  private stateUpdated(update: ServerEventMap['state_updated']): void {
    const view = this.views.get(update.roomId);
    if (!view || update.version <= view.state.version) {
      return; // not a member (yet), or a repeat: what a client ignores
    }
    if (update.version !== view.state.version + 1) {
      view.gap = `state went from version ${view.state.version} to ${update.version}`;
    }
    try {
      const change = { baseVersion: view.state.version, patch: update.patch, ops: update.ops };
      view.state = { ...applyStateChange(view.state, change, Infinity), version: update.version };
    } catch (error) {
      view.gap = `version ${update.version} did not apply: ${String(error)}`;
      view.state = { ...view.state, version: update.version };
    }
  }
}

interface StoredRoom {
  members: Map<string, Seen>;
  state: RoomState;
}

/** The rooms as Redis has them: members with roles and connected flags, and state with its version. */
async function readStore(redis: Redis, prefix: string): Promise<Map<string, StoredRoom>> {
  const rooms = new Map<string, StoredRoom>();
  for (const roomId of await redis.zrange(`${prefix}rooms`, 0, '-1')) {
    const base = `${prefix}{${roomId}}:`;
    const [members, stateJson, version] = await Promise.all([
      redis.hgetall(`${base}members`),
      redis.get(`${base}state`),
      redis.hget(`${base}meta`, 'version'),
    ]);
    if (stateJson === null) {
      continue;
    }
    const roles = new Map<string, Seen>();
    for (const [userId, record] of Object.entries(members)) {
      const { user } = decodeMember(record);
      roles.set(userId, { role: user.role, connected: user.connected });
    }
    const state = JSON.parse(stateJson) as RoomState;
    rooms.set(roomId, { members: roles, state: { ...state, version: Number(version) } });
  }
  return rooms;
}

/** JSON with sorted object keys, so equal values compare equal whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(
          Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : inner,
  );
}

function describeMembers(members: Map<string, Seen>): string {
  return [...members]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, { role, connected }]) => `${id}:${role}${connected ? '' : '(not connected)'}`)
    .join(',');
}

/** Every way the clients and the store disagree; empty when they agree. */
function disagreements(users: ChaosUser[], store: Map<string, StoredRoom>): string[] {
  const problems: string[] = [];
  const byId = new Map(users.map((user) => [user.userId, user]));
  for (const user of users) {
    problems.push(...user.seqProblems);
  }
  for (const [roomId, room] of store) {
    for (const [memberId, { connected }] of room.members) {
      const user = byId.get(memberId);
      if (!user?.online) {
        problems.push(`ghost: ${memberId} is in ${roomId} but has no live socket`);
      } else if (!connected) {
        problems.push(`${memberId} is in ${roomId} with a live socket, but not connected`);
      } else if (!user.views.has(roomId)) {
        problems.push(`${memberId} is in ${roomId} in the store but does not know it`);
      }
    }
  }
  for (const user of users) {
    if (!user.online) {
      continue;
    }
    for (const [roomId, view] of user.views) {
      const room = store.get(roomId);
      if (!room?.members.has(user.userId)) {
        problems.push(`${user.userId} believes it is in ${roomId}; the store disagrees`);
        continue;
      }
      if (view.gap) {
        problems.push(`${user.userId} in ${roomId}: ${view.gap}, and no snapshot since`);
      }
      // A client is connected while its socket is open, whatever its view says of itself: a
      // replay can hold a host hand-over to it made while its seat was held (so `connected:
      // false`), and the `user_updated` saying it is back goes to the others only. The store's
      // flag for it is checked above.
      const own = view.members.get(user.userId);
      const members = new Map(view.members);
      if (own) {
        members.set(user.userId, { ...own, connected: true });
      }
      const seen = describeMembers(members);
      const stored = describeMembers(room.members);
      if (seen !== stored) {
        problems.push(`${user.userId} in ${roomId} sees members ${seen}; the store has ${stored}`);
      }
      if (view.state.version !== room.state.version) {
        problems.push(
          `${user.userId} in ${roomId} sees state version ${view.state.version}; ` +
            `the store has ${room.state.version}`,
        );
      } else if (canonical(view.state) !== canonical(room.state)) {
        problems.push(
          `${user.userId} in ${roomId} sees state ${canonical(view.state)}; ` +
            `the store has ${canonical(room.state)}`,
        );
      }
    }
  }
  return problems;
}

describe.each(MODES)('cluster: chaos (seeded), $name', (mode) => {
  const resumeOn = mode.graceMs > 0;
  const ENV = {
    RECONNECT_GRACE_MS: String(mode.graceMs),
    PRESENCE_TTL_MS: String(PRESENCE_TTL_MS),
  };
  let redis: RedisServer | undefined;
  let cluster: TestCluster | undefined;
  let spawned: InstanceProcess | undefined;
  let reader: Redis | undefined;
  const users = USERS.map((id) => new ChaosUser(id, resumeOn));

  afterAll(async () => {
    for (const user of users) {
      user.client?.socket.terminate();
    }
    reader?.disconnect();
    if (redis && !redis.running) {
      await redis.start().catch(() => undefined);
    }
    if (spawned) {
      await stopInstanceProcess(spawned);
    }
    await cluster?.close().catch(() => undefined);
    await redis?.stop('SIGKILL');
  });

  it(`keeps every member's view equal to the store, without ghosts (CHAOS_SEED=${SEED})`, async () => {
    const random = mulberry32(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
    const log: string[] = [];
    const say = (line: string) => log.push(`${log.length}: ${line}`);
    const tally = {
      connects: 0,
      joins: 0,
      resumed: 0,
      recovered: 0,
      snapshots: 0,
      lost: 0,
      refused: 0,
      rejoined: 0,
      gone: 0,
    };

    redis = await RedisServer.start(); // --save '' --appendonly no: a restart loses every key
    cluster = await startTestCluster(2, ENV, { redisUrl: redis.url, keepKeys: true });
    const { keyPrefix } = cluster;
    spawned = await startInstanceProcess(redis.url, keyPrefix, ENV);
    let spawnedDown = false;
    let restarting: Promise<void> | undefined;
    let outage: Promise<void> | undefined;
    const redisRestartAt = 40 + Math.floor(random() * 60);

    const wsUrls = (): (string | undefined)[] => [
      cluster?.servers[0].wsUrl,
      cluster?.servers[1].wsUrl,
      spawnedDown || restarting ? undefined : spawned?.wsUrl,
    ];

    /** A new socket on a random instance; with `resume`, the dropped one's token on the upgrade. */
    const open = async (
      user: ChaosUser,
      resume?: string,
    ): Promise<{ client: TestClient; instance: number } | undefined> => {
      const instance = Math.floor(random() * 3);
      const url = wsUrls()[instance];
      if (!url) {
        return undefined;
      }
      try {
        const client = await TestClient.connect(url, {
          userId: user.userId,
          ...(resume !== undefined ? { resume } : {}),
        });
        return { client, instance };
      } catch (error) {
        say(`${user.userId} could not connect to instance ${instance}: ${String(error)}`);
        return undefined;
      }
    };

    const connect = async (user: ChaosUser): Promise<void> => {
      const opened = await open(user);
      if (opened) {
        user.attach(opened.client, opened.instance);
        tally.connects += 1;
        say(`${user.userId} connected to instance ${opened.instance}`);
      }
    };

    /** Resume on: back with the token and its positions; joins again when the token is refused. */
    const resume = async (user: ChaosUser): Promise<void> => {
      const opened = await open(user, user.token);
      if (!opened) {
        return;
      }
      const { client, instance } = opened;
      user.attach(client, instance, true);
      if (client.connected?.resumed) {
        tally.resumed += 1;
        say(
          `${user.userId} resumes on instance ${instance}: ${JSON.stringify(user.resumeRooms())}`,
        );
        user.sendResume();
      } else {
        tally.refused += 1;
        say(`${user.userId} back on instance ${instance}, token refused: joins again`);
        user.rejoin();
      }
    };

    const restartSpawned = (): Promise<void> =>
      (async () => {
        if (spawned) {
          await stopInstanceProcess(spawned);
        }
        for (let attempt = 1; ; attempt++) {
          await outage; // it cannot boot without Redis, which may have gone meanwhile
          try {
            spawned = await startInstanceProcess(redis!.url, keyPrefix, ENV);
            break;
          } catch (error) {
            if (attempt === 3) {
              throw error;
            }
            await delay(500);
          }
        }
        spawnedDown = false;
        say('spawned instance started again');
      })().finally(() => {
        restarting = undefined;
      });

    let itemCounter = 0;
    const act = async (user: ChaosUser): Promise<void> => {
      const client = user.client;
      if (!user.online || !client) {
        const comesBack = random() < 0.8;
        if (!comesBack || Date.now() < user.awayUntil) {
          return;
        }
        if (user.dropped && user.token !== undefined) {
          await resume(user);
        } else {
          await connect(user);
        }
        return;
      }
      const joined = [...user.views.keys()];
      const roll = random();
      if (roll < 0.2) {
        const roomId = pick(ROOMS);
        say(`${user.userId} joins ${roomId}`);
        client.request('join_room', { roomId, name: user.userId });
      } else if (roll < 0.3) {
        if (joined.length > 0) {
          const roomId = pick(joined);
          say(`${user.userId} leaves ${roomId}`);
          client.request('leave_room', { roomId });
        }
      } else if (roll < 0.65) {
        if (joined.length > 0) {
          const roomId = pick(joined);
          const view = user.views.get(roomId)!;
          const existing = view.state.annotations;
          const kind = random();
          itemCounter += 1;
          const ops =
            kind < 0.5 || existing.length === 0
              ? [
                  {
                    op: 'add',
                    collection: 'annotations',
                    id: `${user.userId}-${itemCounter}`,
                    item: { text: `n${itemCounter}` },
                  },
                ]
              : kind < 0.8
                ? [
                    {
                      op: 'update',
                      collection: 'annotations',
                      id: pick(existing).id,
                      item: { text: `u${itemCounter}` },
                    },
                  ]
                : [{ op: 'remove', collection: 'annotations', id: pick(existing).id }];
          const patch =
            random() < 0.3
              ? { patch: { sessionSettings: { n: itemCounter } }, baseVersion: view.state.version }
              : {};
          say(`${user.userId} updates ${roomId}: ${ops[0].op}${patch.patch ? ' + patch' : ''}`);
          client.request('update_state', { roomId, ops, ...patch });
        }
      } else if (roll < 0.8) {
        const hosted = joined.filter(
          (roomId) => user.views.get(roomId)?.members.get(user.userId)?.role === 'host',
        );
        if (hosted.length > 0) {
          const roomId = pick(hosted);
          const others = [...user.views.get(roomId)!.members.keys()].filter(
            (id) => id !== user.userId,
          );
          if (others.length > 0) {
            const target = pick(others);
            const role = pick(['editor', 'viewer', 'viewer', 'host'] as const);
            say(`${user.userId} sets ${target} to ${role} in ${roomId}`);
            client.request('set_role', { roomId, targetUserId: target, role });
          }
        }
      } else if (roll < 0.9) {
        // Resume on: now and then it does not come back within the grace, so its seats must go.
        const abandon = resumeOn && random() < 0.25;
        say(`${user.userId} drops its socket (terminate)${abandon ? ', not to come back' : ''}`);
        if (abandon) {
          tally.gone += 1;
        }
        user.drop(abandon, mode.graceMs + PRESENCE_TTL_MS);
      } else {
        const rooms = user.roomIds();
        const resumes = resumeOn && random() < 0.5 && rooms.length > 0;
        say(
          `${user.userId} drops its socket and reconnects` +
            (resumeOn ? (resumes ? ', to resume' : ', without resuming') : ''),
        );
        user.drop(false, 0);
        if (resumes) {
          await resume(user);
          return;
        }
        await connect(user);
        if (user.client && user.client !== client) {
          tally.rejoined += 1;
          user.rejoin(rooms);
        }
      }
    };

    const started = Date.now();
    for (const user of users) {
      await connect(user);
    }
    for (let step = 0; step < STEPS; step++) {
      if (step === redisRestartAt) {
        const downMs = 300 + Math.floor(random() * 1200);
        say(`Redis killed for ${downMs} ms, to come back empty`);
        outage = (async () => {
          await redis.stop('SIGKILL');
          await delay(downMs);
          await redis.start();
          say('Redis is back, empty');
        })();
      }
      const global = random();
      if (global < 0.025 && !spawnedDown && !restarting && spawned) {
        say('spawned instance killed (SIGKILL)');
        spawnedDown = true;
        spawned.process.child.kill('SIGKILL');
      } else if (global > 0.96 && spawnedDown && !restarting) {
        restarting = restartSpawned();
      }
      await act(pick(users));
      await delay(10 + Math.floor(random() * 60));
    }
    await outage;
    await restarting;
    if (resumeOn) {
      // Whoever dropped and means to come back does so now; the seats nobody takes back must go
      // once the grace is over (an instance killed late is noticed within the presence TTL).
      for (const user of users) {
        if (user.dropped && user.token !== undefined && !user.online) {
          await resume(user);
        }
      }
      say(`chaos over after ${Date.now() - started} ms; waiting out the grace`);
      await delay(mode.graceMs + PRESENCE_TTL_MS + 500);
    } else {
      say(`chaos over after ${Date.now() - started} ms`);
    }

    reader = await connectRedis(redis.url);
    let problems: string[] = [];
    try {
      await waitFor(
        async () => {
          problems = disagreements(users, await readStore(reader!, keyPrefix));
          return problems.length === 0 ? true : undefined;
        },
        SETTLE_MS,
        'every view to equal the store',
        200,
      );
      for (const user of users) {
        tally.joins += user.outcomes.joins;
        tally.recovered += user.outcomes.recovered;
        tally.snapshots += user.outcomes.snapshots;
        tally.lost += user.outcomes.lost;
      }
      if (process.env.CHAOS_VERBOSE) {
        const store = await readStore(reader, keyPrefix);
        const rooms = [...store].map(
          ([roomId, room]) => `${roomId} v${room.state.version} ${describeMembers(room.members)}`,
        );
        process.stdout.write(
          `${log.join('\n')}\nstore: ${rooms.join(' | ')}\n` +
            `CHAOS_SEED=${SEED} ${resumeOn ? 'resume on' : 'resume off'}: ${JSON.stringify(tally)}` +
            ` in ${Date.now() - started} ms\n`,
        );
      }
    } catch {
      const recent = users
        .filter((user) => problems.some((problem) => problem.includes(user.userId)))
        .map(
          (user) =>
            `  ${user.userId} (instance ${user.instance}):\n    ${user.recent.join('\n    ')}`,
        );
      throw new Error(
        `CHAOS_SEED=${SEED} (${mode.name}): after ${SETTLE_MS} ms the views still differ from ` +
          `the store:\n${problems.join('\n')}\n\nLast steps:\n${log.slice(-40).join('\n')}\n\n` +
          `Last events of the clients concerned:\n${recent.join('\n')}\n\n` +
          `Spawned instance warnings:\n${(spawned?.process.stdoutLines ?? [])
            .filter((line) => /warn|error/i.test(line))
            .slice(-20)
            .join('\n')}`,
      );
    }
    // Views that agree with the store prove nothing if nobody got in: the chaos must have
    // happened, users joining rooms and, with resume on, resuming them.
    expect(tally.connects).toBeGreaterThanOrEqual(USERS.length);
    expect(tally.joins).toBeGreaterThan(0);
    if (resumeOn) {
      expect(tally.resumed).toBeGreaterThan(0);
      expect(tally.recovered + tally.snapshots).toBeGreaterThan(0);
    }
  }, 90_000);
});
