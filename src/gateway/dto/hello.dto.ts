import { ArrayMaxSize, IsArray, IsString, MaxLength } from 'class-validator';
import { MAX_CAPABILITIES, MAX_CAPABILITY_LENGTH } from '../../protocol/protocol.js';
import { OptionalRequestId } from './validators.js';

export class HelloDto {
  @OptionalRequestId() requestId?: string;
  @MaxLength(MAX_CAPABILITY_LENGTH, { each: true })
  @IsString({ each: true })
  @ArrayMaxSize(MAX_CAPABILITIES)
  @IsArray()
  capabilities: string[];

  /** Checked on the body as received, before any entry is looked at (array-limits.ts). */
  static readonly arrayLimits = { capabilities: MAX_CAPABILITIES };
}
