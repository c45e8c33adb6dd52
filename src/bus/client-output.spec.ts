import { jest } from '@jest/globals';
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { WebSocket } from 'ws';
import { ClientOutput, type OutputLimits } from './client-output.js';
import { toOutgoingFrame, type OutgoingFrame } from './outgoing-frame.js';

const LIMITS: OutputLimits = { softBytes: 1000, maxBytes: 4000 };

/** A TCP socket stand-in that records each write call it gets from the stream machinery. */
class RecordingTransport extends Writable {
  /** The chunks of each write call, as given. */
  readonly writes: Buffer[][] = [];
  /** Their bytes as they were at the write: a buffer given may be reused once written. */
  private readonly written: Buffer[][] = [];
  /** Bytes the "kernel" has not taken yet, as writableLength would report them. */
  backlog = 0;
  /** Bytes each write leaves behind, as a socket whose kernel buffer is full would. */
  leavesBehind = 0;

  constructor() {
    super();
    Object.defineProperty(this, 'writableLength', { get: () => this.backlog });
  }

  override _writev(
    chunks: Array<{ chunk: Buffer }>,
    callback: (error?: Error | null) => void,
  ): void {
    this.record(chunks.map(({ chunk }) => chunk));
    callback();
  }

  override _write(chunk: Buffer, _encoding: string, callback: (error?: Error | null) => void) {
    this.record([chunk]);
    callback();
  }

  private record(chunks: Buffer[]): void {
    this.writes.push(chunks);
    this.written.push(chunks.map((chunk) => Buffer.from(chunk)));
    this.backlog += this.leavesBehind;
  }

  /** The text of every frame, per write call, as written. */
  texts(): string[][] {
    return this.written.map((write) => write.flatMap(framesIn));
  }

  /** How many chunks each write call got. */
  chunks(): number[] {
    return this.writes.map((write) => write.length);
  }
}

/** The texts of the unmasked server frames in `chunk`, in order. */
function framesIn(chunk: Buffer): string[] {
  const texts: string[] = [];
  let at = 0;
  while (at < chunk.length) {
    let length = chunk[at + 1];
    let start = at + 2;
    if (length === 126) {
      length = chunk.readUInt16BE(at + 2);
      start = at + 4;
    }
    texts.push(chunk.subarray(start, start + length).toString());
    at = start + length;
  }
  return texts;
}

const openSocket = (extensions = '') =>
  ({
    readyState: WebSocket.OPEN,
    extensions,
    bufferedAmount: 0,
    send: jest.fn(),
  }) as unknown as WebSocket & { send: jest.Mock<(data: string) => void>; readyState: number };

const frame = (text: string, throwaway = false): OutgoingFrame => ({
  ...toOutgoingFrame(text),
  throwaway,
});

