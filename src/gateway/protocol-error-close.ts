import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { wsDataListener } from './direct-frame-reader.js';

/** Closes the connection with `code` once the frames read before the bad one are answered. */
export type CloseAfterQueued = (code: number, reason: string) => void;

/** The parts of ws's connection the takeover relies on (ws is pinned at 8.22.0). */
interface WsInternals {
  _receiver?: { listeners(event: 'error'): ((error: Error) => void)[] } & NodeJS.EventEmitter;
  _socket?: Socket;
  _errorEmitted?: boolean;
}

/** The close code for an error of ws's that carries none (all of ws 8.22's carry one). */
const PROTOCOL_ERROR = 1002;

/**
 * A frame ws refuses (too big, not UTF-8, unmasked, RSV bits, a bad opcode) makes ws send its close
 * frame at once: ahead of the replies to the requests the client sent before that frame, which are
 * still queued, and so lost. This takes that error over: reading stops at the bad frame as ws would
 * stop it, and the close with ws's code goes out after those replies (`closeAfterQueued`). The
 * connection's 'error' event is still emitted, once, as ws does.
 *
 * Returns false, leaving ws as it is, when ws's internals are not the ones this was written for.
 */
export function closeAfterQueuedOnProtocolError(
  client: WebSocket,
  closeAfterQueued: CloseAfterQueued,
): boolean {
  const internals = client as unknown as WsInternals;
  const { _receiver: receiver, _socket: socket } = internals;
  const wsOnError = receiver
    ?.listeners('error')
    .find((listener) => listener.name === 'receiverOnError');
  // Removing it removes the direct reader too, when that stands in for it (its `listener`).
  const wsOnData = socket && wsDataListener(socket);
  if (!receiver || !socket || !wsOnError || !wsOnData) {
    return false;
  }
  const onError = (error: Error & { [key: symbol]: unknown }): void => {
    // As ws does: nothing more is read (the direct reader goes with ws's listener), but the socket
    // keeps flowing so that the peer's end is seen.
    socket.removeListener('data', wsOnData);
    process.nextTick(() => socket.resume());
    // No reason, as ws gives none.
    closeAfterQueued(closeCodeOf(error), '');
    if (!internals._errorEmitted) {
      internals._errorEmitted = true;
      client.emit('error', error);
    }
  };
  receiver.removeListener('error', wsOnError);
  receiver.on('error', onError);
  return true;
}

/** ws puts the close code on its errors under a symbol (kStatusCode); 1002 if it is not there. */
function closeCodeOf(error: Error & { [key: symbol]: unknown }): number {
  for (const key of Object.getOwnPropertySymbols(error)) {
    if (key.description === 'status-code' && typeof error[key] === 'number') {
      return error[key];
    }
  }
  return PROTOCOL_ERROR;
}
