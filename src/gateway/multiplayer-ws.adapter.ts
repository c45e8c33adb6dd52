import { Logger, type INestApplicationContext } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { IncomingMessage } from 'node:http';
import type { RawData, ServerOptions, WebSocket, WebSocketServer } from 'ws';
import type { Observable } from 'rxjs';
import { ClientAction, CloseCode, CloseReason } from '../protocol/protocol.js';
import {
  parseClientFrame,
  REJECTED_FRAME,
  unknownAction,
  type ParsedFrame,
} from './client-frame.parser.js';

/** What the upgrade decides: let the socket in, or refuse it with an HTTP status. */
export type UpgradeDecision = { ok: true } | { ok: false; status: number; message: string };

export interface MultiplayerWsAdapterOptions {
  maxPayload: number;
  perMessageDeflate: boolean;
  /** Runs before the WebSocket handshake completes: auth, userId checks, shutdown. */
  verifyUpgrade(request: IncomingMessage): UpgradeDecision;
  /** Sends a handler's returned `{event, data}` reply. */
  reply(socket: WebSocket, reply: unknown): void;
  /**
   * Asked for every `broadcast` before it is dispatched: true drops it on arrival (the server is
   * overloaded and it is throwaway), so it costs no handler call at all.
   */
  shedBroadcast(socket: WebSocket, message: Record<string, unknown>): boolean;
}

type HandlerCallback = (data: unknown, action: unknown) => unknown;

/**
 * The ws adapter with our rules: auth in the upgrade, our payload limit, binary frames refused
 * (1003), and each connection's messages dispatched strictly in arrival order, one at a time.
 * Every action still runs through Nest's handler callback (guards, pipes, filters). Frames are
 * parsed by parseClientFrame rather than the `messageParser` option, because a refused frame
 * (bad JSON, unknown action) must still reach a handler that answers it.
 */
export class MultiplayerWsAdapter extends WsAdapter {
  private readonly socketLogger = new Logger(MultiplayerWsAdapter.name);

  constructor(
    app: INestApplicationContext,
    private readonly adapterOptions: MultiplayerWsAdapterOptions,
  ) {
    super(app);
  }

  override create(port: number, options: Record<string, unknown> = {}): unknown {
    const serverOptions: ServerOptions = {
      ...options,
      maxPayload: this.adapterOptions.maxPayload,
      perMessageDeflate: this.adapterOptions.perMessageDeflate,
      verifyClient: (info, done) => {
        const decision = this.adapterOptions.verifyUpgrade(info.req);
        if (decision.ok) {
          done(true);
          return;
        }
        done(false, decision.status, decision.message);
      },
    };
    return super.create(port, serverOptions);
  }

  /**
   * A client's protocol error (oversized frame, bad framing) closes its socket; it is the
   * client's fault, so it is not logged as a server error, and a client cannot flood the log.
   */
  override bindErrorHandler(server: WebSocketServer): WebSocketServer {
    server.on('connection', (socket: WebSocket) =>
      socket.on('error', (error) =>
        this.socketLogger.debug(`Client socket error: ${error.message}`),
      ),
    );
    server.on('error', (error) => this.socketLogger.error(error));
    return server;
  }

  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    _transform: (data: unknown) => Observable<unknown>,
  ): void {
    const callbacks = new Map<string, HandlerCallback>();
    for (const handler of handlers) {
      callbacks.set(handler.message as string, handler.callback as HandlerCallback);
    }
    const rejectFrame = callbacks.get(REJECTED_FRAME);
    callbacks.delete(REJECTED_FRAME);
    const dispatch = (frame: ParsedFrame): Promise<void> => {
      if (frame.rejected) {
        return this.run(client, rejectFrame, frame.rejection, REJECTED_FRAME);
      }
      const callback = callbacks.get(frame.action);
      if (!callback) {
        return this.run(
          client,
          rejectFrame,
          unknownAction(frame.action, frame.message),
          REJECTED_FRAME,
        );
      }
      return this.run(client, callback, frame.message, frame.action);
    };
    let queue: Promise<void> = Promise.resolve();
    client.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) {
        client.close(CloseCode.UnsupportedData, CloseReason.UnsupportedData);
        return;
      }
      const frame = parseClientFrame(data);
      if (
        !frame.rejected &&
        frame.action === ClientAction.Broadcast &&
        this.adapterOptions.shedBroadcast(client, frame.message)
      ) {
        return;
      }
      queue = queue.then(() => dispatch(frame));
    });
  }

  private async run(
    client: WebSocket,
    callback: HandlerCallback | undefined,
    data: unknown,
    action: string,
  ): Promise<void> {
    try {
      const result = await callback?.(data, action);
      if (result !== undefined && result !== null) {
        this.adapterOptions.reply(client, result);
      }
    } catch {
      // Handler errors already went to the client through the exception filter.
    }
  }
}
