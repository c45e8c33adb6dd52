import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigValidationError } from '../config/environment.js';
import { FileRoomPersistence, roomFileName, roomIdOfFile } from './file-room-persistence.js';
import type { PersistedRoom } from './room-persistence.js';

const T0 = 1_700_000_000_000;

const room = (roomId: string, version = 0, overrides: Partial<PersistedRoom> = {}) =>
  ({
    roomId,
    config: { name: 'Gallery', maxUsers: 20, persistent: true, defaultRole: 'viewer' },
    createdAt: T0,
    lastActivity: T0 + version,
    state: {
      version,
      sceneUrl: 'https://example.com/scene.gltf',
      sceneLoaded: true,
      treeViewState: { open: ['a', 'b'] },
      annotations: [{ id: 'a1', text: 'Look here', position: [1, 2, 3] }],
      focusPoints: [],
      sessionSettings: { quality: 'high' },
    },
    ...overrides,
  }) satisfies PersistedRoom;

describe('room file names', () => {
  it.each([
    ['gallery-1', 'room-gallery-1.json'],
    ['Gallery_1', 'room-~gallery_1.json'],
    ['.', 'room-..json'],
    ['..', 'room-...json'],
    ['x.json', 'room-x.json.json'],
    ['AbC', 'room-~ab~c.json'],
  ])('stores %s as %s and reads it back', (roomId, fileName) => {
    expect(roomFileName(roomId)).toBe(fileName);
    expect(roomIdOfFile(fileName)).toBe(roomId);
  });

  it('keeps ids that differ only in case apart on case-insensitive disks', () => {
    expect(roomFileName('Gallery').toLowerCase()).not.toBe(roomFileName('gallery').toLowerCase());
  });

  it.each(['', '../x', 'a/b', 'a\\b', '/etc/passwd', 'a b', 'é', '~a', 'x'.repeat(65)])(
    'refuses the id %j',
    (roomId) => {
      expect(() => roomFileName(roomId)).toThrow(/Refusing to store a room/);
    },
  );

  it.each([
    'room-.json',
    'room-A.json',
    'room-~~a.json',
    'room-~1.json',
    'room-a~.json',
    'room-a.json.tmp',
    '.room-a.json.0123456789abcdef.tmp',
    'rooms.json',
    'README',
  ])('does not take %s for a room file', (fileName) => {
    expect(roomIdOfFile(fileName)).toBeUndefined();
  });
});

