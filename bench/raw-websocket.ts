// A minimal WebSocket client for the simulated users. The `ws` client allocates a Buffer and
// emits an event per received frame, about 2 us per frame: at a million deliveries a second
// that is two cores, more than the machine the server runs on. This one walks the TCP chunks
// and hands each text frame's payload to the caller as a view into the chunk, so counting a
// pose costs a memcmp. It speaks only what a client of our servers needs: unfragmented text and
// binary frames, ping/pong and close, and optionally one subprotocol (gallery.v2 for --binary);
// `--client ws` swaps the `ws` package back in to cross-check it.
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';

const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OPCODE_CONTINUATION = 0x0;
const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
const NO_STATUS = 1005;
const ABNORMAL_CLOSURE = 1006;

export interface SocketHandlers {
  onOpen(): void;
  /** A text frame's payload: a view into the received chunk, valid only during the call. */
  onText(payload: Buffer): void;
  /** A binary frame's payload, likewise a view valid only during the call. */
  onBinary(payload: Buffer): void;
  /** Called once, however the connection ends. */
  onClose(code: number, reason: string): void;
  onError(error: Error): void;
}

/** What a simulated user needs of its connection: the raw client and `ws` both provide it. */
export interface SimSocket {
  readonly isOpen: boolean;
  send(text: string): void;
  /** Sends a binary frame; the payload is copied before the call returns. */
  sendBinary(payload: Buffer): void;
  terminate(): void;
}

export class RawWebSocket implements SimSocket {
  private socket: Socket | undefined;
  private partial: Buffer | undefined;
  private ended = false;
  private readonly abortHandshake: () => void;

  constructor(
    url: string,
    handshakeTimeoutMs: number,
    private readonly handlers: SocketHandlers,
    /** A subprotocol to offer; the server must answer it, or the connection fails. */
    subprotocol?: string,
  ) {
    const target = new URL(url);
    const key = randomBytes(16).toString('base64');
    const upgrade = request({
      host: target.hostname,
      port: target.port === '' ? 80 : Number(target.port),
      path: `${target.pathname}${target.search}`,
      agent: false,
      timeout: handshakeTimeoutMs,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Key': key,
        'Sec-WebSocket-Version': '13',
        ...(subprotocol === undefined ? {} : { 'Sec-WebSocket-Protocol': subprotocol }),
      },
    });
    this.abortHandshake = () => upgrade.destroy();
    upgrade.on('upgrade', (response, socket, head) => {
      const expected = createHash('sha1')
        .update(key + WEBSOCKET_GUID)
        .digest('base64');
      if (response.headers['sec-websocket-accept'] !== expected) {
        socket.destroy();
        this.end(ABNORMAL_CLOSURE, 'bad Sec-WebSocket-Accept', new Error('bad handshake'));
        return;
      }
      const answered = response.headers['sec-websocket-protocol'];
      if (subprotocol !== undefined && answered !== subprotocol) {
        socket.destroy();
        const why = `the server answered subprotocol '${answered ?? ''}', not '${subprotocol}'`;
        this.end(ABNORMAL_CLOSURE, why, new Error(why));
        return;
      }
      this.attach(socket, head);
    });
    upgrade.on('response', (response) => {
      response.resume();
      this.end(
        ABNORMAL_CLOSURE,
        '',
        new Error(`Unexpected server response: ${response.statusCode}`),
      );
    });
    upgrade.on('timeout', () => {
      upgrade.destroy();
      this.end(ABNORMAL_CLOSURE, '', new Error('Opening handshake has timed out'));
    });
    upgrade.on('error', (error) => this.end(ABNORMAL_CLOSURE, '', error));
    upgrade.end();
  }

  get isOpen(): boolean {
    return this.socket !== undefined && !this.ended;
  }

  send(text: string): void {
    if (this.isOpen) {
      this.socket?.write(maskedFrame(OPCODE_TEXT, text));
    }
  }

  sendBinary(payload: Buffer): void {
    if (this.isOpen) {
      this.socket?.write(maskedFrame(OPCODE_BINARY, payload));
    }
  }

  /** Drops the connection without a close handshake. */
  terminate(): void {
    if (this.socket) {
      this.socket.destroy();
    } else {
      this.abortHandshake();
    }
    this.end(ABNORMAL_CLOSURE, '');
  }

  private attach(socket: Socket, head: Buffer): void {
    this.socket = socket;
    // The handshake's timeout must not fire on an idle, joined user later.
    socket.setTimeout(0);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.end(ABNORMAL_CLOSURE, ''));
    socket.on('error', () => undefined);
    this.handlers.onOpen();
    if (head.length > 0) {
      this.onData(head);
    }
  }

  /** Hands out every complete frame of the chunk; keeps an incomplete tail for the next one. */
  private onData(chunk: Buffer): void {
    let data = chunk;
    if (this.partial) {
      data = Buffer.concat([this.partial, chunk]);
      this.partial = undefined;
    }
    let offset = 0;
    while (!this.ended) {
      const available = data.length - offset;
      if (available < 2) {
        break;
      }
      const first = data[offset];
      const second = data[offset + 1];
      let length = second & 0x7f;
      let headerLength = 2;
      if (length === 126) {
        if (available < 4) {
          break;
        }
        length = data.readUInt16BE(offset + 2);
        headerLength = 4;
      } else if (length === 127) {
        if (available < 10) {
          break;
        }
        length = Number(data.readBigUInt64BE(offset + 2));
        headerLength = 10;
      }
      if ((second & 0x80) !== 0) {
        this.failProtocol('the server masked a frame');
        return;
      }
      if (available < headerLength + length) {
        break;
      }
      const start = offset + headerLength;
      this.onFrame(first & 0x0f, data.subarray(start, start + length));
      offset = start + length;
    }
    if (offset < data.length && !this.ended) {
      // Copied: a view would pin the whole chunk until the frame completes.
      this.partial = Buffer.from(data.subarray(offset));
    }
  }

  private onFrame(opcode: number, payload: Buffer): void {
    switch (opcode) {
      case OPCODE_TEXT:
      case OPCODE_CONTINUATION:
        this.handlers.onText(payload);
        break;
      case OPCODE_BINARY:
        this.handlers.onBinary(payload);
        break;
      case OPCODE_CLOSE: {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : NO_STATUS;
        const reason = payload.length > 2 ? payload.toString('utf8', 2) : '';
        this.socket?.end(maskedFrame(OPCODE_CLOSE, payload.subarray(0, 2)));
        this.end(code, reason);
        break;
      }
      case OPCODE_PING:
        // The server's heartbeat: an unanswered ping gets the connection terminated.
        this.socket?.write(maskedFrame(0xa, Buffer.from(payload)));
        break;
      default:
        break;
    }
  }

  private failProtocol(why: string): void {
    this.socket?.destroy();
    this.end(ABNORMAL_CLOSURE, why, new Error(why));
  }

  private end(code: number, reason: string, error?: Error): void {
    if (this.ended) {
      return;
    }
    this.ended = true;
    this.partial = undefined;
    if (error) {
      this.handlers.onError(error);
    }
    this.handlers.onClose(code, reason);
  }
}

