import { jest } from '@jest/globals';
import { Writable } from 'node:stream';
import { WebSocket } from 'ws';
import { ClientOutput, type OutputLimits } from './client-output.js';
import { toOutgoingFrame, type OutgoingFrame } from './outgoing-frame.js';

const LIMITS: OutputLimits = { softBytes: 1000, maxBytes: 4000 };

/** A TCP socket stand-in that records each write call it gets from the stream machinery. */
class RecordingTransport extends Writable {
  readonly writes: Buffer[][] = [];
  /** Bytes the "kernel" has not taken yet, as writableLength would report them. */
  backlog = 0;

  constructor() {
    super();
    Object.defineProperty(this, 'writableLength', { get: () => this.backlog });
  }

  override _writev(
    chunks: Array<{ chunk: Buffer }>,
    callback: (error?: Error | null) => void,
  ): void {
    this.writes.push(chunks.map(({ chunk }) => chunk));
    callback();
  }

  override _write(chunk: Buffer, _encoding: string, callback: (error?: Error | null) => void) {
    this.writes.push([chunk]);
    callback();
  }

  /** The text of every frame, per write call. */
  texts(): string[][] {
    return this.writes.map((write) => write.flatMap(framesIn));
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
});
