/**
 * One unmasked, unfragmented WebSocket text frame (RFC 6455, section 5.2), header and payload
 * in a single buffer. A fan-out builds it once and writes the same bytes to every recipient, so
 * no recipient costs a header allocation or a payload copy.
 */
export function encodeTextFrame(json: string): Buffer {
  const payloadLength = Buffer.byteLength(json);
  const frame = allocateFrame(0x81, payloadLength); // FIN + opcode 1 (text)
  frame.write(json, frame.length - payloadLength, 'utf8');
  return frame;
}

/**
 * An unmasked binary frame (FIN + opcode 2) of `payloadLength` bytes, its header written: the
 * caller fills the payload, which starts at `frame.length - payloadLength`.
 */
export function allocateBinaryFrame(payloadLength: number): Buffer {
  return allocateFrame(0x82, payloadLength);
}

function allocateFrame(firstByte: number, payloadLength: number): Buffer {
  const headerLength = payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10;
  // Not from the shared 8 KB pool: a frame held by one slow socket must not pin a whole slab.
  const frame = Buffer.allocUnsafeSlow(headerLength + payloadLength);
  frame[0] = firstByte;
  if (headerLength === 2) {
    frame[1] = payloadLength;
  } else if (headerLength === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(payloadLength, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(payloadLength), 2);
  }
  return frame;
}
