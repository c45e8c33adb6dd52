import { IsBoolean, ValidateIf } from 'class-validator';
import { RoomRequestDto } from '../../../src/extension-api.js';

/** `{action: 'raise_hand', roomId, raised?, requestId?}`. */
export class RaiseHandDto extends RoomRequestDto {
  /** Default true. Only an absent field takes the default: `null` is refused, not read as true. */
  @ValidateIf((_dto: unknown, value: unknown) => value !== undefined)
  @IsBoolean()
  raised?: boolean;
}
