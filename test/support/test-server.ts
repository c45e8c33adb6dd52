import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { AppModule } from '../../src/app.module.js';
import { configureApp } from '../../src/app.setup.js';
import { appConfig, loadAppConfig } from '../../src/config/app.config.js';

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
 * exactly as at boot), the same way main.ts does.
 */
export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const config = loadAppConfig({ LOG_LEVEL: 'error', ...env });
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(appConfig.KEY)
    .useValue(config)
    .compile();
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
      }
    },
  };
}
