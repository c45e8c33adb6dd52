// GET /metrics: exact counter deltas over a scripted session, who may read it in each AUTH_MODE,
// and METRICS_PORT (served there without auth, 404 on PORT).
import { SignJWT } from 'jose';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Scrape } from '../bench/prometheus-text.js';
import { delay, drop, TestClient } from './support/test-client.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const API_KEY = 'metrics-e2e-key';
const SECRET = 'metrics-e2e-jwt-secret-of-at-least-32-chars';

async function scrape(server: TestServer, headers: Record<string, string> = {}): Promise<Scrape> {
  const response = await fetch(`${server.httpUrl}/metrics`, { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return Scrape.parse(await response.text());
}

function sign(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .sign(new TextEncoder().encode(SECRET));
}

function pose(x: number): Record<string, unknown> {
  return { type: 'pose_update', data: { position: [x, 1.7, 0], rotation: [0, 0, 0, 1] } };
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe('/metrics', () => {
  let server: TestServer | undefined;
  const clients: TestClient[] = [];

  afterEach(async () => {
    for (const client of clients.splice(0)) {
      client.close();
    }
    await server?.close();
    server = undefined;
  });

  it('counts a scripted session exactly', async () => {
    server = await startTestServer({
      AUTH_MODE: 'api-key',
      API_KEY,
      RATE_POSES_PER_SEC: '1',
      RATE_POSES_BURST: '1',
    });
    const auth = { 'x-api-key': API_KEY };
    const before = await scrape(server, auth);

    expect(await TestClient.refusedStatus(server.wsUrl, { apiKey: 'wrong' })).toBe(401);
    const alice = await TestClient.connect(server.wsUrl, { userId: 'alice', apiKey: API_KEY });
    const bob = await TestClient.connect(server.wsUrl, { userId: 'bob', apiKey: API_KEY });
    clients.push(alice, bob);
    await alice.join('gallery');
    await bob.join('gallery');
    await alice.next('user_joined');

    // The first pose fits the budget of 1; the second, right after, is dropped as rate limited.
    alice.broadcast('gallery', pose(1));
    alice.broadcast('gallery', pose(2));
    expect(await bob.next('message')).toMatchObject({ message: pose(1) });
    await bob.expectNothing(150, 'message');

    const requestId = alice.request('update_state', {
      roomId: 'gallery',
      baseVersion: 0,
      patch: { sceneLoaded: true },
    });
    expect((await alice.reply(requestId)).event).toBe('state_updated');
    await bob.next('state_updated');
    const { code } = await alice.error(alice.request('leave_room', { roomId: 'nowhere' }));
    await delay(20);

    const after = await scrape(server, auth);
    const delta = (name: string, labels: Record<string, string> = {}) =>
      after.value(name, labels) - before.value(name, labels);

    expect(after.value('gms_connections')).toBe(2);
    expect(delta('gms_connections_accepted_total')).toBe(2);
    expect(delta('gms_connections_refused_total', { reason: 'unauthorized' })).toBe(1);
    expect(delta('gms_connections_refused_total')).toBe(1);
    expect(delta('gms_joins_total')).toBe(2);
    expect(delta('gms_messages_received_total', { kind: 'pose' })).toBe(2);
    expect(delta('gms_messages_sent_total', { kind: 'pose' })).toBe(1);
    expect(delta('gms_messages_dropped_total', { reason: 'rate_limited' })).toBe(1);
    expect(delta('gms_messages_dropped_total')).toBe(1);
    expect(delta('gms_state_commits_total')).toBe(1);
    expect(delta('gms_messages_received_total', { kind: 'state' })).toBe(1);
    // The writer's reply and the other member's event.
    expect(delta('gms_messages_sent_total', { kind: 'state' })).toBe(2);
    expect(delta('gms_request_errors_total', { code })).toBe(1);
    expect(delta('gms_request_errors_total')).toBe(1);
    expect(delta('gms_request_duration_seconds_count', { action: 'join_room' })).toBe(2);
    expect(delta('gms_request_duration_seconds_count', { action: 'update_state' })).toBe(1);
    expect(delta('gms_request_duration_seconds_count', { action: 'broadcast' })).toBe(0);
    expect(after.value('gms_rooms')).toBe(1);
    expect(after.value('gms_room_members')).toBe(2);
    expect(delta('gms_bytes_received_total')).toBeGreaterThan(0);
    expect(delta('gms_bytes_sent_total')).toBeGreaterThan(0);
    expect(delta('gms_fanout_duration_seconds_count')).toBeGreaterThanOrEqual(3);
    // No POSE_TICK_MS: no ticks.
    expect(delta('gms_pose_tick_lateness_seconds_count')).toBe(0);
    // Default Node metrics, event-loop lag among them.
    expect(after.has('nodejs_eventloop_lag_p99_seconds')).toBe(true);
    expect(after.has('process_cpu_seconds_total')).toBe(true);
  });

  it('measures pose ticks with POSE_TICK_MS: each one run or skipped, none more than were due', async () => {
    const tickMs = 20;
    server = await startTestServer({ POSE_TICK_MS: String(tickMs) });
    const alice = await TestClient.connect(server.wsUrl, { userId: 'alice' });
    const bob = await TestClient.connect(server.wsUrl, { userId: 'bob' });
    clients.push(alice, bob);
    await alice.join('gallery');
    await bob.join('gallery');
    // Taken before the first scrape, so the ticks due in the window cover both scrapes.
    const startedAt = performance.now();
    const before = await scrape(server);

    alice.broadcast('gallery', pose(1));
    expect(await bob.next('message')).toMatchObject({ message: pose(1) });
    await delay(300);

    const after = await scrape(server);
    const elapsedTicks = (performance.now() - startedAt) / tickMs;
    const delta = (name: string) => after.value(name) - before.value(name);
    const ran = delta('gms_pose_tick_lateness_seconds_count');
    const skipped = delta('gms_pose_ticks_skipped_total');
    expect(ran).toBeGreaterThanOrEqual(3);
    expect(ran + skipped).toBeLessThanOrEqual(Math.ceil(elapsedTicks) + 1);
    expect(after.value('gms_pose_tick_lateness_seconds_bucket', { le: '+Inf' })).toBe(
      after.value('gms_pose_tick_lateness_seconds_count'),
    );
  });

  it('serves no gms_ metric that docs/metrics.md does not describe', async () => {
    server = await startTestServer({ POSE_TICK_MS: '33' });
    const served = new Set(
      (await scrape(server)).samples
        .map((sample) => sample.name)
        .filter((name) => name.startsWith('gms_'))
        .map((name) => name.replace(/_(bucket|sum|count)$/, '')),
    );
    const doc = readFileSync(join(process.cwd(), 'docs/metrics.md'), 'utf8');

    expect(served.size).toBeGreaterThan(10);
    expect([...served].filter((name) => !doc.includes(`\`${name}\``))).toEqual([]);
  });

  it('counts resume outcomes', async () => {
    server = await startTestServer({ RECONNECT_GRACE_MS: '5000' });
    const before = await scrape(server);
    const bob = await TestClient.connect(server.wsUrl, { userId: 'bob' });
    await bob.join('gallery');
    const token = bob.connected?.resumeToken as string;
    await drop(bob);
    await delay(50);
    const bob2 = await TestClient.connect(server.wsUrl, { userId: 'bob', resume: token });
    clients.push(bob2);
    const resumed = await bob2.reply(bob2.request('resume', { rooms: [] }));
    expect(resumed.event).toBe('resumed');
    // Nothing held any more: answered, but nothing recovered.
    const again = await bob2.reply(bob2.request('resume', { token: 'not-a-token', rooms: [] }));
    expect(again.event).toBe('resumed');

    const after = await scrape(server);
    const delta = (recovered: string) =>
      after.value('gms_resume_total', { recovered }) -
      before.value('gms_resume_total', { recovered });
    expect(delta('true')).toBe(1);
    expect(delta('false')).toBe(1);
  });

  it('counts the connections the server closes, by close code', async () => {
    server = await startTestServer({});
    const before = await scrape(server);
    const first = await TestClient.connect(server.wsUrl, { userId: 'alice' });
    const second = await TestClient.connect(server.wsUrl, { userId: 'alice' });
    clients.push(first, second);
    expect((await first.waitForClose()).code).toBe(4000);
    const after = await scrape(server);
    const delta = (code: string) =>
      after.value('gms_server_disconnects_total', { code }) -
      before.value('gms_server_disconnects_total', { code });
    expect(delta('4000')).toBe(1);
    expect(delta('1008')).toBe(0);
  });

  it('counts a heartbeat kill once, as 1006 (what the client sees: no close frame)', async () => {
    // 200 ms: room enough for the live client's pong on a loaded machine.
    server = await startTestServer({ AUTH_MODE: 'api-key', API_KEY, HEARTBEAT_INTERVAL_MS: '200' });
    const auth = { 'x-api-key': API_KEY };
    const before = await scrape(server, auth);
    const alive = await TestClient.connect(server.wsUrl, { userId: 'alive', apiKey: API_KEY });
    // Does not answer the server's pings: terminated by the second tick after it connected.
    const dead = await TestClient.connect(server.wsUrl, {
      userId: 'dead',
      apiKey: API_KEY,
      autoPong: false,
    });
    clients.push(alive, dead);
    expect((await dead.waitForClose(2000)).code).toBe(1006);
    // A few more ticks: the client that answers is never counted.
    await delay(500);

    const after = await scrape(server, auth);
    const delta = (labels: Record<string, string> = {}) =>
      after.value('gms_server_disconnects_total', labels) -
      before.value('gms_server_disconnects_total', labels);
    expect(delta({ code: '1006' })).toBe(1);
    expect(delta()).toBe(1);
    expect(alive.closeCode).toBeUndefined();
  });

  it('is open to anyone with AUTH_MODE=none', async () => {
    server = await startTestServer({});
    await scrape(server);
  });

  it('needs the API key with AUTH_MODE=api-key (401 without)', async () => {
    server = await startTestServer({ AUTH_MODE: 'api-key', API_KEY });
    expect((await fetch(`${server.httpUrl}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${server.httpUrl}/metrics`, { headers: { 'x-api-key': 'nope' } });
    expect(wrong.status).toBe(401);
    await scrape(server, { 'x-api-key': API_KEY });
  });

  it('needs the API key or an admin token with AUTH_MODE=jwt (401 none, 403 non-admin)', async () => {
    server = await startTestServer({ AUTH_MODE: 'jwt', JWT_SECRET: SECRET, API_KEY });
    const url = `${server.httpUrl}/metrics`;
    expect((await fetch(url)).status).toBe(401);
    const user = await sign({ sub: 'alice' });
    const userResponse = await fetch(url, { headers: { authorization: `Bearer ${user}` } });
    expect(userResponse.status).toBe(403);
    const admin = await sign({ sub: 'root', admin: true });
    await scrape(server, { authorization: `Bearer ${admin}` });
    await scrape(server, { 'x-api-key': API_KEY });
  });

  it('is served on METRICS_PORT without auth, and answers 404 on PORT', async () => {
    const metricsPort = await freePort();
    server = await startTestServer({
      AUTH_MODE: 'api-key',
      API_KEY,
      HOST: '127.0.0.1',
      METRICS_PORT: String(metricsPort),
    });
    const onMain = await fetch(`${server.httpUrl}/metrics`, { headers: { 'x-api-key': API_KEY } });
    expect(onMain.status).toBe(404);
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(response.status).toBe(200);
    expect(Scrape.parse(await response.text()).has('gms_connections')).toBe(true);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status).toBe(404);
    await server.close();
    server = undefined;
    await expect(fetch(`http://127.0.0.1:${metricsPort}/metrics`)).rejects.toThrow();
  });
});
