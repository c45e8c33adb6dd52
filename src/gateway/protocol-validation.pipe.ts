import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { ProtocolError } from '../protocol/protocol-error.js';

/**
 * Validates a handler's message body against its DTO. The body is passed on as received (no
 * transformation), so relayed data stays exactly what the client sent; a failure names the first
 * offending field as a dotted path.
 */
export const protocolValidationPipe = new ValidationPipe({
  transform: false,
  forbidUnknownValues: true,
  stopAtFirstError: true,
  validationError: { target: false, value: false },
  exceptionFactory: (errors: ValidationError[]) => toProtocolError(errors),
});

export function toProtocolError(errors: ValidationError[]): ProtocolError {
  let path = '';
  let error: ValidationError | undefined = errors[0];
  while (error) {
    path = path ? `${path}.${error.property}` : error.property;
    if (error.constraints && Object.keys(error.constraints).length > 0) {
      const message = Object.values(error.constraints)[0];
      return ProtocolError.validation(path, message.replace(error.property, path));
    }
    error = error.children?.[0];
  }
  return ProtocolError.validation(path || 'message', 'The request is not valid');
}
