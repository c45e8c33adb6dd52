import { jest } from '@jest/globals';
import { fakeClientLink } from '../../test/support/fake-client-link.js';
import { Test, type TestingModule } from '@nestjs/testing';
import { Fanout } from '../bus/fanout.service.js';
import { toOutgoingFrame, type OutgoingFrame } from '../bus/outgoing-frame.js';
import { LocalDelivery } from '../bus/local-delivery.js';
import { LocalRoomBus } from '../bus/local-room-bus.js';
import { ROOM_BUS, type RoomBus } from '../bus/room-bus.js';
import { appConfig, loadAppConfig } from '../config/app.config.js';
import { Replies } from '../delivery/replies.js';
import { RoomDelivery } from '../delivery/room-delivery.service.js';
import { MemoryRoomHistory } from '../history/memory-room-history.js';
import { ROOM_HISTORY } from '../history/room-history.js';
import { RoomEvents } from '../extensions/room-events.service.js';
import { readEntryMessage } from '../protocol/binary-poses.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import {
  ErrorCode,
  type AppMessage,
  type ServerEvent,
  type ServerMessage,
} from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';
import { MemoryRoomStore } from '../standalone/memory-room-store.js';
import { ROOM_STORE, type JoinOutcome, type JoinRequest } from './room-store.js';
import { ROOM_CHANGE_DELIVERY } from './room-changes.js';
import { RoomsService } from './rooms.service.js';

/** One thing the service sent, in the order it was sent, whichever path it took. */
interface Sent {
  via: 'publish' | 'publishPose' | 'sendToMember' | 'send' | 'frame';
  /** The receiving userId (send, frame, sendToMember). */
  to?: string;
  roomId?: string;
  except?: string;
  event: string;
  data: Record<string, unknown>;
}

/** Copies a message the way a serializing bus would, so later mutations do not show. */
const snapshot = (message: { event: string; data: unknown }) =>
  JSON.parse(JSON.stringify(message)) as { event: string; data: Record<string, unknown> };

class RecordingBus implements RoomBus {
  constructor(private readonly log: Sent[]) {}

  publish<E extends ServerEvent>(roomId: string, message: ServerMessage<E>, except?: string) {
    this.log.push({ via: 'publish', roomId, except, ...snapshot(message) });
  }

  publishPose(roomId: string, senderId: string, slot: number | undefined, message: AppMessage) {
    this.log.push({
      via: 'publishPose',
      roomId,
      except: senderId,
      ...snapshot({ event: 'message', data: { roomId, message, senderId, slot } }),
    });
  }

  publishPoseEntry(roomId: string, senderId: string, slot: number | undefined, entry: Buffer) {
    this.publishPose(roomId, senderId, slot, readEntryMessage(entry, 0, senderId));
  }

  publishWithReply<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    actor: string,
    reply: (message: ServerMessage<E>) => void,
  ): void {
    this.publish(roomId, message, actor);
    reply(message);
  }

  deliverCommitted<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    except: string,
    delivered: () => void,
  ): Promise<void> {
    this.publish(roomId, message, except);
    delivered();
    return Promise.resolve();
  }

  sendToMember<E extends ServerEvent>(roomId: string, userId: string, message: ServerMessage<E>) {
    this.log.push({ via: 'sendToMember', roomId, to: userId, ...snapshot(message) });
    return true;
  }

  onResyncNeeded() {}
  onLiveMemberLeft() {}

  watch() {
    return Promise.resolve();
  }

  onMembershipEnded() {}
}

class RecordingFanout {
  constructor(private readonly log: Sent[]) {}

  send(connection: Connection, message: ServerMessage) {
    this.log.push({ via: 'send', to: connection.userId, ...snapshot(message) });
  }

  forgetRoom() {}

  sendFrame(connection: Connection, frame: OutgoingFrame) {
    this.log.push({
      via: 'frame',
      to: connection.userId,
      ...(JSON.parse(frame.json) as { event: string; data: Record<string, unknown> }),
    });
  }
}

/**
 * The real in-memory store, with hooks that run just before and just after a join takes its
 * snapshot: what a slower (shared) store would let other requests do meanwhile.
 */
class HookedStore extends MemoryRoomStore {
  beforeSnapshot?: () => Promise<void>;
  afterSnapshot?: () => Promise<void>;

  override async join(request: JoinRequest): Promise<JoinOutcome> {
    const before = this.beforeSnapshot;
    const after = this.afterSnapshot;
    this.beforeSnapshot = undefined;
    this.afterSnapshot = undefined;
    await before?.();
    const outcome = await super.join(request);
    await after?.();
    return outcome;
  }
}

const MAX_STATE = 262144;

