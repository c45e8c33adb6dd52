import type { LoggerService, LogLevel } from '@nestjs/common';
import { inspect } from 'node:util';
import { splitLogCall } from './log-fields.js';

export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL';

/** Nest's levels as Google Cloud Logging severities. */
export const SEVERITY_OF: Record<LogLevel, Severity> = {
  verbose: 'DEBUG',
  debug: 'DEBUG',
  log: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

interface Writable {
  write(chunk: string): unknown;
}

export interface JsonLoggerOptions {
  logLevels: LogLevel[];
  instanceId: string;
  /** Default: process.stdout / process.stderr (ERROR and CRITICAL). */
  stdout?: Writable;
  stderr?: Writable;
}

/**
 * LOG_FORMAT=json: one JSON object per line, in the shape Google Cloud Logging reads without
 * configuration (severity, message, time, plus our top-level fields); ERROR and CRITICAL go to
 * stderr, the rest to stdout. One JSON.stringify per line.
 */
export class JsonLogger implements LoggerService {
  private levels: Set<LogLevel>;
  private readonly stdout: Writable;
  private readonly stderr: Writable;

  constructor(private readonly options: JsonLoggerOptions) {
    this.levels = new Set(options.logLevels);
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
  }

  setLogLevels(levels: LogLevel[]): void {
    this.levels = new Set(levels);
  }

  log(message: unknown, ...optionalParams: unknown[]): void {
    this.write('log', message, optionalParams);
  }
  error(message: unknown, ...optionalParams: unknown[]): void {
    this.write('error', message, optionalParams);
  }
  warn(message: unknown, ...optionalParams: unknown[]): void {
    this.write('warn', message, optionalParams);
  }
  debug(message: unknown, ...optionalParams: unknown[]): void {
    this.write('debug', message, optionalParams);
  }
  verbose(message: unknown, ...optionalParams: unknown[]): void {
    this.write('verbose', message, optionalParams);
  }
  fatal(message: unknown, ...optionalParams: unknown[]): void {
    this.write('fatal', message, optionalParams);
  }

  /** The JSON line for one call, without its newline (exported for tests and main.ts). */
  format(level: LogLevel, message: unknown, optionalParams: unknown[]): string {
    const { context, fields, rest } = splitLogCall(optionalParams);
    const severity = SEVERITY_OF[level];
    const entry: Record<string, unknown> = {
      severity,
      message: textOf(message),
      time: new Date().toISOString(),
      instanceId: this.options.instanceId,
    };
    if (context !== undefined) {
      entry.context = context;
    }
    if (fields) {
      Object.assign(entry, fields);
    }
    const unexpected = severity === 'ERROR' || severity === 'CRITICAL';
    if (message instanceof Error && unexpected) {
      entry.stack_trace = message.stack ?? message.message;
    }
    for (const part of rest) {
      if (part instanceof Error) {
        if (unexpected) {
          entry.stack_trace = part.stack ?? part.message;
        }
      } else if (typeof part === 'string' && unexpected && part.includes('\n    at ')) {
        // Nest's `error(message, stack)`.
        entry.stack_trace = part;
      } else {
        entry.message = `${String(entry.message)} ${textOf(part)}`;
      }
    }
    try {
      return JSON.stringify(entry);
    } catch {
      return JSON.stringify({ ...entry, message: inspect(entry.message) });
    }
  }

  private write(level: LogLevel, message: unknown, optionalParams: unknown[]): void {
    if (!this.levels.has(level)) {
      return;
    }
    const line = `${this.format(level, message, optionalParams)}\n`;
    if (level === 'error' || level === 'fatal') {
      this.stderr.write(line);
    } else {
      this.stdout.write(line);
    }
  }
}

function textOf(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  if (value instanceof Error) {
    return value.message;
  }
  return inspect(value, { depth: 4, breakLength: Infinity });
}
