import { plainToInstance, Transform } from 'class-transformer';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  validateSync,
} from 'class-validator';

const toBoolean = ({ value }: { value: unknown }): unknown => {
  if (value === 'true' || value === '1') {
    return true;
  }
  if (value === 'false' || value === '0' || value === '') {
    return false;
  }
  return value;
};

/**
 * A whole number in decimal digits, or the value as given so that IsInt refuses it. Number()
 * alone would read ' ' as 0 (which turns some limits off) and take 0x1F or 1e4 as well.
 */
const toInteger = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string' || !/^\s*[+-]?\d+\s*$/.test(value)) {
    return value;
  }
  return Number(value);
};

export const LOG_LEVELS = ['debug', 'log', 'warn', 'error'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const AUTH_MODES = ['none', 'api-key', 'jwt'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** One IPv4/IPv6 address or CIDR block; a comma-separated list of them. */
const CIDR = String.raw`[0-9A-Fa-f:.]+(?:\/\d{1,3})?`;
const CIDR_LIST = new RegExp(String.raw`^\s*(?:${CIDR}(?:\s*,\s*${CIDR})*)?\s*$`);
const THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000;
const ONE_HOUR_MS = 3600 * 1000;
const ONE_DAY_MS = 24 * ONE_HOUR_MS;
/** Day-scale durations stop at a year: nobody means more, and a huge one only breeds odd sums. */
const ONE_YEAR_MS = 365 * 24 * 3600 * 1000;

/** The environment variables the server reads, with their defaults and bounds. */
export class EnvironmentVariables {
  // class-validator reports the decorator nearest the property first: the type check sits there.
  @Transform(toInteger) @Max(65535) @Min(0) @IsInt() PORT = 8080;
  @MinLength(1) @IsString() HOST = '0.0.0.0';
  /** Set: /metrics is served on this port only, without auth (keep it private), not on PORT. */
  @IsOptional() @Transform(toInteger) @Max(65535) @Min(1) @IsInt() METRICS_PORT?: number;

  @Transform(toBoolean) @IsBoolean() REQUIRE_API_KEY = false;
  @IsOptional() @MaxLength(512) @MinLength(1) @IsString() API_KEY?: string;

  /** Who may connect: unset means `api-key` when REQUIRE_API_KEY=true, else `none`. */
  @IsOptional() @IsIn(AUTH_MODES) AUTH_MODE?: AuthMode;
  /** HS256 secret; at least 32 characters (256 bits) so it cannot be guessed offline. */
  @IsOptional() @MaxLength(4096) @MinLength(32) @IsString() JWT_SECRET?: string;
  /** A PEM public key (RS256 or ES256); `\n` escapes are read as newlines. */
  @IsOptional() @MaxLength(16384) @MinLength(1) @IsString() JWT_PUBLIC_KEY?: string;
  /** A local JWKS file; tokens pick their key by `kid`. */
  @IsOptional() @MaxLength(4096) @MinLength(1) @IsString() JWT_JWKS_FILE?: string;
  @IsOptional() @MaxLength(512) @MinLength(1) @IsString() JWT_ISSUER?: string;
  @IsOptional() @MaxLength(512) @MinLength(1) @IsString() JWT_AUDIENCE?: string;
  /** true: a room not listed in the token's `rooms` claim cannot be joined. */
  @Transform(toBoolean) @IsBoolean() JWT_ROOMS_REQUIRED = false;

  /** Inbound JSON deeper than this is refused before anything walks it. */
  @Transform(toInteger) @Max(1000) @Min(8) @IsInt() MAX_JSON_DEPTH = 32;
  /** Frames one connection may have waiting behind a slow handler before reading pauses. */
  @Transform(toInteger) @Max(100_000) @Min(1) @IsInt() MAX_PENDING_MESSAGES = 64;

  // Per-connection token buckets; 0 turns a bucket off.
  @Transform(toInteger) @Max(100_000) @Min(0) @IsInt() RATE_POSES_PER_SEC = 60;
  @Transform(toInteger) @Max(100_000) @Min(1) @IsInt() RATE_POSES_BURST = 30;
  @Transform(toInteger) @Max(100_000) @Min(0) @IsInt() RATE_ACTIONS_PER_SEC = 20;
  @Transform(toInteger) @Max(100_000) @Min(1) @IsInt() RATE_ACTIONS_BURST = 40;
  @Transform(toInteger) @Max(1024 * 1024 * 1024) @Min(0) @IsInt() RATE_BYTES_PER_SEC = 1024 * 1024;
  /** Refusals within 10 s after which a connection is closed 1008; 0 never closes. */
  @Transform(toInteger) @Max(100_000) @Min(0) @IsInt() RATE_VIOLATIONS_BEFORE_CLOSE = 30;

  /**
   * Wrong room passwords one client (its address, or its verified userId) may try per room
   * within PASSWORD_FAILURE_WINDOW_MS; then that room refuses it until the window ends. 0: off.
   */
  @Transform(toInteger) @Max(1000) @Min(0) @IsInt() PASSWORD_MAX_FAILURES = 5;
  @Transform(toInteger) @Max(ONE_DAY_MS) @Min(100) @IsInt() PASSWORD_FAILURE_WINDOW_MS = 60_000;
  /** Password hashes (scrypt, ~60 ms and 16 MiB each) run at once, on libuv's thread pool. */
  @Transform(toInteger) @Max(64) @Min(1) @IsInt() PASSWORD_HASH_CONCURRENCY = 2;
  /** Hashes that may wait for one of those places; one more is refused (UNAVAILABLE). */
  @Transform(toInteger) @Max(10_000) @Min(0) @IsInt() PASSWORD_HASH_QUEUE = 64;

  // Checked at the upgrade, before the socket opens.
  @Transform(toInteger) @Max(10_000_000) @Min(1) @IsInt() MAX_CONNECTIONS = 10_000;
  @Transform(toInteger) @Max(10_000_000) @Min(0) @IsInt() MAX_CONNECTIONS_PER_IP = 0;
  /** Proxies (IPs or CIDR blocks) whose X-Forwarded-For is believed; empty believes none. */
  @Matches(CIDR_LIST, { message: 'must be a comma-separated list of IP addresses or CIDR blocks' })
  @MaxLength(4096)
  @IsString()
  TRUST_PROXY = '';
  /** Comma-separated origins allowed to open a WebSocket, or `*` for any. */
  @Matches(/^\s*(\*|[^,\s]+(\s*,\s*[^,\s]+)*)\s*$/, {
    message: 'must be * or a comma-separated list of origins such as https://app.example.com',
  })
  @MaxLength(4096)
  @IsString()
  ALLOWED_ORIGINS = '*';

  // Room quotas: rooms a creator made that still exist. 0 turns a quota off.
  @Transform(toInteger) @Max(1_000_000) @Min(0) @IsInt() MAX_ROOMS_PER_USER = 20;
  @Transform(toInteger) @Max(1_000_000) @Min(0) @IsInt() MAX_ROOMS_PER_IP = 0;
  /** A persistent room nobody joined or changed for this long is deleted; 0 keeps it forever. */
  @Transform(toInteger) @Max(ONE_YEAR_MS) @Min(0) @IsInt() PERSISTENT_ROOM_IDLE_MS = THIRTY_DAYS_MS;

  @Transform(toInteger) @Max(1_000_000) @Min(1) @IsInt() MAX_ROOMS = 1000;
  /** At most one member per slot (docs/binary-poses.md). */
  @Transform(toInteger) @Max(65_536) @Min(1) @IsInt() MAX_USERS_PER_ROOM = 50;
  @Transform(toInteger) @Max(1000) @Min(1) @IsInt() MAX_ROOMS_PER_CONNECTION = 10;
  @Transform(toInteger) @Max(16 * 1024 * 1024) @Min(1024) @IsInt() MAX_MESSAGE_BYTES = 65536;
  @Transform(toInteger) @Max(64 * 1024 * 1024) @Min(1024) @IsInt() MAX_STATE_BYTES = 262144;

  @Transform(toInteger) @Max(ONE_YEAR_MS) @Min(0) @IsInt() KICK_BAN_MS = 60_000;
  @Transform(toInteger) @Max(ONE_YEAR_MS) @Min(0) @IsInt() EMPTY_ROOM_TTL_MS = 30_000;
  @Transform(toInteger) @Max(ONE_YEAR_MS) @Min(1000) @IsInt() ROOM_TIMEOUT_MS = 86_400_000;
  @Transform(toInteger) @Max(ONE_HOUR_MS) @Min(50) @IsInt() HEARTBEAT_INTERVAL_MS = 30_000;
  /**
   * How long a member whose connection dropped (no close frame, dead heartbeat) keeps its seat,
   * shown as `connected: false`, for a `resume`; 0: it leaves at once.
   */
  @Transform(toInteger) @Max(3_600_000) @Min(0) @IsInt() RECONNECT_GRACE_MS = 30_000;
  /** Most events kept per room for a `resume` to replay. */
  @Transform(toInteger) @Max(100_000) @Min(0) @IsInt() RESUME_HISTORY_EVENTS = 512;
  /** The oldest event kept for a `resume` to replay, in ms. */
  @Transform(toInteger) @Max(3_600_000) @Min(0) @IsInt() RESUME_HISTORY_MS = 120_000;
  @Transform(toInteger) @Max(ONE_HOUR_MS) @Min(100) @IsInt() SHUTDOWN_TIMEOUT_MS = 8000;

  /**
   * Server ticks for throwaway broadcasts: each sender's newest pose per room goes out once per
   * this many ms; 0 relays every pose as it arrives.
   */
  @Transform(toInteger) @Max(1000) @Min(0) @IsInt() POSE_TICK_MS = 0;
  /**
   * Without ticks: once event-loop turns run longer than this many ms three times in a row, a
   * growing share of poses is dropped on arrival so that state, membership and chat stay prompt;
   * 0 never drops them (every pose is relayed, however late).
   */
  @Transform(toInteger) @Max(60_000) @Min(0) @IsInt() POSE_SHED_TURN_MS = 100;

  @Transform(toBoolean) @IsBoolean() PER_MESSAGE_DEFLATE = false;
  /** true: the server serves the /demo page and the SDK files it loads (docs/pages.md). */
  @Transform(toBoolean) @IsBoolean() DEMO_PAGE = true;

  /** Comma-separated application message types that may be dropped for a slow client. */
  @Matches(/^\s*[^,\s][^,]{0,63}(\s*,\s*[^,\s][^,]{0,63})*\s*$/, {
    message: 'must be a comma-separated list of message types (1-64 characters each)',
  })
  @IsString()
  EPHEMERAL_MESSAGE_TYPES = 'pose_update';
  @Transform(toInteger) @Max(1024 * 1024 * 1024) @Min(1024) @IsInt() CLIENT_BUFFER_SOFT_BYTES =
    65536;
  @Transform(toInteger) @Max(1024 * 1024 * 1024) @Min(1024) @IsInt() MAX_CLIENT_BUFFER_BYTES =
    4 * 1024 * 1024;
  /** Set: scale-out mode, rooms shared through this Redis (redis:// or rediss://, one primary). */
  @IsOptional()
  @Matches(/^rediss?:\/\/[^\s]+$/, { message: 'must be a redis:// or rediss:// URL' })
  @IsString()
  REDIS_URL?: string;
  /** Every Redis key and channel starts with it, so deployments can share one Redis. */
  @Matches(/^[^\s{}]{0,64}$/, { message: 'must be at most 64 characters, no spaces or braces' })
  @IsString()
  REDIS_KEY_PREFIX = 'gms:';
  /** The members of an instance that stopped answering are removed within this time. */
  @Transform(toInteger) @Max(3_600_000) @Min(1500) @IsInt() PRESENCE_TTL_MS = 15_000;
  /** Where persistent rooms are written, one JSON file each; created at boot if missing. */
  @MaxLength(4096) @IsString() DATA_DIR = './data';

  @IsIn(LOG_LEVELS) LOG_LEVEL: LogLevelName = 'log';
  /** The original server's debug switch (`DEBUG=*`): set, LOG_LEVEL defaults to debug. */
  @IsOptional() @MaxLength(1024) @IsString() DEBUG?: string;
  @IsIn(LOG_FORMATS) LOG_FORMAT: LogFormat = 'text';
  /** With LOG_FORMAT=json, lines about a traced request name its Cloud Trace in this project. */
  @Matches(/^(?:[a-z][a-z0-9.-]{0,62}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/, {
    message: 'must be a Google Cloud project id (6-30 of a-z, 0-9, -)',
  })
  @IsOptional()
  @IsString()
  GOOGLE_CLOUD_PROJECT?: string;
}

export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigValidationError';
  }
}

/** Parses and validates the environment; throws a ConfigValidationError naming every bad variable. */
export function validateEnvironment(env: Record<string, string | undefined>): EnvironmentVariables {
  const known = Object.keys(new EnvironmentVariables());
  const present: Record<string, string> = {};
  for (const key of known) {
    const value = env[key];
    if (value !== undefined && value !== '') {
      present[key] = value;
    }
  }
  if (present.DEBUG !== undefined && present.LOG_LEVEL === undefined) {
    present.LOG_LEVEL = 'debug';
  }
  const parsed = plainToInstance(EnvironmentVariables, present);
  const errors = validateSync(parsed, { forbidUnknownValues: false, stopAtFirstError: true });
  const problems = errors.map((error) => {
    const constraints = Object.values(error.constraints ?? {}).join('; ');
    return `${shownValue(error.property, present[error.property])}: ${constraints}`;
  });
  problems.push(...listProblems(parsed, new Set(errors.map((error) => error.property))));
  if (problems.length === 0 && parsed.CLIENT_BUFFER_SOFT_BYTES > parsed.MAX_CLIENT_BUFFER_BYTES) {
    problems.push('CLIENT_BUFFER_SOFT_BYTES: must not exceed MAX_CLIENT_BUFFER_BYTES');
  }
  if (parsed.REQUIRE_API_KEY === true && !parsed.API_KEY) {
    problems.push('API_KEY: must be set when REQUIRE_API_KEY=true');
  }
  if (parsed.METRICS_PORT !== undefined && parsed.METRICS_PORT === parsed.PORT) {
    problems.push(`METRICS_PORT: must differ from PORT (both are ${parsed.PORT})`);
  }
  problems.push(...authProblems(parsed));
  if (problems.length > 0) {
    throw new ConfigValidationError(problems);
  }
  return parsed;
}

/**
 * Variables whose value is never printed, not even in a refusal: the boot log of a container is
 * read by more people than its secrets should be. A Redis URL may hold a password.
 */
const SECRET_VARIABLES: ReadonlySet<string> = new Set(['API_KEY', 'JWT_SECRET', 'REDIS_URL']);

/** `NAME="value"` for a refusal, or only the value's length for a secret. */
function shownValue(name: string, value: string | undefined): string {
  if (SECRET_VARIABLES.has(name)) {
    return `${name}=(hidden, ${value?.length ?? 0} characters)`;
  }
  return `${name}=${JSON.stringify(value)}`;
}

/**
 * What the patterns let through but would fail, or never match, once the server runs: a
 * REDIS_URL that is no URL, a TRUST_PROXY entry that is no address, an origin with a path.
 * Variables already `refused` are not looked at again.
 */
function listProblems(env: EnvironmentVariables, refused: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  if (!refused.has('HOST') && !isHost(env.HOST)) {
    problems.push(`${shownValue('HOST', env.HOST)}: must be an IP address or a host name`);
  }
  const redisUrl = refused.has('REDIS_URL') ? undefined : env.REDIS_URL;
  if (redisUrl !== undefined && !isRedisUrl(redisUrl)) {
    problems.push(`${shownValue('REDIS_URL', redisUrl)}: is not a valid URL`);
  }
  for (const entry of refused.has('TRUST_PROXY') ? [] : splitList(env.TRUST_PROXY)) {
    if (!isAddressOrBlock(entry)) {
      problems.push(`TRUST_PROXY: ${JSON.stringify(entry)} is not an IP address or CIDR block`);
    }
  }
  for (const entry of refused.has('ALLOWED_ORIGINS') ? [] : splitList(env.ALLOWED_ORIGINS)) {
    const problem = originProblem(entry);
    if (problem) {
      problems.push(`ALLOWED_ORIGINS: ${JSON.stringify(entry)} ${problem}`);
    }
  }
  return problems;
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
}

/** An IP address, or a host name of letters, digits, dots and hyphens (resolved at listen). */
function isHost(value: string): boolean {
  return isIP(value) !== 0 || /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})$/.test(value);
}

