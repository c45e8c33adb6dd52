import { IsProtocolId, OptionalRequestId } from './validators.js';

/** The shape shared by requests that name one room. */
export class RoomRequestDto {
  @OptionalRequestId() requestId?: string;
  @IsProtocolId() roomId: string;
}
