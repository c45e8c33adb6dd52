import type { Redis } from 'ioredis';
import { CLUSTER, type Cluster } from '../../src/cluster/cluster.js';
import { ROOM_STORE_REDIS_OPTIONS } from '../../src/cluster/redis-client-options.js';
import { roomChannel } from '../../src/cluster/room-envelope.js';
import { recordEvents, useTestCluster, waitFor, type RecordedEvent } from '../support/cluster.js';
import { delay } from '../support/test-client.js';
import type { TestServer } from '../support/test-server.js';

const ROOM = 'outcome';

/** How long a reply may take when the store's commit command times out first. */
const PAST_COMMAND_TIMEOUT_MS = ROOM_STORE_REDIS_OPTIONS.commandTimeout + 2500;

/** The frames in `events` that answer `requestId`. */
const framesFor = (events: RecordedEvent[], requestId: string) =>
  events.filter((event) => event.data.requestId === requestId);

/**
 * The issue 10 fault: a state commit whose store answer timed out (the request answered with
 * UNAVAILABLE) must not also answer it with its `state_updated` echo, whichever comes first.
 * The commit's answer is held back as by a network gone silent: the instance's command
 * connection stops reading right after it sent the commit script, so Redis commits and publishes
 * while ioredis's commandTimeout runs out.
 */
describe('cluster: one outcome per state change request whose store answer is lost', () => {
  const fixture = useTestCluster({ instances: 2 });

  const clusterOf = (server: TestServer): Cluster => server.app.get<Cluster>(CLUSTER);

  /**
   * Stops reading the command connection's answers once it sent the commit script for ROOM (its
   * arguments name the room's channel), until that command timed out: its answer comes late.
   * `held` says whether it happened; `release` undoes it all (for the cleanup).
   */
  const holdCommitAnswer = (cluster: Cluster) => {
    const connection: Redis = cluster.publisher;
    const channel = roomChannel(cluster.keyPrefix, ROOM);
    const original = connection.sendCommand.bind(connection);
    const release = () => {
      connection.sendCommand = original;
      connection.stream.resume();
    };
    let held = false;
    connection.sendCommand = (...args: Parameters<Redis['sendCommand']>) => {
      const sent = original(...args);
      const [command] = args;
      const isCommit = command.args.some((arg) => String(arg) === channel);
      if (!held && isCommit && command.name.startsWith('eval')) {
        held = true;
        connection.stream.pause();
        command.promise.then(release, release);
      }
      return sent;
    };
    return {
      get held() {
        return held;
      },
      release,
    };
  };

  const setUp = async () => {
    const alice = await fixture.connect(0, 'alice');
    const bob = await fixture.connect(1, 'bob');
    await alice.join(ROOM);
    await bob.join(ROOM);
    await alice.next('user_joined');
    return { alice, bob, aliceEvents: recordEvents(alice), bobEvents: recordEvents(bob) };
  };

  const update = { roomId: ROOM, baseVersion: 0, patch: { sceneUrl: 'https://example.com/a' } };

  it('echo first: the actor gets its state_updated reply and no error after it', async () => {
    const { alice, aliceEvents, bobEvents } = await setUp();
    const hold = holdCommitAnswer(clusterOf(fixture.servers[0]));
    try {
      const requestId = alice.request('update_state', update);
      // Handled after update_state (one request at a time): once the store's answer timed out.
      const after = alice.request('get_state', { roomId: ROOM });
      const state = await alice.reply(after, PAST_COMMAND_TIMEOUT_MS);
      expect(hold.held).toBe(true);
      expect(state).toMatchObject({ event: 'state', data: { version: 1 } });
      await delay(200);

      expect(framesFor(aliceEvents, requestId)).toEqual([
        {
          event: 'state_updated',
          data: expect.objectContaining({ requestId, version: 1, updatedBy: 'alice' }) as unknown,
        },
      ]);
      expect(bobEvents.filter((e) => e.event === 'state_updated')).toHaveLength(1);
    } finally {
      hold.release();
    }
  }, 15_000);

  it('error first: the actor gets UNAVAILABLE, then the change as a room event without requestId', async () => {
    const { alice, aliceEvents, bobEvents } = await setUp();
    const cluster = clusterOf(fixture.servers[0]);
    const hold = holdCommitAnswer(cluster);
    // The echo reaches alice's instance only after the error went out.
    cluster.subscriber.stream.pause();
    try {
      const requestId = alice.request('update_state', update);
      const error = await alice.error(requestId, PAST_COMMAND_TIMEOUT_MS);
      expect(hold.held).toBe(true);
      expect(error.code).toBe('UNAVAILABLE');
      // The commit happened: bob, on the other instance, has it already.
      await waitFor(
        () => (bobEvents.some((e) => e.event === 'state_updated') ? true : undefined),
        2000,
        'state_updated at bob',
      );

      cluster.subscriber.stream.resume();
      const updates = () => aliceEvents.filter((e) => e.event === 'state_updated');
      await waitFor(
        () => (updates().length > 0 ? true : undefined),
        2000,
        'state_updated at alice',
      );
      await delay(200);

      expect(framesFor(aliceEvents, requestId)).toEqual([
        { event: 'error', data: expect.objectContaining({ code: 'UNAVAILABLE' }) as unknown },
      ]);
      expect(updates()).toHaveLength(1);
      expect(updates()[0].data).toEqual({
        roomId: ROOM,
        version: 1,
        patch: update.patch,
        updatedBy: 'alice',
      });
    } finally {
      hold.release();
      cluster.subscriber.stream.resume();
    }
  }, 15_000);
});
