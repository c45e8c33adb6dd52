import { Redis } from 'ioredis';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppModuleOptions } from '../../src/app.module.js';
import { ServerProcess } from './server-process.js';
import { delay, TestClient, withTimeout, type ConnectOptions } from './test-client.js';
import { startTestServer, type TestServer } from './test-server.js';
import { TestGeneration } from './test-generation.js';

/**
 * Cluster mode for the end-to-end tests: several instances of the app sharing rooms through a real
 * Redis. Every test gets its own key prefix, so runs, files and workers never see each other's
 * rooms, and its keys are deleted afterwards. Without a Redis the tests fail, never skip.
 */

/** The Redis the tests use; CI and developers start one on the default port. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * How many instances `useTestServer` starts per test: `TEST_CLUSTER_INSTANCES` from the
 * environment, or from jest's `globals` (the `cluster` project sets it there). 0 when unset: one
 * in-process server without Redis, as before.
 */
export function clusterInstanceCount(): number {
  const fromGlobals = (globalThis as { TEST_CLUSTER_INSTANCES?: unknown }).TEST_CLUSTER_INSTANCES;
  const raw = process.env.TEST_CLUSTER_INSTANCES ?? fromGlobals;
  if (raw === undefined || raw === '' || raw === '0') {
    return 0;
  }
  const count = Number(raw);
  if (!Number.isInteger(count) || count < 1 || count > 16) {
    throw new Error(
      `TEST_CLUSTER_INSTANCES must be an integer from 0 to 16, not ${JSON.stringify(raw)}`,
    );
  }
  return count;
}

/** `gms-test-<pid>-<random>:`: unique per call, so parallel runs and tests never collide. */
export function uniqueKeyPrefix(): string {
  return `gms-test-${process.pid}-${randomBytes(6).toString('hex')}:`;
}

/**
 * A plain client for the tests' own reads and cleanup. It does not reconnect and fails fast, and
 * a Redis that does not answer is reported with the URL and what to do about it.
 */
export async function connectRedis(url = TEST_REDIS_URL, timeoutMs = 3000): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    retryStrategy: () => null,
    disconnectTimeout: 100,
  });
  client.on('error', () => undefined); // reported by the calls that fail
  try {
    await withTimeout(client.connect(), timeoutMs, `Redis at ${url}`);
    await client.ping();
    return client;
  } catch (error) {
    client.disconnect();
    throw new Error(
      `Redis at ${url} does not answer (${String(error)}). The cluster tests need a real Redis: ` +
        'start one (`redis-server`) or point TEST_REDIS_URL at one.',
      { cause: error },
    );
  }
}

/** Fails with a clear message when the tests' Redis does not answer. */
export async function assertRedisAnswers(url = TEST_REDIS_URL): Promise<void> {
  const client = await connectRedis(url);
  client.disconnect();
}

/** Every key that starts with `prefix` (SCAN, never KEYS). */
export async function keysWithPrefix(client: Redis, prefix: string): Promise<string[]> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

/** Deletes every key that starts with `prefix`: a test's cleanup. */
export async function deleteKeysWithPrefix(url: string, prefix: string): Promise<void> {
  const client = await connectRedis(url);
  try {
    const keys = await keysWithPrefix(client, prefix);
    for (let i = 0; i < keys.length; i += 500) {
      await client.del(...keys.slice(i, i + 500));
    }
  } finally {
    client.disconnect();
  }
}

export interface TestCluster {
  /** The instances, each a TestServer as `startTestServer` returns it. */
  readonly servers: TestServer[];
  readonly redisUrl: string;
  readonly keyPrefix: string;
  /** Closes every instance, then deletes the prefix's keys (unless `keepKeys`). */
  close(): Promise<void>;
}

export interface ClusterOptions {
  redisUrl?: string;
  /** Default: a fresh `uniqueKeyPrefix()`. */
  keyPrefix?: string;
  /** Leave the keys in Redis on close (a test that restarts the cluster on the same data). */
  keepKeys?: boolean;
  /** Modules of a test's own (extensions) that instance `index` loads besides the server's. */
  importsOf?: (index: number) => NonNullable<AppModuleOptions['imports']>;
}

/**
 * Starts `count` in-process apps (startTestServer) with `env` plus REDIS_URL and a key prefix
 * shared by them all: one cluster. Fails with a clear message when Redis does not answer.
 */
