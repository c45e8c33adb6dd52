import type { INestApplicationContext } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { IncomingMessage } from 'node:http';
import type { ServerOptions, WebSocket, WebSocketServer } from 'ws';
import type { Observable } from 'rxjs';
import { BEARER_PROTOCOL_PREFIX } from '../auth/bearer-token.js';
import type { UpgradeDecision } from '../limits/connection-admission.js';
import type { RateLimits } from '../limits/connection-budget.js';
import {
  APP_SUBPROTOCOL,
  BINARY_POSES_SUBPROTOCOL,
  ClientAction,
  QUANTIZED_POSES_SUBPROTOCOL,
  CloseCode,
  CloseReason,
} from '../protocol/protocol.js';
import { StructuredLogger } from '../logging/structured-logger.js';
import { ErrorCode, ServerEvent } from '../protocol/protocol.js';
import type { ServerCounters } from '../telemetry/server-counters.js';
import type { BinaryPose } from './binary-pose.parser.js';
import { REJECTED_FRAME, unknownAction, type ParsedFrame } from './client-frame.parser.js';
import { ClientInbound } from './client-inbound.js';
import { readFramesDirectly } from './direct-frame-reader.js';
import { closeAfterQueuedOnProtocolError } from './protocol-error-close.js';
import { requestIdOf } from './protocol-exception.filter.js';

export type { UpgradeDecision } from '../limits/connection-admission.js';

export interface MultiplayerWsAdapterOptions {
  maxPayload: number;
  perMessageDeflate: boolean;
  /** Unread output (MAX_CLIENT_BUFFER_BYTES) past which a client that pings is cut off. */
  maxClientBufferBytes: number;
  maxJsonDepth: number;
  maxPendingMessages: number;
  rateLimits: RateLimits;
  /** Messages and bytes in, by kind; exported by /metrics. */
  counters?: ServerCounters;
  /** Runs before the WebSocket handshake completes: admission, auth, shutdown. */
  verifyUpgrade(request: IncomingMessage): UpgradeDecision | Promise<UpgradeDecision>;
  /**
   * An upgrade refused after the handshake (told by a close code) never becomes a connection:
   * the place its admission holds is given back as its close frame goes out.
   */
  releaseRefusedUpgrade(request: IncomingMessage): void;
  /** Closes a socket after writing what is already queued for it (replies before the close). */
  closeSocket(socket: WebSocket, code: number, reason: string): void;
  /** Sends a handler's returned `{event, data}` reply (and the adapter's own RATE_LIMITED). */
  reply(socket: WebSocket, reply: unknown): void;
  /** Whether a parsed message is a throwaway broadcast (EPHEMERAL_MESSAGE_TYPES). */
  isThrowaway(message: Record<string, unknown>): boolean;
  /**
   * Asked for every throwaway broadcast before it is dispatched, with the room it is for as sent:
   * true drops it on arrival (the server is overloaded), so it costs no handler call at all.
   */
  shedBroadcast(socket: WebSocket, roomId: unknown): boolean;
  /** Counts a throwaway broadcast dropped because its sender was over its pose budget. */
  countDrop(socket: WebSocket, roomId: unknown): void;
  /**
   * Relays a throwaway broadcast without the handler pipeline, when nothing of its connection is
   * queued before it; false hands it to its handler, which answers what is wrong with it.
   */
  relayAtOnce(socket: WebSocket, message: Record<string, unknown>): boolean;
  /**
   * Reads a binary frame of a client on the binary pose channel (a pose, or a refused frame);
   * undefined for a client that did not opt in, whose binary frames close it with 1003.
   */
  readBinary(socket: WebSocket, data: Buffer): BinaryPose | ParsedFrame | undefined;
  /** relayAtOnce for a binary pose. */
  relayBinaryPose(pose: BinaryPose): boolean;
  /** What a new socket's frames wait for before the first is handled (Connection.connectWork). */
  connectWork(socket: WebSocket): Promise<void> | undefined;
}

type HandlerCallback = (data: unknown, action: unknown) => unknown;

/** Refusals a retry repeats, told by a close code to clients that offered APP_SUBPROTOCOL. */
const CLOSE_CODE_OF_REFUSAL: ReadonlyMap<number, number> = new Map([
  [400, CloseCode.UpgradeBadRequest],
  [401, CloseCode.UpgradeUnauthorized],
  [403, CloseCode.UpgradeForbidden],
]);

