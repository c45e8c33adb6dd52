import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import {
  config,
  describeRoomStoreContract,
  joinRequest,
  MAX_ROOMS,
  quota,
  rejection,
  T0,
} from '../../test/support/room-store-contract.js';
import { ErrorCode, type RoomUser } from '../protocol/protocol.js';
import {
  MemoryRoomStore,
  nextJoinNumber,
  SAVED_ACTIVITY_INTERVAL_MS,
  savedActivityIntervalMs,
} from './memory-room-store.js';
import { hashPassword } from '../rooms/password.js';
import { initialRoomState } from '../state/room-state.js';
import type { PersistedRoom, RoomPersistence } from './room-persistence.js';
import { LAST_ACTIVITY_RESOLUTION_MS, type RoomConfig } from '../rooms/room-store.js';

/** What a write does: succeed at once, wait for the test, or fail. */
type WriteMode = 'instant' | 'held' | 'failing';

/** A RoomPersistence in memory that records its calls and lets a test hold or fail writes. */
class FakePersistence implements RoomPersistence {
  readonly files = new Map<string, PersistedRoom>();
  readonly calls: string[] = [];
  mode: WriteMode = 'instant';
  private readonly held: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];

  constructor(readonly stored: PersistedRoom[] = []) {}

  loadAll(): Promise<PersistedRoom[]> {
    return Promise.resolve(this.stored);
  }

  async save(room: PersistedRoom): Promise<void> {
    this.calls.push(`save ${room.roomId} v${room.state.version}`);
    await this.write();
    this.files.set(room.roomId, structuredClone(room));
  }

  async remove(roomId: string): Promise<void> {
    this.calls.push(`remove ${roomId}`);
    await this.write();
    this.files.delete(roomId);
  }

  get heldWrites(): number {
    return this.held.length;
  }

  /** Lets the oldest held write complete, and what it unblocks run. */
  async release(): Promise<void> {
    await settle();
    const write = this.held.shift();
    if (!write) {
      throw new Error('no write is held');
    }
    write.resolve();
    await settle();
  }

  /** Fails every held write. */
  failHeld(): void {
    for (const write of this.held.splice(0)) {
      write.reject(new Error('disk full'));
    }
  }

  private write(): Promise<void> {
    switch (this.mode) {
      case 'instant':
        return Promise.resolve();
      case 'held':
        return new Promise((resolve, reject) => this.held.push({ resolve, reject }));
      case 'failing':
        return Promise.reject(new Error('disk full'));
    }
  }
}