export async function startTestCluster(
  count: number,
  env: Record<string, string> = {},
  options: ClusterOptions = {},
): Promise<TestCluster> {
  const redisUrl = options.redisUrl ?? TEST_REDIS_URL;
  const keyPrefix = options.keyPrefix ?? uniqueKeyPrefix();
  await assertRedisAnswers(redisUrl);
  const clusterEnv = { ...env, REDIS_URL: redisUrl, REDIS_KEY_PREFIX: keyPrefix };
  const started = await Promise.allSettled(
    Array.from({ length: count }, (_, index) =>
      startTestServer(clusterEnv, { imports: options.importsOf?.(index) ?? [] }),
    ),
  );
  const servers = started.flatMap((result) =>
    result.status === 'fulfilled' ? [result.value] : [],
  );
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      const results = await Promise.allSettled(servers.map((server) => server.close()));
      if (!options.keepKeys) {
        await deleteKeysWithPrefix(redisUrl, keyPrefix);
      }
      const failed = results.find((result) => result.status === 'rejected');
      if (failed) {
        throw failed.reason;
      }
    })();
    return closed;
  };
  const failure = started.find((result) => result.status === 'rejected');
  if (failure) {
    await close().catch(() => undefined);
    throw failure.reason;
  }
  return { servers, redisUrl, keyPrefix, close };
}

/** Polls `probe` until it returns a defined value; fails after `timeoutMs` naming `what`. */
export async function waitFor<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  what: string,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) {
        return value;
      }
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}` +
          (lastError instanceof Error ? ` (last error: ${lastError.message})` : ''),
      );
    }
    await delay(intervalMs);
  }
}

/** A TCP port that was free a moment ago, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServerOptions {
  /** Default: a free port. */
  port?: number;
  /** Append-only file in `dir` (fsync on every write); default: no persistence at all. */
  aofDir?: string;
}

/**
 * A redis-server of the test's own, as a child process: for tests that stop and restart Redis.
 * `stop` and `start` again reuse the port and the options, and so the AOF, if any.
 */
export class RedisServer {
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private output = '';

  private constructor(
    readonly port: number,
    private readonly options: RedisServerOptions,
  ) {}

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(options.port ?? (await freePort()), options);
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts the process (again) and waits until it answers PING. */
  async start(timeoutMs = 5000): Promise<void> {
    if (this.child) {
      throw new Error(`redis-server on ${this.port} is already running`);
    }
    const persistence = this.options.aofDir
      ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', this.options.aofDir]
      : ['--appendonly', 'no'];
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--daemonize',
      'no',
      ...persistence,
    ];
    this.output = '';
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    let spawnError: Error | undefined;
    child.on('error', (error) => (spawnError = error));
    this.exited = new Promise((resolve) => child.on('close', () => resolve()));
    void this.exited.then(() => {
      if (this.child === child) {
        this.child = undefined;
      }
    });
    try {
      await waitFor(
        async () => {
          if (spawnError) {
            throw new Error(`cannot run redis-server: ${spawnError.message}`);
          }
          if (this.child !== child) {
            throw new Error(`redis-server exited: ${this.output}`);
          }
          const client = await connectRedis(this.url, 500);
          client.disconnect();
          return true;
        },
        timeoutMs,
        `redis-server on port ${this.port} to answer`,
      );
    } catch (error) {
      await this.stop('SIGKILL');
      throw new Error(`${String(error)}; its output: ${this.output}`, { cause: error });
    }
  }

  /** Stops the process (SIGTERM: a clean shutdown; SIGKILL: a crash) and waits for its exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<void> {
    const child = this.child;
    if (!child) {
      return;
    }
    child.kill(signal);
    try {
      await withTimeout(this.exited ?? Promise.resolve(), timeoutMs, 'redis-server to exit');
    } catch {
      child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** A temporary directory, removed by `removeDir`. */
export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `gms-${label}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** `node dist/main.js` in cluster mode, with the URLs a test needs. */
export interface InstanceProcess {
  readonly process: ServerProcess;
  readonly wsUrl: string;
  readonly httpUrl: string;
  readonly dataDir: string;
}

/**
 * Spawns the built server on a free port with REDIS_URL, the prefix and `env`, and waits until it
 * listens. Each gets a DATA_DIR of its own (removed by `stopInstanceProcess`).
 */
export async function startInstanceProcess(
  redisUrl: string,
  keyPrefix: string,
  env: Record<string, string> = {},
): Promise<InstanceProcess> {
  const dataDir = tempDir('instance-data');
  const server = ServerProcess.start({
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_FORMAT: 'json',
    SHUTDOWN_TIMEOUT_MS: '3000',
    DATA_DIR: dataDir,
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: keyPrefix,
    // As the in-process instances (test-server.ts): suites that test resume turn it on.
    RECONNECT_GRACE_MS: '0',
    ...env,
  });
  try {
    const port = await server.port(15_000);
    return {
      process: server,
      wsUrl: `ws://127.0.0.1:${port}`,
      httpUrl: `http://127.0.0.1:${port}`,
      dataDir,
    };
  } catch (error) {
    await server.stop();
    removeDir(dataDir);
    throw error;
  }
}