/** Names only the built-in gateway may handle. */
const RESERVED_ACTIONS: ReadonlySet<string> = new Set([
  ...Object.values(ClientAction),
  REJECTED_FRAME,
]);

/**
 * The ws adapter with our rules: admission and auth in the upgrade, our payload limit, binary
 * frames refused (1003) but poses on the binary channel (docs/binary-poses.md), and each
 * connection's frames parsed, charged to its budget and dispatched strictly in arrival order,
 * one at a time (ClientInbound). Every action runs
 * through Nest's handler callback (guards, pipes, filters) but one: a valid throwaway broadcast
 * (a pose) with nothing queued before it, which the gateway relays at once (relayAtOnce).
 * Frames are parsed by parseClientFrame rather than the `messageParser` option, because a
 * refused frame (bad JSON, unknown action) must still reach a handler that answers it.
 */
export class MultiplayerWsAdapter extends WsAdapter {
  private readonly socketLogger = new StructuredLogger(MultiplayerWsAdapter.name);
  /**
   * Each socket's actions, from every gateway on the server (ours and a team's custom action
   * gateways): one inbound queue per socket dispatches them all in arrival order.
   */
  private readonly actionsOf = new WeakMap<WebSocket, Map<string, HandlerCallback>>();
  /** Each socket's inbound queue, until it has been given its connect work (waitForConnect). */
  private readonly awaitingConnect = new WeakMap<WebSocket, ClientInbound>();
  /** Action names a second gateway tried to take; each is logged once. */
  private readonly reportedDuplicates = new Set<string>();
  /** Upgrades refused but completed, to be closed at once with this code and reason. */
  private readonly refusedUpgrades = new WeakMap<IncomingMessage, UpgradeRefusal>();

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
      // A client's pings are answered within its budget (ClientInbound.receivePing), not each.
      autoPong: false,
      verifyClient: (info, done) => {
        this.verify(info.req).then(
          (decision) => {
            if (decision.ok) {
              return done(true);
            }
            const closeCode = CLOSE_CODE_OF_REFUSAL.get(decision.status);
            if (closeCode !== undefined && offersAppSubprotocol(info.req)) {
              this.refusedUpgrades.set(info.req, { code: closeCode, reason: decision.message });
              return done(true);
            }
            done(false, decision.status, decision.message);
          },
          (error: unknown) => {
            this.socketLogger.error('Upgrade check failed', error);
            done(false, 500, 'Internal server error');
          },
        );
      },
      handleProtocols: selectProtocol,
    };
    return super.create(port, serverOptions);
  }

  /** Keeps a failing connection handler contained to its own socket. */
  override bindClientConnect(
    server: WebSocketServer,
    callback: (...args: unknown[]) => void,
  ): void {
    server.on('connection', (socket: WebSocket, request: IncomingMessage) => {
      const refusal = this.refusedUpgrades.get(request);
      if (refusal) {
        // Never handed to the gateway: no session, no user, nothing it sends is read.
        closeRefused(socket, refusal);
        this.adapterOptions.releaseRefusedUpgrade(request);
        return;
      }
      cutOffUnreadPongs(socket, this.adapterOptions.maxClientBufferBytes);
      try {
        callback(socket, request);
      } catch (error) {
        this.socketLogger.error('Connection handler failed', error);
        socket.close(CloseCode.InternalError, CloseReason.InternalError);
      }
    });
  }

  /**
   * A client's protocol error (oversized frame, bad framing) closes its socket; it is the
   * client's fault, so it is not logged as a server error, and a client cannot flood the log.
   */
  override bindErrorHandler(server: WebSocketServer): WebSocketServer {
    server.on('connection', (socket: WebSocket) =>
      socket.on('error', (error) =>
        this.socketLogger.debug('Client socket error', { reason: error.message }),
      ),
    );
    server.on('error', (error) => this.socketLogger.error('WebSocket server error', error));
    return server;
  }

  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    _transform: (data: unknown) => Observable<unknown>,
  ): void {
    const known = this.actionsOf.get(client);
    if (known) {
      // Another gateway on the same socket: its actions join the socket's one queue.
      this.addActions(known, handlers);
      this.waitForConnect(client);
      return;
    }
    const callbacks = new Map<string, HandlerCallback>();
    this.actionsOf.set(client, callbacks);
    this.addActions(callbacks, handlers);
    const { adapterOptions } = this;
    const inbound = new ClientInbound(
      client,
      {
        maxJsonDepth: adapterOptions.maxJsonDepth,
        maxPayload: adapterOptions.maxPayload,
        maxPendingMessages: adapterOptions.maxPendingMessages,
        rateLimits: adapterOptions.rateLimits,
        logger: this.socketLogger,
        counters: adapterOptions.counters,
        isThrowaway: adapterOptions.isThrowaway,
        shed: adapterOptions.shedBroadcast,
        countDrop: adapterOptions.countDrop,
        relayAtOnce: adapterOptions.relayAtOnce,
        readBinary: adapterOptions.readBinary,
        relayBinaryPose: adapterOptions.relayBinaryPose,
        reply: adapterOptions.reply,
        closeSocket: adapterOptions.closeSocket,
      },
      (frame: ParsedFrame): Promise<void> => {
        const rejectFrame = callbacks.get(REJECTED_FRAME);
        if (frame.rejected) {
          return this.run(client, rejectFrame, frame.rejection, REJECTED_FRAME);
        }
        // REJECTED_FRAME is the adapter's own route; a client naming it is like any unknown name.
        const callback = frame.action === REJECTED_FRAME ? undefined : callbacks.get(frame.action);
        if (!callback) {
          const rejection = unknownAction(frame.action, frame.message);
          return this.run(client, rejectFrame, rejection, REJECTED_FRAME);
        }
        return this.run(client, callback, frame.message, frame.action);
      },
    );
    this.awaitingConnect.set(client, inbound);
    this.waitForConnect(client);
    client.on('message', inbound.receive);
    client.on('ping', inbound.receivePing);
    // A frame ws refuses closes the connection after the replies to the frames before it.
    closeAfterQueuedOnProtocolError(client, (code, reason) =>
      inbound.closeAfterQueued(code, reason),
    );
    // The frames clients send most skip ws's Receiver; the rest still come through 'message'.
    readFramesDirectly(client, inbound.receive);
  }

  /**
   * Holds the socket's frames back until its connect work settles (Connection.connectWork). Tried
   * at each gateway's binding: a team's gateway may be bound before the built-in one has made the
   * connection. Every binding runs in the socket's `connection` event, before any frame is read.
   */
  private waitForConnect(client: WebSocket): void {
    const inbound = this.awaitingConnect.get(client);
    const work = inbound && this.adapterOptions.connectWork(client);
    if (work) {
      this.awaitingConnect.delete(client);
      inbound.waitFor(work);
    }
  }

  /**
   * Built-in actions always keep their handler, whatever order Nest binds the gateways in (the
   * built-in gateway is the one that answers REJECTED_FRAME); among custom gateways the first
   * one to handle a name keeps it. Every clash is logged once.
   */
  private addActions(
    callbacks: Map<string, HandlerCallback>,
    handlers: MessageMappingProperties[],
  ): void {
    const builtIn = handlers.some((handler) => handler.message === REJECTED_FRAME);
    for (const handler of handlers) {
      const action = handler.message as string;
      if (!builtIn && (RESERVED_ACTIONS.has(action) || callbacks.has(action))) {
        this.reportDuplicate(action);
        continue;
      }
      callbacks.set(action, handler.callback as HandlerCallback);
    }
  }

  private reportDuplicate(action: string): void {
    if (!this.reportedDuplicates.has(action)) {
      this.reportedDuplicates.add(action);
      this.socketLogger.error(
        `Action "${action}" has two handlers; the built-in (or first registered) one runs`,
      );
    }
  }

  private async verify(request: IncomingMessage): Promise<UpgradeDecision> {
    return this.adapterOptions.verifyUpgrade(request);
  }

  private async run(
    client: WebSocket,
    callback: HandlerCallback | undefined,
    data: unknown,
    action: string,
  ): Promise<void> {
    // Nest's proxy hands handler errors to the exception filter; what reaches here escaped it.
    const result = await callback?.(data, action);
    if (result === undefined || result === null) {
      return;
    }
    try {
      if (!isReply(result)) {
        throw new TypeError('a reply is {event: string, data: object}');
      }
      this.adapterOptions.reply(client, result);
    } catch (error) {
      // A reply that cannot be sent (no data, a cycle) is the handler's bug, a team's custom
      // action's most likely: the client gets INTERNAL_ERROR, as when a handler throws, rather
      // than losing its connection (and its seats) to a 1011.
      this.socketLogger.error(`Action "${action}" returned a reply that cannot be sent`, error);
      const requestId = requestIdOf(data);
      this.adapterOptions.reply(client, {
        event: ServerEvent.Error,
        data: {
          message: 'Internal server error',
          code: ErrorCode.InternalError,
          ...(requestId !== undefined ? { requestId } : {}),
        },
      });
    }
  }
}

