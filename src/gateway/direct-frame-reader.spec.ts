import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { constants, deflateRawSync } from 'node:zlib';
import { WebSocketServer, type WebSocket } from 'ws';
import { Rng } from '../../test/support/fuzz-frames.js';
import { readFramesDirectly } from './direct-frame-reader.js';

const MAX_PAYLOAD = 1024;
const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
const OPCODE_PONG = 0xa;
const FIN = 0x80;
const RSV1 = 0x40;

/** The server side of one connection: what its 'message' listener got, and what went to ws. */
interface ServerSide {
  socket: WebSocket;
  installed: boolean;
  messages: string[];
  /** Chunks that reached ws's own Receiver. */
  wsChunks: number;
  errors: string[];
}

interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/** A client frame as a browser sends it: masked, FIN set unless `fin` is false. */
function clientFrame(
  opcode: number,
  payload: Buffer | string,
  options: { fin?: boolean; masked?: boolean; rsv1?: boolean; lengthBytes?: 0 | 2 | 8 } = {},
): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const masked = options.masked ?? true;
  const lengthBytes = options.lengthBytes ?? (data.length < 126 ? 0 : 2);
  const header = Buffer.alloc(2 + lengthBytes + (masked ? 4 : 0));
  header[0] = (options.fin === false ? 0 : FIN) | (options.rsv1 ? RSV1 : 0) | opcode;
  header[1] =
    (masked ? 0x80 : 0) | (lengthBytes === 2 ? 126 : lengthBytes === 8 ? 127 : data.length);
  if (lengthBytes === 2) {
    header.writeUInt16BE(data.length, 2);
  } else if (lengthBytes === 8) {
    header.writeBigUInt64BE(BigInt(data.length), 2);
  }
  if (!masked) {
    return Buffer.concat([header, data]);
  }
  const mask = randomBytes(4);
  mask.copy(header, header.length - 4);
  const body = Buffer.from(data);
  for (let i = 0; i < body.length; i++) {
    body[i] ^= mask[i & 3];
  }
  return Buffer.concat([header, body]);
}

/** "b:" for a binary message, "t:" for text, then the payload as UTF-8. */
const label = (data: Buffer, isBinary: boolean): string =>
  `${isBinary ? 'b' : 't'}:${data.toString()}`;

