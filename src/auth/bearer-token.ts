import type { IncomingMessage } from 'node:http';
import { requestUrlOf } from './request-url.js';

/** The Sec-WebSocket-Protocol entry that carries a token: browsers cannot set headers. */
export const BEARER_PROTOCOL_PREFIX = 'bearer.';

/**
 * The token a request presents: `?token=`, then `Authorization: Bearer <token>`, then a
 * `bearer.<token>` entry in Sec-WebSocket-Protocol. An empty one counts as absent, so it hides
 * none after it. Undefined when there is none.
 */
export function bearerTokenOf(request: IncomingMessage): string | undefined {
  const fromQuery = requestUrlOf(request)?.searchParams.get('token');
  if (fromQuery) {
    return fromQuery;
  }
  const fromHeader = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
  if (fromHeader) {
    return fromHeader;
  }
  return protocolTokenOf(request.headers['sec-websocket-protocol']);
}

function protocolTokenOf(header: string | string[] | undefined): string | undefined {
  const offered = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',');
  for (const entry of offered) {
    const protocol = entry.trim();
    // A bare `bearer.` holds no token; a later entry may.
    if (protocol.startsWith(BEARER_PROTOCOL_PREFIX) && protocol !== BEARER_PROTOCOL_PREFIX) {
      return protocol.slice(BEARER_PROTOCOL_PREFIX.length);
    }
  }
  return undefined;
}
