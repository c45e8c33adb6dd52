import { fakeClientLink } from '../../test/support/fake-client-link.js';
import { Connection } from './connection.js';
import { LocalMembership, type BufferedEvent } from './local-membership.js';

const connection = (userId: string) => new Connection(userId, {}, fakeClientLink());

const frameOf = (message: unknown) => {
  const json = JSON.stringify(message);
  return { json, bytes: Buffer.from(json), throwaway: false };
};

const event = (name: string, data: unknown): BufferedEvent => ({
  event: name,
  data,
  frame: frameOf({ event: name, data }),
});

describe('LocalMembership', () => {
  let membership: LocalMembership;

  beforeEach(() => {
    membership = new LocalMembership();
  });

  describe('pending joins', () => {
    it('registers a join as pending, not yet a member', () => {
      const alice = connection('alice');
      membership.beginJoin(alice, 'r');
      expect([...(membership.pending('r')?.keys() ?? [])]).toEqual([alice]);
      expect(membership.members('r')?.has(alice)).toBe(false);
      expect(membership.isMember(alice, 'r')).toBe(false);
      expect(alice.rooms.has('r')).toBe(false);
      expect(membership.roomCount()).toBe(1);
    });

    it('keeps a join pending while another join of the same connection gives up', () => {
      const alice = connection('alice');
      const unused: string[] = [];
      membership.onRoomUnused = (roomId) => unused.push(roomId);
      membership.beginJoin(alice, 'r'); // the session takeover's join
      membership.beginJoin(alice, 'r'); // the client's join_room, at the same time
      const held = event('user_updated', { user: { id: 'bob' } });
      membership.pending('r')?.get(alice)?.push(held);
      membership.abortJoin(alice, 'r'); // the takeover leaves the held seat alone
      expect(unused).toEqual([]);
      expect(membership.completeJoin(alice, 'r')).toEqual([held]);
      expect(membership.members('r')?.has(alice)).toBe(true);
    });

    it('buffers events for a pending joiner and hands them back in order on completion', () => {
      const alice = connection('alice');
      membership.beginJoin(alice, 'r');
      const first = event('state_updated', { version: 1 });
      const second = event('user_joined', { user: { id: 'bob' } });
      membership.pending('r')?.get(alice)?.push(first, second);

      expect(membership.completeJoin(alice, 'r')).toEqual([first, second]);
      expect(membership.pending('r')).toBeUndefined();
      expect(membership.members('r')?.has(alice)).toBe(true);
      expect(membership.isMember(alice, 'r')).toBe(true);
      expect(alice.rooms.has('r')).toBe(true);
    });

    it('keeps each pending joiner its own buffer', () => {
      const alice = connection('alice');
      const bob = connection('bob');
      membership.beginJoin(alice, 'r');
      membership.beginJoin(bob, 'r');
      membership.pending('r')?.get(alice)?.push(event('a', 1));
      expect(membership.completeJoin(bob, 'r')).toEqual([]);
      expect(membership.pending('r')?.has(alice)).toBe(true);
      expect(membership.completeJoin(alice, 'r')).toEqual([event('a', 1)]);
    });

    it('answers undefined for pending when no join is in flight', () => {
      const alice = connection('alice');
      expect(membership.pending('r')).toBeUndefined();
      membership.beginJoin(alice, 'r');
      membership.completeJoin(alice, 'r');
      expect(membership.pending('r')).toBeUndefined();
    });

    it('does not make a member pending again when it joins again', () => {
      const alice = connection('alice');
      membership.beginJoin(alice, 'r');
      membership.completeJoin(alice, 'r');
      membership.beginJoin(alice, 'r');
      expect(membership.pending('r')).toBeUndefined();
      expect(membership.completeJoin(alice, 'r')).toEqual([]);
      expect([...(membership.members('r') ?? [])]).toEqual([alice]);
    });

    it('completes a join that was never begun', () => {
      const alice = connection('alice');
      expect(membership.completeJoin(alice, 'r')).toEqual([]);
      expect(membership.isMember(alice, 'r')).toBe(true);
    });

    it('forgets an aborted join and the room entry it made', () => {
      const alice = connection('alice');
      membership.beginJoin(alice, 'r');
      membership.pending('r')?.get(alice)?.push(event('a', 1));
      membership.abortJoin(alice, 'r');
      expect(membership.pending('r')).toBeUndefined();
      expect(membership.members('r')).toBeUndefined();
      expect(alice.rooms.has('r')).toBe(false);
      expect(membership.roomCount()).toBe(0);
    });

    it('keeps the other members when a join is aborted', () => {
      const alice = connection('alice');
      const bob = connection('bob');
      membership.beginJoin(alice, 'r');
      membership.completeJoin(alice, 'r');
      membership.beginJoin(bob, 'r');
      membership.abortJoin(bob, 'r');
      expect([...(membership.members('r') ?? [])]).toEqual([alice]);
      expect(membership.pending('r')).toBeUndefined();
    });

    it('ignores an abort for a room it does not know', () => {
      const alice = connection('alice');
      membership.abortJoin(alice, 'r');
      expect(membership.roomCount()).toBe(0);
    });
  });

  describe('remove', () => {
    it('removes a member, reports it and drops the empty room', () => {
      const alice = connection('alice');
      membership.completeJoin(alice, 'r');
      expect(membership.remove(alice, 'r')).toBe(true);
      expect(alice.rooms.has('r')).toBe(false);
      expect(membership.members('r')).toBeUndefined();
      expect(membership.roomCount()).toBe(0);
    });

    it('keeps the room while others remain', () => {
      const alice = connection('alice');
      const bob = connection('bob');
      membership.completeJoin(alice, 'r');
      membership.completeJoin(bob, 'r');
      membership.remove(alice, 'r');
      expect([...(membership.members('r') ?? [])]).toEqual([bob]);
    });

    it('answers false for a connection that was not a member', () => {
      const alice = connection('alice');
      const bob = connection('bob');
      membership.completeJoin(alice, 'r');
      expect(membership.remove(bob, 'r')).toBe(false);
      expect(membership.remove(bob, 'other')).toBe(false);
    });

    it('cancels a pending join of the removed connection', () => {
      const alice = connection('alice');
      membership.beginJoin(alice, 'r');
      expect(membership.remove(alice, 'r')).toBe(false);
      expect(membership.pending('r')).toBeUndefined();
      expect(membership.roomCount()).toBe(0);
    });
  });

  describe('removeRoom', () => {
    it('drops every member and pending joiner and returns them', () => {
      const alice = connection('alice');
      const bob = connection('bob');
      const carol = connection('carol');
      membership.completeJoin(alice, 'r');
      membership.completeJoin(bob, 'r');
      membership.completeJoin(alice, 'other');
      membership.beginJoin(carol, 'r');

      expect(membership.removeRoom('r')).toEqual([alice, bob, carol]);
      expect(membership.members('r')).toBeUndefined();
      expect(membership.pending('r')).toBeUndefined();
      expect(alice.rooms.has('r')).toBe(false);
      expect(bob.rooms.size).toBe(0);
      expect(alice.rooms.has('other')).toBe(true);
      expect(membership.members('other')?.has(alice)).toBe(true);
      expect(membership.roomCount()).toBe(1);
    });

    it('returns nothing for a room it does not know', () => {
      expect(membership.removeRoom('missing')).toEqual([]);
    });
  });

  describe('transfer', () => {
    it('moves every room of the old connection to the new one', () => {
      const old = connection('alice');
      const bob = connection('bob');
      membership.completeJoin(old, 'r1');
      membership.completeJoin(old, 'r2');
      membership.completeJoin(bob, 'r1');
      const replacement = connection('alice');

      membership.transfer(old, replacement);

      expect([...replacement.rooms].sort()).toEqual(['r1', 'r2']);
      expect(old.rooms.size).toBe(0);
      expect(membership.members('r1')?.has(old)).toBe(false);
      expect(membership.members('r1')?.has(replacement)).toBe(true);
      expect(membership.members('r1')?.has(bob)).toBe(true);
      expect([...(membership.members('r2') ?? [])]).toEqual([replacement]);
      expect(membership.isMember(replacement, 'r2')).toBe(true);
    });

    it('moves nothing when the old connection was in no room', () => {
      const old = connection('alice');
      const replacement = connection('alice');
      membership.transfer(old, replacement);
      expect(replacement.rooms.size).toBe(0);
      expect(membership.roomCount()).toBe(0);
    });
  });

  describe('state versions', () => {
    it('admits only versions newer than the join snapshot, each once', () => {
      const alice = connection('alice');
      membership.beginJoin(alice, 'r');
      membership.completeJoin(alice, 'r', 4);
      expect(membership.admitsStateVersion(alice, 'r', 3)).toBe(false);
      expect(membership.admitsStateVersion(alice, 'r', 4)).toBe(false);
      expect(membership.admitsStateVersion(alice, 'r', 5)).toBe(true);
      expect(membership.admitsStateVersion(alice, 'r', 5)).toBe(false);
      expect(membership.admitsStateVersion(alice, 'r', 6)).toBe(true);
    });

    it('starts afresh after leaving the room, and moves with a replaced session', () => {
      const alice = connection('alice');
      membership.completeJoin(alice, 'r', 9);
      const replacement = connection('alice');
      membership.transfer(alice, replacement);
      expect(membership.admitsStateVersion(replacement, 'r', 9)).toBe(false);
      membership.remove(replacement, 'r');
      membership.completeJoin(replacement, 'r');
      expect(membership.admitsStateVersion(replacement, 'r', 1)).toBe(true);
    });
  });
});
