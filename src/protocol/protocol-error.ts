import { ErrorCode } from './protocol.js';

export interface ProtocolErrorDetails {
  field?: string;
  currentVersion?: number;
  retryAfterMs?: number;
}

/**
 * A failed request, thrown by services and guards. Only the gateway's exception filter turns it
 * into an `error` event, so the code and message a client sees are decided where the rule lives.
 */
export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ProtocolErrorDetails = {},
  ) {
    super(message);
    this.name = 'ProtocolError';
  }

  static validation(field: string, message: string): ProtocolError {
    return new ProtocolError(ErrorCode.ValidationFailed, message, { field });
  }

  static roomNotFound(roomId: string): ProtocolError {
    return new ProtocolError(ErrorCode.RoomNotFound, `Room ${roomId} does not exist`);
  }

  static notInRoom(roomId: string): ProtocolError {
    return new ProtocolError(ErrorCode.NotInRoom, `You have not joined room ${roomId}`);
  }

  static forbidden(message: string): ProtocolError {
    return new ProtocolError(ErrorCode.Forbidden, message);
  }
}
