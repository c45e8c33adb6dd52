import {
  IsNumber,
  IsObject,
  IsString,
  MaxLength,
  MinLength,
  Validate,
  ValidateIf,
} from 'class-validator';
import { POSE_UPDATE } from '../../protocol/protocol.js';
import { PoseDataRule } from './pose-data.dto.js';

/** Optional, but `null` is not a value: only an absent field is skipped. */
const IfPresent = () => ValidateIf((_object: unknown, value: unknown) => value !== undefined);

/**
 * An application message (`broadcast`, `send_message`): relayed exactly as received. The
 * broadcast hot path checks the same rules by hand (checkAppMessage); a spec holds them equal.
 */
export class AppMessageDto {
  @MaxLength(64) @MinLength(1) @IsString() type: string;
  @IfPresent() @MaxLength(64) @IsString() senderId?: string;
  @IfPresent() @IsNumber({ allowNaN: false, allowInfinity: false }) timestamp?: number;
  /** Optional, except on a `pose_update`, which must carry a pose. */
  @ValidateIf((message: AppMessageDto, value: unknown) => {
    return value !== undefined || message.type === POSE_UPDATE;
  })
  @Validate(PoseDataRule)
  @IsObject()
  data?: Record<string, unknown>;
}