function isRedisUrl(value: string): boolean {
  try {
    return new URL(value).hostname.length > 0;
  } catch {
    return false;
  }
}

function isAddressOrBlock(entry: string): boolean {
  const [address, prefix] = entry.split('/');
  const version = isIP(address);
  if (version === 0) {
    return false;
  }
  // The pattern already allowed only digits after the slash.
  return prefix === undefined || Number(prefix) <= (version === 4 ? 32 : 128);
}

/** Why an ALLOWED_ORIGINS entry can never equal a browser's Origin header, or undefined. */
function originProblem(entry: string): string | undefined {
  if (entry === '*') {
    return undefined;
  }
  let origin: string;
  try {
    origin = new URL(entry).origin;
  } catch {
    return 'is not an origin such as https://app.example.com';
  }
  if (origin === 'null') {
    return 'is not an origin such as https://app.example.com';
  }
  if (origin !== entry.toLowerCase()) {
    return `never matches: browsers send ${origin}`;
  }
  return undefined;
}

/** The effective AUTH_MODE: REQUIRE_API_KEY=true alone still means the API key, as it always did. */
export function authModeOf(env: EnvironmentVariables): AuthMode {
  return env.AUTH_MODE ?? (env.REQUIRE_API_KEY ? 'api-key' : 'none');
}

