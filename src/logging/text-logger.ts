import { ConsoleLogger, type LogLevel } from '@nestjs/common';
import { formatFieldsText, isLogFields } from './log-fields.js';

/** LOG_FORMAT=text: Nest's ConsoleLogger, with a line's fields appended as ` key=value`. */
export class TextLogger extends ConsoleLogger {
  protected override printMessages(
    messages: unknown[],
    context?: string,
    logLevel?: LogLevel,
    writeStreamType?: 'stdout' | 'stderr',
    errorStack?: unknown,
    params?: Record<string, unknown>,
  ): void {
    const fields = messages.find(isLogFields);
    if (fields) {
      const others = messages.filter((message) => message !== fields);
      const suffix = formatFieldsText(fields);
      const last = others.length - 1;
      if (last >= 0 && typeof others[last] === 'string') {
        others[last] = `${others[last]}${suffix}`;
      } else {
        others.push(suffix.trimStart());
      }
      messages = others;
    }
    super.printMessages(messages, context, logLevel, writeStreamType, errorStack, params);
  }
}
