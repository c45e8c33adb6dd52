// JWT_ROOMS_REQUIRED=true: every way into a room (join_room, create_room, a `resume` that joins
// a room again) is allowed only for the rooms the token's `rooms` claim lists.
import { SignJWT, type JWTPayload } from 'jose';
import type { ResumedRoom } from '../src/protocol/protocol.js';
import { replyOf, useTestServer } from './support/fixtures.js';

const SECRET = 'e2e-jwt-secret-of-at-least-32-characters';
const ROOMS_REQUIRED = {
  AUTH_MODE: 'jwt',
  JWT_SECRET: SECRET,
  JWT_ROOMS_REQUIRED: 'true',
  RECONNECT_GRACE_MS: '30000',
};

function sign(claims: JWTPayload): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .sign(new TextEncoder().encode(SECRET));
}

interface Resumed {
  rooms: ResumedRoom[];
  lost: string[];
}

describe('JWT_ROOMS_REQUIRED=true', () => {
  const fixture = useTestServer({ env: ROOMS_REQUIRED, lazy: true });

  const connectAs = async (claims: JWTPayload) =>
    fixture.connect(undefined, { headers: { authorization: `Bearer ${await sign(claims)}` } });

  describe('resume', () => {
    it('does not join a room the token does not list: it is lost', async () => {
      const bob = await connectAs({ sub: 'bob', rooms: { secret: 'host' } });
      await bob.join('secret');
      const eve = await connectAs({ sub: 'eve', rooms: { lobby: 'viewer' } });
      const refused = eve.request('join_room', { roomId: 'secret' });
      expect((await eve.error(refused)).code).toBe('FORBIDDEN');

      const resumeId = eve.request('resume', { rooms: [{ roomId: 'secret' }] });
      expect(await replyOf<Resumed>(eve, resumeId, 'resumed')).toMatchObject({
        rooms: [],
        lost: ['secret'],
      });
      const state = eve.request('get_state', { roomId: 'secret' });
      expect((await eve.error(state)).code).toBe('NOT_IN_ROOM');
      await bob.expectNothing(100, 'user_joined');
    });

    it('joins a listed room again with the name and role cap of the token', async () => {
      const bob = await connectAs({ sub: 'bob', rooms: { lobby: 'host' } });
      await bob.join('lobby');
      const eve = await connectAs({ sub: 'eve', name: 'Eve E.', rooms: { lobby: 'viewer' } });
      const resumeId = eve.request('resume', {
        rooms: [{ roomId: 'lobby' }, { roomId: 'secret' }],
      });
      const resumed = await replyOf<Resumed>(eve, resumeId, 'resumed');
      expect(resumed.lost).toEqual(['secret']);
      expect(resumed.rooms).toEqual([expect.objectContaining({ roomId: 'lobby' })]);
      // As a join_room would: the token's name, and its role cap on the room's default role.
      expect(await bob.next('user_joined')).toMatchObject({
        user: { id: 'eve', name: 'Eve E.', role: 'viewer' },
      });
    });
  });

  describe('create_room', () => {
    it('refuses a room the token does not list, as join_room does', async () => {
      const mallory = await connectAs({ sub: 'mallory', rooms: { lobby: 'viewer' } });
      const squat = mallory.request('create_room', {
        roomId: 'vault',
        config: { password: 'squat', persistent: true },
      });
      expect(await mallory.error(squat)).toMatchObject({
        code: 'FORBIDDEN',
        message: 'Your token does not list room vault',
      });
      const owner = await connectAs({ sub: 'owner', rooms: { vault: 'host' } });
      expect((await owner.join('vault')).users).toEqual([
        expect.objectContaining({ id: 'owner', role: 'host' }),
      ]);
    });

    it('creates a listed room, and refuses one with a generated id', async () => {
      const owner = await connectAs({ sub: 'owner', rooms: { vault: 'host' } });
      const created = owner.request('create_room', { roomId: 'vault' });
      expect(await replyOf(owner, created, 'room_created')).toMatchObject({ roomId: 'vault' });
      const generated = owner.request('create_room', {});
      expect(await owner.error(generated)).toMatchObject({ code: 'FORBIDDEN' });
    });
  });
});
