import type { LoggerService, LogLevel } from '@nestjs/common';
import type { AppConfig } from '../config/app.config.js';
import type { LogLevelName } from '../config/environment.js';
import { JsonLogger } from './json-logger.js';
import { TextLogger } from './text-logger.js';

const LEVELS_FROM: Record<LogLevelName, LogLevel[]> = {
  debug: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
  log: ['fatal', 'error', 'warn', 'log'],
  warn: ['fatal', 'error', 'warn'],
  error: ['fatal', 'error'],
};

export type LoggerSettings = Pick<AppConfig, 'logLevel' | 'logFormat' | 'instanceId'>;

/** The process's logger: JSON lines for Cloud Logging, or Nest's text lines for humans. */
export function createLogger(config: LoggerSettings): LoggerService {
  if (config.logFormat === 'json') {
    return new JsonLogger({
      logLevels: LEVELS_FROM[config.logLevel],
      instanceId: config.instanceId,
    });
  }
  return new TextLogger({
    logLevels: LEVELS_FROM[config.logLevel],
    colors: process.stdout.isTTY === true,
  });
}
