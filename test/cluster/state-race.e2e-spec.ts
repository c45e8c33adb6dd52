import { STATE_CHANGE_ATTEMPTS } from '../../src/cluster/redis-room-store.js';
import { recordEvents, useTestCluster, waitFor, type RecordedEvent } from '../support/cluster.js';
import { RATE_LIMITS_OFF } from '../support/fixtures.js';
import type { TestClient } from '../support/test-client.js';

const ROOM = 'contested';

/** The versions of the state_updated events in `events`, in arrival order. */
const versionsIn = (events: RecordedEvent[]) =>
  events
    .filter((event) => event.event === 'state_updated')
    .map((event) => event.data.version as number);

describe('cluster: concurrent state changes from several instances', () => {
  // Editors retry at once after STALE_VERSION: a burst past the default action budget.
  const fixture = useTestCluster({ instances: 3, env: RATE_LIMITS_OFF });

  /** Joins everyone to ROOM in order (the first is host) and records what each receives after. */
  const joinAll = async (clients: TestClient[]) => {
    for (const client of clients) {
      await client.join(ROOM);
    }
    // Let the user_joined events settle, then record from here on.
    await waitFor(
      () =>
        clients[0].received.filter((m) => m.event === 'user_joined').length >= clients.length - 1
          ? true
          : undefined,
      3000,
      'every user_joined at the host',
    );
    return clients.map((client) => recordEvents(client));
  };

  it('accepts exactly one of two patches with the same baseVersion from two instances', async () => {
    const alice = await fixture.connect(0, 'alice');
    const bob = await fixture.connect(1, 'bob');
    const carol = await fixture.connect(2, 'carol');
    const recorded = await joinAll([alice, bob, carol]);

    const fromAlice = alice.request('update_state', {
      roomId: ROOM,
      baseVersion: 0,
      patch: { sceneUrl: 'https://example.com/alice.gltf' },
    });
    const fromBob = bob.request('update_state', {
      roomId: ROOM,
      baseVersion: 0,
      patch: { sceneUrl: 'https://example.com/bob.gltf' },
    });
    const [aliceReply, bobReply] = await Promise.all([
      alice.reply(fromAlice, 5000),
      bob.reply(fromBob, 5000),
    ]);

    const events = [aliceReply.event, bobReply.event].sort();
    expect(events).toEqual(['error', 'state_updated']);
    const [winner, loser] =
      aliceReply.event === 'state_updated' ? ['alice', 'bob'] : ['bob', 'alice'];
    const failed = (aliceReply.event === 'error' ? aliceReply : bobReply).data as Record<
      string,
      unknown
    >;
    expect(failed).toMatchObject({ code: 'STALE_VERSION', currentVersion: 1 });
    const won = (aliceReply.event === 'state_updated' ? aliceReply : bobReply).data;
    expect(won).toMatchObject({ roomId: ROOM, version: 1, updatedBy: winner });

    // Every member, on every instance, sees version 1 once, and nothing of the loser's change.
    for (const events of recorded) {
      await waitFor(
        () => (versionsIn(events).length >= 1 ? true : undefined),
        3000,
        'state_updated 1 at every member',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const events of recorded) {
      expect(versionsIn(events)).toEqual([1]);
      const update = events.find((event) => event.event === 'state_updated')!;
      expect(update.data.updatedBy).toBe(winner);
    }
    const state = await carol.reply(carol.request('get_state', { roomId: ROOM }));
    expect(state).toMatchObject({
      event: 'state',
      data: { version: 1, state: { sceneUrl: `https://example.com/${winner}.gltf` } },
    });
    expect(loser).not.toBe(winner);
  });

  it('orders a burst of 50 patches from five editors on three instances, retried on STALE_VERSION, 1..50 for every member', async () => {
    const TOTAL = 50;
    const editors = await Promise.all(
      ['e0', 'e1', 'e2', 'e3', 'e4'].map((userId, i) => fixture.connect(i % 3, userId)),
    );
    const watchers = await Promise.all(
      ['w0', 'w1', 'w2'].map((userId, i) => fixture.connect(i % 3, userId)),
    );
    const recorded = await joinAll([...editors, ...watchers]);
    const editorEvents = recorded.slice(0, editors.length);

    let stale = 0;
    /** One editor: patches on the newest version it knows, again on STALE_VERSION, 10 landed. */
    const edit = async (editor: TestClient, events: RecordedEvent[]) => {
      let known = 0;
      let landed = 0;
      while (landed < TOTAL / editors.length) {
        known = Math.max(known, ...versionsIn(events));
        const reply = await editor.reply(
          editor.request('update_state', {
            roomId: ROOM,
            baseVersion: known,
            patch: { sessionSettings: { by: editor.userId, landed } },
          }),
          5000,
        );
        if (reply.event === 'state_updated') {
          landed += 1;
          known = (reply.data as { version: number }).version;
          continue;
        }
        const error = reply.data as { code: string; currentVersion?: number };
        if (error.code !== 'STALE_VERSION') {
          throw new Error(`${editor.userId}: unexpected ${JSON.stringify(reply)}`);
        }
        stale += 1;
        known = Math.max(known, error.currentVersion ?? 0);
      }
    };
    await Promise.all(editors.map((editor, i) => edit(editor, editorEvents[i])));

    expect(stale).toBeGreaterThan(0); // the editors did race
    const state = await watchers[0].reply(watchers[0].request('get_state', { roomId: ROOM }));
    expect(state).toMatchObject({ event: 'state', data: { version: TOTAL } });
    const expected = Array.from({ length: TOTAL }, (_, i) => i + 1);
    for (const [index, events] of recorded.entries()) {
      const member = [...editors, ...watchers][index].userId;
      await waitFor(
        () => (versionsIn(events).length >= TOTAL ? true : undefined),
        5000,
        `${member} to get ${TOTAL} state_updated`,
      ).catch(() => undefined); // the comparison below says what is missing
      expect({ member, versions: versionsIn(events) }).toEqual({ member, versions: expected });
    }
  });

  it('orders 50 pipelined ops updates from five editors on three instances, 1..n for every member', async () => {
    const TOTAL = 50;
    const editors = await Promise.all(
      ['e0', 'e1', 'e2', 'e3', 'e4'].map((userId, i) => fixture.connect(i % 3, userId)),
    );
    const watchers = await Promise.all(
      ['w0', 'w1', 'w2'].map((userId, i) => fixture.connect(i % 3, userId)),
    );
    const members = [...editors, ...watchers];
    const recorded = await joinAll(members);

    // Without waiting for replies: ops need no baseVersion, so none of them can be stale.
    const sent = editors.map((editor) =>
      Array.from({ length: TOTAL / editors.length }, (_, i) =>
        editor.request('update_state', {
          roomId: ROOM,
          ops: [{ op: 'add', collection: 'annotations', id: `${editor.userId}-${i}`, item: { i } }],
        }),
      ),
    );
    const replies = await Promise.all(
      editors.flatMap((editor, i) => sent[i].map((requestId) => editor.reply(requestId, 5000))),
    );
    // The README allows UNAVAILABLE when a room's state changes too often; every other one lands.
    const landed = replies.filter((reply) => reply.event === 'state_updated').length;
    const refused = replies.filter((reply) => reply.event !== 'state_updated');
    expect(refused.map(({ event, data }) => [event, (data as { code?: string }).code])).toEqual(
      Array(TOTAL - landed).fill(['error', 'UNAVAILABLE']),
    );
    // An op gives up after STATE_CHANGE_ATTEMPTS lost rounds, and a landed op beats at most one
    // round of each other editor (each has one op in flight: a connection's are handled in turn).
    const rivals = editors.length - 1;
    const atLeast = Math.ceil((TOTAL * STATE_CHANGE_ATTEMPTS) / (STATE_CHANGE_ATTEMPTS + rivals));
    expect(landed).toBeGreaterThanOrEqual(atLeast);

    const expected = Array.from({ length: landed }, (_, i) => i + 1);
    for (const [index, events] of recorded.entries()) {
      const member = members[index].userId;
      await waitFor(
        () => (versionsIn(events).length >= landed ? true : undefined),
        5000,
        `${member} to get ${landed} state_updated`,
      ).catch(() => undefined); // the comparison below says what is missing
      expect({ member, versions: versionsIn(events) }).toEqual({ member, versions: expected });
    }
  });
});
