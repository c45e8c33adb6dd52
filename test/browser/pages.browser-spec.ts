// /demo and /admin in a real browser (Chromium through playwright-core) against the real server,
// under the CSP the server sends: three people in one room see each other join, move, chat and
// leave, and the admin page shows the room, its members and, in cluster mode, the instances.
import { SignJWT } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CLUSTER, type Cluster } from '../../src/cluster/cluster.js';
import { startTestCluster } from '../support/cluster.js';
import { Scrape } from '../../bench/prometheus-text.js';
import { TestClient } from '../support/test-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { launchChromium, screenshot, watchProblems } from './browser.js';

const ROOM = 'gallery-demo';
// Each test starts a server and several browser contexts (jest's ESM mode has no jest.setTimeout).
const TEST_MS = 60_000;

interface Person {
  context: BrowserContext;
  page: Page;
  problems: string[];
  /** The text frames the page sent, on all its sockets, in order. */
  sent: string[];
}

/** How many `action` requests are in `frames`. */
function countActions(frames: string[], action: string): number {
  return frames.filter((frame) => frame.includes(`"action":"${action}"`)).length;
}

/** The position a page shows for `userId` in its member list ("at x, z"). */
async function positionShown(page: Page, userId: string): Promise<string | undefined> {
  const text = await page.locator(`#members li[data-user-id="${userId}"]`).textContent();
  return /at (-?[\d.]+, -?[\d.]+)/.exec(text ?? '')?.[1];
}

/** Waits until `page` shows `userId` somewhere other than `before`; returns where. */
async function positionChange(page: Page, userId: string, before?: string): Promise<string> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const now = await positionShown(page, userId);
    if (now !== undefined && now !== before) {
      return now;
    }
    if (Date.now() > deadline) {
      throw new Error(`${userId} stayed at ${before} on the page`);
    }
    await page.waitForTimeout(50);
  }
}

const JWT_SECRET = 'browser-test-jwt-secret-of-at-least-32-chars';

function sign(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .sign(new TextEncoder().encode(JWT_SECRET));
}

