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
import { listenError } from './lifecycle/listen-error.js';
import { installProcessGuards } from './lifecycle/process-guards.js';
import { createLogger } from './logging/create-logger.js';
import { failedStartLine } from './logging/failed-start.js';

async function bootstrap(): Promise<void> {
  const stopExitingOnSignals = exitOnSignalsDuringBoot();
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
  stopExitingOnSignals();
  closeOnSignals(app, config.shutdownTimeoutMs);
  await app.listen(config.port, config.host).catch((error: unknown) => {
    throw listenError('PORT', config.host, config.port, error);
  });
  const httpServer = app.getHttpServer() as Server;
  const address = httpServer.address() as AddressInfo | null;
  new Logger('Bootstrap').log(
    `Listening on http://${config.host}:${address?.port ?? config.port} (ws and HTTP)`,
  );
}

/**
 * Until the app exists there is nothing to shut down gracefully: a signal ends the process at
 * once. Without a listener node ignores SIGTERM as PID 1 (a container without an init), and a
 * boot that waits (Redis that does not answer, up to 10 s) could not be stopped. Returns the
 * function that removes the listeners, for closeOnSignals to take over.
 */
function exitOnSignalsDuringBoot(): () => void {
  const exit = (signal: NodeJS.Signals): void => {
    new Logger('Bootstrap').warn(`${signal} while starting; exiting`);
    process.exit(0);
  };
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
  return () => {
    process.removeListener('SIGTERM', exit);
    process.removeListener('SIGINT', exit);
  };
}

/** Nest's application close, which passes a signal on to the shutdown hooks. */
interface ClosableApp {
  close(signal?: string): Promise<void>;
}

/**
 * On SIGTERM or SIGINT: closes the app (every shutdown hook, see ShutdownService) and exits 0.
 * Done here rather than by Nest's enableShutdownHooks so that the log says when the shutdown
 * completed, which tells it apart from one cut short by SHUTDOWN_TIMEOUT_MS.
 */
function closeOnSignals(app: ClosableApp, timeoutMs: number): void {
  const logger = new Logger('Bootstrap');
  let closing = false;
  const close = (signal: NodeJS.Signals): void => {
    if (closing) {
      return;
    }
    closing = true;
    forceExitAfter(timeoutMs);
    const startedAt = Date.now();
    // As Nest's enableShutdownHooks does: hooks are told the signal (onApplicationShutdown).
    app.close(signal).then(
      () => {
        logger.log(`Shut down in ${Date.now() - startedAt} ms`);
        process.exit(0);
      },
      (error: unknown) => {
        logger.error(
          `Shutdown failed: ${String(error)}`,
          error instanceof Error ? error.stack : undefined,
        );
        process.exit(1);
      },
    );
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, close);
  }
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
