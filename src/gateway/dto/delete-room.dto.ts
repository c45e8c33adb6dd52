import { RoomRequestDto } from './room-request.dto.js';

export class DeleteRoomDto extends RoomRequestDto {}