describe('ClientOutput', () => {
  let transport: RecordingTransport;
  let socket: ReturnType<typeof openSocket>;
  let output: ClientOutput;

  beforeEach(() => {
    transport = new RecordingTransport();
    socket = openSocket();
    output = new ClientOutput(socket, transport);
  });

  it('writes every queued frame in one buffer, urgent frames ahead of throwaway ones', () => {
    output.enqueue(frame('pose-1', true), LIMITS);
    output.enqueue(frame('chat-1'), LIMITS);
    output.enqueue(frame('pose-2', true), LIMITS);
    output.enqueue(frame('state-1'), LIMITS);
    output.flush();
    expect(transport.texts()).toEqual([['"chat-1"', '"state-1"', '"pose-1"', '"pose-2"']]);
    expect(transport.chunks()).toEqual([1]);
    expect(transport.writes[0][0].length).toBe(4 * 2 + '"chat-1""state-1""pose-1""pose-2"'.length);
    expect(output.hasQueued()).toBe(false);
  });

  it('joins every turn in the same buffer while the kernel takes each write whole', () => {
    output.enqueue(frame('chat-1'), LIMITS);
    output.enqueue(frame('pose-1', true), LIMITS);
    output.flush();
    output.enqueue(frame('chat-2'), LIMITS);
    output.enqueue(frame('pose-2', true), LIMITS);
    output.flush();
    expect(transport.texts()).toEqual([
      ['"chat-1"', '"pose-1"'],
      ['"chat-2"', '"pose-2"'],
    ]);
    expect(transport.writes[1][0].buffer).toBe(transport.writes[0][0].buffer);
  });

  it('leaves a write that the kernel did not take whole its buffer, and joins in a fresh one', () => {
    transport.leavesBehind = 10;
    output.enqueue(frame('chat-1'), LIMITS);
    output.enqueue(frame('pose-1', true), LIMITS);
    output.flush();
    const other = new RecordingTransport();
    const otherOutput = new ClientOutput(openSocket(), other);
    otherOutput.enqueue(frame('chat-2'), LIMITS);
    otherOutput.enqueue(frame('pose-2', true), LIMITS);
    otherOutput.flush();
    // The stream sends the rest from the first buffer later: it must still hold the first frames.
    expect(framesIn(transport.writes[0][0])).toEqual(['"chat-1"', '"pose-1"']);
    expect(other.writes[0][0].buffer).not.toBe(transport.writes[0][0].buffer);
    expect(other.texts()).toEqual([['"chat-2"', '"pose-2"']]);
  });

  it('writes a lone frame as it is, without a copy', () => {
    const pose = frame('pose', true);
    output.enqueue(pose, LIMITS);
    output.flush();
    expect(transport.writes).toEqual([[pose.bytes]]);
    expect(transport.writes[0][0]).toBe(pose.bytes);
  });

  it('writes each frame as its own chunk of one write while the socket is behind', () => {
    transport.backlog = 100;
    const chat = frame('chat');
    const pose = frame('pose', true);
    output.enqueue(pose, LIMITS);
    output.enqueue(chat, LIMITS);
    output.flush();
    expect(transport.chunks()).toEqual([2]);
    // The frames the room shares, not copies: a slow socket holds no copy of its own.
    expect(transport.writes[0][0]).toBe(chat.bytes);
    expect(transport.writes[0][1]).toBe(pose.bytes);
  });

  it('writes each frame as its own chunk past 64 KiB, so no large copy is made', () => {
    const roomy: OutputLimits = { softBytes: 1 << 20, maxBytes: 1 << 20 };
    const big = 's'.repeat(40_000);
    output.enqueue(frame(big), roomy);
    output.enqueue(frame(big), roomy);
    output.flush();
    expect(transport.chunks()).toEqual([2]);
    expect(transport.texts()).toEqual([[`"${big}"`, `"${big}"`]]);
  });

  it('drops throwaway frames once the pending bytes would pass the soft limit', () => {
    transport.backlog = 995;
    expect(output.enqueue(frame('pose', true), LIMITS)).toBe('dropped');
    expect(output.enqueue(frame('chat'), LIMITS)).toBe('queued');
    transport.backlog = 0;
    expect(output.enqueue(frame('pose', true), LIMITS)).toBe('queued');
  });

  it('counts only what it queued after a write the kernel took whole, until its next write', () => {
    output.enqueue(frame('chat'), LIMITS);
    output.flush();
    // Bytes something else left in the socket meanwhile (a ws ping the kernel could not take)...
    transport.backlog = 995;
    expect(output.enqueue(frame('pose', true), LIMITS)).toBe('queued');
    // ...count from this output's next write on.
    output.flush();
    expect(output.enqueue(frame('pose', true), LIMITS)).toBe('dropped');
  });

  it('reads the socket at every frame while its last write left bytes behind', () => {
    transport.backlog = 900;
    output.enqueue(frame('chat'), LIMITS);
    output.flush();
    expect(output.enqueue(frame('pose', true), LIMITS)).toBe('queued');
    transport.backlog = 995;
    expect(output.enqueue(frame('pose', true), LIMITS)).toBe('dropped');
    transport.backlog = 0; // the kernel took it
    expect(output.enqueue(frame('pose', true), LIMITS)).toBe('queued');
  });

  it('counts queued bytes as pending, so one turn cannot pass the soft limit either', () => {
    const big = 'p'.repeat(400);
    expect(output.enqueue(frame(big, true), LIMITS)).toBe('queued');
    expect(output.enqueue(frame(big, true), LIMITS)).toBe('queued');
    expect(output.enqueue(frame(big, true), LIMITS)).toBe('dropped');
    expect(output.pendingBytes()).toBe(2 * (400 + 2 + 4));
  });

  it('reports an overflow when an urgent frame would pass the hard limit', () => {
    transport.backlog = 3995;
    expect(output.enqueue(frame('chat'), LIMITS)).toBe('overflow');
  });

  it('takes nothing more once discarded, and writes nothing of what was queued', () => {
    output.enqueue(frame('chat'), LIMITS);
    output.discard();
    expect(output.enqueue(frame('chat-2'), LIMITS)).toBe('closed');
    output.flush();
    expect(transport.writes).toEqual([]);
  });

  it('writes nothing to a socket that is no longer open, and forgets the frames', () => {
    output.enqueue(frame('chat'), LIMITS);
    socket.readyState = WebSocket.CLOSING;
    output.flush();
    expect(transport.writes).toEqual([]);
    expect(output.hasQueued()).toBe(false);
  });

  it('sends through ws, which compresses, when the socket negotiated permessage-deflate', () => {
    const compressed = openSocket('permessage-deflate');
    const viaWs = new ClientOutput(compressed, transport);
    viaWs.enqueue(frame('pose', true), LIMITS);
    viaWs.enqueue(frame('chat'), LIMITS);
    viaWs.flush();
    expect(compressed.send.mock.calls).toEqual([['"chat"'], ['"pose"']]);
    expect(transport.writes).toEqual([]);
  });

  describe('over real TCP sockets', () => {
    let server: Server;
    const sockets: Socket[] = [];

    beforeEach(async () => {
      server = createServer();
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
    });

    afterEach(async () => {
      for (const socket of sockets.splice(0)) {
        socket.destroy();
      }
      server.close();
      await once(server, 'close');
    });

    /** A connected pair: the server's end to write to, and the reader's end. */
    async function connect(): Promise<{ here: Socket; reader: Socket }> {
      const { port } = server.address() as { port: number };
      const accepted = once(server, 'connection');
      const reader = createConnection(port, '127.0.0.1');
      const [here] = (await accepted) as [Socket];
      sockets.push(here, reader);
      return { here, reader };
    }

    /** Every frame text the reader gets until the writer ends. */
    async function readAll(reader: Socket): Promise<string[]> {
      const received: Buffer[] = [];
      reader.on('data', (chunk: Buffer) => received.push(chunk));
      reader.resume();
      await once(reader, 'end');
      return framesIn(Buffer.concat(received));
    }

    it('delivers every frame intact to a lagging reader and to a fast one, turn after turn', async () => {
      // The lagging reader is paused until the end, so a write to it goes through only in part
      // once the kernel's buffers are full, and the stream keeps that write's buffer; the fast
      // reader's join, written right after, must not reuse it. The turns go on until that has
      // happened (however large the kernel's buffers here), and a while after.
      const turnsAfterPartialWrite = 500;
      const maxTurns = 100_000;
      const filler = 'x'.repeat(600);
      const lagging = await connect();
      const fast = await connect();
      lagging.reader.pause();
      const fastTexts = readAll(fast.reader);
      const roomy: OutputLimits = { softBytes: 1 << 30, maxBytes: 1 << 30 };
      const laggingOutput = new ClientOutput(openSocket(), lagging.here);
      const fastOutput = new ClientOutput(openSocket(), fast.here);
      let turns = 0;
      let partialWriteAt: number | undefined;
      while (turns < maxTurns && (partialWriteAt ?? Infinity) + turnsAfterPartialWrite > turns) {
        for (const output of [laggingOutput, fastOutput]) {
          output.enqueue(frame(`${turns}:a:${filler}`), roomy);
          output.enqueue(frame(`${turns}:b:${filler}`, true), roomy);
        }
        const backlogBefore = lagging.here.writableLength;
        laggingOutput.flush();
        if (backlogBefore === 0 && lagging.here.writableLength > 0) {
          partialWriteAt ??= turns;
        }
        fastOutput.flush();
        turns++;
        // Let the fast reader drain, so its socket stays caught up and keeps joining.
        await new Promise((resolve) => setImmediate(resolve));
      }
      lagging.here.end();
      fast.here.end();

      const expected = Array.from({ length: turns }, (_, turn) => [
        `"${turn}:a:${filler}"`,
        `"${turn}:b:${filler}"`,
      ]).flat();
      expect(partialWriteAt).toBeDefined();
      expect(await readAll(lagging.reader)).toEqual(expected);
      expect(await fastTexts).toEqual(expected);
    });
  });
});
