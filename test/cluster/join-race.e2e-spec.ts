import { statsRooms, useTestCluster } from '../support/cluster.js';
import type { TestClient } from '../support/test-client.js';

const INSTANCES = 3;

/** Each client's one reply to its request, all awaited together. */
async function replies(
  requests: Array<[TestClient, string]>,
  timeoutMs = 10_000,
): Promise<Array<{ event: string; data: Record<string, unknown> }>> {
  return Promise.all(
    requests.map(async ([client, requestId]) => {
      const reply = await client.reply(requestId, timeoutMs);
      return reply as unknown as { event: string; data: Record<string, unknown> };
    }),
  );
}

const codesOf = (outcomes: Array<{ event: string; data: Record<string, unknown> }>) =>
  outcomes.filter((outcome) => outcome.event === 'error').map((outcome) => outcome.data.code);

describe('cluster: limits hold under joins and creations racing from three instances', () => {
  describe('maxUsers', () => {
    const fixture = useTestCluster({ instances: INSTANCES });

    it('admits exactly config.maxUsers of 100 racing joins; the others get ROOM_FULL', async () => {
      const creator = await fixture.connect(0, 'creator');
      const created = await creator.reply(
        creator.request('create_room', { roomId: 'race', config: { maxUsers: 10 } }),
      );
      expect(created).toMatchObject({ event: 'room_created', data: { roomId: 'race' } });

      const users = await Promise.all(
        Array.from({ length: 100 }, (_, i) => fixture.connect(i % INSTANCES, `user-${i}`)),
      );
      const outcomes = await replies(
        users.map((user) => [user, user.request('join_room', { roomId: 'race' })]),
      );

      const joined = outcomes.filter((outcome) => outcome.event === 'room_joined');
      expect({ joined: joined.length, errors: codesOf(outcomes) }).toEqual({
        joined: 10,
        errors: Array(90).fill('ROOM_FULL'),
      });
      // Admitted one after the other: each saw the ones before it, exactly one became host.
      const rosters = joined.map(
        (outcome) =>
          (outcome.data.roomInfo as { users: Array<{ id: string; role: string }> }).users,
      );
      expect(rosters.map((users) => users.length).sort((a, b) => a - b)).toEqual([
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
      ]);
      const full = rosters.find((users) => users.length === 10)!;
      expect(full.filter((user) => user.role === 'host')).toHaveLength(1);
      for (const instance of fixture.servers) {
        expect(await statsRooms(instance.httpUrl)).toEqual([
          expect.objectContaining({ roomId: 'race', userCount: 10 }),
        ]);
      }
    });
  });

  describe('MAX_ROOMS', () => {
    const fixture = useTestCluster({ instances: INSTANCES, env: { MAX_ROOMS: '5' } });

    it('lets exactly MAX_ROOMS of 30 racing create_room succeed; the others get ROOM_LIMIT', async () => {
      const creators = await Promise.all(
        Array.from({ length: 30 }, (_, i) => fixture.connect(i % INSTANCES, `creator-${i}`)),
      );
      const outcomes = await replies(
        creators.map((creator, i) => [
          creator,
          creator.request('create_room', { roomId: `room-${i}` }),
        ]),
      );

      const created = outcomes.filter((outcome) => outcome.event === 'room_created');
      expect({ created: created.length, errors: codesOf(outcomes) }).toEqual({
        created: 5,
        errors: Array(25).fill('ROOM_LIMIT'),
      });
      const createdIds = created.map((outcome) => outcome.data.roomId as string).sort();
      for (const instance of fixture.servers) {
        const rooms = await statsRooms(instance.httpUrl);
        expect(rooms.map((room) => room.roomId).sort()).toEqual(createdIds);
      }
    });

    it('counts rooms created by join_room against MAX_ROOMS too, across instances', async () => {
      const joiners = await Promise.all(
        Array.from({ length: 30 }, (_, i) => fixture.connect(i % INSTANCES, `joiner-${i}`)),
      );
      const outcomes = await replies(
        joiners.map((joiner, i) => [
          joiner,
          i % 2 === 0
            ? joiner.request('join_room', { roomId: `room-${i}` })
            : joiner.request('create_room', { roomId: `room-${i}` }),
        ]),
      );
      const succeeded = outcomes.filter((outcome) => outcome.event !== 'error');
      expect({ succeeded: succeeded.length, errors: codesOf(outcomes) }).toEqual({
        succeeded: 5,
        errors: Array(25).fill('ROOM_LIMIT'),
      });
      expect(await statsRooms(fixture.servers[2].httpUrl)).toHaveLength(5);
    });
  });
});
