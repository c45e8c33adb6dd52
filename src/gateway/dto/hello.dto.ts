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
}