function isReply(value: unknown): value is { event: string; data: object } {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const { event, data } = value as { event?: unknown; data?: unknown };
  return typeof event === 'string' && typeof data === 'object' && data !== null;
}

interface UpgradeRefusal {
  code: number;
  reason: string;
}

/** How long a refused upgrade has to answer its close frame before it is cut off. */
const REFUSED_CLOSE_GRACE_MS = 1000;

/**
 * Tells a refused upgrade its close code (browsers cannot read an HTTP refusal). A client that
 * does not answer the close is cut off after REFUSED_CLOSE_GRACE_MS rather than ws's 30 s close
 * timeout: it holds no admission place, so nothing else would stop a flood of them piling up.
 */
function closeRefused(socket: WebSocket, refusal: UpgradeRefusal): void {
  socket.close(refusal.code, closeReason(refusal.reason));
  const cutOff = setTimeout(() => socket.terminate(), REFUSED_CLOSE_GRACE_MS);
  // An open socket keeps the process alive already; its timer need not delay a shutdown.
  cutOff.unref();
  socket.once('close', () => clearTimeout(cutOff));
}

/** A close frame's reason may hold at most 123 bytes of UTF-8. */
const MAX_CLOSE_REASON_BYTES = 123;

function closeReason(reason: string): string {
  let fitted = reason;
  while (Buffer.byteLength(fitted) > MAX_CLOSE_REASON_BYTES) {
    fitted = fitted.slice(0, -1);
  }
  return fitted;
}

