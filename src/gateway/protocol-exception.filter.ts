import { Catch, type ArgumentsHost, type WsExceptionFilter } from '@nestjs/common';
import { WsException } from '@nestjs/websockets';
import type { WebSocket } from 'ws';
import { Replies } from '../delivery/replies.js';
import type { LogFields } from '../logging/log-fields.js';
import { StructuredLogger } from '../logging/structured-logger.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { ClientAction, ErrorCode, ServerEvent, type ErrorPayload } from '../protocol/protocol.js';
import { UsersService } from '../users/users.service.js';
import { REJECTED_FRAME, type RejectedFrame } from './client-frame.parser.js';

/** Turns anything a handler throws into the protocol's `error` event, sent to the sender only. */
@Catch()
export class ProtocolExceptionFilter implements WsExceptionFilter {
  private readonly logger = new StructuredLogger(ProtocolExceptionFilter.name);

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
    const data: unknown = ws.getData();
    const requestId = requestIdOf(data);
    const fields: LogFields = {
      userId: connection.userId,
      action: actionOf(ws.getPattern(), data),
      requestId,
      roomId: roomIdOf(data),
      ...connection.logContext,
    };
    const payload = this.toPayload(exception, fields);
    if (requestId !== undefined) {
      payload.requestId = requestId;
    }
    this.replies.send(connection, { event: ServerEvent.Error, data: payload });
  }

  /**
   * A refusal is expected (DEBUG, no stack); anything else is a bug (ERROR, with its stack). A
   * refused broadcast is not logged at all: nothing is logged per pose.
   */
  private toPayload(exception: unknown, fields: LogFields): ErrorPayload {
    if (exception instanceof ProtocolError) {
      if (fields.action !== ClientAction.Broadcast) {
        this.logger.debug('Request refused', { ...fields, code: exception.code });
      }
      return { message: exception.message, code: exception.code, ...exception.details };
    }
    if (exception instanceof WsException) {
      this.logger.debug('Request refused', { ...fields, code: ErrorCode.Forbidden });
      return { message: 'Forbidden', code: ErrorCode.Forbidden };
    }
    this.logger.error('Request failed unexpectedly', exception, {
      ...fields,
      code: ErrorCode.InternalError,
    });
    return { message: 'Internal server error', code: ErrorCode.InternalError };
  }
}

/** The handler's action; for a refused frame, the one the frame named, when it named one. */
function actionOf(pattern: string, data: unknown): string {
  if (pattern !== REJECTED_FRAME || typeof data !== 'object' || data === null) {
    return pattern;
  }
  const { action } = data as RejectedFrame;
  return typeof action === 'string' ? action : pattern;
}

function roomIdOf(data: unknown): string | undefined {
  const roomId =
    typeof data === 'object' && data !== null ? (data as { roomId?: unknown }).roomId : undefined;
  return typeof roomId === 'string' ? roomId : undefined;
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
