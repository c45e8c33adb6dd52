import { ClientAction } from '../../protocol/protocol.js';
import { HelloDto } from './hello.dto.js';
import { ResumeDto } from './resume.dto.js';
import { UpdateStateDto } from './update-state.dto.js';

/** A request's top-level arrays, each with the most entries it may hold (its @ArrayMaxSize). */
export type ArrayLimits = Readonly<Record<string, number>>;

/**
 * The bounded arrays of each built-in request, by action: each DTO's `arrayLimits`, which uses the
 * constant of its @ArrayMaxSize. class-validator checks that bound only in the pass that converts
 * and validates every entry (nested DTOs, ArrayUnique's O(n²)), and a 64 KB frame holds some
 * 21,000 empty objects: a tenth to a third of a second of CPU a frame, only to be refused.
 */
export const ARRAY_LIMITS_OF_ACTION: ReadonlyMap<string, ArrayLimits> = new Map<
  string,
  ArrayLimits
>([
  [ClientAction.Resume, ResumeDto.arrayLimits],
  [ClientAction.UpdateState, UpdateStateDto.arrayLimits],
  [ClientAction.Hello, HelloDto.arrayLimits],
]);

/** What is wrong with a body whose array is too long: the field, and the message for it. */
export interface OversizedArray {
  field: string;
  message: string;
}

/**
 * The first array of `body` longer than `limits` allow, looked at by its length only: none of its
 * entries is read. The message is class-validator's, so the refusal reads as it always did.
 */
export function oversizedArray(
  body: object,
  limits: ArrayLimits | undefined,
): OversizedArray | undefined {
  if (!limits) {
    return undefined;
  }
  for (const [field, max] of Object.entries(limits)) {
    const value = (body as Record<string, unknown>)[field];
    if (Array.isArray(value) && value.length > max) {
      return { field, message: `${field} must contain no more than ${max} elements` };
    }
  }
  return undefined;
}
