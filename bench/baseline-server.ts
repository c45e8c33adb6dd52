// The BASELINE: the least a fan-out server must do for our protocol, written plainly with `ws`.
// Every figure of our server is reported as a ratio to this one, so it is fixed, not tuned down:
// one JSON.stringify per event, one frame shared by all recipients, one corked write per socket
// per event-loop turn, and no validation. With POSE_TICK_MS (bench --tick-ms) it keeps each
// sender's newest pose and relays it once per tick, like ours. Run as its own process so that
// its CPU and RSS are read from /proc exactly like our server's.
import { createServer, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { sharedTextFrame } from './shared-frame.js';

interface Client {
  readonly userId: string;
  readonly socket: Socket;
  readonly rooms: Set<string>;
  /** Frames due to this client in the current event-loop turn. */
  pending: Buffer[];
}

const rooms = new Map<string, Set<Client>>();
let dirty: Client[] = [];
let flushScheduled = false;
let anonymousUsers = 0;

function queueFrame(client: Client, frame: Buffer): void {
  if (client.pending.length === 0) {
    dirty.push(client);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushAll);
    }
  }
  client.pending.push(frame);
}

function send(client: Client, event: unknown): void {
  queueFrame(client, sharedTextFrame(JSON.stringify(event)));
}

/** Once per event-loop turn: each client with due frames gets one corked write. */
function flushAll(): void {
  const due = dirty;
  dirty = [];
  flushScheduled = false;
  for (const client of due) {
    const frames = client.pending;
    client.pending = [];
    if (client.socket.destroyed || !client.socket.writable) {
      continue;
    }
    client.socket.cork();
    for (const frame of frames) {
      client.socket.write(frame);
    }
    client.socket.uncork();
  }
}

interface ClientRequest {
  action?: unknown;
  roomId?: unknown;
  requestId?: unknown;
  message?: unknown;
}

function onRequest(client: Client, request: ClientRequest): void {
  if (typeof request.roomId !== 'string') {
    return;
  }
  if (request.action === 'join_room') {
    join(client, request.roomId, request.requestId);
  } else if (request.action === 'broadcast') {
    broadcast(client, request.roomId, request.message);
  }
}

function join(client: Client, roomId: string, requestId: unknown): void {
  let members = rooms.get(roomId);
  if (!members) {
    members = new Set();
    rooms.set(roomId, members);
  }
  members.add(client);
  client.rooms.add(roomId);
  send(client, {
    event: 'room_joined',
    data: { requestId, roomInfo: { roomId, users: [], state: {}, createdAt: 0 } },
  });
}

/** POSE_TICK_MS > 0: each sender's newest pose per room, sent once per tick (as ours does). */
const tickMs = Number(process.env.POSE_TICK_MS ?? 0);
let heldPoses = new Map<string, Map<Client, unknown>>();

function hold(sender: Client, roomId: string, message: unknown): void {
  let held = heldPoses.get(roomId);
  if (!held) {
    held = new Map();
    heldPoses.set(roomId, held);
  }
  held.set(sender, message);
}

function tick(): void {
  const due = heldPoses;
  heldPoses = new Map();
  for (const [roomId, held] of due) {
    for (const [sender, message] of held) {
      if (sender.rooms.has(roomId)) {
        relay(sender, roomId, message);
      }
    }
  }
}

if (tickMs > 0) {
  setInterval(tick, tickMs);
}

function broadcast(sender: Client, roomId: string, message: unknown): void {
  if (tickMs > 0) {
    hold(sender, roomId, message);
    return;
  }
  relay(sender, roomId, message);
}

function relay(sender: Client, roomId: string, message: unknown): void {
  const members = rooms.get(roomId);
  if (!members) {
    return;
  }
  const frame = sharedTextFrame(
    JSON.stringify({ event: 'message', data: { roomId, message, senderId: sender.userId } }),
  );
  for (const member of members) {
    if (member !== sender) {
      queueFrame(member, frame);
    }
  }
}

function leaveAll(client: Client): void {
  for (const roomId of client.rooms) {
    const members = rooms.get(roomId);
    members?.delete(client);
    if (members?.size === 0) {
      rooms.delete(roomId);
    }
  }
  client.rooms.clear();
}

function onConnection(ws: WebSocket, request: IncomingMessage): void {
  const userId =
    new URL(request.url ?? '/', 'http://localhost').searchParams.get('userId') ||
    `user-${++anonymousUsers}`;
  // The request socket is the net.Socket ws writes to: frames go to it directly.
  const client: Client = { userId, socket: request.socket, rooms: new Set(), pending: [] };
  send(client, { event: 'connected', data: { userId } });
  ws.on('message', (data: Buffer) => {
    try {
      onRequest(client, JSON.parse(data.toString()) as ClientRequest);
    } catch {
      // No validation and no error replies: the baseline only measures relaying.
    }
  });
  ws.on('close', () => leaveAll(client));
  ws.on('error', () => leaveAll(client));
}

const httpServer = createServer((request, response) => {
  response.writeHead(request.url === '/health' ? 200 : 404, {
    'content-type': 'application/json',
  });
  response.end('{"status":"ok"}');
});
const wsServer = new WebSocketServer({
  server: httpServer,
  perMessageDeflate: false,
  clientTracking: false,
  maxPayload: 65536,
});
wsServer.on('connection', onConnection);

const host = process.env.HOST ?? '127.0.0.1';
httpServer.listen(Number(process.env.PORT ?? 0), host, () => {
  const address = httpServer.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`Listening on http://${host}:${port} (ws and HTTP, baseline)\n`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => process.exit(0));
}

// If the bench dies without stopping us (SIGKILL), we are re-parented: do not linger.
const parentAtStart = process.ppid;
setInterval(() => {
  if (process.ppid !== parentAtStart) {
    process.exit(0);
  }
}, 1000).unref();
