import { registerAs } from '@nestjs/config';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  authModeOf,
  prepareDataDir,
  validateEnvironment,
  type EnvironmentVariables,
} from './environment.js';

/** The typed settings every module reads; built once from the environment at boot. */
export function toAppConfig(env: EnvironmentVariables) {
  return {
    port: env.PORT,
    host: env.HOST,
    metricsPort: env.METRICS_PORT,
    authMode: authModeOf(env),
    requireApiKey: authModeOf(env) === 'api-key',
    apiKey: env.API_KEY,
    jwt: {
      secret: env.JWT_SECRET,
      publicKey: env.JWT_PUBLIC_KEY?.replace(/\\n/g, '\n'),
      jwksFile: env.JWT_JWKS_FILE,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      roomsRequired: env.JWT_ROOMS_REQUIRED,
    },
    maxJsonDepth: env.MAX_JSON_DEPTH,
    maxPendingMessages: env.MAX_PENDING_MESSAGES,
    rateLimits: {
      posesPerSec: env.RATE_POSES_PER_SEC,
      posesBurst: env.RATE_POSES_BURST,
      actionsPerSec: env.RATE_ACTIONS_PER_SEC,
      actionsBurst: env.RATE_ACTIONS_BURST,
      bytesPerSec: env.RATE_BYTES_PER_SEC,
      violationsBeforeClose: env.RATE_VIOLATIONS_BEFORE_CLOSE,
    },
    /** Failed-password backoff per client and room (PasswordAttempts); 0 failures: off. */
    passwordAttempts: {
      maxFailures: env.PASSWORD_MAX_FAILURES,
      windowMs: env.PASSWORD_FAILURE_WINDOW_MS,
    },
    /** The process's bound on password hashes (limitPasswordHashing). */
    passwordHashing: {
      concurrency: env.PASSWORD_HASH_CONCURRENCY,
      queue: env.PASSWORD_HASH_QUEUE,
    },
    maxConnections: env.MAX_CONNECTIONS,
    maxConnectionsPerIp: env.MAX_CONNECTIONS_PER_IP,
    trustProxy: parseList(env.TRUST_PROXY),
    allowedOrigins: parseList(env.ALLOWED_ORIGINS),
    maxRoomsPerUser: env.MAX_ROOMS_PER_USER,
    maxRoomsPerIp: env.MAX_ROOMS_PER_IP,
    persistentRoomIdleMs: env.PERSISTENT_ROOM_IDLE_MS,
    maxRooms: env.MAX_ROOMS,
    maxUsersPerRoom: env.MAX_USERS_PER_ROOM,
    maxRoomsPerConnection: env.MAX_ROOMS_PER_CONNECTION,
    maxMessageBytes: env.MAX_MESSAGE_BYTES,
    maxStateBytes: env.MAX_STATE_BYTES,
    kickBanMs: env.KICK_BAN_MS,
    emptyRoomTtlMs: env.EMPTY_ROOM_TTL_MS,
    roomTimeoutMs: env.ROOM_TIMEOUT_MS,
    heartbeatIntervalMs: env.HEARTBEAT_INTERVAL_MS,
    resume: {
      graceMs: env.RECONNECT_GRACE_MS,
      historyEvents: env.RESUME_HISTORY_EVENTS,
      historyMs: env.RESUME_HISTORY_MS,
    },
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    poseTickMs: env.POSE_TICK_MS,
    poseShedTurnMs: env.POSE_SHED_TURN_MS,
    perMessageDeflate: env.PER_MESSAGE_DEFLATE,
    demoPage: env.DEMO_PAGE,
    ephemeralMessageTypes: parseList(env.EPHEMERAL_MESSAGE_TYPES),
    clientBufferSoftBytes: env.CLIENT_BUFFER_SOFT_BYTES,
    maxClientBufferBytes: env.MAX_CLIENT_BUFFER_BYTES,
    dataDir: env.DATA_DIR,
    redisUrl: env.REDIS_URL,
    redisKeyPrefix: env.REDIS_KEY_PREFIX,
    presenceTtlMs: env.PRESENCE_TTL_MS,
    logLevel: env.LOG_LEVEL,
    logFormat: env.LOG_FORMAT,
    googleCloudProject: env.GOOGLE_CLOUD_PROJECT,
    /** One per process (per config): log lines and the cluster's member records name it. */
    instanceId: `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`,
  };
}

function parseList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/** Builds the config from a plain variable map: the boot path and tests share it. */
export function loadAppConfig(env: Record<string, string | undefined>): AppConfig {
  return toAppConfig(validateEnvironment(env));
}

// The one place that reads process.env. The boot also checks that DATA_DIR is usable here, so
// that it stops with the same kind of message as for any other bad variable.
export const appConfig = registerAs('app', () => {
  const config = loadAppConfig(process.env);
  prepareDataDir(config.dataDir);
  return config;
});

export type AppConfig = ReturnType<typeof toAppConfig>;
