import 'reflect-metadata';
import { mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadAppConfig } from './app.config.js';
import { ConfigValidationError, prepareDataDir, validateEnvironment } from './environment.js';

/** Validates an environment that must be refused and returns the error. */
function refusal(env: Record<string, string | undefined>): ConfigValidationError {
  try {
    validateEnvironment(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigValidationError);
    return error as ConfigValidationError;
  }
  throw new Error('validateEnvironment was expected to throw');
}

describe('validateEnvironment', () => {
  it('fills in every default from an empty environment', () => {
    expect({ ...validateEnvironment({}) }).toEqual({
      PORT: 8080,
      HOST: '0.0.0.0',
      REQUIRE_API_KEY: false,
      MAX_ROOMS: 1000,
      MAX_USERS_PER_ROOM: 50,
      MAX_ROOMS_PER_CONNECTION: 10,
      MAX_MESSAGE_BYTES: 65536,
      MAX_STATE_BYTES: 262144,
      KICK_BAN_MS: 60000,
      EMPTY_ROOM_TTL_MS: 30000,
      ROOM_TIMEOUT_MS: 86400000,
      HEARTBEAT_INTERVAL_MS: 30000,
      SHUTDOWN_TIMEOUT_MS: 8000,
      PER_MESSAGE_DEFLATE: false,
      EPHEMERAL_MESSAGE_TYPES: 'pose_update',
      CLIENT_BUFFER_SOFT_BYTES: 65536,
      MAX_CLIENT_BUFFER_BYTES: 4194304,
      DATA_DIR: './data',
      REDIS_KEY_PREFIX: 'gms:',
      PRESENCE_TTL_MS: 15000,
      LOG_LEVEL: 'log',
      LOG_FORMAT: 'text',
    });
  });

  it('treats an empty value as unset', () => {
    expect(validateEnvironment({ PORT: '', MAX_ROOMS: '', LOG_LEVEL: '' })).toMatchObject({
      PORT: 8080,
      MAX_ROOMS: 1000,
      LOG_LEVEL: 'log',
    });
  });

  it('ignores variables it does not know', () => {
    expect(validateEnvironment({ PATH: '/usr/bin', SOMETHING: 'x' }).PORT).toBe(8080);
  });

  it('parses numbers and keeps strings', () => {
    const env = validateEnvironment({
      PORT: '3000',
      HOST: '127.0.0.1',
      MAX_ROOMS: '5',
      MAX_USERS_PER_ROOM: '7',
      MAX_ROOMS_PER_CONNECTION: '3',
      MAX_MESSAGE_BYTES: '2048',
      MAX_STATE_BYTES: '4096',
      KICK_BAN_MS: '0',
      EMPTY_ROOM_TTL_MS: '0',
      ROOM_TIMEOUT_MS: '5000',
      HEARTBEAT_INTERVAL_MS: '100',
      SHUTDOWN_TIMEOUT_MS: '500',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'json',
    });
    expect({ ...env }).toMatchObject({
      PORT: 3000,
      HOST: '127.0.0.1',
      MAX_ROOMS: 5,
      MAX_USERS_PER_ROOM: 7,
      MAX_ROOMS_PER_CONNECTION: 3,
      MAX_MESSAGE_BYTES: 2048,
      MAX_STATE_BYTES: 4096,
      KICK_BAN_MS: 0,
      EMPTY_ROOM_TTL_MS: 0,
      ROOM_TIMEOUT_MS: 5000,
      HEARTBEAT_INTERVAL_MS: 100,
      SHUTDOWN_TIMEOUT_MS: 500,
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'json',
    });
  });

  it.each([
    ['true', true],
    ['false', false],
  ])('reads the boolean %s', (text, value) => {
    const env = validateEnvironment({
      PER_MESSAGE_DEFLATE: text,
      REQUIRE_API_KEY: text,
      API_KEY: 'key',
    });
    expect(env.PER_MESSAGE_DEFLATE).toBe(value);
    expect(env.REQUIRE_API_KEY).toBe(value);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '80.5'],
    ['MAX_ROOMS', '0'],
    ['MAX_ROOMS', 'many'],
    ['MAX_USERS_PER_ROOM', '0'],
    ['MAX_ROOMS_PER_CONNECTION', '-1'],
    ['MAX_MESSAGE_BYTES', '10'],
    ['MAX_STATE_BYTES', '1.5'],
    ['KICK_BAN_MS', '-1'],
    ['EMPTY_ROOM_TTL_MS', 'soon'],
    ['ROOM_TIMEOUT_MS', '0'],
    ['HEARTBEAT_INTERVAL_MS', '1'],
    ['SHUTDOWN_TIMEOUT_MS', 'x'],
    ['REQUIRE_API_KEY', 'yes'],
    ['PER_MESSAGE_DEFLATE', 'maybe'],
    ['LOG_LEVEL', 'loud'],
    ['LOG_FORMAT', 'xml'],
  ])('rejects %s=%s with a message naming the variable', (name, value) => {
    // API_KEY is set so that a bad REQUIRE_API_KEY cannot also trip the API_KEY rule.
    const error = refusal({ API_KEY: 'key', [name]: value });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0].startsWith(`${name}=`)).toBe(true);
    expect(error.message).toContain(name);
    expect(error.message).toContain(value);
  });

  it('names every bad variable at once', () => {
    const error = refusal({ PORT: 'abc', LOG_LEVEL: 'loud', MAX_ROOMS: '1' });
    expect(error.problems.map((problem) => problem.split('=')[0]).sort()).toEqual([
      'LOG_LEVEL',
      'PORT',
    ]);
  });

  it('keeps DATA_DIR as given, relative or absolute', () => {
    expect(validateEnvironment({ DATA_DIR: 'rooms' }).DATA_DIR).toBe('rooms');
    expect(validateEnvironment({ DATA_DIR: '/var/lib/gallery' }).DATA_DIR).toBe('/var/lib/gallery');
  });

  it('rejects a DATA_DIR longer than any path, naming DATA_DIR', () => {
    const error = refusal({ DATA_DIR: `/${'d'.repeat(4096)}` });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^DATA_DIR=/);
  });

  it('refuses REQUIRE_API_KEY=true without API_KEY, naming API_KEY', () => {
    const error = refusal({ REQUIRE_API_KEY: 'true' });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^API_KEY\b/);
    expect(error.message).toContain('REQUIRE_API_KEY=true');
  });

  it('refuses REQUIRE_API_KEY=true with an empty API_KEY', () => {
    const error = refusal({ REQUIRE_API_KEY: 'true', API_KEY: '' });
    expect(error.problems.every((problem) => problem.startsWith('API_KEY'))).toBe(true);
    expect(error.problems.length).toBeGreaterThan(0);
  });

  it('accepts REQUIRE_API_KEY=true with an API_KEY', () => {
    const env = validateEnvironment({ REQUIRE_API_KEY: 'true', API_KEY: 's3cret' });
    expect(env.REQUIRE_API_KEY).toBe(true);
    expect(env.API_KEY).toBe('s3cret');
  });

  it('accepts an API_KEY without REQUIRE_API_KEY', () => {
    expect(validateEnvironment({ API_KEY: 'k' }).REQUIRE_API_KEY).toBe(false);
  });
});