const JWT_KEY_SOURCES = ['JWT_SECRET', 'JWT_PUBLIC_KEY', 'JWT_JWKS_FILE'] as const;

const JWT_ONLY_SETTINGS = ['JWT_ISSUER', 'JWT_AUDIENCE', 'JWT_ROOMS_REQUIRED'] as const;

function authProblems(env: EnvironmentVariables): string[] {
  const mode = authModeOf(env);
  const problems: string[] = [];
  if (env.REQUIRE_API_KEY && mode !== 'api-key') {
    problems.push(`REQUIRE_API_KEY: true only goes with AUTH_MODE=api-key, not ${mode}`);
  }
  if (mode === 'api-key' && !env.API_KEY && !env.REQUIRE_API_KEY) {
    problems.push('API_KEY: must be set when AUTH_MODE=api-key');
  }
  const sources = JWT_KEY_SOURCES.filter((name) => env[name] !== undefined);
  if (mode === 'jwt' && sources.length !== 1) {
    problems.push(
      `AUTH_MODE: jwt needs exactly one of ${JWT_KEY_SOURCES.join(', ')}` +
        (sources.length > 0 ? ` (got ${sources.join(', ')})` : ''),
    );
  }
  if (mode !== 'jwt' && sources.length > 0) {
    problems.push(`${sources[0]}: only used with AUTH_MODE=jwt (AUTH_MODE is ${mode})`);
  }
  // Set outside jwt mode these would do nothing, and an operator who set JWT_ROOMS_REQUIRED
  // would believe the rooms locked down.
  for (const name of JWT_ONLY_SETTINGS) {
    if (mode !== 'jwt' && env[name] !== undefined && env[name] !== false) {
      problems.push(`${name}: only used with AUTH_MODE=jwt (AUTH_MODE is ${mode})`);
    }
  }
  return problems;
}