describe('pages in a browser', () => {
  let server: TestServer;
  let browser: Browser;
  let closeServers: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    browser = await launchChromium();
  }, TEST_MS);
  afterAll(() => browser?.close());
  afterEach(async () => {
    await (closeServers ?? (() => server?.close()))();
    closeServers = undefined;
  });

  async function openDemo(
    name: string,
    credentials: { apiKey?: string; token?: string; at?: TestServer; fakeClock?: boolean } = {},
  ): Promise<Person> {
    const context = await browser.newContext({ viewport: { width: 1000, height: 760 } });
    if (credentials.fakeClock) {
      // Time flows as usual until the test runs the clock on.
      await context.clock.install();
    }
    const page = await context.newPage();
    const problems = watchProblems(page);
    const sent: string[] = [];
    page.on('websocket', (socket) =>
      socket.on('framesent', ({ payload }) => void sent.push(String(payload))),
    );
    await page.goto(`${(credentials.at ?? server).httpUrl}/demo`);
    await page.fill('#name', name);
    await page.fill('#room', ROOM);
    if (credentials.apiKey) {
      await page.fill('#api-key', credentials.apiKey);
    }
    if (credentials.token) {
      await page.fill('#token', credentials.token);
    }
    await page.click('#join');
    await page.waitForSelector('#connection[data-state="open"]');
    await page.waitForSelector(`#members li[data-user-id="${name.toLowerCase()}"]`);
    return { context, page, problems, sent };
  }

  it(
    'three demo pages share a room: join, move, chat, annotations, leave; /admin shows it',
    async () => {
      server = await startTestServer();
      const alice = await openDemo('alice');
      const bob = await openDemo('bob');
      const carol = await openDemo('carol');
      const people = { alice, bob, carol };

      // Everyone sees everyone, with a role, connected, and a position (each page sends its pose).
      for (const viewer of Object.values(people)) {
        for (const userId of Object.keys(people)) {
          await viewer.page.waitForSelector(
            `#members li[data-user-id="${userId}"]:text-matches("connected at")`,
          );
        }
      }
      expect(await alice.page.textContent('#members li[data-user-id="bob"]')).toMatch(
        /^bob: editor, connected at/,
      );

      // Alice steps forward with the arrow key; bob and carol see her new position.
      await alice.page.focus('#map');
      for (let step = 0; step < 3; step += 1) {
        await alice.page.keyboard.press('ArrowUp');
      }
      await alice.page.click('#turn');
      const aliceAt = await positionShown(alice.page, 'alice');
      for (const viewer of [bob, carol]) {
        await viewer.page
          .locator('#members li[data-user-id="alice"]', { hasText: `at ${aliceAt}` })
          .waitFor();
      }

      // Bob wanders; alice sees him somewhere else twice.
      const bobAt = await positionShown(alice.page, 'bob');
      await bob.page.check('#wander');
      let seen = bobAt;
      for (let change = 0; change < 2; change += 1) {
        seen = await positionChange(alice.page, 'bob', seen);
      }

      // Chat from carol reaches alice and bob.
      await carol.page.fill('#chat-text', 'hello from carol');
      await carol.page.click('#chat-send');
      for (const viewer of [alice, bob]) {
        await viewer.page.waitForSelector('#chat li:text-is("carol: hello from carol")');
      }

      // An annotation from alice shows on bob's page with the new state version.
      await alice.page.fill('#annotation-text', 'Look at the ceiling');
      await alice.page.press('#annotation-text', 'Enter');
      await bob.page.waitForSelector('#annotations li:text-is("Look at the ceiling")');
      expect(await bob.page.textContent('#version')).toBe('1');
      await bob.page.locator('#latency', { hasText: /^\d+ ms$/ }).waitFor();

      for (const [name, person] of Object.entries(people)) {
        await screenshot(person.page, `demo-${name}`);
      }

      // The admin page (AUTH_MODE=none: no key needed) lists the room with its three users.
      const adminContext = await browser.newContext({ viewport: { width: 1000, height: 600 } });
      const admin = await adminContext.newPage();
      const adminProblems = watchProblems(admin);
      await admin.goto(`${server.httpUrl}/admin`);
      await admin.waitForSelector(`#rooms tr[data-room-id="${ROOM}"] td:nth-child(3):text-is("3")`);
      // Picking the room shows its members with their roles.
      await admin.click(`#rooms tr[data-room-id="${ROOM}"] button`);
      await admin.waitForSelector(
        '#members tr[data-user-id="alice"] td:nth-child(3):text-is("host")',
      );
      for (const userId of ['bob', 'carol']) {
        await admin.waitForSelector(
          `#members tr[data-user-id="${userId}"] td:nth-child(4):text-is("yes")`,
        );
      }
      expect(await admin.isHidden('#instances-section')).toBe(true);
      await screenshot(admin, 'admin-three-users');

      // Carol closes her tab: alice's list drops her, the admin page counts two.
      await carol.context.close();
      await alice.page.waitForSelector('#members li[data-user-id="carol"]', { state: 'detached' });
      await admin.waitForSelector(`#rooms tr[data-room-id="${ROOM}"] td:nth-child(3):text-is("2")`);
      await admin.waitForSelector('#members tr[data-user-id="carol"]', { state: 'detached' });
      await screenshot(alice.page, 'demo-alice-after-carol-left');

      // Nothing was refused by the CSP, nothing threw.
      expect([...alice.problems, ...bob.problems, ...carol.problems, ...adminProblems]).toEqual([]);
      // ... and the CSP is really there: an inline script (as an injected one would be) is refused.
      // (A string: this file is type-checked without the DOM library.)
      const refused = await alice.page.evaluate<string>(`new Promise((resolve) => {
        document.addEventListener('securitypolicyviolation', (event) =>
          resolve(event.violatedDirective));
        const script = document.createElement('script');
        script.textContent = 'document.title = "inline ran"';
        document.body.append(script);
        setTimeout(() => resolve('no violation reported'), 2000);
      })`);
      expect(refused).toBe('script-src-elem');
      expect(await alice.page.title()).not.toBe('inline ran');
      await Promise.all([alice.context.close(), bob.context.close(), adminContext.close()]);
    },
    TEST_MS,
  );

  it(
    'AUTH_MODE=api-key: /admin asks for the key, keeps it in sessionStorage, never in a URL',
    async () => {
      const key = 'pages-test-key-0123456789';
      server = await startTestServer({ AUTH_MODE: 'api-key', API_KEY: key });
      const dora = await openDemo('dora', { apiKey: key });

      const context = await browser.newContext();
      const admin = await context.newPage();
      const problems = watchProblems(admin);
      const urls: string[] = [];
      admin.on('request', (request) => urls.push(request.url()));
      await admin.goto(`${server.httpUrl}/admin`);
      await admin.waitForSelector('#status:text-is("key needed")');
      expect(await admin.locator('#rooms tr').count()).toBe(0);

      await admin.fill('#key', key);
      await admin.press('#key', 'Enter');
      await admin.waitForSelector(`#rooms tr[data-room-id="${ROOM}"] td:nth-child(3):text-is("1")`);
      await screenshot(admin, 'admin-api-key');
      expect(await admin.evaluate<string | null>("sessionStorage.getItem('gms-admin-key')")).toBe(
        key,
      );
      expect(urls.length).toBeGreaterThan(2);
      expect(urls.filter((url) => url.includes(key))).toEqual([]);

      // A demo page with a wrong key is told by close code 4401 (a browser never sees the 401 of
      // a refused upgrade) and stops: one attempt, no reconnect loop.
      const wrongKey = await context.newPage();
      const sockets: string[] = [];
      wrongKey.on('websocket', (socket) => sockets.push(socket.url()));
      await wrongKey.goto(`${server.httpUrl}/demo`);
      await wrongKey.fill('#name', 'mallory');
      await wrongKey.fill('#api-key', 'not-the-key');
      await wrongKey.click('#join');
      await wrongKey.waitForSelector('#connection[data-state="closed"]');
      await wrongKey.waitForSelector('#error:visible');
      await wrongKey.waitForTimeout(1500);
      expect(sockets).toHaveLength(1);
      expect(await wrongKey.textContent('#connection')).toBe('closed');

      // The refused /stats calls before the key show as console errors (401); nothing else may.
      expect(problems.filter((problem) => !problem.includes('401'))).toEqual([]);
      expect(dora.problems).toEqual([]);
      await Promise.all([context.close(), dora.context.close()]);
    },
    TEST_MS,
  );

  it(
    'AUTH_MODE=api-key: /admin shows nothing of the last key after Forget or a wrong key',
    async () => {
      const key = 'pages-test-key-0123456789';
      server = await startTestServer({ AUTH_MODE: 'api-key', API_KEY: key });
      const dora = await openDemo('dora', { apiKey: key });
      const context = await browser.newContext();
      const admin = await context.newPage();
      const problems = watchProblems(admin);
      await admin.goto(`${server.httpUrl}/admin`);
      /** Logs in with the key and picks the room: its row, its member, the totals. */
      async function showRoom(): Promise<void> {
        await admin.fill('#key', key);
        await admin.press('#key', 'Enter');
        await admin.click(`#rooms tr[data-room-id="${ROOM}"] button`);
        await admin.waitForSelector('#members tr[data-user-id="dora"]');
        await admin.waitForSelector('#totals dd[data-total="Users"]:text-is("1")');
        await admin.waitForSelector('#status:text-is("live")');
      }
      /** Refused (401): no rooms, members or totals of the key before, and no room picked. */
      async function expectNothingShown(): Promise<void> {
        await admin.waitForSelector('#status:text-is("key needed")');
        // One more poll (every 2 s) must not bring anything back either.
        await admin.waitForTimeout(2500);
        expect(await admin.textContent('#status')).toBe('key needed');
        expect(await admin.locator('#rooms tr').count()).toBe(0);
        expect(await admin.locator('#members tr').count()).toBe(0);
        expect(await admin.locator('#totals dd').count()).toBe(0);
        expect(await admin.textContent('#members-room')).toBe('(pick a room above)');
        expect(await admin.isHidden('#instances-section')).toBe(true);
      }

      await showRoom();
      await admin.click('#forget');
      await expectNothingShown();

      // The right key again: the room is back, but not picked (no members until clicked).
      await admin.fill('#key', key);
      await admin.press('#key', 'Enter');
      await admin.waitForSelector(`#rooms tr[data-room-id="${ROOM}"]`);
      await admin.waitForTimeout(2500);
      expect(await admin.locator('#members tr').count()).toBe(0);
      expect(await admin.locator('#rooms tr.selected').count()).toBe(0);

      // A wrong key clears the page the same way.
      await showRoom();
      await admin.fill('#key', 'not-the-key');
      await admin.press('#key', 'Enter');
      await expectNothingShown();

      expect(problems.filter((problem) => !problem.includes('401'))).toEqual([]);
      await Promise.all([context.close(), dora.context.close()]);
    },
    TEST_MS,
  );

  it(
    'AUTH_MODE=jwt on two instances: demo pages join with tokens, /admin lists members and instances',
    async () => {
      const cluster = await startTestCluster(2, { AUTH_MODE: 'jwt', JWT_SECRET });
      closeServers = () => cluster.close();
      const [first, second] = cluster.servers;
      server = first;
      const erin = await openDemo('Erin', { token: await sign({ sub: 'erin' }), at: first });
      const finn = await openDemo('Finn', { token: await sign({ sub: 'finn' }), at: second });
      await erin.page.waitForSelector('#members li[data-user-id="finn"]');

      // A token without admin: true gets the counts only, and no members.
      const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
      const admin = await context.newPage();
      const problems = watchProblems(admin);
      await admin.goto(`${second.httpUrl}/admin`);
      await admin.fill('#key', await sign({ sub: 'erin' }));
      await admin.press('#key', 'Enter');
      await admin.waitForSelector('#rooms-note', { state: 'visible' });
      expect(await admin.locator('#rooms tr').count()).toBe(0);

      await admin.fill('#key', await sign({ sub: 'ops', admin: true }));
      await admin.press('#key', 'Enter');
      await admin.click(`#rooms tr[data-room-id="${ROOM}"] button`);
      await admin.waitForSelector(
        '#members tr[data-user-id="erin"] td:nth-child(2):text-is("Erin")',
      );
      await admin.waitForSelector(
        '#members tr[data-user-id="finn"] td:nth-child(3):text-is("editor")',
      );
      // Both instances report, with one connection each.
      for (const instance of [first, second]) {
        const id = instance.app.get<Cluster>(CLUSTER).instanceId;
        await admin.waitForSelector(
          `#instances tr[data-instance-id="${id}"] td:nth-child(2):text-is("1")`,
        );
      }
      await screenshot(admin, 'admin-cluster-jwt');

      expect([...problems, ...erin.problems, ...finn.problems]).toEqual([]);
      await Promise.all([context.close(), erin.context.close(), finn.context.close()]);
    },
    TEST_MS,
  );

  it(
    'a double Join (double-click, two submits, Join during Leave) ends joined once, no error',
    async () => {
      server = await startTestServer();
      const context = await browser.newContext();
      /** /demo with a name typed in, not joined yet; with the sockets the page opens. */
      async function demoPage(
        name: string,
      ): Promise<{ page: Page; problems: string[]; sockets: string[] }> {
        const page = await context.newPage();
        const problems = watchProblems(page);
        const sockets: string[] = [];
        page.on('websocket', (socket) => sockets.push(socket.url()));
        await page.goto(`${server.httpUrl}/demo`);
        await page.fill('#name', name);
        await page.fill('#room', ROOM);
        return { page, problems, sockets };
      }
      /** Joined, after the dust settles: no error, Leave live, the user listed once. */
      async function expectJoinedOnce(page: Page, userId: string): Promise<void> {
        await page.waitForSelector('#leave:enabled, #error:visible');
        // A second Join's failure would show a little later (a close, "Client closed"): wait.
        await page.waitForTimeout(1000);
        expect(await page.textContent('#connection')).toBe('open');
        expect(await page.isHidden('#error')).toBe(true);
        expect(await page.isDisabled('#join')).toBe(true);
        expect(await page.isEnabled('#leave')).toBe(true);
        expect(await page.locator(`#members li[data-user-id="${userId}"]`).count()).toBe(1);
      }

      // A double-click on Join: one client, one socket.
      const ivy = await demoPage('ivy');
      await ivy.page.dblclick('#join');
      await expectJoinedOnce(ivy.page, 'ivy');
      expect(ivy.sockets).toHaveLength(1);

      // Two submits at once, as Enter pressed twice in a field would do were Join not disabled.
      const jay = await demoPage('jay');
      await jay.page.evaluate(`{
        const form = document.getElementById('join-form');
        form.requestSubmit();
        form.requestSubmit();
      }`);
      await expectJoinedOnce(jay.page, 'jay');
      expect(jay.sockets).toHaveLength(1);

      // No client was replaced by another of the same user (close 4000). Not checked after the
      // next step: there the new socket may reach the server before the old one's close does.
      const metrics = Scrape.parse(await (await fetch(`${server.httpUrl}/metrics`)).text());
      expect(metrics.value('gms_server_disconnects_total', { code: '4000' })).toBe(0);

      // Join pressed while Leave waits for the server (two clicks from Playwright would come after
      // its answer, on this machine): the new client is not closed by that Leave.
      await ivy.page.evaluate(`{
        document.getElementById('leave').click();
        document.getElementById('join').click();
      }`);
      await expectJoinedOnce(ivy.page, 'ivy');
      expect(ivy.sockets).toHaveLength(2);

      expect([...ivy.problems, ...jay.problems]).toEqual([]);
      await context.close();
    },
    TEST_MS,
  );

  it(
    'a page put out of its room and joined again, three times, runs one ping timer, not four',
    async () => {
      server = await startTestServer();
      // The host, so that it may delete the room; it joins again first each time to stay host.
      const boss = await TestClient.connect(server.wsUrl, { userId: 'boss' });
      await boss.join(ROOM);
      const dana = await openDemo('dana', { fakeClock: true });
      const { page } = dana;

      for (let round = 0; round < 3; round += 1) {
        const deleted = await boss.reply(boss.request('delete_room', { roomId: ROOM }));
        expect(deleted.event).toBe('room_deleted');
        await page.waitForSelector('#error:text-is("Out of the room: deleted")');
        await page.waitForSelector('#join:enabled');
        // The room it was put out of is not shown any more.
        expect(await page.locator('#members li').count()).toBe(0);
        await boss.join(ROOM);
        await page.click('#join');
        await page.waitForSelector('#leave:enabled');
      }

      // Ten ping periods (PING_MS, 2 s) at once: one timer pings ten times, leaked ones as often.
      const before = countActions(dana.sent, 'ping');
      await page.clock.runFor(20_000);
      // The frames are reported to the test a little later: wait for ten, then for any more.
      const deadline = Date.now() + 5000;
      while (countActions(dana.sent, 'ping') - before < 10 && Date.now() < deadline) {
        await page.waitForTimeout(50);
      }
      await page.waitForTimeout(300);
      const pings = countActions(dana.sent, 'ping') - before;
      expect(pings).toBeGreaterThanOrEqual(10);
      expect(pings).toBeLessThanOrEqual(11);
      // Each Join made a new client; the one before was closed, not left to be replaced (4000).
      const metrics = Scrape.parse(await (await fetch(`${server.httpUrl}/metrics`)).text());
      expect(metrics.value('gms_server_disconnects_total', { code: '4000' })).toBe(0);
      // The page shows the connection it has, not a replaced one's close.
      expect(await page.textContent('#connection')).toBe('open');
      expect(dana.problems).toEqual([]);
      boss.close();
      await dana.context.close();
    },
    TEST_MS,
  );
});
