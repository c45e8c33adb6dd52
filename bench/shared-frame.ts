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
