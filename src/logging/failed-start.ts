import { hostname } from 'node:os';

/**
 * The line main.ts writes when the server cannot start. LOG_FORMAT is read raw: the config that
 * would validate it may be what failed. A config error is expected (no stack); it names the
 * variable at fault in its message.
 */
export function failedStartLine(
  error: unknown,
  isConfigError: boolean,
  logFormat: string | undefined,
): string {
  const message = error instanceof Error ? error.message : String(error);
  const stack = error instanceof Error ? (error.stack ?? message) : message;
  if (logFormat?.trim() !== 'json') {
    return isConfigError ? message : `Failed to start: ${stack}`;
  }
  return JSON.stringify({
    severity: 'CRITICAL',
    message: isConfigError ? message : `Failed to start: ${message}`,
    time: new Date().toISOString(),
    context: 'Bootstrap',
    instanceId: `${hostname()}-${process.pid}`,
    ...(isConfigError ? {} : { stack_trace: stack }),
  });
}
