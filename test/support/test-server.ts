import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppModule, type AppModuleOptions } from '../../src/app.module.js';
import { configureApp } from '../../src/app.setup.js';
import { loadAppConfig } from '../../src/config/app.config.js';

export interface TestServer {
  app: INestApplication;
  /** ws://127.0.0.1:PORT */
  wsUrl: string;
  /** http://127.0.0.1:PORT */
  httpUrl: string;
  close(): Promise<void>;
}

/**
 * Boots the real AppModule on an ephemeral port with the given environment variables (validated
 * exactly as at boot), the same way main.ts does, plus any extension modules in `options.imports`.
 */
export async function startTestServer(
  env: Record<string, string> = {},
  options: Omit<AppModuleOptions, 'config'> = {},
): Promise<TestServer> {
  // Each server gets its own DATA_DIR, so persistent rooms of one test never show up in another.
  const dataDir = env.DATA_DIR ?? (await mkdtemp(join(tmpdir(), 'gms-test-data-')));
  // Resume off unless a test turns it on: the suites that predate it assert exact payloads
  // (without `seq`) and that a dropped socket leaves at once; test/resume.e2e-spec.ts covers it.
  const config = loadAppConfig({
    LOG_LEVEL: 'error',
    RECONNECT_GRACE_MS: '0',
    ...env,
    DATA_DIR: dataDir,
  });
  const moduleRef = await Test.createTestingModule({
    imports: [AppModule.forRoot({ ...options, config })],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: ['error'] });
  configureApp(app);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  let closed = false;
  return {
    app,
    wsUrl: `ws://127.0.0.1:${port}`,
    httpUrl: `http://127.0.0.1:${port}`,
    close: async () => {
      if (!closed) {
        closed = true;
        await app.close();
        if (env.DATA_DIR === undefined) {
          await rm(dataDir, { recursive: true, force: true });
        }
      }
    },
  };
}
