import { RoomRequestDto } from './room-request.dto.js';

export class LeaveRoomDto extends RoomRequestDto {}
