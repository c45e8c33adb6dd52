import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ServerProcess } from './support/server-process.js';
import { delay, TestClient } from './support/test-client.js';

const PROJECT = 'gms-test-project';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const SEVERITIES = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'];

type LogLine = Record<string, unknown>;

/** As in process-guards.e2e-spec.ts: on SIGUSR2 a promise nobody awaits rejects, as a bug would. */
function writeRejectionInjector(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gms-json-fault-')), 'inject-rejection.mjs');
  writeFileSync(
    file,
    "process.on('SIGUSR2', () => setImmediate(() => void Promise.reject(new Error('injected rejection'))));\n",
  );
  return pathToFileURL(file).href;
}

function parseAll(server: ServerProcess): { stdout: LogLine[]; stderr: LogLine[] } {
  const parse = (text: string): LogLine => {
    try {
      return JSON.parse(text) as LogLine;
    } catch {
      throw new Error(`not a JSON log line: ${text}`);
    }
  };
  return {
    stdout: server.stdoutLines.map(parse),
    stderr: server.stderr
      .split('\n')
      .filter((line) => line.length > 0)
      .map(parse),
  };
}

// Each test spawns `node dist/main.js`: its boot alone can take seconds on a loaded machine.
describe('LOG_FORMAT=json', () => {
  let server: ServerProcess | undefined;

  afterEach(async () => {
    await server?.stop();
  });

  it('writes only JSON lines that Cloud Logging reads, with request fields and trace ids', async () => {
    server = ServerProcess.start({
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'json',
      GOOGLE_CLOUD_PROJECT: PROJECT,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'gms-json-logs-')),
    });
    const port = await server.port();
    const wsUrl = `ws://127.0.0.1:${port}/`;

    const alice = await TestClient.connect(`${wsUrl}?userId=alice`, {
      headers: { traceparent: `00-${TRACE_ID}-${SPAN_ID}-01` },
    });
    const bob = await TestClient.connect(`${wsUrl}?userId=bob`);
    await alice.join('json-room');
    await bob.join('json-room');
    // A refused request: only the host may kick.
    const refused = bob.request('kick_user', { roomId: 'json-room', userId: 'alice' });
    const refusal = await bob.error(refused);
    // And one refused on the traced connection.
    const tracedRefused = alice.request('join_room', { roomId: 'x'.repeat(500) });
    await alice.error(tracedRefused);
    // Poses are never logged, not even refused ones.
    for (let i = 0; i < 5; i++) {
      bob.request('broadcast', { roomId: 'not-joined', message: { type: 'pose_update', i } });
    }
    await delay(100);
    alice.close();
    bob.close();
    await delay(200);

    server.child.kill('SIGTERM');
    expect((await server.waitForExit(10_000)).code).toBe(0);

    const raw = [...server.stdoutLines, ...server.stderr.split('\n').filter((l) => l.length > 0)];
    expect(raw.length).toBeGreaterThan(3);
    const lines = raw.map((text) => {
      try {
        return JSON.parse(text) as LogLine;
      } catch {
        throw new Error(`not a JSON log line: ${text}`);
      }
    });
    const instanceIds = new Set<unknown>();
    for (const line of lines) {
      expect(SEVERITIES).toContain(line.severity);
      expect(typeof line.message).toBe('string');
      expect(new Date(line.time as string).toISOString()).toBe(line.time);
      expect(typeof line.instanceId).toBe('string');
      instanceIds.add(line.instanceId);
    }
    expect(instanceIds.size).toBe(1);
    // Nothing went wrong, so nothing on stderr.
    expect(server.stderr).toBe('');

    const refusalLine = lines.find(
      (line) => line.requestId === refused && line.code === refusal.code,
    );
    expect(refusalLine).toMatchObject({
      severity: 'DEBUG',
      userId: 'bob',
      roomId: 'json-room',
      action: 'kick_user',
      context: 'ProtocolExceptionFilter',
    });
    expect(refusalLine?.stack_trace).toBeUndefined();

    const trace = `projects/${PROJECT}/traces/${TRACE_ID}`;
    const traced = lines.filter((line) => line['logging.googleapis.com/trace'] === trace);
    expect(traced.map((line) => line.message)).toEqual(
      expect.arrayContaining(['User alice connected', 'Request refused']),
    );
    for (const line of traced) {
      expect(line['logging.googleapis.com/spanId']).toBe(SPAN_ID);
      expect(line.userId).toBe('alice');
    }
    // A client's long value is cut.
    const longRefusal = traced.find((line) => line.requestId === tracedRefused);
    expect((longRefusal?.roomId as string).length).toBeLessThanOrEqual(201);
    expect(lines.filter((line) => line.action === 'broadcast')).toEqual([]);
    // Untraced connections carry no trace field.
    expect(lines.find((line) => line.message === 'User bob connected')).not.toHaveProperty(
      'logging.googleapis.com/trace',
    );
  }, 20_000);

  it('writes an unexpected error to stderr as ERROR with its stack_trace, the rest to stdout', async () => {
    server = ServerProcess.start(
      {
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_FORMAT: 'json',
        DATA_DIR: mkdtempSync(join(tmpdir(), 'gms-json-logs-')),
      },
      ['--import', writeRejectionInjector()],
    );
    await server.port();
    server.child.kill('SIGUSR2');
    await delay(300);
    server.child.kill('SIGTERM');
    expect((await server.waitForExit(10_000)).code).toBe(0);
    const { stdout, stderr } = parseAll(server);
    for (const line of stdout) {
      expect(['DEBUG', 'INFO', 'WARNING']).toContain(line.severity);
      expect(line.stack_trace).toBeUndefined();
    }
    expect(stderr).toEqual([
      expect.objectContaining({
        severity: 'ERROR',
        context: 'ProcessGuard',
        message: 'Unhandled promise rejection; still serving: Error: injected rejection',
        stack_trace: expect.stringMatching(/^Error: injected rejection\n\s+at /),
        instanceId: stdout[0].instanceId,
      }),
    ]);
  }, 20_000);

  it('writes a failed start as one CRITICAL line that names the variable at fault', async () => {
    server = ServerProcess.start({ PORT: 'abc', LOG_FORMAT: 'json' });
    expect((await server.waitForExit(10_000)).code).toBe(1);
    const { stdout, stderr } = parseAll(server);
    expect(stdout).toEqual([]);
    expect(stderr).toEqual([
      expect.objectContaining({
        severity: 'CRITICAL',
        message: expect.stringContaining('PORT'),
        time: expect.any(String),
        instanceId: expect.any(String),
      }),
    ]);
    expect(stderr[0].stack_trace).toBeUndefined();
  }, 20_000);

  it('logs no refused binary pose frame, even at debug, and names an unknown action', async () => {
    server = ServerProcess.start({
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'json',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'gms-json-logs-')),
    });
    const port = await server.port();
    const alice = await TestClient.connect(`ws://127.0.0.1:${port}/?userId=alice`, {
      protocols: ['gallery.v2'],
    });
    await alice.join('pose-room');
    for (let i = 0; i < 5; i++) {
      alice.sendRaw(Buffer.alloc(5), { binary: true });
      expect((await alice.next('error')).code).toBe('INVALID_MESSAGE');
    }
    const unknown = alice.request('bogus_action');
    expect((await alice.error(unknown)).code).toBe('UNKNOWN_ACTION');
    // Logged in order: once the unknown action's line is out, a pose frame's would be too.
    const line = JSON.parse(await server.line(/bogus_action/)) as LogLine;
    expect(line).toMatchObject({
      severity: 'DEBUG',
      action: 'bogus_action',
      code: 'UNKNOWN_ACTION',
    });
    expect(parseAll(server).stdout.filter((entry) => entry.code === 'INVALID_MESSAGE')).toEqual([]);
  }, 20_000);
});
