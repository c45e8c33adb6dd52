// The BASELINE: the least a fan-out server must do for our protocol, written plainly with `ws`.
// Every figure of our server is reported as a ratio to this one, so it is fixed, not tuned down:
// one JSON.stringify per event, one frame shared by all recipients, one corked write per socket
// per event-loop turn, and no validation. With POSE_TICK_MS (bench --tick-ms) it keeps each
// sender's newest pose and relays it once per tick, like ours. Run as its own process so that
// its CPU and RSS are read from /proc exactly like our server's.
//
// With BASELINE_BINARY=1 (bench --binary) it also speaks the binary pose channel
// (docs/binary-poses.md) to clients that offer gallery.v2: a slot per member and room (a counter
// per room), the slots in room_joined and user_joined, and binary client pose frames relayed as
// binary server frames, one frame built per relay (or per room and tick) for all recipients.
// The bench never mixes JSON and binary users in a room, so it translates nothing: binary poses
// go to the room's gallery.v2 members only.
//
// With BASELINE_QUANTIZED=1 (bench --binary --quantized) the same, in the quantized form: it
// answers gallery.v2q, takes 16-byte client entries and relays them as they came (slot filled
// in) in server frames with flags 1. It translates between the forms no more than between JSON
// and binary: the bench never mixes them.
import { createServer, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  BINARY_SUBPROTOCOL,
  clientEntryAt,
  clientPoseRoomId,
  ENTRY_BYTES,
  frameHeader,
  TYPE_SERVER_POSES,
  writeServerHeader,
  writeSlot,
} from './binary-poses.js';
import { FLAG_QUANTIZED, QUANTIZED_ENTRY_BYTES, QUANTIZED_SUBPROTOCOL } from './quantized-poses.js';
import { sharedBinaryFrame, sharedTextFrame } from './shared-frame.js';

interface Client {
  readonly userId: string;
  readonly socket: Socket;
  readonly rooms: Set<string>;
  /** Frames due to this client in the current event-loop turn. */
  pending: Buffer[];
  /** Negotiated gallery.v2 (BASELINE_BINARY), or gallery.v2q (BASELINE_QUANTIZED). */
  readonly binary: boolean;
  /** BASELINE_BINARY: this client's slot per room it is in. */
  readonly slots: Map<string, number>;
}

const quantizedMode = process.env.BASELINE_QUANTIZED === '1';
const binaryMode = process.env.BASELINE_BINARY === '1' || quantizedMode;
/** The binary channel's subprotocol, header flags and entry size in this mode. */
const poseSubprotocol = quantizedMode ? QUANTIZED_SUBPROTOCOL : BINARY_SUBPROTOCOL;
const poseFlags = quantizedMode ? FLAG_QUANTIZED : 0;
const entryBytes = quantizedMode ? QUANTIZED_ENTRY_BYTES : ENTRY_BYTES;

const rooms = new Map<string, Set<Client>>();
let dirty: Client[] = [];
let flushScheduled = false;
let anonymousUsers = 0;

function queueFrame(client: Client, frame: Buffer): void {
  if (client.pending.length === 0) {
    dirty.push(client);
    scheduleFlush();
  }
  client.pending.push(frame);
}

function scheduleFlush(): void {
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushAll);
  }
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
  if (binaryMode) {
    joinWithSlot(client, roomId, requestId, members);
    return;
  }
  members.add(client);
  client.rooms.add(roomId);
  send(client, {
    event: 'room_joined',
    data: { requestId, roomInfo: { roomId, users: [], state: {}, createdAt: 0 } },
  });
}

/** BASELINE_BINARY: the next slot of each room (wraps at 65536). */
const nextSlots = new Map<string, number>();

/** A join with slots: every member with its slot in room_joined, user_joined to the others. */
function joinWithSlot(
  client: Client,
  roomId: string,
  requestId: unknown,
  members: Set<Client>,
): void {
  const rejoin = client.slots.has(roomId);
  if (!rejoin) {
    const slot = nextSlots.get(roomId) ?? 0;
    nextSlots.set(roomId, (slot + 1) & 0xffff);
    client.slots.set(roomId, slot);
    members.add(client);
    client.rooms.add(roomId);
  }
  const users = [...members].map((member) => ({
    id: member.userId,
    slot: member.slots.get(roomId),
  }));
  send(client, {
    event: 'room_joined',
    data: { requestId, roomInfo: { roomId, users, state: {}, createdAt: 0 } },
  });
  if (rejoin) {
    return;
  }
  const joined = sharedTextFrame(
    JSON.stringify({
      event: 'user_joined',
      data: { roomId, user: { id: client.userId, slot: client.slots.get(roomId) } },
    }),
  );
  for (const member of members) {
    if (member !== client) {
      queueFrame(member, joined);
    }
  }
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
  if (binaryMode) {
    tickBinary();
  }
}

