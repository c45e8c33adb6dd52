import { jest } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import { StructuredLogger } from '../logging/structured-logger.js';
import type { WebSocket } from 'ws';
import { CloseCode, ErrorCode } from '../protocol/protocol.js';
import { clientPoseFrame } from '../../test/support/binary-pose-frames.js';
import { checkClientPose } from '../protocol/binary-poses.js';
import type { Connection } from '../users/connection.js';
import type { BinaryPose } from './binary-pose.parser.js';
import type { ParsedFrame } from './client-frame.parser.js';
import {
  ClientInbound,
  FLOOD_CUT_OFF_MS,
  STALLED_INPUT_CLOSE_MS,
  type InboundOptions,
} from './client-inbound.js';
import { CLIENT_PINGS_BURST } from '../limits/connection-budget.js';

class FakeSocket {
  readonly OPEN = 1;
  readyState = 1;
  paused = false;
  closes: Array<[number, string]> = [];
  /** What was sent before the close, as ClientInbound's closeSocket sees it. */
  repliesAtClose?: number;
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  close(code: number, reason: string): void {
    this.closes.push([code, reason]);
    this.readyState = 2;
  }
  pongs: Buffer[] = [];
  pong(data: Buffer): void {
    this.pongs.push(data);
  }
  terminated = false;
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
  }
}

const LIMITS_OFF = {
  posesPerSec: 0,
  posesBurst: 1,
  actionsPerSec: 0,
  actionsBurst: 1,
  bytesPerSec: 0,
  violationsBeforeClose: 3,
};

