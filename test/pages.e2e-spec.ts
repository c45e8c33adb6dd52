// The /demo and /admin pages as HTTP: what is served, with which headers, and what is not. The
// pages themselves run in a real browser in test/browser/pages.browser-spec.ts.
import { request } from 'node:http';
import { startTestServer, type TestServer } from './support/test-server.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A GET that sends the path exactly as given (fetch would resolve `..` before sending). */
function get(server: TestServer, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.httpUrl}${path}`, { path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('pages', () => {
  let server: TestServer;
  afterEach(() => server.close());

  it('serves the pages, their files and the SDK build with content types and the CSP', async () => {
    server = await startTestServer();
    const expected: Record<string, string> = {
      '/demo': 'text/html',
      '/admin': 'text/html',
      '/pages/demo.js': 'text/javascript',
      '/pages/demo-view.js': 'text/javascript',
      '/pages/admin.js': 'text/javascript',
      '/pages/pages.css': 'text/css',
      '/sdk/client/src/index.js': 'text/javascript',
      '/sdk/src/protocol/protocol.js': 'text/javascript',
    };
    for (const [path, type] of Object.entries(expected)) {
      const answer = await get(server, path);
      expect([path, answer.status]).toEqual([path, 200]);
      expect(answer.headers['content-type']).toBe(`${type}; charset=utf-8`);
      expect(answer.headers['content-security-policy']).toMatch(/^default-src 'self';/);
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
    }
    expect((await get(server, '/pages/icon.svg')).headers['content-type']).toBe('image/svg+xml');
    // The pages load their code from files: no inline script or style for the CSP to refuse.
    const demo = (await get(server, '/demo')).body;
    expect(demo).toContain('<script type="module" src="/pages/demo.js"></script>');
    expect(demo).not.toMatch(/<script>|<style|style=/);
  });

  it.each([
    '/pages/../package.json',
    '/pages/%2e%2e/package.json',
    '/sdk/../../package.json',
    '/sdk/client/src/index.d.ts',
    '/sdk/client/src/index.js.map',
    '/pages/demo.html',
    '/pages/missing.js',
    '/demo/',
  ])('answers 404 to %s, which is not on the list', async (path) => {
    server = await startTestServer();
    const answer = await get(server, path);
    expect(answer.status).toBe(404);
    expect(answer.body).not.toContain('"name": "gallery-multiplayer-server"');
  });

  it('DEMO_PAGE=false: no /demo and no SDK files, /admin still there', async () => {
    server = await startTestServer({ DEMO_PAGE: 'false' });
    expect((await get(server, '/demo')).status).toBe(404);
    expect((await get(server, '/pages/demo.js')).status).toBe(404);
    expect((await get(server, '/sdk/client/src/index.js')).status).toBe(404);
    expect((await get(server, '/admin')).status).toBe(200);
    expect((await get(server, '/pages/admin.js')).status).toBe(200);
  });
});
