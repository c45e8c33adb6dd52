import type { QueuedFrame } from '../users/client-link.js';
import { encodeTextFrame } from './websocket-frame.js';

/**
 * A server event ready to be written to any number of sockets: the JSON text (kept for holding
 * back events during a join and for compressed sockets) and the complete WebSocket frame, built
 * once and shared by every recipient.
 */
export interface OutgoingFrame extends QueuedFrame {
  readonly bytes: Buffer;
}

export function toOutgoingFrame(message: unknown, throwaway = false): OutgoingFrame {
  const json = JSON.stringify(message);
  return { json, bytes: encodeTextFrame(json), throwaway };
}
