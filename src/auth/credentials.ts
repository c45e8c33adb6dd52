import type { IncomingMessage } from 'node:http';

export interface Credentials {
  userId?: string;
  apiKey?: string;
}

/**
 * Reads `?userId=` and the API key (`?apiKey=`, `x-api-key` or `Authorization: Bearer`). An
 * empty value counts as absent, so that an empty `?apiKey=` does not hide a key in a header.
 */
export function credentialsOf(request: IncomingMessage): Credentials {
  const url = new URL(request.url ?? '/', 'ws://localhost');
  const userId = url.searchParams.get('userId') || undefined;
  const header = request.headers['x-api-key'];
  const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '')?.[1];
  // `||`, not `??`: an empty value is no key, and must not hide one in the next place.
  const apiKey =
    url.searchParams.get('apiKey') || (typeof header === 'string' ? header : '') || bearer;
  return { userId, apiKey };
}
