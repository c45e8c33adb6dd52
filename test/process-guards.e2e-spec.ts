import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ServerProcess } from './support/server-process.js';
import { delay, TestClient } from './support/test-client.js';

/**
 * Preloaded into the server process (`node --import`): on SIGUSR2 it raises the fault named by
 * INJECT_FAULT outside of any handler, as a bug would.
 */
const INJECT_FAULT_SOURCE = `
process.on('SIGUSR2', () => {
  setImmediate(() => {
    if (process.env.INJECT_FAULT === 'rejection') {
      void Promise.reject(new Error('injected rejection'));
    } else {
      throw new Error('injected exception');
    }
  });
});
`;

function writeFaultInjector(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gms-fault-')), 'inject-fault.mjs');
  writeFileSync(file, INJECT_FAULT_SOURCE);
  return pathToFileURL(file).href;
}

describe('process guards: errors that escaped every handler', () => {
  let server: ServerProcess | undefined;

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  const start = async (fault: string) => {
    server = ServerProcess.start({ PORT: '0', HOST: '127.0.0.1', INJECT_FAULT: fault }, [
      '--import',
      writeFaultInjector(),
    ]);
    const port = await server.port();
    const alice = await TestClient.connect(`ws://127.0.0.1:${port}`, { userId: 'alice' });
    server.child.kill('SIGUSR2');
    return { server, port, alice };
  };

  it('logs an unhandled rejection and keeps serving: nothing is killed', async () => {
    const { server, port, alice } = await start('rejection');
    await delay(300);
    expect(server.hasExited).toBe(false);
    expect(server.stdoutLines.join('\n') + server.stderr).toMatch(
      /Unhandled promise rejection; still serving: Error: injected rejection/,
    );
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    const requestId = alice.request('ping');
    expect((await alice.reply(requestId)).event).toBe('pong');
    alice.close();
  });

  it('on an uncaught exception, closes clients with 1001 and exits 1 for a restart', async () => {
    const { server, alice } = await start('exception');
    expect((await alice.waitForClose(5000)).code).toBe(1001);
    expect(await server.waitForExit(10_000)).toEqual({ code: 1, signal: null });
    expect(server.stdoutLines.join('\n') + server.stderr).toMatch(
      /Uncaught exception; shutting down: Error: injected exception/,
    );
  });
});
