import { freePort, RedisServer } from '../support/cluster.js';
import { ServerProcess } from '../support/server-process.js';

/** The boot's whole wait for Redis (src/cluster/redis-connection.ts). */
const BOOT_CONNECT_TIMEOUT_MS = 10_000;

describe('cluster: connecting to Redis at boot', () => {
  let server: ServerProcess | undefined;
  let redis: RedisServer | undefined;

  afterEach(async () => {
    await server?.stop();
    await redis?.stop('SIGKILL');
    server = undefined;
    redis = undefined;
  });

  it('waits for a Redis that starts after the server, instead of failing at the first refusal', async () => {
    const port = await freePort();
    server = ServerProcess.start({
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_URL: `redis://127.0.0.1:${port}`,
      REDIS_KEY_PREFIX: `gms-boot-${process.pid}:`,
    });
    // Redis starts only once the server has been refused (the warning is logged on the first
    // refusal), however long the boot took to get there on a loaded machine.
    await server.line(/Redis commands connection: .*ECONNREFUSED/, BOOT_CONNECT_TIMEOUT_MS);
    expect(server.hasExited).toBe(false);
    redis = await RedisServer.start({ port });

    await expect(server.port(BOOT_CONNECT_TIMEOUT_MS)).resolves.toBeGreaterThan(0);
  }, 30_000);

  it('stops the boot after 10 s, naming REDIS_URL and the last error, the password hidden', async () => {
    const port = await freePort();
    server = ServerProcess.start({
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_URL: `redis://gallery:s3cret-pass@127.0.0.1:${port}`,
    });
    const started = Date.now();

    const exit = await server.waitForExit(BOOT_CONNECT_TIMEOUT_MS + 5000);

    expect(exit.code).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(BOOT_CONNECT_TIMEOUT_MS - 500);
    const output = `${server.stdoutLines.join('\n')}\n${server.stderr}`;
    expect(server.stderr).toContain(
      `Failed to start: Error: REDIS_URL: cannot connect to Redis at redis://gallery:***@127.0.0.1:${port} (Error: no answer within 10000 ms; last error: connect ECONNREFUSED 127.0.0.1:${port})`,
    );
    expect(output).not.toContain('s3cret-pass');
  }, 20_000);
});
