import { ServerEvent } from '../protocol/protocol.js';
import { MessageKind } from '../telemetry/server-counters.js';
import type { QueuedFrame } from '../users/client-link.js';
import { encodeTextFrame } from './websocket-frame.js';

/**
 * A server event ready to be written to any number of sockets: the JSON text (kept for holding
 * back events during a join and for compressed sockets) and the complete WebSocket frame, built
 * once and shared by every recipient.
 */
export interface OutgoingFrame extends QueuedFrame {
  readonly bytes: Buffer;
  readonly kind: MessageKind;
}

export function toOutgoingFrame(message: unknown, throwaway = false): OutgoingFrame {
  const json = JSON.stringify(message);
  return { json, bytes: encodeTextFrame(json), throwaway, kind: kindOf(message, throwaway) };
}

/** Worked out once per frame, however many sockets it goes to. */
function kindOf(message: unknown, throwaway: boolean): MessageKind {
  if (throwaway) {
    return MessageKind.Pose;
  }
  switch ((message as { event?: unknown } | null)?.event) {
    case ServerEvent.StateUpdated:
    case ServerEvent.State:
      return MessageKind.State;
    case ServerEvent.Message:
      return MessageKind.Chat;
    default:
      return MessageKind.Control;
  }
}
