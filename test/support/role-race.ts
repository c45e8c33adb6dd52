import { jest } from '@jest/globals';
import { ROOM_STORE, type RoomStore } from '../../src/rooms/room-store.js';
import { UsersService } from '../../src/users/users.service.js';
import { replyOf } from './fixtures.js';
import { delay, withTimeout, type TestClient } from './test-client.js';
import type { TestServer } from './test-server.js';

/*
 * A member's request that passed the role check and has not been written yet, while its role is
 * taken away: the write must be refused (the store checks the actor in the same step as the
 * write), answered with an error carrying the requestId, and leave no trace. Written once, run
 * against one process with the memory store (test/role-race.e2e-spec.ts) and against a cluster
 * (test/cluster/role-race.e2e-spec.ts).
 */

export const RACE_ROOM = 'contested';

/** A call held on its way in: `reached` once it was made, and it goes on after `release`. */
export interface HeldCall {
  reached: Promise<void>;
  release(): void;
}

/**
 * Holds the first call of `target[method]` whose arguments `matches`, until `release`; then it
 * runs as it would have. Other calls go straight through.
 */
export function holdCall(
  target: object,
  method: string,
  matches: (args: unknown[]) => boolean = () => true,
): HeldCall {
  const host = target as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = host[method].bind(target);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let arrived!: () => void;
  const reached = new Promise<void>((resolve) => (arrived = resolve));
  let taken = false;
  jest.spyOn(host, method).mockImplementation(async (...args: unknown[]) => {
    if (!taken && matches(args)) {
      taken = true;
      arrived();
      await gate;
    }
    return original(...args);
  });
  return { reached: withTimeout(reached, 3000, `a call of ${method}`), release };
}

/** The instance `userId` is connected to. */
export function serverOf(servers: TestServer[], userId: string): TestServer {
  const server = servers.find((candidate) => candidate.app.get(UsersService).byUser(userId));
  if (!server) {
    throw new Error(`${userId} is connected to no instance`);
  }
  return server;
}

export function storeOf(server: TestServer): RoomStore {
  return server.app.get<RoomStore>(ROOM_STORE);
}

export interface RaceMembers {
  /** host */
  alice: TestClient;
  /** editor */
  bob: TestClient;
  /** editor */
  carol: TestClient;
}

export interface RoleRaceFixture {
  /** alice (host), bob and carol (editors) in RACE_ROOM, every join event consumed. */
  members(): Promise<RaceMembers>;
  servers(): TestServer[];
  /** Holds the state write of the next update_state made on `server`. */
  holdStateWrite(server: TestServer): HeldCall;
}

const annotation = { op: 'add', collection: 'annotations', id: 'late', item: { text: 'late' } };

