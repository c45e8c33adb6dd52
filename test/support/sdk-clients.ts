// The client SDK (client/) in end-to-end tests: its clients on `ws`'s WebSocket against the
// fixture's servers, closed after each test, with every socket kept so a test can cut one.
import WebSocket from 'ws';
import { GalleryClient, type GalleryClientOptions } from '../../client/src/index.js';
import type { ServerFixture } from './fixtures.js';
import { withTimeout } from './test-client.js';

/** `ws`'s WebSocket (Node 20 has no global one), keeping every socket so a test can cut one. */
export class RecordingWebSocket extends WebSocket {
  static sockets: RecordingWebSocket[] = [];

  constructor(url: string, protocols?: string[]) {
    super(url, protocols);
    RecordingWebSocket.sockets.push(this);
  }
}

interface Emitting<M> {
  on<K extends keyof M>(event: K, handler: (payload: M[K]) => void): () => void;
}

/** The next `event` of a room or client that satisfies `accept`, within 3 s. */
export function nextEvent<M, K extends keyof M>(
  source: Emitting<M>,
  event: K,
  what: string,
  accept: (payload: M[K]) => boolean = () => true,
): Promise<M[K]> {
  let off = (): void => undefined;
  const arrived = new Promise<M[K]>((resolve) => {
    off = source.on(event, (payload) => {
      if (accept(payload)) {
        off();
        resolve(payload);
      }
    });
  });
  return withTimeout(arrived, 3000, what);
}

/**
 * A `connect(userId, index, options)` that opens a connected SDK client on the fixture's server
 * `index` (modulo how many it runs), and closes every client it opened after each test.
 */
export function useSdkClients(fixture: ServerFixture) {
  const clients: GalleryClient[] = [];

  afterEach(() => {
    clients.splice(0).forEach((client) => client.close());
    RecordingWebSocket.sockets = [];
  });

  return async (userId: string, index: number, options: Partial<GalleryClientOptions> = {}) => {
    const servers = fixture.servers;
    const client = new GalleryClient({
      url: servers[index % servers.length].wsUrl,
      userId,
      WebSocket: RecordingWebSocket,
      ...options,
    });
    clients.push(client);
    await client.connect();
    return client;
  };
}
