import { Type } from 'class-transformer';
import { IsDefined, IsObject, ValidateNested } from 'class-validator';
import { AppMessageDto } from './app-message.dto.js';
import { IsProtocolId, OptionalNotNull, OptionalRequestId } from './validators.js';

export class SendMessageDto {
  @OptionalRequestId() requestId?: string;
  @IsProtocolId() targetUserId: string;
  /** The room to send it through (both must be in it); default: a room they share. */
  @OptionalNotNull() @IsProtocolId() roomId?: string;
  @IsDefined() @IsObject() @ValidateNested() @Type(() => AppMessageDto) message: AppMessageDto;
}
