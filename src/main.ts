import './lifecycle/v8-flags.js';
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EXTENSION_MODULES } from './app.extensions.js';
import { AppModule } from './app.module.js';
import { JwtVerifier } from './auth/jwt-verifier.js';
import { configureApp } from './app.setup.js';
import { appConfig } from './config/app.config.js';
import { ConfigValidationError } from './config/environment.js';
import { installProcessGuards } from './lifecycle/process-guards.js';
import { createLogger } from './logging/create-logger.js';
import { failedStartLine } from './logging/failed-start.js';

async function bootstrap(): Promise<void> {
  // Validated here first, so a bad variable (or JWT key) stops the process with one clear message.
  const bootConfig = appConfig();
  if (bootConfig.authMode === 'jwt') {
    JwtVerifier.fromSettings(bootConfig.jwt);
  }
  const app = await NestFactory.create(
    AppModule.forRoot({ config: bootConfig, imports: EXTENSION_MODULES }),
    {
      logger: createLogger(bootConfig),
      abortOnError: false,
    },
  );
  const config = configureApp(app);
  installProcessGuards(app, config.shutdownTimeoutMs);
  // Nest runs the shutdown hooks on these signals and then exits 0.
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => forceExitAfter(config.shutdownTimeoutMs));
  }
  await app.listen(config.port, config.host);
  const httpServer = app.getHttpServer() as Server;
  const address = httpServer.address() as AddressInfo | null;
  new Logger('Bootstrap').log(
    `Listening on http://${config.host}:${address?.port ?? config.port} (ws and HTTP)`,
  );
}

/** A shutdown that hangs (a stuck client, a stuck hook) must not outlive SHUTDOWN_TIMEOUT_MS. */
function forceExitAfter(ms: number): void {
  setTimeout(() => {
    new Logger('Bootstrap').warn(`Shutdown took longer than ${ms} ms; exiting now`);
    process.exit(0);
  }, ms).unref();
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(
    `${failedStartLine(error, error instanceof ConfigValidationError, process.env.LOG_FORMAT)}\n`,
  );
  process.exit(1);
});