async function until(condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Text with one-, two- and three-byte UTF-8 characters. */
function randomText(rng: Rng, maxChars: number): string {
  const length = rng.chance(0.1) ? 0 : rng.logInt(1, maxChars);
  return Array.from({ length }, () => rng.pick(['a', 'b', '{', '"', 'é', '✓'])).join('');
}

/** One to three frames a client might send, now and then one that ws refuses. */
function randomFrames(rng: Rng): Buffer[] {
  const lengthBytes = rng.weighted([
    [8, undefined],
    [1, 2],
    [1, 8],
  ] as const);
  const kind = rng.weighted([
    [6, 'text'],
    [6, 'binary'],
    [1, 'ping'],
    [1, 'fragmented'],
    [0.3, 'unmasked'],
    [0.3, 'bad-utf8'],
    [0.3, 'rsv1'],
    [0.3, 'oversize'],
    [0.3, 'orphan-continuation'],
    [0.2, 'close'],
  ] as const);
  switch (kind) {
    case 'text':
      return [clientFrame(OPCODE_TEXT, randomText(rng, 200), { lengthBytes })];
    case 'binary':
      return [clientFrame(OPCODE_BINARY, randomBytes(rng.int(0, 300)), { lengthBytes })];
    case 'ping':
      return [clientFrame(OPCODE_PING, randomText(rng, 30))];
    case 'fragmented':
      return [
        clientFrame(OPCODE_TEXT, randomText(rng, 20), { fin: false }),
        // A ping may come between the fragments; a whole data frame may not (1002).
        ...(rng.chance(0.4) ? [clientFrame(OPCODE_PING, 'mid')] : []),
        ...(rng.chance(0.2) ? [clientFrame(OPCODE_BINARY, 'not-a-fragment')] : []),
        clientFrame(0x0, randomText(rng, 20)),
      ];
    case 'unmasked':
      return [clientFrame(OPCODE_BINARY, 'x', { masked: false })];
    case 'bad-utf8':
      return [clientFrame(OPCODE_TEXT, Buffer.from([0x61, 0xc3, 0x28]))];
    case 'rsv1':
      return [clientFrame(OPCODE_TEXT, 'y', { rsv1: true })];
    case 'oversize':
      return [clientFrame(OPCODE_BINARY, Buffer.alloc(MAX_PAYLOAD + rng.int(1, 200)))];
    case 'orphan-continuation':
      return [clientFrame(0x0, 'z')];
    case 'close':
      return [clientFrame(OPCODE_CLOSE, Buffer.from([0x03, 0xe8]))];
  }
}

/** A random stream of frames, cut into chunks at random points. */
function randomStream(rng: Rng): Buffer[] {
  const frames = Array.from({ length: rng.int(1, 12) }, () => randomFrames(rng)).flat();
  const stream = Buffer.concat(frames);
  const chunks: Buffer[] = [];
  for (let at = 0; at < stream.length;) {
    const size = rng.weighted([
      [3, stream.length - at],
      [3, rng.int(1, 80)],
      [4, rng.int(80, 2000)],
    ] as const);
    chunks.push(stream.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

describe('readFramesDirectly', () => {
  let server: WebSocketServer;
  let port: number;
  let sides: ServerSide[];
  let clients: Socket[];
  /** Adds a second 'message' listener on the next connection. */
  let extraListener = false;

  const start = async (perMessageDeflate: boolean, direct = true): Promise<void> => {
    server = new WebSocketServer({
      port: 0,
      host: '127.0.0.1',
      maxPayload: MAX_PAYLOAD,
      perMessageDeflate,
    });
    await new Promise((resolve) => server.once('listening', resolve));
    port = (server.address() as AddressInfo).port;
    server.on('connection', (socket: WebSocket) => {
      const side: ServerSide = { socket, installed: false, messages: [], wsChunks: 0, errors: [] };
      socket.on('error', (error: Error & { code?: string }) => side.errors.push(error.code ?? ''));
      const onMessage = (data: Buffer, isBinary: boolean) =>
        side.messages.push(label(data, isBinary));
      socket.on('message', onMessage);
      if (extraListener) {
        socket.on('message', () => undefined);
      }
      const receiver = (socket as unknown as { _receiver: { write(chunk: Buffer): boolean } })
        ._receiver;
      const write = receiver.write.bind(receiver);
      receiver.write = (chunk: Buffer) => {
        side.wsChunks++;
        return write(chunk);
      };
      side.installed = direct && readFramesDirectly(socket, onMessage);
      sides.push(side);
    });
  };

  /** A raw TCP client after the upgrade, and the frames the server sends it. */
  const connect = async (
    extensions?: string,
  ): Promise<{ socket: Socket; side: ServerSide; frames: ServerFrame[] }> => {
    const count = sides.length;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const upgrade = request({
        host: '127.0.0.1',
        port,
        headers: {
          Connection: 'Upgrade',
          Upgrade: 'websocket',
          'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
          ...(extensions ? { 'Sec-WebSocket-Extensions': extensions } : {}),
        },
      });
      upgrade.on('upgrade', (_response, upgraded: Socket) => resolve(upgraded));
      upgrade.on('error', reject);
      upgrade.end();
    });
    clients.push(socket);
    const frames: ServerFrame[] = [];
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      // Server frames are unmasked and, here, short (7-bit lengths).
      while (pending.length >= 2 && pending.length >= 2 + (pending[1] & 0x7f)) {
        const length = pending[1] & 0x7f;
        frames.push({ opcode: pending[0] & 0x0f, payload: pending.subarray(2, 2 + length) });
        pending = pending.subarray(2 + length);
      }
    });
    socket.on('error', () => undefined);
    await until(() => sides.length > count, 'the server side of the connection');
    return { socket, side: sides[count], frames };
  };

  const closeCode = (frames: ServerFrame[]): number | undefined => {
    const close = frames.find((frame) => frame.opcode === OPCODE_CLOSE);
    return close?.payload.readUInt16BE(0);
  };

  beforeEach(() => {
    sides = [];
    clients = [];
    extraListener = false;
  });

  const stop = async (): Promise<void> => {
    for (const client of clients) {
      client.destroy();
    }
    clients = [];
    sides = [];
    await new Promise((resolve) => server.close(resolve));
  };

  afterEach(stop);

  it('reads whole text and binary frames itself, in order, unmasked, leaving ws nothing', async () => {
    await start(false);
    const { socket, side } = await connect();
    expect(side.installed).toBe(true);
    const long = 'x'.repeat(300); // a 16-bit length
    socket.write(
      Buffer.concat([
        clientFrame(OPCODE_TEXT, '{"action":"ping"}'),
        clientFrame(OPCODE_BINARY, 'pose-1'),
        clientFrame(OPCODE_TEXT, long),
        clientFrame(OPCODE_BINARY, ''),
        clientFrame(OPCODE_TEXT, 'héllo ✓'),
      ]),
    );
    await until(() => side.messages.length === 5, 'five messages');
    expect(side.messages).toEqual([
      't:{"action":"ping"}',
      'b:pose-1',
      `t:${long}`,
      'b:',
      't:héllo ✓',
    ]);
    expect(side.wsChunks).toBe(0);
  });

  it('unmasks payloads of every length around the mask width', async () => {
    await start(false);
    const { socket, side } = await connect();
    const payloads = Array.from({ length: 10 }, (_, length) => 'abcdefghij'.slice(0, length));
    socket.write(Buffer.concat(payloads.map((payload) => clientFrame(OPCODE_BINARY, payload))));
    await until(() => side.messages.length === payloads.length, 'every payload');
    expect(side.messages).toEqual(payloads.map((payload) => `b:${payload}`));
    expect(side.wsChunks).toBe(0);
  });

  it('leaves a frame split across reads to ws, then reads directly again once ws is done', async () => {
    await start(false);
    const { socket, side } = await connect();
    const split = clientFrame(OPCODE_BINARY, 'split-pose');
    socket.write(Buffer.concat([clientFrame(OPCODE_BINARY, 'first'), split.subarray(0, 5)]));
    await until(() => side.wsChunks === 1, 'the partial frame to reach ws');
    socket.write(split.subarray(5));
    await until(() => side.messages.length === 2, 'the split frame');
    socket.write(clientFrame(OPCODE_BINARY, 'after'));
    await until(() => side.messages.length === 3, 'the frame after it');
    expect(side.messages).toEqual(['b:first', 'b:split-pose', 'b:after']);
    // The first half and the second half of the split frame; 'after' was read directly.
    expect(side.wsChunks).toBe(2);
  });

  it('hands a ping to ws, with what follows it, and keeps the order', async () => {
    await start(false);
    const { socket, side, frames } = await connect();
    socket.write(
      Buffer.concat([
        clientFrame(OPCODE_BINARY, 'a'),
        clientFrame(OPCODE_PING, 'are-you-there'),
        clientFrame(OPCODE_BINARY, 'b'),
      ]),
    );
    await until(() => side.messages.length === 2, 'both messages');
    await until(() => frames.some((frame) => frame.opcode === OPCODE_PONG), 'the pong');
    expect(side.messages).toEqual(['b:a', 'b:b']);
    expect(frames.find((frame) => frame.opcode === OPCODE_PONG)?.payload.toString()).toBe(
      'are-you-there',
    );
    expect(side.wsChunks).toBe(1);
  });

  it('leaves fragmented messages to ws, and refuses a whole frame in the middle of one (1002)', async () => {
    await start(false);
    const { socket, side, frames } = await connect();
    socket.write(clientFrame(OPCODE_TEXT, 'hel', { fin: false }));
    await until(() => side.wsChunks === 1, 'the first fragment to reach ws');
    socket.write(clientFrame(0x0, 'lo')); // the final continuation frame
    await until(() => side.messages.length === 1, 'the whole message');
    expect(side.messages).toEqual(['t:hello']);

    socket.write(clientFrame(OPCODE_TEXT, 'par', { fin: false }));
    await until(() => side.wsChunks === 3, 'the next first fragment to reach ws');
    // A new data frame before the fragmented message ended breaks the protocol.
    socket.write(clientFrame(OPCODE_BINARY, 'not-a-continuation'));
    await until(() => closeCode(frames) !== undefined, 'the close frame');
    expect(closeCode(frames)).toBe(1002);
    expect(side.messages).toEqual(['t:hello']);
  });

  it.each([
    ['an unmasked frame', 1002, clientFrame(OPCODE_BINARY, 'x', { masked: false })],
    ['RSV1 without permessage-deflate', 1002, clientFrame(OPCODE_BINARY, 'x', { rsv1: true })],
    ['text that is not UTF-8', 1007, clientFrame(OPCODE_TEXT, Buffer.from([0x61, 0xff, 0x62]))],
    ['a frame over maxPayload', 1009, clientFrame(OPCODE_BINARY, Buffer.alloc(MAX_PAYLOAD + 1))],
  ])('leaves %s to ws, which closes with %d', async (_what, code, bad) => {
    await start(false);
    const { socket, side, frames } = await connect();
    socket.write(Buffer.concat([clientFrame(OPCODE_BINARY, 'before'), bad]));
    await until(() => closeCode(frames) !== undefined, 'the close frame');
    expect(closeCode(frames)).toBe(code);
    expect(side.messages).toEqual(['b:before']);
    expect(side.errors).toHaveLength(1);
  });

  it('reads nothing after a close frame', async () => {
    await start(false);
    const { socket, side, frames } = await connect();
    const close = Buffer.alloc(2);
    close.writeUInt16BE(1000);
    socket.write(
      Buffer.concat([
        clientFrame(OPCODE_BINARY, 'last'),
        clientFrame(OPCODE_CLOSE, close),
        clientFrame(OPCODE_BINARY, 'after-close'),
      ]),
    );
    await until(() => closeCode(frames) !== undefined, 'the close frame');
    socket.write(clientFrame(OPCODE_BINARY, 'later-still'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(closeCode(frames)).toBe(1000);
    expect(side.messages).toEqual(['b:last']);
  });

  it('keeps compressed messages in order with the plain ones after them', async () => {
    await start(true);
    const { socket, side } = await connect('permessage-deflate');
    // A sync flush ends in an empty block, 00 00 ff ff, which permessage-deflate leaves off.
    const compressed = deflateRawSync(Buffer.from('compressed-first'), {
      finishFlush: constants.Z_SYNC_FLUSH,
    });
    const body = compressed.subarray(0, compressed.length - 4);
    for (let round = 0; round < 5; round++) {
      socket.write(clientFrame(OPCODE_TEXT, body, { rsv1: true }));
      socket.write(clientFrame(OPCODE_BINARY, `plain-${round}`));
    }
    await until(() => side.messages.length === 10, 'ten messages');
    expect(side.messages).toEqual(
      [0, 1, 2, 3, 4].flatMap((round) => ['t:compressed-first', `b:plain-${round}`]),
    );
  });

  it('leaves a frame to ws while ws is still inflating the message before it', async () => {
    await start(true);
    const { socket, side } = await connect('permessage-deflate');
    // Inflating takes a while here, so the plain frame surely arrives in the middle of it.
    type Decompress = (data: Buffer, fin: boolean, cb: (...args: unknown[]) => void) => void;
    const receiver = (side.socket as unknown as { _receiver: { decompress: Decompress } })
      ._receiver;
    const decompress = receiver.decompress.bind(receiver);
    receiver.decompress = (data, fin, cb) => {
      setTimeout(() => decompress(data, fin, cb), 50);
    };
    const compressed = deflateRawSync(Buffer.from('slow-to-inflate'), {
      finishFlush: constants.Z_SYNC_FLUSH,
    });
    socket.write(
      clientFrame(OPCODE_TEXT, compressed.subarray(0, compressed.length - 4), { rsv1: true }),
    );
    await until(() => side.wsChunks === 1, 'the compressed frame to reach ws');
    socket.write(clientFrame(OPCODE_BINARY, 'plain'));
    await until(() => side.messages.length === 2, 'both messages');
    expect(side.messages).toEqual(['t:slow-to-inflate', 'b:plain']);
    expect(side.wsChunks).toBe(2);
  });

  it('leaves everything to ws while the connection has another message listener', async () => {
    extraListener = true;
    await start(false);
    const { socket, side } = await connect();
    socket.write(Buffer.concat([clientFrame(OPCODE_BINARY, 'a'), clientFrame(OPCODE_TEXT, 'b')]));
    await until(() => side.messages.length === 2, 'both messages');
    expect(side.messages).toEqual(['b:a', 't:b']);
    expect(side.wsChunks).toBe(1);
  });

  it('hands frames to ws while a listener added later is on, and reads again once it is off', async () => {
    await start(false);
    const { socket, side } = await connect();
    socket.write(clientFrame(OPCODE_BINARY, 'direct'));
    await until(() => side.messages.length === 1, 'the first message');
    expect(side.wsChunks).toBe(0);

    const alsoHeard: string[] = [];
    const extra = (data: Buffer, isBinary: boolean): number =>
      alsoHeard.push(label(data, isBinary));
    side.socket.on('message', extra);
    socket.write(clientFrame(OPCODE_BINARY, 'both'));
    await until(() => side.messages.length === 2, 'the second message');
    expect(alsoHeard).toEqual(['b:both']);
    expect(side.wsChunks).toBe(1);

    side.socket.off('message', extra);
    socket.write(clientFrame(OPCODE_TEXT, 'direct again'));
    await until(() => side.messages.length === 3, 'the third message');
    expect(side.messages).toEqual(['b:direct', 'b:both', 't:direct again']);
    expect(alsoHeard).toEqual(['b:both']);
    expect(side.wsChunks).toBe(1);

    side.socket.removeAllListeners('message');
    side.socket.on('message', extra);
    socket.write(clientFrame(OPCODE_BINARY, 'only the new one'));
    await until(() => alsoHeard.length === 2, 'the message to the only listener');
    // One listener again, but not the reader's own: ws still reads, for that listener.
    expect(alsoHeard).toEqual(['b:both', 'b:only the new one']);
    expect(side.messages).toHaveLength(3);
    expect(side.wsChunks).toBe(2);
  });

  it('ends every random stream of frames as ws alone does: same messages, same close', async () => {
    /** What a server made of `chunks`, written one by one: its messages and its close code. */
    const outcome = async (chunks: Buffer[], direct: boolean) => {
      await start(false, direct);
      const { socket, side, frames } = await connect();
      for (const chunk of chunks) {
        socket.write(chunk);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      // Answered once the server has read everything before it, unless it closed.
      socket.write(clientFrame(OPCODE_PING, 'end'));
      await until(
        () =>
          closeCode(frames) !== undefined ||
          frames.some(
            (frame) => frame.opcode === OPCODE_PONG && frame.payload.toString() === 'end',
          ),
        "the close or the pong to 'end'",
      );
      const result = {
        messages: [...side.messages],
        close: closeCode(frames),
        installed: side.installed,
      };
      await stop();
      await new Promise((resolve) => setTimeout(resolve, 0));
      return result;
    };
    let readDirectly = 0;
    for (let seed = 1; seed <= 80; seed++) {
      const chunks = randomStream(new Rng(seed));
      const direct = await outcome(chunks, true);
      const wsAlone = await outcome(chunks, false);
      expect(direct.installed).toBe(true);
      expect({ seed, messages: direct.messages, close: direct.close }).toEqual({
        seed,
        messages: wsAlone.messages,
        close: wsAlone.close,
      });
      readDirectly += direct.messages.length;
    }
    // The streams are mostly valid: most of their messages came through.
    expect(readDirectly).toBeGreaterThan(100);
  });

  it('stays out of the way of a connection without the ws internals it expects', () => {
    expect(readFramesDirectly({} as WebSocket, () => undefined)).toBe(false);
  });
});