/** Kills the process if it still runs, and removes its DATA_DIR. */
export async function stopInstanceProcess(instance: InstanceProcess): Promise<void> {
  await instance.process.stop();
  removeDir(instance.dataDir);
}

/** The clients a cluster test opened, each on the instance it chose; closed by `closeAll`. */
export class ClusterClients {
  private readonly clients: TestClient[] = [];

  async connect(wsUrl: string, userId: string, options: ConnectOptions = {}): Promise<TestClient> {
    const client = await TestClient.connect(wsUrl, { ...options, userId });
    this.clients.push(client);
    return client;
  }

  closeAll(): void {
    this.clients.splice(0).forEach((client) => client.close());
  }
}

export interface ClusterFixture {
  /** The running cluster; throws before `beforeEach` has started it. */
  readonly cluster: TestCluster;
  /** The instances' servers (in-process apps). */
  readonly servers: TestServer[];
  /** Connects `userId` to instance `instance` (0-based). */
  connect(instance: number, userId: string, options?: ConnectOptions): Promise<TestClient>;
}

/** How long starting or stopping a test cluster may take. */
export const CLUSTER_HOOK_TIMEOUT_MS = 20_000;

/**
 * A cluster of `instances` in-process apps per test, started in a `beforeEach` with `env` and
 * closed (its clients first, its Redis keys last) in an `afterEach`, even when the test failed.
 */
export function useTestCluster(
  options: { instances?: number; env?: Record<string, string> } = {},
): ClusterFixture {
  const clients = new ClusterClients();
  let starting: Promise<TestCluster> | undefined;
  let running: TestCluster | undefined;
  // A test that timed out keeps running: its connects must not reach the next test's cluster, nor
  // hand it a client afterEach did not close.
  const generation = new TestGeneration();

  // Booting three apps takes a second or two, more on a loaded machine: not the test's 5 s.
  beforeEach(async () => {
    const mine = startTestCluster(options.instances ?? 3, options.env ?? {});
    starting = mine;
    const cluster = await mine;
    // Unless the test ended meanwhile (the hook timed out): then afterEach closes it.
    if (starting === mine) {
      running = cluster;
    }
  }, CLUSTER_HOOK_TIMEOUT_MS);

  afterEach(async () => {
    generation.next();
    clients.closeAll();
    const started = starting;
    starting = undefined;
    running = undefined;
    // Waits for a start still under way (its hook timed out), so that it is closed too rather
    // than left running past the test. A start that failed has failed its test.
    const cluster = await started?.catch(() => undefined);
    await cluster?.close();
  }, CLUSTER_HOOK_TIMEOUT_MS);

  const fixture: ClusterFixture = {
    get cluster(): TestCluster {
      if (!running) {
        throw new Error('no cluster started');
      }
      return running;
    },
    get servers(): TestServer[] {
      return fixture.cluster.servers;
    },
    connect: async (instance, userId, connectOptions = {}) => {
      const mine = generation.ofCaller();
      const ended = () =>
        new Error(`connect(${instance}, ${JSON.stringify(userId)}) after its test ended`);
      if (mine !== generation.current) {
        throw ended();
      }
      const server = fixture.cluster.servers[instance];
      if (!server) {
        throw new Error(`no instance ${instance}`);
      }
      const client = await clients.connect(server.wsUrl, userId, connectOptions);
      if (mine !== generation.current) {
        client.close();
        throw ended();
      }
      return client;
    },
  };
  return fixture;
}

/** GET `path` on `httpUrl` as JSON, with its status. */
export async function getJson<T = Record<string, unknown>>(
  httpUrl: string,
  path: string,
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${httpUrl}${path}`, { signal: AbortSignal.timeout(3000) });
  return { status: response.status, body: (await response.json()) as T };
}

export interface RoomStats {
  roomId: string;
  name?: string;
  userCount: number;
  persistent: boolean;
}

/** `/stats`'s rooms, which every instance reads from Redis; throws unless it answers 200. */
export async function statsRooms(httpUrl: string): Promise<RoomStats[]> {
  const { status, body } = await getJson<{ rooms: RoomStats[] }>(httpUrl, '/stats');
  if (status !== 200) {
    throw new Error(`/stats answered ${status}: ${JSON.stringify(body)}`);
  }
  return body.rooms;
}

/**
 * Records every event `client` receives, in arrival order, beside TestClient's own queue (which
 * `next` and `reply` consume): for checks over a whole sequence.
 */
export function recordEvents(client: TestClient): RecordedEvent[] {
  const events: RecordedEvent[] = [];
  client.socket.on('message', (raw) => {
    events.push(JSON.parse((raw as Buffer).toString()) as RecordedEvent);
  });
  return events;
}

export interface RecordedEvent {
  event: string;
  data: Record<string, unknown>;
}
