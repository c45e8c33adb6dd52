import { EventEmitter } from 'node:events';
import type { INestApplicationContext } from '@nestjs/common';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { EMPTY } from 'rxjs';
import type { WebSocket } from 'ws';
import { jest } from '@jest/globals';
import { StructuredLogger } from '../logging/structured-logger.js';
import type { WebSocketServer } from 'ws';
import { CLIENT_PINGS_BURST } from '../limits/connection-budget.js';
import { CloseCode } from '../protocol/protocol.js';
import { REJECTED_FRAME } from './client-frame.parser.js';
import {
  MultiplayerWsAdapter,
  type MultiplayerWsAdapterOptions,
} from './multiplayer-ws.adapter.js';

/** What the adapter touches of a socket when it binds handlers and reads a text frame. */
class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  pause(): void {}
  resume(): void {}
  close(): void {
    this.readyState = 2;
  }
  pongs = 0;
  pong(): void {
    this.pongs++;
  }
  terminate(): void {
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

function adapterWith(
  connectWork: (socket: WebSocket) => Promise<void> | undefined,
  overrides: Partial<MultiplayerWsAdapterOptions> = {},
) {
  const options = {
    maxJsonDepth: 8,
    maxPayload: 65536,
    maxPendingMessages: 16,
    rateLimits: LIMITS_OFF,
    isThrowaway: () => false,
    shedBroadcast: () => false,
    countDrop: () => undefined,
    relayAtOnce: () => false,
    readBinary: () => undefined,
    relayBinaryPose: () => false,
    reply: () => undefined,
    closeSocket: () => undefined,
    connectWork,
    ...overrides,
  } as unknown as MultiplayerWsAdapterOptions;
  return new MultiplayerWsAdapter(undefined as unknown as INestApplicationContext, options);
}

/** One gateway's handlers: each action records that it ran. */
function handlers(ran: string[], ...actions: string[]): MessageMappingProperties[] {
  return actions.map((action) => ({
    message: action,
    methodName: action,
    isAckHandledManually: false,
    callback: () => {
      ran.push(action);
      return Promise.resolve(undefined);
    },
  }));
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('MultiplayerWsAdapter', () => {
  beforeAll(() => {
    jest.spyOn(StructuredLogger.prototype, 'error').mockImplementation(() => undefined);
  });

  describe('a new socket’s connect work', () => {
    it('holds frames back even when a team’s gateway is bound before the built-in one', async () => {
      const socket = new FakeSocket();
      const client = socket as unknown as WebSocket;
      let finish!: () => void;
      const work = new Promise<void>((resolve) => (finish = resolve));
      // The built-in gateway's handleConnection makes the connection, and with it the work.
      let connected = false;
      const adapter = adapterWith(() => (connected ? work : undefined));
      const ran: string[] = [];

      // A team's gateway first: the built-in one has not made the connection yet.
      adapter.bindMessageHandlers(client, handlers(ran, 'raise_hand'), () => EMPTY);
      connected = true;
      adapter.bindMessageHandlers(client, handlers(ran, REJECTED_FRAME, 'get_state'), () => EMPTY);

      socket.emit('message', Buffer.from('{"action":"get_state","roomId":"r"}'), false);
      socket.emit('message', Buffer.from('{"action":"raise_hand"}'), false);
      await flush();
      expect(ran).toEqual([]);
      finish();
      await flush();
      await flush();
      expect(ran).toEqual(['get_state', 'raise_hand']);
    });

    it('handles frames at once when there is no connect work', async () => {
      const socket = new FakeSocket();
      const adapter = adapterWith(() => undefined);
      const ran: string[] = [];
      adapter.bindMessageHandlers(
        socket as unknown as WebSocket,
        handlers(ran, REJECTED_FRAME, 'get_state'),
        () => EMPTY,
      );
      socket.emit('message', Buffer.from('{"action":"get_state","roomId":"r"}'), false);
      await flush();
      expect(ran).toEqual(['get_state']);
    });
  });

  describe('a client’s WebSocket pings', () => {
    it('are left to the adapter by ws (autoPong off)', async () => {
      const adapter = adapterWith(() => undefined);
      const server = adapter.create(0) as WebSocketServer;
      try {
        expect(server.options.autoPong).toBe(false);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('are answered within the allowance, and a flood is closed 1008', () => {
      const socket = new FakeSocket();
      const closes: number[] = [];
      const adapter = adapterWith(() => undefined, {
        closeSocket: (_socket, code) => closes.push(code),
      });
      adapter.bindMessageHandlers(
        socket as unknown as WebSocket,
        handlers([], REJECTED_FRAME),
        () => EMPTY,
      );
      for (let i = 0; i < 100; i++) {
        socket.emit('ping', Buffer.alloc(0));
      }
      expect(socket.pongs).toBe(CLIENT_PINGS_BURST);
      expect(closes).toEqual([CloseCode.PolicyViolation]);
    });
  });
});
