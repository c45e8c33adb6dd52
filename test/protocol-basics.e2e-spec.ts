import { useTestServer } from './support/fixtures.js';

describe('connecting and joining', () => {
  const { connect } = useTestServer();

  it('greets a connection with its userId, assigning one when none is given', async () => {
    const alice = await connect('alice');
    expect(alice.userId).toBe('alice');
    const anonymous = await connect();
    expect(anonymous.userId).toMatch(/^user-[0-9a-f-]{36}$/);
  });

  it('creates a room on first join and tells the others who joined', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    const room = await alice.join('gallery-1', { userInfo: { name: 'Alice', role: 'host' } });
    expect(room.users).toEqual([
      expect.objectContaining({ id: 'alice', name: 'Alice', role: 'host', connected: true }),
    ]);
    await bob.join('gallery-1', { userInfo: { name: 'Bob', role: 'editor' } });
    expect(await alice.next('user_joined')).toMatchObject({
      roomId: 'gallery-1',
      user: { id: 'bob', name: 'Bob', role: 'editor' },
    });
  });
});