/**
 * Ticks on a fixed schedule, as ours does (PoseTicker): setInterval counts each interval from
 * when its callback ran, so a busy loop would tick slower than 1000 / tickMs. A tick that overran
 * whole intervals skips them. Like ours, the timer only marks a tick due and the tick runs in the
 * check phase after it, once the loop has read what the sockets hold, its writes right behind it.
 */
function scheduleTicks(): void {
  let nextTickAt = performance.now() + tickMs;
  const onDue = (): void => {
    const late = performance.now() - nextTickAt;
    nextTickAt += (late >= tickMs ? Math.floor(late / tickMs) + 1 : 1) * tickMs;
    tick();
    setTimeout(onTimer, Math.max(0, nextTickAt - performance.now()));
  };
  const onTimer = (): void => {
    setImmediate(onDue);
    // As ours does: the tick's writes run in the same check phase, right after it.
    scheduleFlush();
  };
  setTimeout(onTimer, tickMs);
}

if (tickMs > 0) {
  scheduleTicks();
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

// --- binary poses (BASELINE_BINARY) --------------------------------------------------------------

/** The tick field of server frames: +1 per frame sent. */
let batch = 0;
/** Per room: each sender's newest entry of the tick, its slot already filled in. */
let heldEntries = new Map<string, Map<Client, Buffer>>();
/** Per room: the server frame header with count and tick 0, built once. */
const roomHeaders = new Map<string, Buffer>();

function onBinaryPose(sender: Client, data: Buffer): void {
  const roomId = clientPoseRoomId(data, entryBytes);
  const slot = roomId === undefined ? undefined : sender.slots.get(roomId);
  if (roomId === undefined || slot === undefined) {
    return;
  }
  if (tickMs > 0) {
    let held = heldEntries.get(roomId);
    if (!held) {
      held = new Map();
      heldEntries.set(roomId, held);
    }
    const entry = Buffer.from(data.subarray(clientEntryAt(data, entryBytes)));
    writeSlot(entry, 0, slot);
    held.set(sender, entry);
    return;
  }
  // Per message: the client's frame becomes the server's (same header, flags included, and
  // entry), built once.
  const { frame, payloadAt } = sharedBinaryFrame(data.length);
  data.copy(frame, payloadAt);
  frame[payloadAt] = TYPE_SERVER_POSES;
  frame.writeUInt32LE(batch, payloadAt + 4);
  batch = (batch + 1) >>> 0;
  writeSlot(frame, payloadAt + clientEntryAt(data, entryBytes), slot);
  const members = rooms.get(roomId);
  if (!members) {
    return;
  }
  for (const member of members) {
    if (member !== sender && member.binary) {
      queueFrame(member, frame);
    }
  }
}

/** One frame per room with each sender's newest entry, to all of its binary members. */
function tickBinary(): void {
  const due = heldEntries;
  heldEntries = new Map();
  for (const [roomId, held] of due) {
    const members = rooms.get(roomId);
    if (!members) {
      continue;
    }
    let header = roomHeaders.get(roomId);
    if (!header) {
      header = frameHeader(TYPE_SERVER_POSES, roomId, 0, poseFlags);
      roomHeaders.set(roomId, header);
    }
    const entries: Buffer[] = [];
    for (const [sender, entry] of held) {
      if (sender.rooms.has(roomId)) {
        entries.push(entry);
      }
    }
    const { frame, payloadAt } = sharedBinaryFrame(header.length + entries.length * entryBytes);
    writeServerHeader(frame, payloadAt, header, entries.length, batch);
    batch = (batch + 1) >>> 0;
    let at = payloadAt + header.length;
    for (const entry of entries) {
      entry.copy(frame, at);
      at += entryBytes;
    }
    for (const member of members) {
      if (member.binary) {
        queueFrame(member, frame);
      }
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
  client.slots.clear();
}

function onConnection(ws: WebSocket, request: IncomingMessage): void {
  const userId =
    new URL(request.url ?? '/', 'http://localhost').searchParams.get('userId') ||
    `user-${++anonymousUsers}`;
  // The request socket is the net.Socket ws writes to: frames go to it directly.
  const client: Client = {
    userId,
    socket: request.socket,
    rooms: new Set(),
    pending: [],
    binary: binaryMode && ws.protocol === poseSubprotocol,
    slots: new Map(),
  };
  send(client, { event: 'connected', data: { userId } });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      if (client.binary) {
        onBinaryPose(client, data);
      }
      return;
    }
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
  // BASELINE_BINARY: answer gallery.v2 (BASELINE_QUANTIZED: gallery.v2q) when offered.
  ...(binaryMode
    ? {
        handleProtocols: (protocols: Set<string>) =>
          protocols.has(poseSubprotocol) ? poseSubprotocol : false,
      }
    : {}),
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