/** Lets every pending promise callback run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

// The behaviour it shares with RedisRoomStore, each case on a new store.
describeRoomStoreContract(() => Promise.resolve({ store: new MemoryRoomStore() }), {
  name: 'MemoryRoomStore',
});

// Its own: the files of persistent rooms.
describe('MemoryRoomStore', () => {
  describe('with persistence', () => {
    const MAX_STATE = 262144;
    let store: MemoryRoomStore;
    let persistence: FakePersistence;

    const persistentConfig = (overrides: Partial<RoomConfig> = {}) =>
      config({ persistent: true, ...overrides });
    const createPersistent = (roomId: string, overrides: Partial<RoomConfig> = {}) =>
      store.create({ roomId, config: persistentConfig(overrides), createdAt: T0 }, MAX_ROOMS);
    const addAnnotation = (roomId: string, id: string) =>
      store.applyStateChange(
        roomId,
        { ops: [{ op: 'add', collection: 'annotations', id, item: { text: id } }] },
        MAX_STATE,
      );

    beforeEach(() => {
      persistence = new FakePersistence();
      store = new MemoryRoomStore(persistence);
    });

    it('restores the stored rooms with their config and state, and no members', async () => {
      const state = {
        version: 7,
        sceneUrl: 'https://example.com/s.gltf',
        sceneLoaded: true,
        treeViewState: { open: ['n1'] },
        annotations: [{ id: 'a1', text: 'hi' }],
        focusPoints: [],
        sessionSettings: { quality: 'high' },
      };
      const passwordHash = await hashPassword('pw');
      store = new MemoryRoomStore(
        new FakePersistence([
          {
            roomId: 'kept',
            config: persistentConfig({
              name: 'Kept',
              maxUsers: 3,
              passwordHash,
              defaultRole: 'viewer',
            }),
            createdAt: T0,
            lastActivity: T0 + 50,
            state,
          },
        ]),
      );
      await store.onModuleInit();

      expect(await store.list()).toEqual([
        {
          roomId: 'kept',
          name: 'Kept',
          userCount: 0,
          persistent: true,
          createdAt: T0,
          lastActivity: T0 + 50,
        },
      ]);
      expect(await store.getState('kept')).toEqual(state);
      const wrong = await rejection(() =>
        store.join(joinRequest('kept', 'alice', { password: 'no' })),
      );
      expect(wrong.code).toBe(ErrorCode.InvalidPassword);
      // The next joiner becomes host; the one after gets the restored default role.
      const alice = await store.join(joinRequest('kept', 'alice', { password: 'pw' }));
      expect(alice.createdRoom).toBe(false);
      expect(alice.user.role).toBe('host');
      expect(alice.roomInfo.state).toEqual(state);
      const bob = await store.join(
        joinRequest('kept', 'bob', { password: 'pw', requestedRole: 'editor' }),
      );
      expect(bob.user.role).toBe('viewer');
    });

    it('writes a persistent room when it is created, and waits for the write', async () => {
      persistence.mode = 'held';
      let created = false;
      const creating = createPersistent('p', { name: 'P' }).then(() => {
        created = true;
      });
      await settle();
      expect(created).toBe(false);
      await persistence.release();
      await creating;
      expect(persistence.files.get('p')).toEqual({
        roomId: 'p',
        config: persistentConfig({ name: 'P' }),
        createdAt: T0,
        lastActivity: T0,
        state: expect.objectContaining({ version: 0 }),
      });
    });

    it('never writes a non-persistent room', async () => {
      await store.create({ roomId: 'plain', config: config(), createdAt: T0 }, MAX_ROOMS);
      await store.join(joinRequest('plain', 'alice'));
      await store.join(joinRequest('joined', 'alice'));
      await addAnnotation('plain', 'a');
      await addAnnotation('joined', 'a');
      await store.delete('plain');
      await store.leave('joined', 'alice', T0 + 1);
      await store.deleteExpired({ now: T0 + 100_000, emptyRoomTtlMs: 0, roomTimeoutMs: 1000 });
      expect(persistence.calls).toEqual([]);
    });

    it('answers a state change of a non-persistent room without waiting for anything', async () => {
      persistence.mode = 'held';
      await store.join(joinRequest('plain', 'alice'));
      expect(await addAnnotation('plain', 'a')).toBe(1);
      expect(persistence.heldWrites).toBe(0);
    });

    it('resolves a state change only once it is written, and shows it only then', async () => {
      await createPersistent('p');
      persistence.mode = 'held';
      let version: number | undefined;
      const applying = addAnnotation('p', 'a1').then((v) => {
        version = v;
      });
      await settle();
      expect(version).toBeUndefined();
      expect((await store.getState('p')).version).toBe(0);

      await persistence.release();
      await applying;
      expect(version).toBe(1);
      expect((await store.getState('p')).annotations).toEqual([{ id: 'a1', text: 'a1' }]);
      expect(persistence.files.get('p')?.state).toEqual(await store.getState('p'));
    });

    it('writes the changes of one room one at a time, in order', async () => {
      await createPersistent('p');
      persistence.mode = 'held';
      const versions = Promise.all([addAnnotation('p', 'a'), addAnnotation('p', 'b')]);
      await settle();
      expect(persistence.heldWrites).toBe(1);
      expect(persistence.calls).toEqual(['save p v0', 'save p v1']);
      await persistence.release();
      expect(persistence.calls).toEqual(['save p v0', 'save p v1', 'save p v2']);
      await persistence.release();
      expect(await versions).toEqual([1, 2]);
      expect(persistence.files.get('p')?.state.version).toBe(2);
    });

    it('checks a patch against the written state: the second of two on one version is stale', async () => {
      await createPersistent('p');
      persistence.mode = 'held';
      const patch = { baseVersion: 0, patch: { sceneLoaded: true } };
      const first = store.applyStateChange('p', patch, MAX_STATE);
      const second = store.applyStateChange('p', patch, MAX_STATE);
      await persistence.release();
      expect(await first).toBe(1);
      const stale = await rejection(() => second);
      expect(stale.code).toBe(ErrorCode.StaleVersion);
      expect(stale.details.currentVersion).toBe(1);
    });

    it('changes nothing when the write of a state change fails, and goes on after it', async () => {
      await createPersistent('p');
      persistence.mode = 'failing';
      await expect(addAnnotation('p', 'lost')).rejects.toThrow('disk full');
      expect((await store.getState('p')).version).toBe(0);
      persistence.mode = 'instant';
      expect(await addAnnotation('p', 'kept')).toBe(1);
      expect((await store.getState('p')).annotations.map((item) => item.id)).toEqual(['kept']);
    });

    it('does not keep a persistent room whose first write failed', async () => {
      persistence.mode = 'failing';
      await expect(createPersistent('p')).rejects.toThrow('disk full');
      expect(await store.list()).toEqual([]);
      persistence.mode = 'instant';
      await createPersistent('p');
      expect((await store.list()).map((room) => room.roomId)).toEqual(['p']);
    });

    describe('a join while the room’s first write is under way', () => {
      it('waits for the write, then joins the room on disk', async () => {
        persistence.mode = 'held';
        const creating = createPersistent('p');
        let joined = false;
        const joining = store.join(joinRequest('p', 'alice', { mayCreate: false })).then((o) => {
          joined = true;
          return o;
        });
        await settle();
        expect(joined).toBe(false);
        await persistence.release();
        await creating;
        expect(await joining).toMatchObject({ createdRoom: false, roomInfo: { roomId: 'p' } });
      });

      it('is not let into a room whose write then fails: the room is not found', async () => {
        persistence.mode = 'held';
        const creating = createPersistent('p').catch((error: unknown) => error);
        const joining = rejection(() =>
          store.join(joinRequest('p', 'alice', { mayCreate: false })),
        );
        await settle();
        // The held write completes as a failure: the room goes, and the join finds none.
        persistence.failHeld();
        expect(await creating).toMatchObject({ message: 'disk full' });
        expect((await joining).code).toBe(ErrorCode.RoomNotFound);
        expect(await store.list()).toEqual([]);
      });
    });

    it('removes the file of a deleted persistent room before the room is gone', async () => {
      await createPersistent('p');
      await store.join(joinRequest('p', 'alice'));
      persistence.mode = 'held';
      const deleting = store.delete('p');
      await settle();
      expect(persistence.calls).toEqual(['save p v0', 'remove p']);
      expect(await store.list()).toHaveLength(1);
      await persistence.release();
      expect(await deleting).toEqual(['alice']);
      expect(await store.list()).toEqual([]);
      expect(persistence.files.has('p')).toBe(false);
    });

    describe('an actor that loses its role while its write is on its way to disk', () => {
      const editor = { userId: 'bob', minRole: 'editor' } as const;
      const host = { userId: 'alice', minRole: 'host' } as const;

      beforeEach(async () => {
        await createPersistent('p');
        await store.join(joinRequest('p', 'alice'));
        await store.join(joinRequest('p', 'bob'));
        persistence.mode = 'held';
      });

      it('refuses the state change, and puts the record on disk back as it was', async () => {
        const applying = store.applyStateChange(
          'p',
          { baseVersion: 0, patch: { sceneLoaded: true } },
          MAX_STATE,
          editor,
        );
        await settle();
        await store.setRole('p', 'bob', 'viewer');
        persistence.mode = 'instant';
        await persistence.release();
        expect((await rejection(() => applying)).code).toBe(ErrorCode.Forbidden);
        expect((await store.getState('p')).version).toBe(0);
        expect(persistence.calls).toEqual(['save p v0', 'save p v1', 'save p v0']);
        expect(persistence.files.get('p')?.state).toEqual(await store.getState('p'));
      });

      it('refuses the deletion, and writes the removed record again', async () => {
        const deleting = store.delete('p', host);
        await settle();
        await store.leave('p', 'alice', T0 + 1);
        persistence.mode = 'instant';
        await persistence.release();
        expect((await rejection(() => deleting)).code).toBe(ErrorCode.NotInRoom);
        expect((await store.list()).map((room) => room.roomId)).toEqual(['p']);
        expect(persistence.calls).toEqual(['save p v0', 'remove p', 'save p v0']);
        expect(persistence.files.has('p')).toBe(true);
      });
    });

    it('keeps a persistent room whose file could not be removed', async () => {
      await createPersistent('p');
      persistence.mode = 'failing';
      await expect(store.delete('p')).rejects.toThrow('disk full');
      expect((await store.list()).map((room) => room.roomId)).toEqual(['p']);
    });

    it('orders a change before a delete, and refuses a change queued behind the delete', async () => {
      await createPersistent('p');
      persistence.mode = 'held';
      const before = addAnnotation('p', 'a');
      const deleting = store.delete('p');
      const after = addAnnotation('p', 'b');
      await persistence.release();
      await persistence.release();
      expect(await before).toBe(1);
      expect(await deleting).toEqual([]);
      const error = await rejection(() => after);
      expect(error.code).toBe(ErrorCode.RoomNotFound);
      expect(persistence.calls).toEqual(['save p v0', 'save p v1', 'remove p']);
      expect(persistence.files.has('p')).toBe(false);
    });

    it('refuses to create a room while its deletion is still being written', async () => {
      await createPersistent('p');
      persistence.mode = 'held';
      const deleting = store.delete('p');
      const error = await rejection(() => createPersistent('p'));
      expect(error.code).toBe(ErrorCode.RoomExists);
      await persistence.release();
      await deleting;
      persistence.mode = 'instant';
      await createPersistent('p');
      expect(persistence.calls).toEqual(['save p v0', 'remove p', 'save p v0']);
    });

    it('waits for the writes in flight when the application shuts down', async () => {
      await createPersistent('p');
      persistence.mode = 'held';
      const applying = addAnnotation('p', 'a');
      let drained = false;
      const draining = store.onApplicationShutdown().then(() => {
        drained = true;
      });
      await settle();
      expect(drained).toBe(false);
      await persistence.release();
      await Promise.all([applying, draining]);
      expect(drained).toBe(true);
    });

    describe('idle expiry (persistentRoomIdleMs)', () => {
      const IDLE = 30 * 86_400_000;
      const policy = (now: number) => ({
        now,
        emptyRoomTtlMs: 0,
        roomTimeoutMs: 1000,
        persistentRoomIdleMs: IDLE,
      });
      const expiresAt = T0 + IDLE + LAST_ACTIVITY_RESOLUTION_MS;

      it('removes the file of an idle persistent room before the room is gone', async () => {
        await createPersistent('p');
        await store.join(joinRequest('p', 'alice'));
        persistence.mode = 'held';
        const sweeping = store.deleteExpired(policy(expiresAt));
        await settle();
        expect(persistence.calls).toEqual(['save p v0', 'remove p']);
        expect(await store.list()).toHaveLength(1);
        await persistence.release();
        expect(await sweeping).toEqual([
          { roomId: 'p', reason: 'idle_timeout', memberIds: ['alice'] },
        ]);
        expect(await store.list()).toEqual([]);
        expect(persistence.files.has('p')).toBe(false);
      });

      it('keeps an idle room whose file could not be removed, logs it, and tries again', async () => {
        const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
        await createPersistent('p');
        persistence.mode = 'failing';
        expect(await store.deleteExpired(policy(expiresAt))).toEqual([]);
        expect(await store.list()).toHaveLength(1);
        expect(String(errors.mock.calls[0]?.[0])).toMatch(/idle persistent room p: .*disk full/);
        persistence.mode = 'instant';
        expect(await store.deleteExpired(policy(expiresAt))).toHaveLength(1);
        errors.mockRestore();
      });

      it('keeps a room that got activity while its sweep waited for earlier writes', async () => {
        await createPersistent('p');
        persistence.mode = 'held';
        const applying = addAnnotation('p', 'a');
        const sweeping = store.deleteExpired(policy(Date.now() + 10));
        await persistence.release();
        await applying;
        expect(await sweeping).toEqual([]);
        expect(await store.list()).toHaveLength(1);
      });

      it('writes activity to the record at most once an interval, so a restart keeps it', async () => {
        await createPersistent('p');
        await store.join(joinRequest('p', 'alice', { now: T0 + SAVED_ACTIVITY_INTERVAL_MS - 1 }));
        await store.touch('p', T0 + SAVED_ACTIVITY_INTERVAL_MS);
        await settle();
        expect(persistence.calls).toEqual(['save p v0', 'save p v0']);
        expect(persistence.files.get('p')?.lastActivity).toBe(T0 + SAVED_ACTIVITY_INTERVAL_MS);
        await store.touch('p', T0 + SAVED_ACTIVITY_INTERVAL_MS + 1000);
        await store.leave('p', 'alice', T0 + SAVED_ACTIVITY_INTERVAL_MS + 2000);
        await settle();
        expect(persistence.calls).toHaveLength(2);
      });
    });

    describe('activity on disk', () => {
      const IDLE = 40_000;
      const policy = (now: number) => ({
        now,
        emptyRoomTtlMs: 0,
        roomTimeoutMs: 1000,
        persistentRoomIdleMs: IDLE,
      });

      beforeEach(() => {
        store = new MemoryRoomStore(persistence, { persistentRoomIdleMs: IDLE });
      });

      it('writes activity alone once a quarter of a short idle time, at most once an hour', async () => {
        expect(savedActivityIntervalMs(IDLE)).toBe(IDLE / 4);
        expect(savedActivityIntervalMs(30 * 86_400_000)).toBe(SAVED_ACTIVITY_INTERVAL_MS);
        expect(savedActivityIntervalMs(0)).toBe(SAVED_ACTIVITY_INTERVAL_MS);
        await createPersistent('p');
        await store.join(joinRequest('p', 'alice', { now: T0 + IDLE / 4 - 1 }));
        await settle();
        expect(persistence.calls).toEqual(['save p v0']);
        await store.touch('p', T0 + IDLE / 4);
        await settle();
        expect(persistence.calls).toEqual(['save p v0', 'save p v0']);
        expect(persistence.files.get('p')?.lastActivity).toBe(T0 + IDLE / 4);
      });

      it('writes on shutdown the newest activity of the rooms whose record lacks it', async () => {
        await createPersistent('busy');
        await createPersistent('quiet');
        await store.join(joinRequest('busy', 'alice', { now: T0 + 1000 }));
        await store.touch('busy', T0 + 2000);
        await settle();
        expect(persistence.calls).toEqual(['save busy v0', 'save quiet v0']);

        await store.onApplicationShutdown();
        expect(persistence.calls).toEqual(['save busy v0', 'save quiet v0', 'save busy v0']);
        expect(persistence.files.get('busy')?.lastActivity).toBe(T0 + 2000);
        // Nothing new since: a second shutdown writes nothing.
        await store.onApplicationShutdown();
        expect(persistence.calls).toHaveLength(3);
      });

      it('counts idle time from the load for a room last active in the future', async () => {
        const warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
        const future = Date.now() + 365 * 86_400_000;
        const saved = {
          roomId: 'skewed',
          config: persistentConfig(),
          createdAt: T0,
          state: initialRoomState(),
        };
        persistence = new FakePersistence([{ ...saved, lastActivity: future }]);
        store = new MemoryRoomStore(persistence, { persistentRoomIdleMs: IDLE });
        const loadedAt = Date.now();
        await store.onModuleInit();

        const [listed] = await store.list();
        expect(listed.lastActivity).toBeGreaterThanOrEqual(loadedAt);
        expect(listed.lastActivity).toBeLessThanOrEqual(Date.now());
        expect(String(warnings.mock.calls[0]?.[0])).toMatch(/skewed was last active in the future/);
        const idleAt = listed.lastActivity + IDLE + LAST_ACTIVITY_RESOLUTION_MS;
        expect(await store.deleteExpired(policy(idleAt - 1))).toEqual([]);
        expect(await store.deleteExpired(policy(idleAt))).toEqual([
          { roomId: 'skewed', reason: 'idle_timeout', memberIds: [] },
        ]);
        warnings.mockRestore();
      });

      it('corrects a future lastActivity on disk with the next write of activity', async () => {
        const saved = {
          roomId: 'skewed',
          config: persistentConfig(),
          createdAt: T0,
          state: initialRoomState(),
        };
        persistence = new FakePersistence([{ ...saved, lastActivity: Date.now() + 86_400_000 }]);
        store = new MemoryRoomStore(persistence, { persistentRoomIdleMs: IDLE });
        jest.spyOn(Logger.prototype, 'warn').mockImplementationOnce(() => undefined);
        await store.onModuleInit();
        const now = Date.now();
        await store.touch('skewed', now);
        await settle();
        expect(persistence.files.get('skewed')?.lastActivity).toBe(now);
      });
    });

    describe('room owners', () => {
      it('writes the owner with the room and counts a restored room against it', async () => {
        await store.create(
          { roomId: 'p', config: persistentConfig(), createdAt: T0, quota: quota('ann', 1) },
          MAX_ROOMS,
        );
        expect(persistence.files.get('p')?.owner).toEqual({ kind: 'user', id: 'ann' });

        const restarted = new MemoryRoomStore(new FakePersistence([...persistence.files.values()]));
        await restarted.onModuleInit();
        const error = await rejection(() =>
          restarted.join(joinRequest('another', 'ann', { quota: quota('ann', 1) })),
        );
        expect(error.code).toBe(ErrorCode.RoomQuota);
        await restarted.delete('p');
        await restarted.join(joinRequest('another', 'ann', { quota: quota('ann', 1) }));
      });

      it('restores a room saved without an owner as counting against nobody', async () => {
        await createPersistent('p');
        expect(persistence.files.get('p')).not.toHaveProperty('owner');
        const restarted = new MemoryRoomStore(new FakePersistence([...persistence.files.values()]));
        await restarted.onModuleInit();
        await restarted.join(joinRequest('another', 'ann', { quota: quota('ann', 1) }));
      });
    });

    it('keeps persistent rooms in memory only when no persistence is provided', async () => {
      store = new MemoryRoomStore();
      await store.onModuleInit();
      await createPersistent('p');
      expect(await addAnnotation('p', 'a')).toBe(1);
      expect(await store.delete('p')).toEqual([]);
      expect(persistence.calls).toEqual([]);
    });
  });
});

describe('nextJoinNumber', () => {
  const SLOTS = 65536;
  const holding = (...slots: number[]): RoomUser[] =>
    slots.map((slot) => ({
      id: `m-${slot}`,
      name: `m-${slot}`,
      role: 'viewer',
      connected: true,
      lastSeen: T0,
      slot,
    }));

  it('takes the next number before slots wrap: no member can hold its slot yet', () => {
    expect(nextJoinNumber(0, [])).toBe(1);
    expect(nextJoinNumber(SLOTS - 2, holding(1, 2))).toBe(SLOTS - 1);
  });

  it('skips the numbers whose slot a member holds once they wrap', () => {
    expect(nextJoinNumber(SLOTS - 1, holding(7))).toBe(SLOTS);
    expect(nextJoinNumber(SLOTS - 1, holding(0, 1, 3))).toBe(SLOTS + 2);
    expect(nextJoinNumber(3 * SLOTS + 9, holding(10, 11, 12))).toBe(3 * SLOTS + 13);
  });

  it('finds none while the members hold every slot', () => {
    const all = holding(...Array.from({ length: SLOTS }, (_, slot) => slot));
    expect(nextJoinNumber(SLOTS + 41, all)).toBeUndefined();
    expect(nextJoinNumber(SLOTS + 41, all.slice(1))).toBe(2 * SLOTS);
  });
});
