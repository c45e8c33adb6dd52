import { replyOf, useTestServer } from './support/fixtures.js';
import type { TestClient } from './support/test-client.js';

/*
 * Room quotas for clients without a verified identity: their rooms count against their address
 * (MAX_ROOMS_PER_IP). Every test client connects from 127.0.0.1, so they all share one quota; in
 * the cluster project they sit on different instances, which share it through Redis.
 */
describe('room quotas', () => {
  // Rooms created but never joined are swept once empty for EMPTY_ROOM_TTL_MS (a sweep every
  // 250 ms per instance): with 0 the sweep would free their slots mid-test. Only the test about
  // a joined room expiring wants 0; the others keep every room for the whole test.
  const QUOTA = { MAX_ROOMS_PER_IP: '2' };
  const fixture = useTestServer({ lazy: true, env: { ...QUOTA, EMPTY_ROOM_TTL_MS: '60000' } });
  const { connect } = fixture;

  const created = (client: TestClient, roomId: string) =>
    replyOf(client, client.request('create_room', { roomId }), 'room_created');

  /** A quota refusal as the protocol promises it: code, message, and the request's id. */
  const quotaError = (requestId: string) => ({
    code: 'ROOM_QUOTA',
    message: 'You already have 2 rooms; at most 2',
    requestId,
  });

  it('refuses a third room from one address with ROOM_QUOTA, whichever client asks', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    await created(alice, 'one');
    await created(bob, 'two');

    const third = alice.request('create_room', { roomId: 'three' });
    expect(await alice.error(third)).toMatchObject(quotaError(third));
    const generated = bob.request('create_room', {});
    expect(await bob.error(generated)).toMatchObject(quotaError(generated));
    await alice.expectNothing(100);

    // the rooms that exist can still be joined
    expect((await bob.join('one')).roomId).toBe('one');
  });

  it('frees a slot when one of the rooms is deleted', async () => {
    const alice = await connect('alice');
    await created(alice, 'one');
    await created(alice, 'two');
    await alice.join('one');
    await replyOf(alice, alice.request('delete_room', { roomId: 'one' }), 'room_deleted');

    expect(await created(alice, 'three')).toMatchObject({ roomId: 'three' });
    const fourth = alice.request('create_room', { roomId: 'four' });
    expect(await alice.error(fourth)).toMatchObject(quotaError(fourth));
  });

  it('counts a room created by a join, and frees its slot when it expires', async () => {
    // No room here is ever empty but auto-2, which the test empties on purpose.
    await fixture.start({ ...QUOTA, EMPTY_ROOM_TTL_MS: '0' });
    const alice = await connect('alice');
    const bob = await connect('bob');
    await alice.join('auto-1');
    await alice.join('auto-2');

    const third = bob.request('join_room', { roomId: 'auto-3' });
    expect(await bob.error(third)).toMatchObject(quotaError(third));
    const create = bob.request('create_room', { roomId: 'made' });
    expect(await bob.error(create)).toMatchObject(quotaError(create));

    // joining a room that exists takes no slot
    expect((await bob.join('auto-1')).roomId).toBe('auto-1');

    // auto-2 empties and expires at once (EMPTY_ROOM_TTL_MS=0): its slot is free again
    await replyOf(alice, alice.request('leave_room', { roomId: 'auto-2' }), 'room_left');
    expect((await bob.join('auto-3')).roomId).toBe('auto-3');
  });
});