describe('FileRoomPersistence', () => {
  let parent: string;
  let dir: string;
  let persistence: FileRoomPersistence;
  const files = () => readdirSync(dir).sort();

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    parent = mkdtempSync(join(tmpdir(), 'room-persistence-'));
    dir = join(parent, 'data');
    persistence = FileRoomPersistence.open(dir);
  });

  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(parent, { recursive: true, force: true });
  });

  describe('open', () => {
    it('creates a missing folder, nested ones included', () => {
      const nested = join(parent, 'a', 'b', 'c');
      expect(FileRoomPersistence.open(nested).dir).toBe(nested);
      expect(statSync(nested).isDirectory()).toBe(true);
      expect(readdirSync(nested)).toEqual([]);
    });

    it('refuses a folder it cannot create, naming DATA_DIR', () => {
      writeFileSync(join(parent, 'a-file'), '');
      const unusable = join(parent, 'a-file', 'data');
      expect(() => FileRoomPersistence.open(unusable)).toThrow(ConfigValidationError);
      expect(() => FileRoomPersistence.open(unusable)).toThrow(
        new RegExp(`DATA_DIR="${unusable}": cannot create or write`),
      );
    });
  });

  it('round-trips a room, through a fresh instance too', async () => {
    await persistence.save(room('gallery-1', 3));
    expect(await persistence.loadAll()).toEqual([room('gallery-1', 3)]);
    expect(await FileRoomPersistence.open(dir).loadAll()).toEqual([room('gallery-1', 3)]);
  });

  it('keeps the password hash and an unnamed config exactly', async () => {
    const locked = room('locked', 0, {
      config: {
        maxUsers: 5,
        passwordHash: 'scrypt$salt$hash',
        persistent: true,
        defaultRole: 'editor',
      },
    });
    await persistence.save(locked);
    expect(await persistence.loadAll()).toEqual([locked]);
  });

  it('keeps the owner of a room (its room quota), and loads files written before owners', async () => {
    const owned = room('owned', 1, { owner: { kind: 'ip', id: '2001:db8::1' } });
    await persistence.save(owned);
    await persistence.save(room('older', 1));
    expect(await persistence.loadAll()).toEqual([room('older', 1), owned]);
    expect(JSON.parse(readFileSync(join(dir, 'room-older.json'), 'utf8'))).not.toHaveProperty(
      'owner',
    );
  });

  it.each([
    ['not an object', 'ann'],
    ['of an unknown kind', { kind: 'team', id: 'x' }],
    ['without an id', { kind: 'user', id: '' }],
  ])('loads a room whose owner is %s as owned by nobody', async (_label, owner) => {
    writeFileSync(join(dir, 'room-odd.json'), JSON.stringify({ format: 1, ...room('odd'), owner }));
    expect(await persistence.loadAll()).toEqual([room('odd')]);
  });

  it('writes one file per room, owner-only, and leaves no temporary file behind', async () => {
    await persistence.save(room('a', 1));
    await persistence.save(room('a', 2));
    await persistence.save(room('B', 1));
    expect(files()).toEqual(['room-a.json', 'room-~b.json']);
    expect(statSync(join(dir, 'room-a.json')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, 'room-a.json'), 'utf8'))).toMatchObject({
      format: 1,
      roomId: 'a',
      state: { version: 2 },
    });
  });

  it('lets the last of many quick saves of a room win', async () => {
    const saves = Array.from({ length: 20 }, (_, i) => persistence.save(room('busy', i + 1)));
    await Promise.all(saves);
    expect((await persistence.loadAll()).map((saved) => saved.state.version)).toEqual([20]);
    expect(files()).toEqual(['room-busy.json']);
  });

  it('saves the snapshot it was given, not what the object became while queued', async () => {
    const snapshot = room('moving', 1);
    const first = persistence.save(room('moving', 0));
    const second = persistence.save(snapshot);
    snapshot.state = { ...snapshot.state, version: 99 };
    await Promise.all([first, second]);
    expect((await persistence.loadAll())[0].state.version).toBe(1);
  });

  it('removes a room, and takes a missing one calmly', async () => {
    await persistence.save(room('gone'));
    await persistence.save(room('kept'));
    await persistence.remove('gone');
    await persistence.remove('never-saved');
    expect(files()).toEqual(['room-kept.json']);
    expect((await persistence.loadAll()).map((saved) => saved.roomId)).toEqual(['kept']);
  });

  it('applies a save and a remove of one room in the order they were made', async () => {
    await Promise.all([persistence.save(room('r', 1)), persistence.remove('r')]);
    expect(files()).toEqual([]);
    await Promise.all([persistence.remove('r'), persistence.save(room('r', 2))]);
    expect(files()).toEqual(['room-r.json']);
  });

  it('refuses to save or remove a room whose id is not a room id, writing nothing', async () => {
    await expect(persistence.save(room('../escape'))).rejects.toThrow(/Refusing to store/);
    await expect(persistence.save(room('a/b'))).rejects.toThrow(/Refusing to store/);
    await expect(persistence.remove('../data')).rejects.toThrow(/Refusing to store/);
    expect(files()).toEqual([]);
    expect(readdirSync(parent)).toEqual(['data']);
  });

  it('keeps "." and ".." inside the folder as ordinary rooms', async () => {
    await persistence.save(room('.'));
    await persistence.save(room('..'));
    expect(files()).toEqual(['room-...json', 'room-..json']);
    expect((await persistence.loadAll()).map((saved) => saved.roomId).sort()).toEqual(['.', '..']);
  });

  it('logs and skips files it cannot read as a room, and loads the others', async () => {
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const warnings = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await persistence.save(room('good', 4));
    const valid = JSON.parse(readFileSync(join(dir, 'room-good.json'), 'utf8'));
    writeFileSync(join(dir, 'room-torn.json'), '{"format":1,"roomId":"to');
    writeFileSync(join(dir, 'room-empty.json'), '');
    writeFileSync(join(dir, 'room-other.json'), JSON.stringify(valid));
    writeFileSync(
      join(dir, 'room-nostate.json'),
      JSON.stringify({ ...valid, roomId: 'nostate', state: undefined }),
    );
    writeFileSync(
      join(dir, 'room-badrole.json'),
      JSON.stringify({
        ...valid,
        roomId: 'badrole',
        config: { ...valid.config, defaultRole: 'host' },
      }),
    );
    writeFileSync(join(dir, 'room-BAD.json'), JSON.stringify(valid));
    writeFileSync(join(dir, 'notes.txt'), 'not a room');

    expect(await persistence.loadAll()).toEqual([room('good', 4)]);

    const skipped = errors.mock.calls.map(([message]) => String(message));
    for (const name of [
      'room-torn.json',
      'room-empty.json',
      'room-other.json',
      'room-nostate.json',
      'room-badrole.json',
    ]) {
      expect(skipped).toContainEqual(expect.stringContaining(join(dir, name)));
    }
    expect(skipped).toContainEqual(expect.stringMatching(/room-other\.json: its roomId "good"/));
    expect(warnings.mock.calls.map(([message]) => String(message))).toEqual([
      expect.stringContaining(join(dir, 'room-BAD.json')),
    ]);
  });

  it('reads state sections saved as null (as an earlier version allowed) as their initial values', async () => {
    const saved = room('nulls', 4);
    const state = { ...saved.state, sceneLoaded: null, treeViewState: null, sessionSettings: null };
    writeFileSync(join(dir, 'room-nulls.json'), JSON.stringify({ format: 1, ...saved, state }));
    expect(await persistence.loadAll()).toEqual([
      {
        ...saved,
        state: { ...saved.state, sceneLoaded: false, treeViewState: {}, sessionSettings: {} },
      },
    ]);
  });

  it('drops fields it does not know', async () => {
    writeFileSync(
      join(dir, 'room-extra.json'),
      JSON.stringify({ format: 1, ...room('extra'), members: ['mallory'], bans: {} }),
    );
    expect(await persistence.loadAll()).toEqual([room('extra')]);
  });

  it('clears temporary files of writes that a crash cut short', async () => {
    await persistence.save(room('a'));
    writeFileSync(join(dir, '.room-a.json.0123456789abcdef.tmp'), '{"format":1');
    writeFileSync(join(dir, '.probe.fedcba9876543210.tmp'), '');
    expect((await persistence.loadAll()).map((saved) => saved.roomId)).toEqual(['a']);
    expect(files()).toEqual(['room-a.json']);
  });

  it('rejects a save whose rename fails, removes its temporary file and keeps the old state', async () => {
    // A non-empty folder where the room's file belongs: the rename over it fails.
    mkdirSync(join(dir, 'room-blocked.json', 'inside'), { recursive: true });
    await expect(persistence.save(room('blocked'))).rejects.toThrow();
    expect(files()).toEqual(['room-blocked.json']);
    expect(readdirSync(join(dir, 'room-blocked.json'))).toEqual(['inside']);
  });

  it('rejects a save whose folder has gone', async () => {
    rmSync(dir, { recursive: true });
    await expect(persistence.save(room('a'))).rejects.toThrow(/ENOENT/);
  });
});
