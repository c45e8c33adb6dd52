import type { IncomingMessage } from 'node:http';

/**
 * The request's URL, or undefined when it cannot be parsed. Express routes some request lines
 * that `URL` refuses (an absolute form with a bad port, `GET http://a:99999/stats`): parsed
 * unguarded, these became a 500 and an error log line carrying the URL, query key and all.
 */
export function requestUrlOf(request: IncomingMessage): URL | undefined {
  try {
    return new URL(request.url ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}
