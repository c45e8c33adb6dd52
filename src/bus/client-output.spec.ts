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

  texts(): string[][] {
    return this.writes.map((write) => write.map((chunk) => chunk.subarray(2).toString()));
  }
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

  it('writes every queued frame in one write, urgent frames ahead of throwaway ones', () => {
    output.enqueue(frame('pose-1', true), LIMITS);
    output.enqueue(frame('chat-1'), LIMITS);
    output.enqueue(frame('pose-2', true), LIMITS);
    output.enqueue(frame('state-1'), LIMITS);
    output.flush();
    expect(transport.texts()).toEqual([['"chat-1"', '"state-1"', '"pose-1"', '"pose-2"']]);
    expect(output.hasQueued()).toBe(false);
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
