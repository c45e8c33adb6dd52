import type { ArgumentMetadata, PipeTransform } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validate, type ValidationError } from 'class-validator';
import { ProtocolError } from '../protocol/protocol-error.js';
import { oversizedArray, type ArrayLimits } from './dto/array-limits.js';

type DtoClass = new () => object;

/**
 * A DTO class may add rules its decorators cannot state (one field against another, a field
 * named by its exact path): a static `refine` that throws a ProtocolError. It runs once the
 * decorators pass, on the body as received, for the handler's pipe and for hook results alike.
 */
interface Refinable {
  refine?(value: object): void;
}

/**
 * A DTO class with arrays bounds them in a static `arrayLimits` too (the same constants as their
 * @ArrayMaxSize): a longer array is refused on its length, before anything walks its entries.
 */
interface Bounded {
  arrayLimits?: ArrayLimits;
}

/**
 * Validates a handler's message body against its DTO and passes on the body exactly as
 * received: Nest's ValidationPipe would hand back a re-serialized copy, with `undefined` for
 * every absent field and keys such as `constructor` stripped, and relayed data must stay
 * what the client sent. A failure names the first offending field as a dotted path.
 */
export class ProtocolValidationPipe implements PipeTransform<unknown, Promise<unknown>> {
  async transform(value: unknown, { metatype }: ArgumentMetadata): Promise<unknown> {
    if (!isDtoClass(metatype)) {
      return value;
    }
    const body = value ?? {};
    const oversized =
      typeof body === 'object' && oversizedArray(body, (metatype as Bounded).arrayLimits);
    if (oversized) {
      throw ProtocolError.validation(oversized.field, oversized.message);
    }
    const instance = plainToInstance(metatype, withoutConstructorKeys(body));
    const errors = await validate(instance, {
      forbidUnknownValues: true,
      stopAtFirstError: true,
      validationError: { target: false, value: false },
    });
    if (errors.length > 0) {
      throw toProtocolError(errors);
    }
    (metatype as Refinable).refine?.(value as object);
    return value;
  }
}

export const protocolValidationPipe = new ProtocolValidationPipe();

/**
 * Checks what a hook handed back against the request's DTO. A failure is the extension's bug,
 * not the client's: it is thrown as a plain Error, so the client gets INTERNAL_ERROR and the log
 * names the hook and the field.
 */
export async function assertHookResultValid(
  metatype: DtoClass,
  value: object,
  hook: string,
): Promise<void> {
  try {
    await protocolValidationPipe.transform(value, { metatype, type: 'body' });
  } catch (error) {
    const detail = error instanceof ProtocolError ? error.message : String(error);
    throw new Error(`A ${hook} hook returned an invalid request: ${detail}`, { cause: error });
  }
}

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

/**
 * class-transformer takes an own `constructor` key inside free-form data (message.data, state
 * items) for the value's class and throws. Such keys are legitimate data, validated only as part
 * of an object, so the copy that gets validated leaves them out; the handler still gets them.
 */
function withoutConstructorKeys(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) {
    return value;
  }
  if (Array.isArray(value)) {
    return value.map(withoutConstructorKeys);
  }
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (key !== 'constructor' && key !== '__proto__') {
      copy[key] = withoutConstructorKeys(item);
    }
  }
  return copy;
}

function isDtoClass(metatype: unknown): metatype is DtoClass {
  const primitives: unknown[] = [String, Boolean, Number, Array, Object];
  return typeof metatype === 'function' && !primitives.includes(metatype);
}
