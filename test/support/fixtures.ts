import { CLUSTER_HOOK_TIMEOUT_MS, clusterInstanceCount, startTestCluster } from './cluster.js';
import { TestGeneration } from './test-generation.js';
import { TestClient, type ConnectOptions } from './test-client.js';
import { startTestServer, type TestServer } from './test-server.js';

/**
 * The state of a room nobody has changed yet, as the protocol promises it. Stated here on
 * purpose rather than imported from src, so that the tests check the server against it.
 */
export const INITIAL_STATE = {
  version: 0,
  sceneUrl: null,
  sceneLoaded: false,
  treeViewState: {},
  annotations: [],
  focusPoints: [],
  sessionSettings: {},
};

/**
 * Per-connection rate limits off: for suites whose point is a burst from one client (ordering,
 * slow consumers) rather than the limits, which test/rate-limits.e2e-spec.ts covers.
 */
export const RATE_LIMITS_OFF = {
  RATE_POSES_PER_SEC: '0',
  RATE_ACTIONS_PER_SEC: '0',
  RATE_BYTES_PER_SEC: '0',
};

/** The clients a test opened, so that they can all be closed after it. */
export class ClientPool {
  private readonly clients: TestClient[] = [];

  /** `TestClient.connect`, remembering the client. */
  async connect(url: string, options: ConnectOptions = {}): Promise<TestClient> {
    const client = await TestClient.connect(url, options);
    this.clients.push(client);
    return client;
  }

  closeAll(): void {
    this.clients.splice(0).forEach((client) => client.close());
  }
}

/** What a fixture started: its servers, and how to close them all. */
interface StartedServers {
  servers: TestServer[];
  close(): Promise<void>;
}

export interface ServerFixture {
  /**
   * The running server; throws when none has been started (or it is still starting). In cluster
   * mode, the first instance.
   */
  readonly server: TestServer;
  /** Every running instance: `[server]`, or the whole cluster in cluster mode. */
  readonly servers: TestServer[];
  /** Starts this test's server with `env` (default: the fixture's env). One per test. */
  start(env?: Record<string, string>): Promise<TestServer>;
  /** Connects `userId` to the server, starting it with the fixture's env if none was started. */
  connect(userId?: string, options?: Omit<ConnectOptions, 'userId'>): Promise<TestClient>;
  /** Connects every userId concurrently. */
  connectAll(...userIds: string[]): Promise<TestClient[]>;
}

/**
 * An in-process server per test, and its clients, all closed in an `afterEach`.
 *
 * By default a `beforeEach` starts the server with `env`. With `lazy: true` nothing is started
 * up front: a test calls `start(env)` itself, or its first `connect` starts one with `env`.
 *
 * Cluster mode (`TEST_CLUSTER_INSTANCES=N`, see cluster.ts): `start` starts N in-process
 * instances with `env` plus REDIS_URL and a key prefix of this test's own, `connect` spreads the
 * clients round-robin over them in call order, and `server` is the first instance. The test's
 * Redis keys are deleted after it.
 */
export function useTestServer(
  options: { env?: Record<string, string>; lazy?: boolean } = {},
): ServerFixture {
  const defaultEnv = options.env ?? {};
  const instances = clusterInstanceCount();
  const pool = new ClientPool();
  let starting: Promise<StartedServers> | undefined;
  let running: TestServer[] | undefined;
  let connections = 0;

  const startServers = async (env: Record<string, string>): Promise<StartedServers> => {
    if (instances === 0) {
      const server = await startTestServer(env);
      return { servers: [server], close: () => server.close() };
    }
    const cluster = await startTestCluster(instances, env);
    return { servers: cluster.servers, close: () => cluster.close() };
  };

  // A test that timed out keeps running: its body (or its hook) may call start or connect after
  // afterEach has closed its server, or even during the next test. Each test has a generation
  // (see TestGeneration) and `inTest` says whether one is running at all, so that such a call
  // fails, naming why, rather than booting a stray server that the next test's start would trip
  // over ("this test already started a server") or connecting to the next test's server.
  const generation = new TestGeneration();
  let inTest = false;
  const assertSameTest = (since: number, what: string): void => {
    if (!inTest || since !== generation.current) {
      throw new Error(
        `${what} after its test ended (it timed out?): its server is closed, and none is ` +
          'started for it any more',
      );
    }
  };

  const start = async (env: Record<string, string> = defaultEnv): Promise<TestServer> => {
    const mine = generation.ofCaller();
    assertSameTest(mine, 'start()');
    if (starting) {
      throw new Error('this test already started a server');
    }
    const booting = startServers(env);
    starting = booting;
    const { servers } = await booting;
    // Unless the test ended meanwhile (it or its hook timed out): then afterEach closes these.
    assertSameTest(mine, 'start()');
    running = servers;
    return servers[0];
  };

  // Booting a cluster takes a second or two, more on a loaded machine: not a hook's default 5 s.
  const hookTimeoutMs = instances === 0 ? undefined : CLUSTER_HOOK_TIMEOUT_MS;

  beforeEach(() => {
    inTest = true;
  });

  if (!options.lazy) {
    beforeEach(async () => {
      await start();
    }, hookTimeoutMs);
  }

  afterEach(async () => {
    inTest = false;
    generation.next();
    pool.closeAll();
    const started = starting;
    starting = undefined;
    running = undefined;
    connections = 0;
    // Waits for a start still under way (its hook timed out) so that its servers are closed
    // too, rather than left listening past the test. A start that failed has failed its test.
    const servers = await started?.catch(() => undefined);
    await servers?.close();
  }, hookTimeoutMs);

  const connect = async (userId?: string, connectOptions: Omit<ConnectOptions, 'userId'> = {}) => {
    const mine = generation.ofCaller();
    const what = `connect(${JSON.stringify(userId)})`;
    assertSameTest(mine, what);
    // Taken before any await, so that the instance follows the order of the calls.
    const index = connections++;
    const servers = await (starting?.then((started) => started.servers) ??
      start().then(() => running ?? []));
    assertSameTest(mine, what);
    const server = servers[index % servers.length];
    const client = await pool.connect(server.wsUrl, { ...connectOptions, userId });
    if (mine !== generation.current) {
      // afterEach closed the pool before this client was in it.
      client.close();
      assertSameTest(mine, what);
    }
    return client;
  };

  return {
    get server(): TestServer {
      if (!running) {
        throw new Error('no server started');
      }
      return running[0];
    },
    get servers(): TestServer[] {
      if (!running) {
        throw new Error('no server started');
      }
      return running;
    },
    start,
    connect,
    connectAll: (...userIds) => Promise.all(userIds.map((userId) => connect(userId))),
  };
}

/** The one reply to `requestId`, which must be `event`; returns its data. */
export async function replyOf<T = Record<string, unknown>>(
  client: TestClient,
  requestId: string,
  event: string,
): Promise<T> {
  const message = await client.reply(requestId);
  expect(message.event).toBe(event);
  return message.data as T;
}