/** Declares the race cases, inside the caller's describe. */
export function describeRoleRaces(fixture: RoleRaceFixture): void {
  const storeOfUser = (userId: string) => storeOf(serverOf(fixture.servers(), userId));

  /** Lets what is still travelling arrive, then checks that none of `event` came. */
  const noneCame = async (
    event: 'state_updated' | 'kicked' | 'room_deleted',
    ...clients: TestClient[]
  ) => {
    await delay(300);
    for (const client of clients) {
      await client.expectNothing(0, event);
    }
  };

  const updatesAbout = (client: TestClient, userId: string) =>
    client.received.filter(
      (message) =>
        message.event === 'user_updated' &&
        (message.data as { user: { id: string } }).user.id === userId,
    );

  describe('update_state in flight', () => {
    it('is refused with FORBIDDEN when the host makes the editor viewer meanwhile, and nothing is committed', async () => {
      const { alice, bob, carol } = await fixture.members();
      const held = fixture.holdStateWrite(serverOf(fixture.servers(), 'bob'));
      const requestId = bob.request('update_state', { roomId: RACE_ROOM, ops: [annotation] });
      await held.reached;
      const demote = alice.request('set_role', {
        roomId: RACE_ROOM,
        targetUserId: 'bob',
        role: 'viewer',
      });
      await replyOf(alice, demote, 'user_updated');
      held.release();

      expect(await bob.error(requestId, 5000)).toMatchObject({ code: 'FORBIDDEN', requestId });
      await noneCame('state_updated', alice, bob, carol);
      expect((await storeOfUser('carol').getState(RACE_ROOM)).version).toBe(0);
    });

    it('is refused with NOT_IN_ROOM when the host kicks the editor meanwhile, and nothing is committed', async () => {
      const { alice, bob, carol } = await fixture.members();
      const held = fixture.holdStateWrite(serverOf(fixture.servers(), 'bob'));
      const requestId = bob.request('update_state', { roomId: RACE_ROOM, ops: [annotation] });
      await held.reached;
      const kick = alice.request('kick_user', { roomId: RACE_ROOM, targetUserId: 'bob' });
      await replyOf(alice, kick, 'user_left');
      held.release();

      expect(await bob.error(requestId, 5000)).toMatchObject({ code: 'NOT_IN_ROOM', requestId });
      await noneCame('state_updated', alice, bob, carol);
      expect((await storeOfUser('carol').getState(RACE_ROOM)).version).toBe(0);
    });
  });

  /*
   * A room has one host, so no other member can take the role from a host whose request is in
   * flight: what does is the server (the host's replacing session handing it over, a handover
   * after it left, another instance's sweep). The tests do it through the store, as those do.
   */
  describe("a host's request in flight", () => {
    it('refuses set_role with FORBIDDEN when the host role moved on meanwhile; the target keeps its role', async () => {
      const { alice, bob, carol } = await fixture.members();
      const store = storeOfUser('alice');
      const held = holdCall(store, 'setRole', (args) => args[1] === 'carol');
      const requestId = alice.request('set_role', {
        roomId: RACE_ROOM,
        targetUserId: 'carol',
        role: 'viewer',
      });
      await held.reached;
      await store.setRole(RACE_ROOM, 'bob', 'host');
      held.release();

      expect(await alice.error(requestId, 5000)).toMatchObject({ code: 'FORBIDDEN', requestId });
      await delay(300);
      for (const client of [alice, bob, carol]) {
        expect(updatesAbout(client, 'carol')).toEqual([]);
      }
      expect(await storeOfUser('carol').roleOf(RACE_ROOM, 'carol')).toBe('editor');
    });

    it('refuses kick_user with NOT_IN_ROOM when the host left meanwhile; the target stays', async () => {
      const { alice, bob, carol } = await fixture.members();
      const store = storeOfUser('alice');
      const held = holdCall(store, 'kick');
      const requestId = alice.request('kick_user', { roomId: RACE_ROOM, targetUserId: 'carol' });
      await held.reached;
      expect(await store.leave(RACE_ROOM, 'alice', Date.now())).toMatchObject({
        newHost: { id: 'bob' },
      });
      held.release();

      expect(await alice.error(requestId, 5000)).toMatchObject({ code: 'NOT_IN_ROOM', requestId });
      await noneCame('kicked', carol);
      expect(bob.received.filter((message) => message.event === 'user_left')).toEqual([]);
      expect(await storeOfUser('carol').roleOf(RACE_ROOM, 'carol')).toBe('editor');
    });

    it('refuses delete_room with FORBIDDEN when the host role moved on meanwhile; the room stays', async () => {
      const { alice, bob, carol } = await fixture.members();
      const store = storeOfUser('alice');
      const held = holdCall(store, 'delete');
      const requestId = alice.request('delete_room', { roomId: RACE_ROOM });
      await held.reached;
      await store.setRole(RACE_ROOM, 'bob', 'host');
      held.release();

      expect(await alice.error(requestId, 5000)).toMatchObject({ code: 'FORBIDDEN', requestId });
      await noneCame('room_deleted', alice, bob, carol);
      expect(await storeOfUser('carol').roleOf(RACE_ROOM, 'bob')).toBe('host');
    });
  });
}

/** Joins alice, bob and carol to RACE_ROOM in that order and consumes every user_joined. */
export async function joinRaceRoom(alice: TestClient, bob: TestClient, carol: TestClient) {
  await alice.join(RACE_ROOM);
  await bob.join(RACE_ROOM);
  await carol.join(RACE_ROOM);
  await alice.next('user_joined', 3000);
  await alice.next('user_joined', 3000);
  await bob.next('user_joined', 3000);
  return { alice, bob, carol };
}
