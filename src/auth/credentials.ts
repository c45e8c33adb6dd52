import type { IncomingMessage } from 'node:http';
import { requestUrlOf } from './request-url.js';

export interface Credentials {
  userId?: string;
  apiKey?: string;
}

/**
 * Reads `?userId=` and the API key (`?apiKey=`, `x-api-key` or `Authorization: Bearer`). An
 * empty value counts as absent, so that an empty `?apiKey=` does not hide a key in a header.
 */
export function credentialsOf(request: IncomingMessage): Credentials {
  // An unparseable URL carries no query credentials; the headers may still.
  const query = requestUrlOf(request)?.searchParams;
  const userId = query?.get('userId') || undefined;
  const header = request.headers['x-api-key'];
  const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '')?.[1];
  // `||`, not `??`: an empty value is no key, and must not hide one in the next place.
  const apiKey = query?.get('apiKey') || (typeof header === 'string' ? header : '') || bearer;
  return { userId, apiKey };
}