describe('loadAppConfig', () => {
  it('builds the typed settings from a plain variable map', () => {
    expect(loadAppConfig({ MAX_USERS_PER_ROOM: '12', PER_MESSAGE_DEFLATE: 'true' })).toEqual({
      port: 8080,
      host: '0.0.0.0',
      requireApiKey: false,
      apiKey: undefined,
      maxRooms: 1000,
      maxUsersPerRoom: 12,
      maxRoomsPerConnection: 10,
      maxMessageBytes: 65536,
      maxStateBytes: 262144,
      kickBanMs: 60000,
      emptyRoomTtlMs: 30000,
      roomTimeoutMs: 86400000,
      heartbeatIntervalMs: 30000,
      shutdownTimeoutMs: 8000,
      perMessageDeflate: true,
      ephemeralMessageTypes: ['pose_update'],
      clientBufferSoftBytes: 65536,
      maxClientBufferBytes: 4194304,
      redisUrl: undefined,
      redisKeyPrefix: 'gms:',
      presenceTtlMs: 15000,
      dataDir: './data',
      logLevel: 'log',
      logFormat: 'text',
    });
  });

  it('splits EPHEMERAL_MESSAGE_TYPES on commas and trims the names', () => {
    expect(
      loadAppConfig({ EPHEMERAL_MESSAGE_TYPES: 'pose_update, cursor ,laser' })
        .ephemeralMessageTypes,
    ).toEqual(['pose_update', 'cursor', 'laser']);
  });

  it.each([
    ['EPHEMERAL_MESSAGE_TYPES', 'pose_update,,cursor'],
    ['EPHEMERAL_MESSAGE_TYPES', ','],
    ['EPHEMERAL_MESSAGE_TYPES', 'x'.repeat(65)],
    ['CLIENT_BUFFER_SOFT_BYTES', '100'],
    ['CLIENT_BUFFER_SOFT_BYTES', 'lots'],
    ['MAX_CLIENT_BUFFER_BYTES', '-1'],
  ])('rejects %s=%s, naming it', (name, value) => {
    expect(() => loadAppConfig({ [name]: value })).toThrow(new RegExp(`^[\\s\\S]*${name}=`));
  });

  it('takes a redis:// or rediss:// REDIS_URL and a key prefix', () => {
    expect(
      loadAppConfig({
        REDIS_URL: 'rediss://user:pw@redis.internal:6380/0',
        REDIS_KEY_PREFIX: 'a:',
      }),
    ).toMatchObject({ redisUrl: 'rediss://user:pw@redis.internal:6380/0', redisKeyPrefix: 'a:' });
  });

  it.each([
    ['REDIS_URL', 'http://redis:6379'],
    ['REDIS_URL', 'redis-host:6379'],
    ['REDIS_KEY_PREFIX', 'has space'],
    ['REDIS_KEY_PREFIX', 'gms:{x}'],
    ['PRESENCE_TTL_MS', '100'],
  ])('rejects %s=%s, naming it', (name, value) => {
    expect(() => loadAppConfig({ [name]: value })).toThrow(new RegExp(`${name}=`));
  });

  it('rejects a soft buffer limit above the hard one', () => {
    expect(() =>
      loadAppConfig({ CLIENT_BUFFER_SOFT_BYTES: '200000', MAX_CLIENT_BUFFER_BYTES: '100000' }),
    ).toThrow(/CLIENT_BUFFER_SOFT_BYTES: must not exceed MAX_CLIENT_BUFFER_BYTES/);
  });

  it('throws the same validation error', () => {
    expect(() => loadAppConfig({ PORT: 'abc' })).toThrow(ConfigValidationError);
  });
});