async function rejection(action: () => Promise<unknown>): Promise<ProtocolError> {
  try {
    await action();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

describe('RoomsService', () => {
  let moduleRef: TestingModule;
  let rooms: RoomsService;
  let users: UsersService;
  let store: HookedStore;
  let log: Sent[];

  async function setup(env: Record<string, string> = {}): Promise<void> {
    log = [];
    moduleRef = await Test.createTestingModule({
      providers: [
        RoomsService,
        UsersService,
        Fanout,
        RoomEvents,
        Replies,
        RoomDelivery,
        // Events go to the RecordingBus, not through LocalDelivery: only its roster watch is asked.
        { provide: LocalDelivery, useValue: { trackRoster() {}, untrackRoster() {} } },
        { provide: ROOM_CHANGE_DELIVERY, useExisting: RoomDelivery },
        { provide: ROOM_STORE, useClass: HookedStore },
        { provide: ROOM_BUS, useClass: LocalRoomBus },
        // Resume off: nothing is numbered (the resume e2e tests cover numbering).
        {
          provide: ROOM_HISTORY,
          useValue: new MemoryRoomHistory({ enabled: false, maxEvents: 0, maxAgeMs: 0 }),
        },
        { provide: appConfig.KEY, useFactory: () => loadAppConfig({}) },
      ],
    })
      .overrideProvider(ROOM_BUS)
      .useValue(new RecordingBus(log))
      .overrideProvider(Fanout)
      .useValue(new RecordingFanout(log))
      .overrideProvider(appConfig.KEY)
      .useValue(loadAppConfig({ LOG_LEVEL: 'error', ...env }))
      .compile();
    rooms = moduleRef.get(RoomsService);
    users = moduleRef.get(UsersService);
    store = moduleRef.get<HookedStore>(ROOM_STORE);
  }

  const connect = (userId: string): Connection =>
    users.connect(userId, {}, fakeClientLink()).connection;

  /** Joins and forgets what was sent, to set a scene. */
  async function joined(userId: string, roomId: string): Promise<Connection> {
    const connection = users.byUser(userId) ?? connect(userId);
    await rooms.join(connection, { roomId });
    log.length = 0;
    return connection;
  }

  /** What the LocalRoomBus does for a connection whose join is pending: hold the event back. */
  function hold(connection: Connection, roomId: string, event: string, data: unknown): void {
    const buffer = users.membership.pending(roomId)?.get(connection);
    if (!buffer) {
      throw new Error(`${connection.userId} has no pending join in ${roomId}`);
    }
    buffer.push({ event, data, frame: toOutgoingFrame({ event, data }) });
  }

  /** Another member joins through the store alone, as a join on another code path would. */
  function joinStoreDirectly(connection: Connection, roomId: string) {
    return store.join({
      roomId,
      userId: connection.userId,
      name: connection.userId,
      now: Date.now(),
      configForNewRoom: { maxUsers: 50, persistent: false, defaultRole: 'editor' },
      maxRooms: 10,
    });
  }

  const sentTo = (userId: string) => log.filter((sent) => sent.to === userId);

  beforeEach(async () => {
    await setup();
  });

  afterEach(async () => {
    await moduleRef.close();
  });

  describe('create', () => {
    it('creates a room with the given id', async () => {
      expect(await rooms.create({ roomId: 'gallery', name: 'Gallery' })).toBe('gallery');
      expect(await store.list()).toEqual([
        expect.objectContaining({ roomId: 'gallery', name: 'Gallery', persistent: false }),
      ]);
    });

    it('generates "room-" and 12 base36 characters when no id is given', async () => {
      const roomId = await rooms.create({});
      expect(roomId).toMatch(/^room-[0-9a-z]{12}$/);
      expect((await store.list()).map((room) => room.roomId)).toEqual([roomId]);
    });

    it('rejects an existing id with ROOM_EXISTS', async () => {
      await rooms.create({ roomId: 'r' });
      expect((await rejection(() => rooms.create({ roomId: 'r' }))).code).toBe(
        ErrorCode.RoomExists,
      );
    });

    it('stores a password as a hash that joins must match', async () => {
      await rooms.create({ roomId: 'locked', password: 'open sesame' });
      const error = await rejection(() =>
        rooms.join(connect('bob'), { roomId: 'locked', password: 'wrong' }),
      );
      expect(error.code).toBe(ErrorCode.InvalidPassword);
      await rooms.join(connect('carol'), { roomId: 'locked', password: 'open sesame' });
      expect(await store.roleOf('locked', 'carol')).toBe('host');
    });

    it('caps the role of joiners at a defaultRole of viewer', async () => {
      await rooms.create({ roomId: 'r', defaultRole: 'viewer' });
      await joined('alice', 'r');
      await rooms.join(connect('bob'), { roomId: 'r', role: 'editor' });
      expect(await store.roleOf('r', 'bob')).toBe('viewer');
    });
  });

  describe('config.maxUsers bound', () => {
    beforeEach(async () => {
      await moduleRef.close();
      await setup({ MAX_USERS_PER_ROOM: '3' });
    });

    it('rejects config.maxUsers above MAX_USERS_PER_ROOM with VALIDATION_FAILED', async () => {
      const error = await rejection(() => rooms.create({ roomId: 'r', maxUsers: 4 }));
      expect(error.code).toBe(ErrorCode.ValidationFailed);
      expect(error.details.field).toBe('config.maxUsers');
      expect(await store.list()).toEqual([]);
    });

    it('accepts config.maxUsers up to MAX_USERS_PER_ROOM and enforces it', async () => {
      await rooms.create({ roomId: 'r', maxUsers: 2 });
      await rooms.join(connect('alice'), { roomId: 'r' });
      await rooms.join(connect('bob'), { roomId: 'r' });
      const error = await rejection(() => rooms.join(connect('carol'), { roomId: 'r' }));
      expect(error.code).toBe(ErrorCode.RoomFull);
      expect(error.message).toBe('Room is full');
      expect(await rooms.create({ roomId: 'r3', maxUsers: 3 })).toBe('r3');
    });

    it.each([
      ['create_room without maxUsers', true],
      ['a join that creates the room', false],
    ])('gives %s MAX_USERS_PER_ROOM places', async (_label, viaCreate) => {
      if (viaCreate) {
        await rooms.create({ roomId: 'r' });
      }
      for (const userId of ['u1', 'u2', 'u3']) {
        await rooms.join(connect(userId), { roomId: 'r' });
      }
      const error = await rejection(() => rooms.join(connect('u4'), { roomId: 'r' }));
      expect(error.code).toBe(ErrorCode.RoomFull);
    });
  });

  describe('join', () => {
    it('refuses a client past PASSWORD_MAX_FAILURES before the store checks anything', async () => {
      await moduleRef.close();
      await setup({ PASSWORD_MAX_FAILURES: '2' });
      await rooms.create({ roomId: 'locked', password: 'open sesame' });
      const address = (userId: string, ip: string) =>
        users.connect(userId, {}, fakeClientLink(), {
          userId,
          verified: false,
          mayCreateRooms: true,
          admin: false,
          address: ip,
        }).connection;
      const mallory = address('mallory', '203.0.113.66');
      for (const guess of ['one', 'two']) {
        const wrong = await rejection(() =>
          rooms.join(mallory, { roomId: 'locked', password: guess }),
        );
        expect(wrong.code).toBe(ErrorCode.InvalidPassword);
      }

      let storeAsked = false;
      store.beforeSnapshot = () => Promise.resolve(void (storeAsked = true));
      const refused = await rejection(() =>
        rooms.join(mallory, { roomId: 'locked', password: 'open sesame' }),
      );
      expect(refused.code).toBe(ErrorCode.RateLimited);
      expect(refused.details.retryAfterMs).toBeGreaterThan(0);
      expect(storeAsked).toBe(false);
      expect(mallory.rooms.has('locked')).toBe(false);

      store.beforeSnapshot = undefined;
      await rooms.join(address('trent', '203.0.113.77'), {
        roomId: 'locked',
        password: 'open sesame',
      });
      expect(await store.roleOf('locked', 'trent')).toBe('host');
    });

    it('answers with room_joined carrying the requestId and the snapshot', async () => {
      const alice = connect('alice');
      await rooms.join(alice, { roomId: 'r', name: 'Alice', avatar: { color: '#123456' } }, 'j1');
      expect(log[0]).toEqual({
        via: 'send',
        to: 'alice',
        event: 'room_joined',
        data: {
          requestId: 'j1',
          roomInfo: {
            roomId: 'r',
            users: [
              {
                id: 'alice',
                name: 'Alice',
                role: 'host',
                avatar: { color: '#123456' },
                connected: true,
                lastSeen: expect.any(Number),
                slot: 1,
              },
            ],
            state: {
              version: 0,
              sceneUrl: null,
              sceneLoaded: false,
              treeViewState: {},
              annotations: [],
              focusPoints: [],
              sessionSettings: {},
            },
            createdAt: expect.any(Number),
          },
        },
      });
      expect(alice.rooms.has('r')).toBe(true);
      expect(users.membership.members('r')?.has(alice)).toBe(true);
    });

    it('sends no requestId when the join had none', async () => {
      await rooms.join(connect('alice'), { roomId: 'r' });
      expect(log[0].event).toBe('room_joined');
      expect(log[0].data).not.toHaveProperty('requestId');
    });

    it('names a joiner without a display name after its userId', async () => {
      await rooms.join(connect('alice'), { roomId: 'r' });
      expect(await store.roleOf('r', 'alice')).toBe('host');
      expect((log[0].data.roomInfo as { users: { name: string }[] }).users[0].name).toBe('alice');
    });

    it('publishes user_joined to everyone but the joiner, after answering the joiner', async () => {
      await joined('alice', 'r');
      await rooms.join(connect('bob'), { roomId: 'r', name: 'Bob', role: 'viewer' }, 'j2');
      expect(log.map((sent) => [sent.via, sent.event, sent.to ?? sent.except])).toEqual([
        ['send', 'room_joined', 'bob'],
        ['publish', 'user_joined', 'bob'],
      ]);
      expect(log[1]).toEqual({
        via: 'publish',
        roomId: 'r',
        except: 'bob',
        event: 'user_joined',
        data: {
          roomId: 'r',
          user: expect.objectContaining({ id: 'bob', name: 'Bob', role: 'viewer' }),
        },
      });
      expect(log[1].data).not.toHaveProperty('requestId');
    });

    it('answers a rejoin with a fresh room_joined and publishes no user_joined', async () => {
      await joined('alice', 'r');
      const bob = await joined('bob', 'r');
      await rooms.join(bob, { roomId: 'r', name: 'Renamed', role: 'viewer' }, 'again');
      expect(log).toEqual([
        expect.objectContaining({ via: 'send', to: 'bob', event: 'room_joined' }),
      ]);
      const roomInfo = log[0].data.roomInfo as { users: { id: string; name: string }[] };
      expect(roomInfo.users.map((user) => [user.id, user.name])).toEqual([
        ['alice', 'alice'],
        ['bob', 'bob'],
      ]);
      expect(log[0].data.requestId).toBe('again');
      expect(await store.roleOf('r', 'bob')).toBe('editor');
      expect([...(users.membership.members('r') ?? [])].map((c) => c.userId)).toEqual([
        'alice',
        'bob',
      ]);
    });

    it('sends room_joined before the events held back during the join, dropping those already in the snapshot', async () => {
      await joined('alice', 'r');
      const bob = connect('bob');
      const carol = connect('carol');
      const dave = connect('dave');

      store.beforeSnapshot = async () => {
        // Reflected in bob's snapshot: carol's arrival and state version 1.
        const joinedCarol = await joinStoreDirectly(carol, 'r');
        hold(bob, 'r', 'user_joined', { roomId: 'r', user: joinedCarol.user });
        const v1 = await store.applyStateChange(
          'r',
          { ops: [{ op: 'add', collection: 'annotations', id: 'a1', item: {} }] },
          MAX_STATE,
        );
        hold(bob, 'r', 'state_updated', { roomId: 'r', version: v1, updatedBy: 'alice' });
      };
      store.afterSnapshot = async () => {
        // News to bob: state version 2, dave's arrival, carol's departure.
        const v2 = await store.applyStateChange(
          'r',
          { ops: [{ op: 'add', collection: 'annotations', id: 'a2', item: {} }] },
          MAX_STATE,
        );
        hold(bob, 'r', 'state_updated', { roomId: 'r', version: v2, updatedBy: 'alice' });
        const joinedDave = await joinStoreDirectly(dave, 'r');
        hold(bob, 'r', 'user_joined', { roomId: 'r', user: joinedDave.user });
        await store.leave('r', carol.userId, Date.now());
        hold(bob, 'r', 'user_left', { roomId: 'r', userId: 'carol' });
      };

      await rooms.join(bob, { roomId: 'r' }, 'jb');

      const toBob = sentTo('bob');
      expect(toBob.map((sent) => [sent.via, sent.event])).toEqual([
        ['send', 'room_joined'],
        ['frame', 'state_updated'],
        ['frame', 'user_joined'],
        ['frame', 'user_left'],
      ]);
      const roomInfo = toBob[0].data.roomInfo as {
        users: { id: string }[];
        state: { version: number };
      };
      expect(toBob[0].data.requestId).toBe('jb');
      expect(roomInfo.users.map((user) => user.id)).toEqual(['alice', 'carol', 'bob']);
      expect(roomInfo.state.version).toBe(1);
      expect(toBob[1].data.version).toBe(2);
      expect((toBob[2].data.user as { id: string }).id).toBe('dave');
      expect(toBob[3].data.userId).toBe('carol');

      expect(users.membership.pending('r')).toBeUndefined();
      expect(users.membership.members('r')?.has(bob)).toBe(true);
      expect(log.at(-1)).toEqual(
        expect.objectContaining({ via: 'publish', event: 'user_joined', except: 'bob' }),
      );
    });

    it('passes on a join and a leave that both happen after the snapshot', async () => {
      await joined('alice', 'r');
      const bob = connect('bob');
      const eve = connect('eve');
      store.afterSnapshot = async () => {
        const outcome = await joinStoreDirectly(eve, 'r');
        hold(bob, 'r', 'user_joined', { roomId: 'r', user: outcome.user });
        await store.leave('r', eve.userId, Date.now());
        hold(bob, 'r', 'user_left', { roomId: 'r', userId: 'eve' });
      };

      await rooms.join(bob, { roomId: 'r' });

      // Bob's view must end without eve: he learns of her arrival, so he must learn she left.
      expect(sentTo('bob').map((sent) => sent.event)).toEqual([
        'room_joined',
        'user_joined',
        'user_left',
      ]);
    });

    it('passes on a leave and a rejoin of a member of the snapshot that happen after it', async () => {
      await joined('alice', 'r');
      const carol = await joined('carol', 'r');
      const bob = connect('bob');
      store.afterSnapshot = async () => {
        await store.leave('r', carol.userId, Date.now());
        hold(bob, 'r', 'user_left', { roomId: 'r', userId: 'carol' });
        const outcome = await joinStoreDirectly(carol, 'r');
        hold(bob, 'r', 'user_joined', { roomId: 'r', user: outcome.user });
      };

      await rooms.join(bob, { roomId: 'r' });

      // Carol is in the room at the end: bob must not be left believing she is gone.
      expect(sentTo('bob').map((sent) => sent.event)).toEqual([
        'room_joined',
        'user_left',
        'user_joined',
      ]);
    });

    it('forgets the pending join and answers nothing when the join fails', async () => {
      await rooms.create({ roomId: 'locked', password: 'pw' });
      const bob = connect('bob');
      const error = await rejection(() => rooms.join(bob, { roomId: 'locked', password: 'no' }));
      expect(error.code).toBe(ErrorCode.InvalidPassword);
      expect(log).toEqual([]);
      expect(users.membership.pending('locked')).toBeUndefined();
      expect(users.membership.members('locked')).toBeUndefined();
      expect(bob.rooms.size).toBe(0);
    });

    it('undoes a join whose connection closed while the store took it, leaving no ghost', async () => {
      await joined('alice', 'r');
      const bob = connect('bob');
      store.afterSnapshot = async () => {
        // The socket closes now: the gateway forgets it and removes it from the rooms it is in.
        users.disconnect(bob.handle);
        await rooms.leaveAll(bob);
      };
      const error = await rejection(() => rooms.join(bob, { roomId: 'r' }));
      expect(error.code).toBe(ErrorCode.Forbidden);
      expect(await store.roleOf('r', 'bob')).toBeUndefined();
      expect(log).toEqual([]);
      expect(users.membership.pending('r')).toBeUndefined();
      expect(bob.rooms.size).toBe(0);
    });

    describe('a member on record here that no socket here holds (a join carried out late)', () => {
      /** Answers as a shared store does: the member was on record for this instance already. */
      function onRecordHere(): void {
        const join = store.join.bind(store);
        jest.spyOn(store, 'join').mockImplementation(async (request) => {
          const outcome = await join(request);
          return outcome.alreadyMember ? { ...outcome, onRecordHere: true } : outcome;
        });
      }

      const sent = () => log.map((entry) => [entry.via, entry.event, entry.to ?? entry.except]);

      it('is announced when it joins again, since nobody was told of it', async () => {
        await joined('alice', 'r');
        const bob = connect('bob');
        await joinStoreDirectly(bob, 'r'); // its first join, which timed out
        onRecordHere();
        await rooms.join(bob, { roomId: 'r' }, 'retry');
        expect(sent()).toEqual([
          ['send', 'room_joined', 'bob'],
          ['publish', 'user_joined', 'bob'],
        ]);
        expect(log[0].data.requestId).toBe('retry');
      });

      it('is not announced again when its socket here is in the room', async () => {
        await joined('alice', 'r');
        const bob = await joined('bob', 'r');
        onRecordHere();
        await rooms.join(bob, { roomId: 'r' }, 'again');
        expect(sent()).toEqual([['send', 'room_joined', 'bob']]);
      });

      it('is not announced to a session taking its memberships over', async () => {
        await joined('alice', 'r');
        const bob = connect('bob');
        await joinStoreDirectly(bob, 'r');
        onRecordHere();
        await rooms.join(bob, { roomId: 'r', takeOver: true });
        expect(sent()).toEqual([['send', 'room_joined', 'bob']]);
      });

      it('is taken back when its socket closes while joining again', async () => {
        await joined('alice', 'r');
        const bob = connect('bob');
        await joinStoreDirectly(bob, 'r');
        onRecordHere();
        store.afterSnapshot = () => {
          users.disconnect(bob.handle);
          return Promise.resolve();
        };
        await rejection(() => rooms.join(bob, { roomId: 'r' }));
        expect(await store.roleOf('r', 'bob')).toBeUndefined();
        expect(log).toEqual([]);
      });
    });

    it('removes the room a closed connection created by its join, when rooms go at once', async () => {
      await moduleRef.close();
      await setup({ EMPTY_ROOM_TTL_MS: '0' });
      const bob = connect('bob');
      store.afterSnapshot = () => {
        users.disconnect(bob.handle);
        return Promise.resolve();
      };
      await rejection(() => rooms.join(bob, { roomId: 'fresh' }));
      expect(await store.list()).toEqual([]);
    });

    it('refuses a kicked user with KICKED', async () => {
      await joined('alice', 'r');
      const bob = await joined('bob', 'r');
      await rooms.kick(users.byUser('alice')!, 'r', 'bob');
      users.membership.remove(bob, 'r'); // what the real bus does when it delivers `kicked`
      log.length = 0;
      const error = await rejection(() => rooms.join(bob, { roomId: 'r' }));
      expect(error.code).toBe(ErrorCode.Kicked);
      expect(log).toEqual([]);
      expect(bob.rooms.has('r')).toBe(false);
    });

    describe('MAX_ROOMS_PER_CONNECTION', () => {
      beforeEach(async () => {
        await moduleRef.close();
        await setup({ MAX_ROOMS_PER_CONNECTION: '2' });
      });

      it('refuses a join beyond the limit with TOO_MANY_ROOMS and creates nothing', async () => {
        const alice = await joined('alice', 'r1');
        await joined('alice', 'r2');
        const error = await rejection(() => rooms.join(alice, { roomId: 'r3' }));
        expect(error.code).toBe(ErrorCode.TooManyRooms);
        expect(log).toEqual([]);
        expect((await store.list()).map((room) => room.roomId)).toEqual(['r1', 'r2']);
        expect(users.membership.pending('r3')).toBeUndefined();
        expect([...alice.rooms]).toEqual(['r1', 'r2']);
      });

      it('still answers a rejoin of a room it is in at the limit', async () => {
        const alice = await joined('alice', 'r1');
        await joined('alice', 'r2');
        await rooms.join(alice, { roomId: 'r1' }, 'again');
        expect(log.map((sent) => sent.event)).toEqual(['room_joined']);
      });

      it('counts per connection and frees a place on leave', async () => {
        const alice = await joined('alice', 'r1');
        await joined('alice', 'r2');
        await joined('bob', 'r3');
        await rooms.leave(alice, 'r2');
        await rooms.join(alice, { roomId: 'r3' });
        expect([...alice.rooms].sort()).toEqual(['r1', 'r3']);
      });
    });
  });

  describe('leave', () => {
    it('answers room_left and publishes user_left to the others', async () => {
      const alice = await joined('alice', 'r');
      const bob = await joined('bob', 'r');
      await rooms.leave(bob, 'r', 'l1');
      expect(log).toEqual([
        { via: 'send', to: 'bob', event: 'room_left', data: { requestId: 'l1', roomId: 'r' } },
        {
          via: 'publish',
          roomId: 'r',
          event: 'user_left',
          data: { roomId: 'r', userId: 'bob' },
        },
      ]);
      expect(bob.rooms.has('r')).toBe(false);
      expect([...(users.membership.members('r') ?? [])]).toEqual([alice]);
      expect(await store.roleOf('r', 'bob')).toBeUndefined();
    });

    it('publishes user_updated for the new host when the host leaves', async () => {
      const alice = await joined('alice', 'r');
      await joined('bob', 'r');
      await joined('carol', 'r');
      await rooms.leave(alice, 'r', 'l2');
      expect(log.map((sent) => [sent.via, sent.event])).toEqual([
        ['send', 'room_left'],
        ['publish', 'user_left'],
        ['publish', 'user_updated'],
      ]);
      expect(log[2]).toEqual({
        via: 'publish',
        roomId: 'r',
        event: 'user_updated',
        data: { roomId: 'r', user: expect.objectContaining({ id: 'bob', role: 'host' }) },
      });
      expect(await store.roleOf('r', 'bob')).toBe('host');
    });

    it('keeps an emptied room for EMPTY_ROOM_TTL_MS', async () => {
      const alice = await joined('alice', 'r');
      await rooms.leave(alice, 'r');
      expect((await store.list()).map((room) => room.roomId)).toEqual(['r']);
    });

    it('deletes an emptied room at once with EMPTY_ROOM_TTL_MS=0, telling nobody', async () => {
      await moduleRef.close();
      await setup({ EMPTY_ROOM_TTL_MS: '0' });
      const alice = await joined('alice', 'r');
      await rooms.leave(alice, 'r');
      expect(await store.list()).toEqual([]);
      // The sender hears back last, once the room is gone (its quota slot is free by then).
      expect(log.map((sent) => sent.event)).toEqual(['user_left', 'room_left']);
    });

    it('leaves the other rooms of a closed connection when the store fails for one', async () => {
      const alice = await joined('alice', 'r1');
      await joined('alice', 'r2');
      await joined('bob', 'r2');
      const leave = store.leave.bind(store);
      store.leave = (roomId, userId, now) =>
        roomId === 'r1'
          ? Promise.reject(new Error('store down for r1'))
          : leave(roomId, userId, now);
      await rooms.leaveAll(alice);
      expect(await store.roleOf('r2', 'alice')).toBeUndefined();
      expect(log.filter((sent) => sent.event === 'user_left').map((sent) => sent.roomId)).toEqual([
        'r2',
      ]);
      expect(alice.rooms.size).toBe(0);
    });

    it('leaves every room of a closed connection without replying', async () => {
      const alice = await joined('alice', 'r1');
      await joined('alice', 'r2');
      await joined('bob', 'r1');
      await rooms.leaveAll(alice);
      expect(sentTo('alice')).toEqual([]);
      expect(log.filter((sent) => sent.event === 'user_left').map((sent) => sent.roomId)).toEqual([
        'r1',
        'r2',
      ]);
      expect(alice.rooms.size).toBe(0);
      expect(await store.roleOf('r1', 'bob')).toBe('host');
    });
  });

  describe('setRole', () => {
    let alice: Connection;

    beforeEach(async () => {
      alice = await joined('alice', 'r');
      await joined('bob', 'r');
      await joined('carol', 'r');
    });

    it('publishes user_updated to the others and replies to the actor with the requestId', async () => {
      await rooms.setRole(alice, 'r', 'bob', 'viewer', 's1');
      const user = expect.objectContaining({ id: 'bob', role: 'viewer' });
      expect(log).toEqual([
        {
          via: 'publish',
          roomId: 'r',
          except: 'alice',
          event: 'user_updated',
          data: { roomId: 'r', user },
        },
        {
          via: 'send',
          to: 'alice',
          event: 'user_updated',
          data: { requestId: 's1', roomId: 'r', user },
        },
      ]);
    });

    it('announces the demoted host first, to everyone, and replies last', async () => {
      await rooms.setRole(alice, 'r', 'carol', 'host', 's2');
      expect(log).toEqual([
        {
          via: 'publish',
          roomId: 'r',
          event: 'user_updated',
          data: { roomId: 'r', user: expect.objectContaining({ id: 'alice', role: 'editor' }) },
        },
        {
          via: 'publish',
          roomId: 'r',
          except: 'alice',
          event: 'user_updated',
          data: { roomId: 'r', user: expect.objectContaining({ id: 'carol', role: 'host' }) },
        },
        {
          via: 'send',
          to: 'alice',
          event: 'user_updated',
          data: {
            requestId: 's2',
            roomId: 'r',
            user: expect.objectContaining({ id: 'carol', role: 'host' }),
          },
        },
      ]);
      expect(log.filter((sent) => 'requestId' in sent.data)).toHaveLength(1);
      expect(await store.roleOf('r', 'alice')).toBe('editor');
    });

    it('refuses to target oneself with VALIDATION_FAILED on targetUserId', async () => {
      const error = await rejection(() => rooms.setRole(alice, 'r', 'alice', 'viewer', 's3'));
      expect(error.code).toBe(ErrorCode.ValidationFailed);
      expect(error.details.field).toBe('targetUserId');
      expect(log).toEqual([]);
    });

    it('passes on USER_NOT_FOUND for a target outside the room, sending nothing', async () => {
      const error = await rejection(() => rooms.setRole(alice, 'r', 'zed', 'viewer'));
      expect(error.code).toBe(ErrorCode.UserNotFound);
      expect(log).toEqual([]);
    });
  });

  describe('kick', () => {
    it('sends kicked to the target, user_left to the others and the reply to the actor', async () => {
      const alice = await joined('alice', 'r');
      await joined('bob', 'r');
      await joined('carol', 'r');
      await rooms.kick(alice, 'r', 'bob', 'k1');
      expect(log).toEqual([
        { via: 'sendToMember', roomId: 'r', to: 'bob', event: 'kicked', data: { roomId: 'r' } },
        {
          via: 'publish',
          roomId: 'r',
          except: 'alice',
          event: 'user_left',
          data: { roomId: 'r', userId: 'bob' },
        },
        {
          via: 'send',
          to: 'alice',
          event: 'user_left',
          data: { requestId: 'k1', roomId: 'r', userId: 'bob' },
        },
      ]);
      expect(await store.roleOf('r', 'bob')).toBeUndefined();
    });

    it('refuses to kick oneself', async () => {
      const alice = await joined('alice', 'r');
      const error = await rejection(() => rooms.kick(alice, 'r', 'alice', 'k2'));
      expect(error.code).toBe(ErrorCode.ValidationFailed);
      expect(await store.roleOf('r', 'alice')).toBe('host');
    });
  });

  describe('an actor whose host role went after the gateway checked it', () => {
    let alice: Connection;

    beforeEach(async () => {
      alice = await joined('alice', 'r');
      await joined('bob', 'r');
      await joined('carol', 'r');
      // Nothing between the guard and the store sees this: only the store's own check does.
      await store.setRole('r', 'bob', 'host');
    });

    it.each([
      ['set_role', () => rooms.setRole(alice, 'r', 'carol', 'viewer', 'x1')],
      ['kick_user', () => rooms.kick(alice, 'r', 'carol', 'x2')],
      ['delete_room', () => rooms.delete(alice, 'r', 'x3')],
    ])('is refused %s with FORBIDDEN by the store; nothing is sent or changed', async (_, act) => {
      const error = await rejection(act);
      expect(error.code).toBe(ErrorCode.Forbidden);
      expect(log).toEqual([]);
      expect(await store.roleOf('r', 'carol')).toBe('editor');
    });
  });

  describe('delete', () => {
    it('replies room_deleted to the actor and publishes it to the others', async () => {
      const alice = await joined('alice', 'r');
      await joined('bob', 'r');
      await rooms.delete(alice, 'r', 'd1');
      // The actor's copy and the others' go to different sockets: their order is free.
      expect(log).toHaveLength(2);
      expect(log).toEqual(
        expect.arrayContaining([
          {
            via: 'send',
            to: 'alice',
            event: 'room_deleted',
            data: { requestId: 'd1', roomId: 'r', reason: 'deleted' },
          },
          {
            via: 'publish',
            roomId: 'r',
            except: 'alice',
            event: 'room_deleted',
            data: { roomId: 'r', reason: 'deleted' },
          },
        ]),
      );
      expect(await store.list()).toEqual([]);
    });
  });

  describe('token rules: mayCreateRoom, owners and quotas, maxRole', () => {
    const ann = { kind: 'user', id: 'ann' } as const;
    const address = { kind: 'ip', id: '203.0.113.9' } as const;

    it('refuses create_room to a token that may not create rooms, with FORBIDDEN', async () => {
      const error = await rejection(() => rooms.create({ roomId: 'r', mayCreateRoom: false }));
      expect(error.code).toBe(ErrorCode.Forbidden);
      expect(error.message).toBe('Your token does not allow creating rooms');
      expect(await store.list()).toEqual([]);
    });

    it('answers a join of a missing room with ROOM_NOT_FOUND for such a token, and joins one that exists', async () => {
      const alice = connect('alice');
      const error = await rejection(() => rooms.join(alice, { roomId: 'r', mayCreateRoom: false }));
      expect(error.code).toBe(ErrorCode.RoomNotFound);
      expect(alice.rooms.has('r')).toBe(false);
      await rooms.create({ roomId: 'r' });
      await rooms.join(alice, { roomId: 'r', mayCreateRoom: false });
      expect(alice.rooms.has('r')).toBe(true);
    });

    it('holds a user to MAX_ROOMS_PER_USER, by create and by a join that creates', async () => {
      await moduleRef.close();
      await setup({ MAX_ROOMS_PER_USER: '2' });
      await rooms.create({ roomId: 'r1', owner: ann });
      await rooms.join(connect('ann'), { roomId: 'r2', owner: ann });
      const error = await rejection(() => rooms.create({ roomId: 'r3', owner: ann }));
      expect(error.code).toBe(ErrorCode.RoomQuota);
      expect(error.message).toBe('You already have 2 rooms; at most 2');
      expect(
        (await rejection(() => rooms.join(connect('bob'), { roomId: 'r4', owner: ann }))).code,
      ).toBe(ErrorCode.RoomQuota);
      // an IP has no quota by default, and rooms without an owner count for nobody
      await rooms.create({ roomId: 'r5', owner: address });
      await rooms.create({ roomId: 'r6' });
    });

    it('holds an IP to MAX_ROOMS_PER_IP, and a user to nothing with MAX_ROOMS_PER_USER=0', async () => {
      await moduleRef.close();
      await setup({ MAX_ROOMS_PER_IP: '1', MAX_ROOMS_PER_USER: '0' });
      await rooms.create({ roomId: 'r1', owner: address });
      const error = await rejection(() => rooms.create({ roomId: 'r2', owner: address }));
      expect(error.message).toBe('You already have 1 rooms; at most 1');
      for (const roomId of ['u1', 'u2', 'u3']) {
        await rooms.create({ roomId, owner: ann });
      }
    });

    it('caps the role granted at join', async () => {
      const alice = connect('alice');
      await rooms.join(alice, { roomId: 'r', maxRole: 'editor' });
      expect(await store.roleOf('r', 'alice')).toBe('editor');
      await joined('bob', 'r');
      expect(await store.roleOf('r', 'bob')).toBe('editor');
    });

    it("refuses set_role above the target's cap with FORBIDDEN", async () => {
      const alice = await joined('alice', 'r');
      const bob = connect('bob');
      await rooms.join(bob, { roomId: 'r', maxRole: 'viewer' });
      const error = await rejection(() => rooms.setRole(alice, 'r', 'bob', 'editor'));
      expect(error.code).toBe(ErrorCode.Forbidden);
      expect(error.message).toBe("bob's token allows at most viewer in this room");
    });

    it('demotes a member that joins again with a lower cap and tells the others', async () => {
      await joined('alice', 'r');
      const bob = await joined('bob', 'r');
      await rooms.join(bob, { roomId: 'r', maxRole: 'viewer' }, 'again');
      expect(log.map((sent) => [sent.via, sent.event, sent.to ?? sent.except])).toEqual([
        ['send', 'room_joined', 'bob'],
        ['publish', 'user_updated', 'bob'],
      ]);
      expect(log[1].data).toEqual({
        roomId: 'r',
        user: expect.objectContaining({ id: 'bob', role: 'viewer' }),
      });
      expect(bob.profiles.get('r')?.role).toBe('viewer');
    });

    it('checks the password of a member that joins again', async () => {
      await rooms.create({ roomId: 'locked', password: 'pw' });
      const alice = connect('alice');
      await rooms.join(alice, { roomId: 'locked', password: 'pw' });
      const error = await rejection(() => rooms.join(alice, { roomId: 'locked' }));
      expect(error.code).toBe(ErrorCode.InvalidPassword);
      expect(alice.rooms.has('locked')).toBe(true);
    });
  });

  describe('deleteExpiredRooms', () => {
    it('deletes a persistent room idle for PERSISTENT_ROOM_IDLE_MS and tells its members', async () => {
      await moduleRef.close();
      await setup({ PERSISTENT_ROOM_IDLE_MS: '60000' });
      await rooms.create({ roomId: 'p', persistent: true });
      await joined('alice', 'p');
      const later = Date.now() + 62_000;
      const clock = jest.spyOn(Date, 'now').mockReturnValue(later);
      try {
        await rooms.deleteExpiredRooms();
      } finally {
        clock.mockRestore();
      }
      expect(log).toEqual([
        {
          via: 'publish',
          roomId: 'p',
          event: 'room_deleted',
          data: { roomId: 'p', reason: 'idle_timeout' },
        },
      ]);
      expect(await store.list()).toEqual([]);
    });

    it('deletes a room nobody joined without telling anyone when the TTL is 0', async () => {
      await moduleRef.close();
      await setup({ EMPTY_ROOM_TTL_MS: '0' });
      await rooms.create({ roomId: 'r' });
      await rooms.create({ roomId: 'p', persistent: true });
      await rooms.deleteExpiredRooms();
      expect((await store.list()).map((room) => room.roomId)).toEqual(['p']);
      expect(log).toEqual([]);
    });
  });
});
