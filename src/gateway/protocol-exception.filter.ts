import { Catch, Logger, type ArgumentsHost, type WsExceptionFilter } from '@nestjs/common';
import { WsException } from '@nestjs/websockets';
import type { WebSocket } from 'ws';
import { Replies } from '../delivery/replies.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { ErrorCode, ServerEvent, type ErrorPayload } from '../protocol/protocol.js';
import { UsersService } from '../users/users.service.js';

/** Turns anything a handler throws into the protocol's `error` event, sent to the sender only. */
@Catch()
export class ProtocolExceptionFilter implements WsExceptionFilter {
  private readonly logger = new Logger(ProtocolExceptionFilter.name);

  constructor(
    private readonly users: UsersService,
    private readonly replies: Replies,
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ws = host.switchToWs();
    const connection = this.users.connectionOf(ws.getClient<WebSocket>());
    if (!connection) {
      return;
    }
    const payload = this.toPayload(exception);
    const requestId = requestIdOf(ws.getData());
    if (requestId !== undefined) {
      payload.requestId = requestId;
    }
    this.replies.send(connection, { event: ServerEvent.Error, data: payload });
  }

  private toPayload(exception: unknown): ErrorPayload {
    if (exception instanceof ProtocolError) {
      return { message: exception.message, code: exception.code, ...exception.details };
    }
    if (exception instanceof WsException) {
      return { message: 'Forbidden', code: ErrorCode.Forbidden };
    }
    this.logger.error(
      exception instanceof Error ? (exception.stack ?? exception.message) : exception,
    );
    return { message: 'Internal server error', code: ErrorCode.InternalError };
  }
}

/** The request's own requestId, echoed on its error (any JSON string or number the client sent). */
export function requestIdOf(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) {
    return undefined;
  }
  const requestId = (data as { requestId?: unknown }).requestId;
  if (typeof requestId === 'string' || typeof requestId === 'number') {
    return requestId as string;
  }
  return undefined;
}
