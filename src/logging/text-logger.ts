import { ConsoleLogger } from '@nestjs/common';
import { formatFieldsText, isLogFields } from './log-fields.js';

/**
 * LOG_FORMAT=text: Nest's ConsoleLogger. It already prints a call's plain-object parameters
 * after the message; a line's fields (logFields) are printed there as compact `key="value"`.
 */
export class TextLogger extends ConsoleLogger {
  protected override stringifyParams(params: Record<string, unknown>): string {
    return isLogFields(params)
      ? formatFieldsText(params).trimStart()
      : super.stringifyParams(params);
  }
}
