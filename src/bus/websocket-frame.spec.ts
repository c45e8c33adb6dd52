import * as ws from 'ws';
import { encodeTextFrame } from './websocket-frame.js';

/** ws's frame parser; exported by the package, not described by @types/ws. */
interface FrameReceiver {
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  write(chunk: Buffer): void;
}
const { Receiver } = ws as unknown as {
  Receiver: new (options: { isServer: boolean }) => FrameReceiver;
};

/** Decodes frames with ws's own parser, as a client does. */
function decode(frame: Buffer): Promise<{ text: string; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    const receiver = new Receiver({ isServer: false });
    receiver.on('message', (data: Buffer, isBinary: boolean) =>
      resolve({ text: data.toString(), isBinary }),
    );
    receiver.on('error', reject);
    receiver.write(frame);
  });
}

describe('encodeTextFrame', () => {
  it.each([0, 1, 125, 126, 127, 65535, 65536, 70000])(
    'encodes a %i-byte payload that ws decodes back as text',
    async (size) => {
      const text = 'x'.repeat(size);
      const frame = encodeTextFrame(text);
      const headerLength = size < 126 ? 2 : size < 65536 ? 4 : 10;
      expect(frame.length).toBe(headerLength + size);
      expect(await decode(frame)).toEqual({ text, isBinary: false });
    },
  );

  it('counts the payload in UTF-8 bytes, not characters', async () => {
    const text = JSON.stringify({ name: 'Zoë 😀'.repeat(30) });
    expect(Buffer.byteLength(text)).toBeGreaterThan(text.length);
    expect(await decode(encodeTextFrame(text))).toEqual({ text, isBinary: false });
  });
});