describe('prepareDataDir', () => {
  let parent: string;

  beforeEach(() => {
    parent = mkdtempSync(join(tmpdir(), 'data-dir-'));
  });

  afterEach(() => {
    rmSync(parent, { recursive: true, force: true });
  });

  it('creates the missing folders and returns the absolute path, leaving nothing in it', () => {
    const dir = join(parent, 'a', 'b');
    expect(prepareDataDir(relative(process.cwd(), dir))).toBe(dir);
    expect(statSync(dir).isDirectory()).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('accepts an existing folder', () => {
    expect(prepareDataDir(parent)).toBe(parent);
  });

  it.each([
    ['below a file', (dir: string) => writeFileSync(join(dir, 'file'), ''), 'file/data'],
    ['a file', (dir: string) => writeFileSync(join(dir, 'file'), ''), 'file'],
    // Node's recursive mkdir would retry such a path forever.
    [
      'a dangling symlink',
      (dir: string) => symlinkSync(join(dir, 'nowhere'), join(dir, 'link')),
      'link',
    ],
  ])('refuses %s, naming DATA_DIR', (_what, arrange, name) => {
    arrange(parent);
    const dataDir = join(parent, name);
    let error: unknown;
    try {
      prepareDataDir(dataDir);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    const problems = (error as ConfigValidationError).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^DATA_DIR="${dataDir}": cannot create or write`));
  });
});
