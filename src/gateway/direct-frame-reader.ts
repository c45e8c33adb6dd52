import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/** Takes a client message as ws's 'message' event gives it: the payload, and whether binary. */
export type MessageListener = (data: Buffer, isBinary: boolean) => void;

/**
 * The parts of ws's connection and Receiver the reader relies on. They are private to ws (pinned
 * at 8.22.0 in package.json); readFramesDirectly checks they are there before it takes over.
 */
interface WsInternals {
  _socket?: Socket;
  _receiver?: ReceiverInternals;
}

interface ReceiverInternals {
  /** GET_INFO between frames; other values while a frame is being read or inflated. */
  _state: number;
  /** Bytes ws holds of a frame it has not finished. */
  _bufferedBytes: number;
  /** The opcode of a fragmented message in progress, else 0. */
  _fragmented: number;
  /** ws's maxPayload (MAX_MESSAGE_BYTES); 0 is no limit. */
  _maxPayload: number;
  _skipUTF8Validation: boolean;
  /** Chunks written to the Receiver (a Writable) that it has not taken yet. */
  writableLength: number;
}

/** ws's Receiver state between frames (lib/receiver.js). */
const GET_INFO = 0;
/** FIN set, no RSV bits (not compressed), opcode 1 or 2: a whole text or binary message. */
const WHOLE_TEXT = 0x81;
const WHOLE_BINARY = 0x82;
const MASKED = 0x80;
/** The 7-bit length saying a 16-bit length follows. */
const LENGTH_16 = 126;
/** The 7-bit length saying a 64-bit length follows: not read directly. */
const LENGTH_64 = 127;
const MASK_BYTES = 4;

/**
 * Reads the frames clients send most (poses above all: whole, masked, uncompressed text and binary
 * frames under 64 KB) straight from the TCP socket and hands each to `onMessage`, as ws's
 * 'message' event would. It skips ws's Receiver, a Writable stream with a buffer list and two
 * emits per frame, which took about a third of the inbound pose path's CPU at 1,000 users.
 *
 * Everything else still goes to ws, byte for byte as before: control frames (ping, pong, close),
 * fragments, compressed and oversized frames, frames ws refuses (unmasked, RSV bits, bad UTF-8),
 * a frame split across reads and whatever follows it in the chunk. A chunk is only read here
 * while ws holds nothing of an earlier frame, so messages keep their order. While the connection
 * is not open, uses another binaryType, or its 'message' listeners are anything but `onMessage`
 * alone, ws reads everything.
 *
 * Returns false, leaving ws as it is, when ws's internals are not the ones this was written for.
 */
export function readFramesDirectly(client: WebSocket, onMessage: MessageListener): boolean {
  const { _socket: socket, _receiver: receiver } = client as unknown as WsInternals;
  const wsOnData = socket && wsDataListener(socket);
  if (!socket || !receiver || !wsOnData || !hasExpectedShape(receiver)) {
    return false;
  }
  const toWs = (chunk: Buffer): void => {
    wsOnData.call(socket, chunk);
  };
  // Whether `onMessage` is the one 'message' listener, looked at again only after listeners came
  // or went rather than for every frame: counting them took about a tenth of this reader's time.
  // Undefined until looked at: lazily, as 'newListener' comes before the listener is added.
  let onlyOnMessage: boolean | undefined;
  const forget = (event: string | symbol): void => {
    if (event === 'message') {
      onlyOnMessage = undefined;
    }
  };
  client.on('newListener', forget);
  client.on('removeListener', forget);
  const onlyListener = (): boolean => (onlyOnMessage ??= isOnlyListener(client, onMessage));
  const readsDirectly = (): boolean =>
    receiver._state === GET_INFO &&
    receiver._bufferedBytes === 0 &&
    receiver._fragmented === 0 &&
    receiver.writableLength === 0 &&
    client.readyState === client.OPEN &&
    client.binaryType === 'nodebuffer' &&
    onlyListener();

  const onData = (chunk: Buffer): void => {
    let at = 0;
    while (at < chunk.length && readsDirectly()) {
      const next = readFrame(chunk, at, receiver, onMessage);
      if (next === at) {
        break;
      }
      at = next;
    }
    if (at < chunk.length) {
      toWs(at === 0 ? chunk : chunk.subarray(at));
    }
  };
  // ws takes its listener off by reference when a close frame comes, on a framing error and when
  // the socket closes, and then reads nothing more. EventEmitter's removeListener also matches a
  // listener's `listener` property (the way once() wrappers are removed), so each of those
  // removals takes this one off instead.
  Object.assign(onData, { listener: wsOnData });
  socket.removeListener('data', wsOnData);
  socket.on('data', onData);
  return true;
}