/**
 * A client frame must be masked. The key is all zeros, which leaves the payload as it is and
 * saves the XOR; the RFC wants unpredictable keys to protect proxies from browser scripts,
 * which does not concern a load generator talking to a server it knows.
 */
function maskedFrame(opcode: number, payload: Buffer | string): Buffer {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const headerLength = 2 + lengthBytes + 4;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x80 | opcode;
  if (lengthBytes === 0) {
    frame[1] = 0x80 | length;
  } else if (lengthBytes === 2) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  frame.writeUInt32BE(0, headerLength - 4);
  if (typeof payload === 'string') {
    frame.write(payload, headerLength);
  } else {
    payload.copy(frame, headerLength);
  }
  return frame;
}

/** The same connection through the `ws` package, to cross-check the raw client's counts. */
export function wsPackageSocket(
  url: string,
  handshakeTimeoutMs: number,
  handlers: SocketHandlers,
  subprotocol?: string,
): SimSocket {
  const socket = new WebSocket(url, subprotocol === undefined ? [] : [subprotocol], {
    perMessageDeflate: false,
    skipUTF8Validation: true,
    handshakeTimeout: handshakeTimeoutMs,
  });
  socket.on('open', () => handlers.onOpen());
  socket.on('message', (data: Buffer, isBinary: boolean) =>
    isBinary ? handlers.onBinary(data) : handlers.onText(data),
  );
  socket.on('error', (error) => handlers.onError(error));
  socket.on('close', (code, reason) => handlers.onClose(code, reason.toString()));
  return {
    get isOpen() {
      return socket.readyState === WebSocket.OPEN;
    },
    send: (text) => socket.send(text),
    // ws may hold on to the buffer (a masked copy is made only when it sends at once).
    sendBinary: (payload) => socket.send(Buffer.from(payload)),
    terminate: () => socket.terminate(),
  };
}