/** The subprotocols that ask for close codes instead of HTTP statuses on a refused upgrade. */
const APP_SUBPROTOCOLS: ReadonlySet<string> = new Set([
  APP_SUBPROTOCOL,
  BINARY_POSES_SUBPROTOCOL,
  QUANTIZED_POSES_SUBPROTOCOL,
]);

function offersAppSubprotocol(request: IncomingMessage): boolean {
  const offered = request.headers['sec-websocket-protocol'];
  return (
    typeof offered === 'string' &&
    offered.split(',').some((protocol) => {
      const name = protocol.trim();
      return APP_SUBPROTOCOLS.has(name);
    })
  );
}

/**
 * The subprotocol answered to the client: the binary pose channel when offered (it is all the
 * app subprotocol is, and more), else the first it offered that is not a token, else the token
 * one (a browser that offered only `bearer.<token>` fails the handshake without an answer).
 */
function selectProtocol(protocols: Set<string>): string | false {
  if (protocols.has(QUANTIZED_POSES_SUBPROTOCOL)) {
    return QUANTIZED_POSES_SUBPROTOCOL;
  }
  if (protocols.has(BINARY_POSES_SUBPROTOCOL)) {
    return BINARY_POSES_SUBPROTOCOL;
  }
  let bearer: string | false = false;
  for (const protocol of protocols) {
    if (!protocol.startsWith(BEARER_PROTOCOL_PREFIX)) {
      return protocol;
    }
    bearer ||= protocol;
  }
  return bearer;
}

/**
 * A pong is queued like any other frame (ClientInbound.receivePing), and the output limits only
 * look at a socket when a room event is queued for it: a client in no room that pings without
 * reading would grow the server's memory without bound. Past the limit of unread output it is
 * cut off, as a slow consumer is; it reads nothing, so a close frame would never reach it.
 */
function cutOffUnreadPongs(socket: WebSocket, maxBufferedBytes: number): void {
  socket.on('ping', () => {
    if (socket.bufferedAmount > maxBufferedBytes) {
      socket.terminate();
    }
  });
}
