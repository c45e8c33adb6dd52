import { TestClient } from './support/test-client.js';
import { startTestServer, type TestServer } from './support/test-server.js';

// The ws client offers permessage-deflate by default; what the server accepts shows in the
// negotiated extensions.
describe('permessage-deflate', () => {
  let server: TestServer | undefined;
  let client: TestClient | undefined;

  afterEach(async () => {
    client?.close();
    await server?.close();
  });

  it('is declined by default', async () => {
    server = await startTestServer();
    client = await TestClient.connect(server.wsUrl, { userId: 'alice' });
    expect(client.socket.extensions).toBe('');
  });

  it('is negotiated with PER_MESSAGE_DEFLATE=true, and messages still flow', async () => {
    server = await startTestServer({ PER_MESSAGE_DEFLATE: 'true' });
    client = await TestClient.connect(server.wsUrl, { userId: 'alice' });
    expect(client.socket.extensions).toContain('permessage-deflate');
    const roomInfo = await client.join('gallery-1');
    expect(roomInfo.roomId).toBe('gallery-1');
  });
});
