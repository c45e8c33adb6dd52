import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { createWriteStream, type WriteStream } from 'node:fs';
import { AUDIT_LOG_OPTIONS, type AuditLogOptions } from './audit-log.options.js';

/**
 * Appends one JSON line per event to the audit file. A single append-mode stream keeps the
 * lines in the order `append` was called and never makes a request wait for the disk: the
 * stream buffers what the disk has not taken yet (for an audit log, memory is a better place
 * to wait than a dropped line).
 */
@Injectable()
export class AuditLogWriter implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(AuditLogWriter.name);
  private stream?: WriteStream;
  private closed = false;

  constructor(@Inject(AUDIT_LOG_OPTIONS) private readonly options: AuditLogOptions) {}

  onModuleInit(): void {
    this.stream = createWriteStream(this.options.file, { flags: 'a', encoding: 'utf8' });
    // A full disk or a removed directory must cost us the audit trail, not the server.
    this.stream.on('error', (error) => {
      this.logger.error(`Cannot write the audit log ${this.options.file}: ${error.message}`);
    });
  }

  append(event: string, fields: object): void {
    if (this.closed || !this.stream) {
      // Members still leaving while the app closes: their lines come after the stream's end.
      this.logger.warn(`Audit log closed; dropped a ${event} line`);
      return;
    }
    this.stream.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
  }

  /** Flushes what is buffered and closes the file, so a clean stop loses no line. */
  async onApplicationShutdown(): Promise<void> {
    const stream = this.stream;
    if (this.closed || !stream) {
      return;
    }
    this.closed = true;
    await new Promise<void>((resolve) => stream.end(resolve));
  }
}
