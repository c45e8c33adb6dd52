import { Logger, type INestApplication } from '@nestjs/common';

/**
 * The last resort, for errors that escaped every handler. A rejected promise nobody awaited
 * leaves no half-done synchronous work behind: it is logged and the server keeps serving. An
 * uncaught exception may have stopped code between two steps that belong together, so the
 * process shuts down the graceful way (clients get 1001 and reconnect elsewhere) and exits 1 for
 * the orchestrator to restart it.
 */
export function installProcessGuards(app: INestApplication, shutdownTimeoutMs: number): void {
  const logger = new Logger('ProcessGuard');
  let exiting = false;
  process.on('unhandledRejection', (reason: unknown) => {
    // The stack as Nest's second argument: `stack_trace` in JSON lines, for Error Reporting.
    logger.error(`Unhandled promise rejection; still serving: ${String(reason)}`, stackOf(reason));
  });
  process.on('uncaughtException', (error: Error) => {
    logger.fatal(`Uncaught exception; shutting down: ${String(error)}`, stackOf(error));
    if (exiting) {
      return;
    }
    exiting = true;
    setTimeout(() => process.exit(1), shutdownTimeoutMs).unref();
    app.close().then(
      () => process.exit(1),
      () => process.exit(1),
    );
  });
}

function stackOf(reason: unknown): string | undefined {
  return reason instanceof Error ? reason.stack : undefined;
}
