import { plainToInstance, Transform, Type } from 'class-transformer';
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

export const LOG_LEVELS = ['debug', 'log', 'warn', 'error'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The environment variables the server reads, with their defaults and bounds. */
export class EnvironmentVariables {
  // class-validator reports the decorator nearest the property first: the type check sits there.
  @Type(() => Number) @Max(65535) @Min(0) @IsInt() PORT = 8080;
  @MinLength(1) @IsString() HOST = '0.0.0.0';

  @Transform(toBoolean) @IsBoolean() REQUIRE_API_KEY = false;
  @IsOptional() @MaxLength(512) @MinLength(1) @IsString() API_KEY?: string;

  @Type(() => Number) @Max(1_000_000) @Min(1) @IsInt() MAX_ROOMS = 1000;
  @Type(() => Number) @Max(100_000) @Min(1) @IsInt() MAX_USERS_PER_ROOM = 50;
  @Type(() => Number) @Max(1000) @Min(1) @IsInt() MAX_ROOMS_PER_CONNECTION = 10;
  @Type(() => Number) @Max(16 * 1024 * 1024) @Min(1024) @IsInt() MAX_MESSAGE_BYTES = 65536;
  @Type(() => Number) @Max(64 * 1024 * 1024) @Min(1024) @IsInt() MAX_STATE_BYTES = 262144;

  @Type(() => Number) @Min(0) @IsInt() KICK_BAN_MS = 60_000;
  @Type(() => Number) @Min(0) @IsInt() EMPTY_ROOM_TTL_MS = 30_000;
  @Type(() => Number) @Min(1000) @IsInt() ROOM_TIMEOUT_MS = 86_400_000;
  @Type(() => Number) @Min(50) @IsInt() HEARTBEAT_INTERVAL_MS = 30_000;
  @Type(() => Number) @Min(100) @IsInt() SHUTDOWN_TIMEOUT_MS = 8000;

  @Transform(toBoolean) @IsBoolean() PER_MESSAGE_DEFLATE = false;

  /** Comma-separated application message types that may be dropped for a slow client. */
  @Matches(/^\s*[^,\s][^,]{0,63}(\s*,\s*[^,\s][^,]{0,63})*\s*$/, {
    message: 'must be a comma-separated list of message types (1-64 characters each)',
  })
  @IsString()
  EPHEMERAL_MESSAGE_TYPES = 'pose_update';
  @Type(() => Number) @Max(1024 * 1024 * 1024) @Min(1024) @IsInt() CLIENT_BUFFER_SOFT_BYTES = 65536;
  @Type(() => Number) @Max(1024 * 1024 * 1024) @Min(1024) @IsInt() MAX_CLIENT_BUFFER_BYTES =
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
  @Type(() => Number) @Max(3_600_000) @Min(1500) @IsInt() PRESENCE_TTL_MS = 15_000;
  /** Where persistent rooms are written, one JSON file each; created at boot if missing. */
  @MaxLength(4096) @IsString() DATA_DIR = './data';

  @IsIn(LOG_LEVELS) LOG_LEVEL: LogLevelName = 'log';
  @IsIn(LOG_FORMATS) LOG_FORMAT: LogFormat = 'text';
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
  const parsed = plainToInstance(EnvironmentVariables, present);
  const problems = validateSync(parsed, { forbidUnknownValues: false, stopAtFirstError: true }).map(
    (error) => {
      const constraints = Object.values(error.constraints ?? {}).join('; ');
      return `${error.property}=${JSON.stringify(present[error.property])}: ${constraints}`;
    },
  );
  if (problems.length === 0 && parsed.CLIENT_BUFFER_SOFT_BYTES > parsed.MAX_CLIENT_BUFFER_BYTES) {
    problems.push('CLIENT_BUFFER_SOFT_BYTES: must not exceed MAX_CLIENT_BUFFER_BYTES');
  }
  if (parsed.REQUIRE_API_KEY === true && !parsed.API_KEY) {
    problems.push('API_KEY: must be set when REQUIRE_API_KEY=true');
  }
  if (problems.length > 0) {
    throw new ConfigValidationError(problems);
  }
  return parsed;
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
