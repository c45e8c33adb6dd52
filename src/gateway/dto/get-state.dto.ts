import { RoomRequestDto } from './room-request.dto.js';

export class GetStateDto extends RoomRequestDto {}