function setup(overrides: Partial<InboundOptions> = {}) {
  const socket = new FakeSocket();
  const replies: unknown[] = [];
  const dispatched: ParsedFrame[] = [];
  const logger = new StructuredLogger('test');
  jest.spyOn(logger, 'error').mockImplementation(() => undefined);
  jest.spyOn(logger, 'warn').mockImplementation(() => undefined);
  let dispatch: (frame: ParsedFrame) => Promise<void> = (frame) => {
    dispatched.push(frame);
    return Promise.resolve();
  };
  const options: InboundOptions = {
    maxJsonDepth: 8,
    maxPayload: 65536,
    maxPendingMessages: 4,
    rateLimits: LIMITS_OFF,
    logger,
    isThrowaway: (message) => message.action === 'broadcast',
    shed: () => false,
    countDrop: () => undefined,
    relayAtOnce: () => false,
    readBinary: () => undefined,
    relayBinaryPose: () => false,
    reply: (_socket, reply) => replies.push(reply),
    closeSocket: (_socket, code, reason) => {
      socket.repliesAtClose = replies.length;
      socket.close(code, reason);
    },
    ...overrides,
  };
  const inbound = new ClientInbound(socket as unknown as WebSocket, options, (frame) =>
    dispatch(frame),
  );
  const send = (text: string) => inbound.receive(Buffer.from(text), false);
  return {
    inbound,
    socket,
    replies,
    dispatched,
    logger,
    send,
    sendBinary: (data: Buffer) => inbound.receive(data, true),
    setDispatch: (fn: typeof dispatch) => (dispatch = fn),
  };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('ClientInbound', () => {
  it('dispatches frames one at a time, in arrival order', async () => {
    const { send, setDispatch } = setup();
    const order: string[] = [];
    setDispatch(async (frame) => {
      const id = frame.rejected ? '?' : String(frame.message.requestId);
      order.push(`start ${id}`);
      await flush();
      order.push(`end ${id}`);
    });
    send('{"action":"ping","requestId":"a"}');
    send('{"action":"ping","requestId":"b"}');
    await flush();
    await flush();
    await flush();
    expect(order).toEqual(['start a', 'end a', 'start b', 'end b']);
  });

  it('closes only this socket with 1011 when handling a frame fails unexpectedly', async () => {
    const { socket, send, setDispatch, logger } = setup();
    setDispatch(() => Promise.reject(new Error('boom')));
    send('{"action":"ping"}');
    await flush();
    expect(socket.closes).toEqual([[CloseCode.InternalError, 'Internal server error']]);
    expect(logger.error).toHaveBeenCalledWith(
      expect.stringContaining('1011'),
      expect.objectContaining({ message: 'boom' }),
    );
  });

  it('closes with 1011 when the dispatcher throws synchronously', async () => {
    const { socket, send, setDispatch } = setup();
    setDispatch(() => {
      throw new Error('sync boom');
    });
    send('{"action":"ping"}');
    await flush();
    expect(socket.closes[0]?.[0]).toBe(CloseCode.InternalError);
  });

  it('pauses reading past MAX_PENDING_MESSAGES and resumes once half have been handled', async () => {
    const { socket, send, setDispatch, dispatched } = setup();
    const gates: Array<() => void> = [];
    setDispatch((frame) => {
      dispatched.push(frame);
      return new Promise((resolve) => gates.push(resolve));
    });
    for (let i = 0; i < 3; i++) {
      send('{"action":"ping"}');
    }
    expect(socket.paused).toBe(false);
    send('{"action":"ping"}');
    expect(socket.paused).toBe(true);
    for (let i = 0; i < 2; i++) {
      await flush();
      gates.shift()?.();
      await flush();
    }
    expect(socket.paused).toBe(false);
    expect(socket.closes).toEqual([]);
  });

  it('closes 1008 when reading stays paused for too long', () => {
    jest.useFakeTimers();
    try {
      const { socket, send, setDispatch } = setup();
      setDispatch(() => new Promise(() => undefined));
      for (let i = 0; i < 4; i++) {
        send('{"action":"ping"}');
      }
      expect(socket.paused).toBe(true);
      jest.advanceTimersByTime(STALLED_INPUT_CLOSE_MS - 1);
      expect(socket.closes).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(socket.closes).toEqual([[CloseCode.PolicyViolation, expect.any(String)]]);
    } finally {
      jest.useRealTimers();
    }
  });

  it('closes by the deadline when a handler before the close never settles', () => {
    jest.useFakeTimers();
    try {
      const { socket, send, sendBinary, setDispatch } = setup();
      setDispatch(() => new Promise(() => undefined));
      send('{"action":"ping"}');
      // Binary without the opt-in: closed 1003 once the ping before it is answered.
      sendBinary(Buffer.from([1]));
      jest.advanceTimersByTime(STALLED_INPUT_CLOSE_MS - 1);
      expect(socket.closes).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(socket.closes).toEqual([[CloseCode.UnsupportedData, expect.any(String)]]);
    } finally {
      jest.useRealTimers();
    }
  });

  it('answers a too-deep frame through the handler, and closes 1008 on the third', async () => {
    const { socket, send, dispatched } = setup();
    const deep = '{"action":"ping","x":' + '['.repeat(20) + ']'.repeat(20) + '}';
    send(deep);
    send(deep);
    send(deep);
    send('{"action":"ping","requestId":"after the close"}');
    expect(socket.closes).toEqual([]);
    await flush();
    expect(dispatched.map((frame) => frame.rejected && frame.rejection.code)).toEqual([
      ErrorCode.ValidationFailed,
      ErrorCode.ValidationFailed,
    ]);
    expect(socket.closes).toEqual([[CloseCode.PolicyViolation, 'Too many refused messages']]);
  });

  it('closes for repeated refusals only after answering what came before', async () => {
    const { socket, send, replies, dispatched } = setup({
      rateLimits: { ...LIMITS_OFF, actionsPerSec: 1, actionsBurst: 2, violationsBeforeClose: 3 },
    });
    for (let i = 0; i < 7; i++) {
      send(`{"action":"ping","requestId":"r${i}"}`);
    }
    await flush();
    expect(dispatched).toHaveLength(2);
    expect(
      replies.map((reply) => (reply as { data: { requestId: string } }).data.requestId),
    ).toEqual(['r2', 'r3']);
    expect(socket.closes).toEqual([[CloseCode.PolicyViolation, 'Too many refused messages']]);
    expect(socket.repliesAtClose).toBe(2);
  });

  it('answers RATE_LIMITED in order, and drops throwaway messages over budget without a word', async () => {
    const drops: unknown[] = [];
    const { send, replies, dispatched } = setup({
      rateLimits: { ...LIMITS_OFF, actionsPerSec: 1, actionsBurst: 1, posesPerSec: 1 },
      countDrop: (_socket, roomId) => drops.push(roomId),
    });
    send('{"action":"ping","requestId":"ok"}');
    send('{"action":"ping","requestId":"late"}');
    send('{"action":"broadcast","roomId":"a","n":1}');
    send('{"action":"broadcast","roomId":"b","n":2}');
    await flush();
    expect(dispatched).toHaveLength(2);
    expect(replies).toEqual([
      {
        event: 'error',
        data: {
          message: expect.stringMatching(/^Rate limit exceeded; retry in \d+ ms$/),
          code: ErrorCode.RateLimited,
          retryAfterMs: expect.any(Number),
          requestId: 'late',
        },
      },
    ]);
    expect(drops).toEqual(['b']);
  });

  it('relays a throwaway broadcast at once when nothing of the connection is queued', async () => {
    const relayed: unknown[] = [];
    const { send, dispatched } = setup({
      relayAtOnce: (_socket, message) => {
        relayed.push(message.n);
        return true;
      },
    });
    send('{"action":"broadcast","n":1}');
    expect(relayed).toEqual([1]);
    await flush();
    expect(dispatched).toEqual([]);
  });

  it('queues a throwaway broadcast behind a request still being handled, keeping the order', async () => {
    const relayed: unknown[] = [];
    const { send, setDispatch } = setup({
      relayAtOnce: (_socket, message) => {
        relayed.push(message.n);
        return true;
      },
    });
    const order: string[] = [];
    setDispatch(async (frame) => {
      const message = frame.rejected ? {} : frame.message;
      order.push(`${String(message.action)} ${String(message.n ?? message.requestId)}`);
      await flush();
    });
    send('{"action":"ping","requestId":"a"}');
    send('{"action":"broadcast","n":2}');
    await flush();
    await flush();
    await flush();
    expect(order).toEqual(['ping a', 'broadcast 2']);
    expect(relayed).toEqual([]);

    // Once the queue drained, the next one goes out at once again.
    send('{"action":"broadcast","n":3}');
    expect(relayed).toEqual([3]);
  });

  it('handles no frame, a pose included, before the connect work it waits for settles', async () => {
    const relayed: unknown[] = [];
    const { inbound, send, dispatched } = setup({
      relayAtOnce: (_socket, message) => {
        relayed.push(message.n);
        return true;
      },
    });
    let finishWork!: () => void;
    inbound.waitFor(new Promise<void>((resolve) => (finishWork = resolve)));
    send('{"action":"get_state","requestId":"a"}');
    send('{"action":"broadcast","n":1}');
    await flush();
    expect(dispatched).toEqual([]);
    expect(relayed).toEqual([]);

    finishWork();
    await flush();
    await flush();
    expect(dispatched.map((frame) => !frame.rejected && frame.message.action)).toEqual([
      'get_state',
      'broadcast',
    ]);
  });

  it('hands a throwaway broadcast the relay refused to its handler, to be answered', async () => {
    const { send, dispatched } = setup({ relayAtOnce: () => false });
    send('{"action":"broadcast","n":4}');
    await flush();
    expect(dispatched.map((frame) => !frame.rejected && frame.message.n)).toEqual([4]);
  });

  it('takes a binary frame the client opted in to as the broadcast it reads as', async () => {
    const relayed: unknown[] = [];
    const { socket, sendBinary, dispatched } = setup({
      readBinary: (_socket, data) => ({
        rejected: false,
        action: 'broadcast',
        message: { action: 'broadcast', n: data[0] },
      }),
      relayAtOnce: (_socket, message) => relayed.push(message.n) > 0,
    });
    sendBinary(Buffer.from([7]));
    sendBinary(Buffer.from([8]));
    await flush();
    expect(relayed).toEqual([7, 8]);
    expect(dispatched).toEqual([]);
    expect(socket.closes).toEqual([]);
  });

  describe('a binary pose', () => {
    const sender = { userId: 'u1' } as Connection;
    const pose = { timestamp: 1765000000123.5, position: [1, 2, 3], rotation: [0, 0, 0, 1] };
    const binaryPose = (data: Buffer): BinaryPose => {
      const entry = checkClientPose(data);
      if (typeof entry === 'string') {
        throw new Error(entry);
      }
      return { sender, roomId: entry.roomId, frame: data, entry };
    };

    it('is relayed as it came, without a handler, and charged like a JSON pose', async () => {
      const relayed: BinaryPose[] = [];
      const drops: unknown[] = [];
      const { sendBinary, dispatched } = setup({
        rateLimits: { ...LIMITS_OFF, posesPerSec: 1, posesBurst: 1 },
        readBinary: (_socket, data) => binaryPose(data),
        relayBinaryPose: (received) => relayed.push(received) > 0,
        countDrop: (_socket, roomId) => drops.push(roomId),
      });
      sendBinary(clientPoseFrame('room-a', pose));
      sendBinary(clientPoseFrame('room-b', pose));
      await flush();
      expect(relayed.map((received) => received.roomId)).toEqual(['room-a']);
      expect(drops).toEqual(['room-b']);
      expect(dispatched).toEqual([]);
    });

    it('goes to the broadcast handler, read as its message, when the relay refuses it', async () => {
      const { sendBinary, dispatched } = setup({
        readBinary: (_socket, data) => binaryPose(data),
        relayBinaryPose: () => false,
      });
      sendBinary(clientPoseFrame('room-a', pose));
      await flush();
      expect(dispatched).toEqual([
        {
          rejected: false,
          action: 'broadcast',
          message: {
            action: 'broadcast',
            roomId: 'room-a',
            message: {
              type: 'pose_update',
              senderId: 'u1',
              timestamp: pose.timestamp,
              data: { position: pose.position, rotation: pose.rotation },
            },
          },
        },
      ]);
    });
  });

  it('answers a binary frame read as refused through the rejected-frame handler', async () => {
    const { sendBinary, dispatched } = setup({
      readBinary: () => ({
        rejected: true,
        rejection: { code: ErrorCode.InvalidMessage, message: 'bad', abusive: true },
      }),
    });
    sendBinary(Buffer.from([1]));
    await flush();
    expect(dispatched).toEqual([
      { rejected: true, rejection: expect.objectContaining({ code: ErrorCode.InvalidMessage }) },
    ]);
  });

  describe('WebSocket pings', () => {
    it('answers a keepalive ping a second, for as long as it lasts, each with its own pong', () => {
      let now = performance.now();
      const clock = jest.spyOn(performance, 'now').mockImplementation(() => now);
      try {
        const { inbound, socket } = setup();
        for (let second = 0; second < 600; second++) {
          inbound.receivePing(Buffer.from(`${second}`));
          now += 1000;
        }
        expect(socket.pongs.map(String)).toEqual(Array.from({ length: 600 }, (_, i) => `${i}`));
        expect(socket.closes).toEqual([]);
      } finally {
        clock.mockRestore();
      }
    });

    it('closes a flood 1008 past CLIENT_PINGS_BURST, reads no more, and cuts it off after FLOOD_CUT_OFF_MS', () => {
      jest.useFakeTimers();
      try {
        const { inbound, socket } = setup();
        for (let i = 0; i < 1000; i++) {
          inbound.receivePing(Buffer.alloc(0));
        }
        expect(socket.pongs).toHaveLength(CLIENT_PINGS_BURST);
        expect(socket.closes).toEqual([[CloseCode.PolicyViolation, 'Too many refused messages']]);
        expect(socket.paused).toBe(true);
        jest.advanceTimersByTime(FLOOD_CUT_OFF_MS - 1);
        expect(socket.terminated).toBe(false);
        jest.advanceTimersByTime(1);
        expect(socket.terminated).toBe(true);
      } finally {
        jest.useRealTimers();
      }
    });

    it('does not resume reading a flood that back-pressure had paused', async () => {
      const { inbound, socket, send, setDispatch } = setup();
      let finish!: () => void;
      setDispatch(() => new Promise<void>((resolve) => (finish = resolve)));
      for (let i = 0; i < 4; i++) {
        send('{"action":"ping"}');
      }
      await flush();
      expect(socket.paused).toBe(true);
      for (let i = 0; i <= CLIENT_PINGS_BURST; i++) {
        inbound.receivePing(Buffer.alloc(0));
      }
      setDispatch(() => Promise.resolve());
      finish();
      await flush();
      expect(socket.paused).toBe(true);
    });

    it('answers no ping once the connection is closing', async () => {
      const { inbound, socket, sendBinary } = setup();
      sendBinary(Buffer.from([1]));
      inbound.receivePing(Buffer.from('late'));
      await flush();
      expect(socket.closes).toEqual([[CloseCode.UnsupportedData, expect.any(String)]]);
      expect(socket.pongs).toEqual([]);
    });
  });

  it('closes 1003 on a binary frame, then ignores what still arrives', async () => {
    const { socket } = setup();
    const dispatched: ParsedFrame[] = [];
    const inbound = new ClientInbound(
      socket as unknown as WebSocket,
      {
        maxJsonDepth: 8,
        maxPayload: 65536,
        maxPendingMessages: 4,
        rateLimits: LIMITS_OFF,
        logger: new StructuredLogger('test'),
        isThrowaway: () => false,
        shed: () => false,
        countDrop: () => undefined,
        relayAtOnce: () => false,
        readBinary: () => undefined,
        relayBinaryPose: () => false,
        reply: () => undefined,
        closeSocket: (_socket, code, reason) => socket.close(code, reason),
      },
      (frame) => {
        dispatched.push(frame);
        return Promise.resolve();
      },
    );
    inbound.receive(Buffer.from([1, 2, 3]), true);
    inbound.receive(Buffer.from('{"action":"ping"}'), false);
    await flush();
    expect(socket.closes).toEqual([[CloseCode.UnsupportedData, expect.any(String)]]);
    expect(dispatched).toEqual([]);
  });
});
