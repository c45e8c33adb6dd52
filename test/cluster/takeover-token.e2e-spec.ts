import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { connectRedis, useTestCluster, waitFor } from '../support/cluster.js';
import { TestClient } from '../support/test-client.js';

// Long enough that no grace ends during a test: a token must stop working because it was
// replaced, not because its time ran out.
const GRACE_MS = 10_000;
const ROOM = 'gallery';

describe('cluster: the resume token of a socket replaced without ?resume=', () => {
  const fixture = useTestCluster({
    instances: 2,
    env: { RECONNECT_GRACE_MS: String(GRACE_MS) },
  });
  let redis: Redis | undefined;
  /** Upgrades without a userId (TestCluster's clients always name one); closed after each test. */
  const strangers: TestClient[] = [];

  afterEach(() => {
    strangers.splice(0).forEach((client) => client.close());
    redis?.disconnect();
    redis = undefined;
  });

  /** Where RedisHeldSessions keeps a token's session: a hash, never the token itself. */
  const keyOf = (token: string) =>
    `${fixture.cluster.keyPrefix}resume:${createHash('sha256').update(token).digest('hex')}`;

  /** The key's PTTL once it is gone (-2), or its PTTL still after `timeoutMs`. */
  const pttlOnceGone = async (key: string, timeoutMs = 2000): Promise<number> => {
    const deadline = Date.now() + timeoutMs;
    let pttl = await redis!.pttl(key);
    while (pttl !== -2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      pttl = await redis!.pttl(key);
    }
    return pttl;
  };

  /** An upgrade with `?resume=<token>` and no userId of its own. */
  const stranger = async (instance: number, token: string): Promise<TestClient> => {
    const client = await TestClient.connect(fixture.servers[instance].wsUrl, { resume: token });
    strangers.push(client);
    return client;
  };

  // Same instance: the reference, the behavior a takeover across instances must match.
  it.each([
    ['on another instance', 1],
    ['on the same instance', 0],
  ])(
    'retires the replaced socket’s token when the user connects again %s',
    async (_where, instance) => {
      redis = await connectRedis(fixture.cluster.redisUrl);
      const alice = await fixture.connect(0, 'alice');
      await alice.join(ROOM);
      const bob = await fixture.connect(0, 'bob');
      await bob.join(ROOM);
      const oldToken = bob.connected?.resumeToken as string;
      // Registered while open (asynchronously), so that it survives the death of its instance.
      await waitFor(
        async () => ((await redis!.exists(keyOf(oldToken))) === 1 ? true : undefined),
        2000,
        'the open connection’s token in Redis',
      );

      // Back without ?resume=: a plain reconnect, its rooms move to the new socket.
      const bob2 = await fixture.connect(instance, 'bob');
      expect(await bob.waitForClose(3000)).toEqual({ code: 4000, reason: 'Session replaced' });
      expect(bob2.connected?.resumeToken).not.toBe(oldToken);

      // The replaced token's session is gone from Redis, not left for its 24 h.
      expect(await pttlOnceGone(keyOf(oldToken))).toBe(-2);
      // And it is refused as any retired token: no session behind it, on either instance.
      for (const where of [1, 0]) {
        const late = await stranger(where, oldToken);
        expect(late.connected).toMatchObject({ resumed: false });
        expect(late.userId).not.toBe('bob');
      }
      // Still bob's session: nothing closed it, and its request is answered.
      const state = bob2.request('get_state', { roomId: ROOM });
      expect((await bob2.reply(state, 3000)).event).toBe('state');
      expect(bob2.closeCode).toBeUndefined();
    },
    20_000,
  );
});
