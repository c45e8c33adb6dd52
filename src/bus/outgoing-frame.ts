import { encodeTextFrame } from './websocket-frame.js';

/** A server event ready to be written to any number of sockets. */
export interface OutgoingFrame {
  /** The JSON text: kept for holding back events during a join and for compressed sockets. */
  readonly json: string;
  /** The complete WebSocket frame, built once, shared by every recipient. */
  readonly bytes: Buffer;
  /** Throwaway traffic (pose updates): dropped for a client that cannot keep up. */
  readonly throwaway: boolean;
  /** The room it belongs to, for the per-room drop count; undefined for replies. */
  readonly roomId: string | undefined;
}

export function toOutgoingFrame(
  message: unknown,
  options: { throwaway?: boolean; roomId?: string } = {},
): OutgoingFrame {
  const json = JSON.stringify(message);
  return {
    json,
    bytes: encodeTextFrame(json),
    throwaway: options.throwaway ?? false,
    roomId: options.roomId,
  };
}
