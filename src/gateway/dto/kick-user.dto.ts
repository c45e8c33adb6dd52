import { RoomRequestDto } from './room-request.dto.js';
import { IsProtocolId } from './validators.js';

export class KickUserDto extends RoomRequestDto {
  @IsProtocolId() targetUserId: string;
}
