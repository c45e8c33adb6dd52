import { useTestServer } from './support/fixtures.js';

// The ws client offers permessage-deflate by default; what the server accepts shows in the
// negotiated extensions.
describe('permessage-deflate', () => {
  const { start, connect } = useTestServer({ lazy: true });

  it('is declined by default', async () => {
    await start();
    const client = await connect('alice');
    expect(client.socket.extensions).toBe('');
  });

  it('is negotiated with PER_MESSAGE_DEFLATE=true, and messages still flow', async () => {
    await start({ PER_MESSAGE_DEFLATE: 'true' });
    const client = await connect('alice');
    expect(client.socket.extensions).toContain('permessage-deflate');
    const roomInfo = await client.join('gallery-1');
    expect(roomInfo.roomId).toBe('gallery-1');
  });
});