/**
 * Creates the DATA_DIR folder if needed and proves that a file can be written and flushed in it,
 * so an unusable folder stops the boot rather than the first persistent room. Returns the
 * absolute path; throws a ConfigValidationError naming DATA_DIR.
 */
export function prepareDataDir(dataDir: string): string {
  const dir = resolve(dataDir);
  try {
    makeFolder(dir);
    const probe = join(dir, `.probe.${randomBytes(8).toString('hex')}.tmp`);
    const fd = openSync(probe, 'wx', 0o600);
    try {
      writeSync(fd, 'ok');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    unlinkSync(probe);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigValidationError([
      `DATA_DIR=${JSON.stringify(dataDir)}: cannot create or write the folder ${dir} (${reason})`,
    ]);
  }
  return dir;
}

/**
 * mkdir -p, one level at a time. Node's own `recursive: true` never returns for a path under
 * /proc or through a dangling symlink (it retries the parent forever), which would hang the boot.
 */
function makeFolder(dir: string): void {
  const missing: string[] = [];
  for (let folder = dir; !existsSync(folder); folder = dirname(folder)) {
    missing.unshift(folder);
    if (dirname(folder) === folder) {
      break;
    }
  }
  for (const folder of missing) {
    try {
      mkdirSync(folder);
    } catch (error) {
      // Another process may have made it meanwhile.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || !isFolder(folder)) {
        throw error;
      }
    }
  }
  if (!isFolder(dir)) {
    throw new Error(`${dir} is not a folder`);
  }
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
