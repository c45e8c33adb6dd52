import { Sender } from 'ws';

// ws exports Sender at run time, but @types/ws does not declare it.
declare module 'ws' {
  interface FrameOptions {
    fin: boolean;
    opcode: number;
    mask: boolean;
    readOnly: boolean;
    rsv1: boolean;
  }
  export const Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] };
}

/** One unmasked text frame, header and payload in a single buffer, for any number of sockets. */
export function sharedTextFrame(json: string): Buffer {
  const parts = Sender.frame(Buffer.from(json), {
    fin: true,
    opcode: 1,
    mask: false,
    readOnly: true,
    rsv1: false,
  });
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/**
 * An unmasked binary frame with room for `payloadLength` bytes: the WebSocket header is written,
 * the payload starts at `payloadAt`. The caller fills it in place, once for all recipients.
 */
export function sharedBinaryFrame(payloadLength: number): { frame: Buffer; payloadAt: number } {
  const payloadAt = payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(payloadAt + payloadLength);
  frame[0] = 0x82;
  if (payloadAt === 2) {
    frame[1] = payloadLength;
  } else if (payloadAt === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(payloadLength, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(payloadLength), 2);
  }
  return { frame, payloadAt };
}
