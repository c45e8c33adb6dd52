import { Type } from 'class-transformer';
import { IsDefined, IsObject, ValidateNested } from 'class-validator';
import { AppMessageDto } from './app-message.dto.js';
import { IsProtocolId, OptionalRequestId } from './validators.js';

export class SendMessageDto {
  @OptionalRequestId() requestId?: string;
  @IsProtocolId() targetUserId: string;
  @IsDefined() @IsObject() @ValidateNested() @Type(() => AppMessageDto) message: AppMessageDto;
}
