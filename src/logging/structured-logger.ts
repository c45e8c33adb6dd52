import { Logger } from '@nestjs/common';
import { inspect } from 'node:util';
import { logFields, type LogFields } from './log-fields.js';

/**
 * A Nest Logger whose lines carry fields (roomId, userId, requestId, action, code, trace): the
 * JSON logger writes them as top-level fields, the text logger appends them as ` key=value`.
 * Never for pose traffic: nothing on the per-pose path logs.
 */
export class StructuredLogger {
  private readonly logger: Logger;

  constructor(context: string) {
    this.logger = new Logger(context);
  }

  debug(message: string, fields: LogFields = {}): void {
    this.logger.debug(message, logFields(fields));
  }

  log(message: string, fields: LogFields = {}): void {
    this.logger.log(message, logFields(fields));
  }

  warn(message: string, fields: LogFields = {}): void {
    this.logger.warn(message, logFields(fields));
  }

  /** An unexpected error: its stack goes along (`stack_trace` in JSON). */
  error(message: string, error?: unknown, fields: LogFields = {}): void {
    if (error instanceof Error) {
      // Fields before the stack: Nest's ConsoleLogger takes a trailing string as the stack.
      this.logger.error(`${message}: ${String(error)}`, logFields(fields), error.stack);
    } else if (error !== undefined) {
      this.logger.error(`${message}: ${inspect(error)}`, logFields(fields));
    } else {
      this.logger.error(message, logFields(fields));
    }
  }
}