/**
 * Hands on the frame at `at` when it is one to read here and whole in `chunk`, and returns where
 * the next frame starts; returns `at` to leave the frame (and the rest of the chunk) to ws.
 */
function readFrame(
  chunk: Buffer,
  at: number,
  receiver: ReceiverInternals,
  onMessage: MessageListener,
): number {
  const first = chunk[at];
  if ((first !== WHOLE_BINARY && first !== WHOLE_TEXT) || at + 2 > chunk.length) {
    return at;
  }
  const second = chunk[at + 1];
  if ((second & MASKED) === 0) {
    return at;
  }
  let length = second & ~MASKED;
  let maskAt = at + 2;
  if (length === LENGTH_16) {
    if (at + 4 > chunk.length) {
      return at;
    }
    length = chunk.readUInt16BE(at + 2);
    maskAt = at + 4;
  } else if (length === LENGTH_64) {
    return at;
  }
  const start = maskAt + MASK_BYTES;
  const end = start + length;
  if (end > chunk.length || (receiver._maxPayload > 0 && length > receiver._maxPayload)) {
    return at;
  }
  toggleMask(chunk, maskAt, start, end);
  const payload = chunk.subarray(start, end);
  const isBinary = first === WHOLE_BINARY;
  if (!isBinary && !receiver._skipUTF8Validation && !isUtf8(payload)) {
    // Masked again, as it came: ws refuses it and closes the connection (1007).
    toggleMask(chunk, maskAt, start, end);
    return at;
  }
  onMessage(payload, isBinary);
  return end;
}

/**
 * XORs the payload with the frame's 4-byte mask, in place: it masks and unmasks alike. Four bytes
 * a step with the mask in locals: about twice as fast as a byte loop indexing the mask.
 */
function toggleMask(chunk: Buffer, maskAt: number, start: number, end: number): void {
  const m0 = chunk[maskAt];
  const m1 = chunk[maskAt + 1];
  const m2 = chunk[maskAt + 2];
  const m3 = chunk[maskAt + 3];
  let i = start;
  for (; i + 4 <= end; i += 4) {
    chunk[i] ^= m0;
    chunk[i + 1] ^= m1;
    chunk[i + 2] ^= m2;
    chunk[i + 3] ^= m3;
  }
  if (i < end) {
    chunk[i++] ^= m0;
  }
  if (i < end) {
    chunk[i++] ^= m1;
  }
  if (i < end) {
    chunk[i] ^= m2;
  }
}

/**
 * ws's own 'data' listener on a connection's TCP socket (lib/websocket.js socketOnData); undefined
 * if ws is not the one expected. Found also once the direct reader stands in for it: listeners()
 * gives a listener's `listener` property in its place, as for once() wrappers.
 */
export function wsDataListener(socket: Socket): ((chunk: Buffer) => void) | undefined {
  return socket
    .listeners('data')
    .find((listener): listener is (chunk: Buffer) => void => listener.name === 'socketOnData');
}

function isOnlyListener(client: WebSocket, onMessage: MessageListener): boolean {
  const listeners = client.listeners('message');
  return listeners.length === 1 && listeners[0] === onMessage;
}

function hasExpectedShape(receiver: ReceiverInternals): boolean {
  return (
    typeof receiver._state === 'number' &&
    typeof receiver._bufferedBytes === 'number' &&
    typeof receiver._fragmented === 'number' &&
    typeof receiver._maxPayload === 'number' &&
    typeof receiver._skipUTF8Validation === 'boolean' &&
    typeof receiver.writableLength === 'number'
  );
}
