import { applyDecorators } from '@nestjs/common';
import {
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  ValidateBy,
  ValidateIf,
  buildMessage,
  type ValidationOptions,
} from 'class-validator';
import { ID_PATTERN } from '../../protocol/protocol.js';

/** A room or user id: 1-64 characters of [A-Za-z0-9._-]. */
export const IsProtocolId = () =>
  applyDecorators(
    IsString(),
    Matches(ID_PATTERN, { message: '$property must be 1-64 characters of [A-Za-z0-9._-]' }),
  );

/**
 * May be left out, but null is checked like any value: IsOptional would let null through, and a
 * state section set to null breaks every reader of the state (and a persistent room's file).
 */
export const OptionalNotNull = () =>
  ValidateIf((_object: object, value: unknown) => value !== undefined);

export const OptionalRequestId = () => applyDecorators(IsOptional(), IsString(), MaxLength(128));

/** An object whose keys are all among `allowed`. */
export function HasOnlyKeys(allowed: readonly string[], options?: ValidationOptions) {
  return ValidateBy(
    {
      name: 'hasOnlyKeys',
      validator: {
        validate: (value: unknown) =>
          typeof value === 'object' &&
          value !== null &&
          Object.keys(value).every((key) => allowed.includes(key)),
        defaultMessage: buildMessage(
          (each) => `${each}$property may only contain ${allowed.join(', ')}`,
          options,
        ),
      },
    },
    options,
  );
}
