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
      RECONNECT_GRACE_MS: 30000,
      RESUME_HISTORY_EVENTS: 512,
      RESUME_HISTORY_MS: 120000,
      SHUTDOWN_TIMEOUT_MS: 8000,
      POSE_TICK_MS: 0,
      POSE_SHED_TURN_MS: 100,
      PER_MESSAGE_DEFLATE: false,
      DEMO_PAGE: true,
      EPHEMERAL_MESSAGE_TYPES: 'pose_update',
      CLIENT_BUFFER_SOFT_BYTES: 65536,
      MAX_CLIENT_BUFFER_BYTES: 4194304,
      DATA_DIR: './data',
      REDIS_KEY_PREFIX: 'gms:',
      PRESENCE_TTL_MS: 15000,
      LOG_LEVEL: 'log',
      LOG_FORMAT: 'text',
      JWT_ROOMS_REQUIRED: false,
      MAX_JSON_DEPTH: 32,
      MAX_PENDING_MESSAGES: 64,
      RATE_POSES_PER_SEC: 60,
      RATE_POSES_BURST: 30,
      RATE_ACTIONS_PER_SEC: 20,
      RATE_ACTIONS_BURST: 40,
      RATE_BYTES_PER_SEC: 1048576,
      RATE_VIOLATIONS_BEFORE_CLOSE: 30,
      PASSWORD_MAX_FAILURES: 5,
      PASSWORD_FAILURE_WINDOW_MS: 60000,
      PASSWORD_HASH_CONCURRENCY: 2,
      PASSWORD_HASH_QUEUE: 64,
      MAX_CONNECTIONS: 10000,
      MAX_CONNECTIONS_PER_IP: 0,
      TRUST_PROXY: '',
      ALLOWED_ORIGINS: '*',
      MAX_ROOMS_PER_USER: 20,
      MAX_ROOMS_PER_IP: 0,
      PERSISTENT_ROOM_IDLE_MS: 2592000000,
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
      DEMO_PAGE: text,
    });
    expect(env.PER_MESSAGE_DEFLATE).toBe(value);
    expect(env.DEMO_PAGE).toBe(value);
    expect(env.REQUIRE_API_KEY).toBe(value);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '80.5'],
    ['MAX_ROOMS', '0'],
    ['MAX_ROOMS', 'many'],
    ['MAX_USERS_PER_ROOM', '0'],
    ['MAX_USERS_PER_ROOM', '65537'],
    ['MAX_ROOMS_PER_CONNECTION', '-1'],
    ['MAX_MESSAGE_BYTES', '10'],
    ['MAX_STATE_BYTES', '1.5'],
    ['KICK_BAN_MS', '-1'],
    ['EMPTY_ROOM_TTL_MS', 'soon'],
    ['ROOM_TIMEOUT_MS', '0'],
    ['HEARTBEAT_INTERVAL_MS', '1'],
    ['RECONNECT_GRACE_MS', '-1'],
    ['RECONNECT_GRACE_MS', '3600001'],
    ['RESUME_HISTORY_EVENTS', 'all'],
    ['RESUME_HISTORY_MS', '1.5'],
    ['SHUTDOWN_TIMEOUT_MS', 'x'],
    ['POSE_TICK_MS', '-1'],
    ['POSE_TICK_MS', '1001'],
    ['POSE_TICK_MS', '33.5'],
    ['POSE_SHED_TURN_MS', '-1'],
    ['POSE_SHED_TURN_MS', '60001'],
    ['POSE_SHED_TURN_MS', 'off'],
    ['REQUIRE_API_KEY', 'yes'],
    ['PER_MESSAGE_DEFLATE', 'maybe'],
    ['DEMO_PAGE', 'off'],
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

  it.each([
    ['PORT', ' '],
    ['PORT', '0x1F9C'],
    ['PORT', '1e4'],
    ['RATE_ACTIONS_PER_SEC', '  '],
    ['POSE_SHED_TURN_MS', ' '],
    ['HEARTBEAT_INTERVAL_MS', '3000000000'],
    ['SHUTDOWN_TIMEOUT_MS', '3600001'],
    ['KICK_BAN_MS', '1e300'],
    ['ROOM_TIMEOUT_MS', '31536000001'],
  ])('refuses %s=%j rather than reading it as some other number', (name, value) => {
    const error = refusal({ [name]: value });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0].startsWith(`${name}=`)).toBe(true);
  });

  it('takes decimal digits with spaces around them', () => {
    expect(validateEnvironment({ PORT: ' 3000 ', KICK_BAN_MS: '+5' })).toMatchObject({
      PORT: 3000,
      KICK_BAN_MS: 5,
    });
  });

  it.each([
    ['API_KEY', 'k'.repeat(513), {}],
    ['JWT_SECRET', 'short-but-real-secret-s3cr3t', { AUTH_MODE: 'jwt' }],
    ['REDIS_URL', 'redis://:hunter2pass@redis:6379/ ', {}],
    ['REDIS_URL', 'redis://:hunter2pass@redis:99999', {}],
  ])('names %s when refusing it but never prints its value', (name, value, rest) => {
    const error = refusal({ ...rest, [name]: value });
    expect(error.problems).toEqual([
      expect.stringMatching(new RegExp(`^${name}=\\(hidden, ${value.length} characters\\): `)),
    ]);
    expect(error.message).not.toContain(value.trim());
    expect(error.message).not.toContain('hunter2');
  });

  it.each([
    ['10.0.0.0/99', 'TRUST_PROXY: "10.0.0.0/99" is not'],
    ['999.999.1.1', 'TRUST_PROXY: "999.999.1.1" is not'],
    ['::1/129', 'TRUST_PROXY: "::1/129" is not'],
  ])('refuses TRUST_PROXY=%s at boot, naming it', (value, message) => {
    expect(refusal({ TRUST_PROXY: value }).problems).toEqual([expect.stringContaining(message)]);
  });

  it('takes addresses and blocks of both kinds in TRUST_PROXY', () => {
    expect(
      validateEnvironment({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1, ::1, fd00::/8' }),
    ).toBeTruthy();
  });

  it.each([
    ['https://app.example.com/', 'never matches: browsers send https://app.example.com'],
    ['https://app.example.com:443', 'never matches: browsers send https://app.example.com'],
    ['https://app.example.com/viewer', 'never matches: browsers send https://app.example.com'],
    ['app.example.com', 'is not an origin such as https://app.example.com'],
    ['localhost:3000', 'is not an origin such as https://app.example.com'],
  ])('refuses ALLOWED_ORIGINS=%s, which no browser sends', (value, reason) => {
    expect(refusal({ ALLOWED_ORIGINS: value }).problems).toEqual([
      `ALLOWED_ORIGINS: ${JSON.stringify(value)} ${reason}`,
    ]);
  });

  it('takes origins with a port, in any case, and *', () => {
    for (const value of ['*', 'http://localhost:3000, https://App.Example.com']) {
      expect(validateEnvironment({ ALLOWED_ORIGINS: value }).ALLOWED_ORIGINS).toBe(value);
    }
  });

  it('names every bad variable at once', () => {
    const error = refusal({ PORT: 'abc', LOG_LEVEL: 'loud', MAX_ROOMS: '1' });
    expect(error.problems.map((problem) => problem.split('=')[0]).sort()).toEqual([
      'LOG_LEVEL',
      'PORT',
    ]);
  });

  it('names a bad address or origin beside another bad variable', () => {
    const error = refusal({
      PORT: 'abc',
      TRUST_PROXY: '1.2.3.400',
      ALLOWED_ORIGINS: 'https://x.example/path',
    });
    expect(error.problems.map((problem) => problem.split(/[=:]/)[0]).sort()).toEqual([
      'ALLOWED_ORIGINS',
      'PORT',
      'TRUST_PROXY',
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

describe('GOOGLE_CLOUD_PROJECT', () => {
  it('takes a project id, plain or domain-scoped', () => {
    expect(
      validateEnvironment({ GOOGLE_CLOUD_PROJECT: 'my-project-42' }).GOOGLE_CLOUD_PROJECT,
    ).toBe('my-project-42');
    expect(
      validateEnvironment({ GOOGLE_CLOUD_PROJECT: 'example.com:my-project' }).GOOGLE_CLOUD_PROJECT,
    ).toBe('example.com:my-project');
    expect(validateEnvironment({}).GOOGLE_CLOUD_PROJECT).toBeUndefined();
  });

  it.each([
    'abc',
    'My-Project',
    'project/with/slash',
    'a'.repeat(31),
    'has space',
    'p-'.repeat(40),
  ])('refuses %s, naming GOOGLE_CLOUD_PROJECT', (value) => {
    expect(refusal({ GOOGLE_CLOUD_PROJECT: value }).message).toContain('GOOGLE_CLOUD_PROJECT');
  });

  it('is in the typed config, with one instance id per config', () => {
    const config = loadAppConfig({ GOOGLE_CLOUD_PROJECT: 'my-project-42' });
    expect(config.googleCloudProject).toBe('my-project-42');
    expect(config.instanceId).toMatch(new RegExp(`-${process.pid}-[0-9a-f]{8}$`));
    expect(loadAppConfig({}).instanceId).not.toBe(config.instanceId);
  });
});

describe('loadAppConfig', () => {
  it('builds the typed settings from a plain variable map', () => {
    expect(loadAppConfig({ MAX_USERS_PER_ROOM: '12', PER_MESSAGE_DEFLATE: 'true' })).toEqual({
      port: 8080,
      host: '0.0.0.0',
      authMode: 'none',
      requireApiKey: false,
      apiKey: undefined,
      jwt: {
        secret: undefined,
        publicKey: undefined,
        jwksFile: undefined,
        issuer: undefined,
        audience: undefined,
        roomsRequired: false,
      },
      maxJsonDepth: 32,
      maxPendingMessages: 64,
      rateLimits: {
        posesPerSec: 60,
        posesBurst: 30,
        actionsPerSec: 20,
        actionsBurst: 40,
        bytesPerSec: 1048576,
        violationsBeforeClose: 30,
      },
      passwordAttempts: { maxFailures: 5, windowMs: 60000 },
      passwordHashing: { concurrency: 2, queue: 64 },
      maxConnections: 10000,
      maxConnectionsPerIp: 0,
      trustProxy: [],
      allowedOrigins: ['*'],
      maxRoomsPerUser: 20,
      maxRoomsPerIp: 0,
      persistentRoomIdleMs: 2592000000,
      maxRooms: 1000,
      maxUsersPerRoom: 12,
      maxRoomsPerConnection: 10,
      maxMessageBytes: 65536,
      maxStateBytes: 262144,
      kickBanMs: 60000,
      emptyRoomTtlMs: 30000,
      roomTimeoutMs: 86400000,
      heartbeatIntervalMs: 30000,
      resume: { graceMs: 30000, historyEvents: 512, historyMs: 120000 },
      shutdownTimeoutMs: 8000,
      poseTickMs: 0,
      poseShedTurnMs: 100,
      perMessageDeflate: true,
      demoPage: true,
      ephemeralMessageTypes: ['pose_update'],
      clientBufferSoftBytes: 65536,
      maxClientBufferBytes: 4194304,
      redisUrl: undefined,
      redisKeyPrefix: 'gms:',
      presenceTtlMs: 15000,
      dataDir: './data',
      logLevel: 'log',
      logFormat: 'text',
      googleCloudProject: undefined,
      instanceId: expect.any(String),
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
    ['MAX_JSON_DEPTH', '2'],
    ['MAX_PENDING_MESSAGES', '0'],
    ['RATE_POSES_PER_SEC', '-1'],
    ['RATE_ACTIONS_BURST', '0'],
    ['RATE_BYTES_PER_SEC', 'fast'],
    ['MAX_CONNECTIONS', '0'],
    ['MAX_CONNECTIONS_PER_IP', '1.5'],
    ['PASSWORD_MAX_FAILURES', '-1'],
    ['PASSWORD_MAX_FAILURES', '1001'],
    ['PASSWORD_FAILURE_WINDOW_MS', '99'],
    ['PASSWORD_FAILURE_WINDOW_MS', '86400001'],
    ['PASSWORD_HASH_CONCURRENCY', '0'],
    ['PASSWORD_HASH_CONCURRENCY', '65'],
    ['PASSWORD_HASH_QUEUE', '-1'],
    ['PASSWORD_HASH_QUEUE', 'lots'],
    ['TRUST_PROXY', 'my-proxy.internal'],
    ['TRUST_PROXY', '10.0.0.0/8 192.168.0.1'],
    ['ALLOWED_ORIGINS', 'https://a.example, ,https://b.example'],
    ['AUTH_MODE', 'oauth'],
    ['JWT_SECRET', 'too-short'],
    ['MAX_ROOMS_PER_USER', '-2'],
    ['PERSISTENT_ROOM_IDLE_MS', 'forever'],
    ['HOST', 'not a host'],
    ['HOST', ' '],
    ['HOST', '-leading-hyphen'],
    ['HOST', 'http://0.0.0.0'],
  ])('rejects %s=%s, naming it', (name, value) => {
    expect(() => loadAppConfig({ [name]: value })).toThrow(new RegExp(`^[\\s\\S]*${name}=`));
  });

  it.each(['0.0.0.0', '::', '127.0.0.1', 'localhost', 'gallery-1.internal'])(
    'takes HOST=%s',
    (host) => {
      expect(loadAppConfig({ HOST: host }).host).toBe(host);
    },
  );

  it("turns the original's DEBUG=* into LOG_LEVEL=debug, unless LOG_LEVEL says otherwise", () => {
    expect(loadAppConfig({ DEBUG: '*' }).logLevel).toBe('debug');
    expect(loadAppConfig({ DEBUG: '*', LOG_LEVEL: 'warn' }).logLevel).toBe('warn');
    expect(loadAppConfig({}).logLevel).toBe('log');
  });

  it('takes JWT_ROOMS_REQUIRED=false outside jwt mode (the default, said out loud)', () => {
    expect(loadAppConfig({ JWT_ROOMS_REQUIRED: 'false' }).jwt.roomsRequired).toBe(false);
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

describe('AUTH_MODE', () => {
  const secret = 'a-32-character-secret-for-hs256!';

  it('is none by default and api-key with REQUIRE_API_KEY=true, as before', () => {
    expect(loadAppConfig({}).authMode).toBe('none');
    expect(loadAppConfig({ REQUIRE_API_KEY: 'true', API_KEY: 'k' })).toMatchObject({
      authMode: 'api-key',
      requireApiKey: true,
    });
  });

  it('takes api-key and jwt by name', () => {
    expect(loadAppConfig({ AUTH_MODE: 'api-key', API_KEY: 'k' })).toMatchObject({
      authMode: 'api-key',
      requireApiKey: true,
    });
    expect(loadAppConfig({ AUTH_MODE: 'jwt', JWT_SECRET: secret })).toMatchObject({
      authMode: 'jwt',
      requireApiKey: false,
      jwt: { secret },
    });
  });

  it('reads \\n escapes in JWT_PUBLIC_KEY as newlines', () => {
    const key = '-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----';
    expect(loadAppConfig({ AUTH_MODE: 'jwt', JWT_PUBLIC_KEY: key }).jwt.publicKey).toBe(
      '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----',
    );
  });

  it.each([
    [{ AUTH_MODE: 'api-key' }, 'API_KEY: must be set when AUTH_MODE=api-key'],
    [{ AUTH_MODE: 'jwt' }, 'AUTH_MODE: jwt needs exactly one of JWT_SECRET, JWT_PUBLIC_KEY'],
    [
      { AUTH_MODE: 'jwt', JWT_SECRET: secret, JWT_JWKS_FILE: '/keys.json' },
      '(got JWT_SECRET, JWT_JWKS_FILE)',
    ],
    [{ JWT_SECRET: secret }, 'JWT_SECRET: only used with AUTH_MODE=jwt (AUTH_MODE is none)'],
    [{ JWT_ROOMS_REQUIRED: 'true' }, 'JWT_ROOMS_REQUIRED: only used with AUTH_MODE=jwt'],
    [{ JWT_ISSUER: 'idp' }, 'JWT_ISSUER: only used with AUTH_MODE=jwt (AUTH_MODE is none)'],
    [
      { AUTH_MODE: 'api-key', API_KEY: 'k', JWT_AUDIENCE: 'gallery' },
      'JWT_AUDIENCE: only used with AUTH_MODE=jwt (AUTH_MODE is api-key)',
    ],
    [
      { AUTH_MODE: 'jwt', JWT_SECRET: secret, REQUIRE_API_KEY: 'true', API_KEY: 'k' },
      'REQUIRE_API_KEY: true only goes with AUTH_MODE=api-key, not jwt',
    ],
  ])('refuses %j, naming the variable', (env, message) => {
    expect(refusal(env).message).toContain(message);
  });
});

describe('rate limits, admission and quotas', () => {
  it('splits TRUST_PROXY and ALLOWED_ORIGINS into lists', () => {
    const config = loadAppConfig({
      TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,::1',
      ALLOWED_ORIGINS: 'https://a.example, https://b.example',
    });
    expect(config.trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1', '::1']);
    expect(config.allowedOrigins).toEqual(['https://a.example', 'https://b.example']);
  });

  it('takes 0 to turn a rate bucket or a quota off', () => {
    const config = loadAppConfig({
      RATE_POSES_PER_SEC: '0',
      RATE_ACTIONS_PER_SEC: '0',
      RATE_BYTES_PER_SEC: '0',
      RATE_VIOLATIONS_BEFORE_CLOSE: '0',
      MAX_ROOMS_PER_USER: '0',
      PERSISTENT_ROOM_IDLE_MS: '0',
    });
    expect(config.rateLimits).toMatchObject({ posesPerSec: 0, actionsPerSec: 0, bytesPerSec: 0 });
    expect(config.maxRoomsPerUser).toBe(0);
    expect(config.persistentRoomIdleMs).toBe(0);
  });

  it('takes PASSWORD_MAX_FAILURES=0 (backoff off) and a queue of 0 (no hash waits)', () => {
    const config = loadAppConfig({
      PASSWORD_MAX_FAILURES: '0',
      PASSWORD_FAILURE_WINDOW_MS: '100',
      PASSWORD_HASH_CONCURRENCY: '1',
      PASSWORD_HASH_QUEUE: '0',
    });
    expect(config.passwordAttempts).toEqual({ maxFailures: 0, windowMs: 100 });
    expect(config.passwordHashing).toEqual({ concurrency: 1, queue: 0 });
  });
});

describe('METRICS_PORT', () => {
  it('is unset by default: /metrics is served on PORT', () => {
    expect(loadAppConfig({}).metricsPort).toBeUndefined();
  });

  it('takes a port other than PORT', () => {
    expect(loadAppConfig({ PORT: '8080', METRICS_PORT: '9464' }).metricsPort).toBe(9464);
  });

  it('refuses the same port as PORT, naming METRICS_PORT', () => {
    const error = refusal({ PORT: '8080', METRICS_PORT: '8080' });
    expect(error.problems).toEqual([expect.stringMatching(/^METRICS_PORT: must differ from PORT/)]);
  });

  it('refuses the default PORT too', () => {
    expect(refusal({ METRICS_PORT: '8080' }).problems[0]).toMatch(/^METRICS_PORT/);
  });

  it.each(['0', '65536', 'abc', '9464.5'])('refuses METRICS_PORT=%s, naming it', (value) => {
    expect(refusal({ METRICS_PORT: value }).problems[0]).toMatch(/^METRICS_PORT=/);
  });
});
