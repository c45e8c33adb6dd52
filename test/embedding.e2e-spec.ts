// docs/extending.md: a team that embeds the server in a Nest app of its own creates the app from
// AppModule.forRoot and calls configureApp, both from the extension API, before listening.
import { NestFactory } from '@nestjs/core';
import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { loadAppConfig } from '../src/config/app.config.js';
import { AppModule, configureApp } from '../src/extension-api.js';
import { TestClient } from './support/test-client.js';

describe('embedding the server in an app of your own', () => {
  let app: INestApplication | undefined;

  afterEach(async () => {
    await app?.close();
  });

  it('serves rooms once configureApp has run, as the docs show', async () => {
    const config = loadAppConfig({ LOG_LEVEL: 'error', RECONNECT_GRACE_MS: '0' });
    app = await NestFactory.create(AppModule.forRoot({ config }), { logger: ['error'] });
    configureApp(app);
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;

    const alice = await TestClient.connect(`ws://127.0.0.1:${port}/?userId=alice`);
    const roomInfo = await alice.join('embedded');
    expect(roomInfo.users.map((user) => user.id)).toEqual(['alice']);
    alice.close();
  });
});
