import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import type { WebSocket } from 'ws';
import {
  ActionGateway,
  protocolValidationPipe as validated,
  RequireRoomRole,
  RoomMessenger,
  Senders,
} from '../../src/extension-api.js';
import { AuditLogWriter } from './audit-log.writer.js';
import { RaiseHandDto } from './dto/raise-hand.dto.js';

export const RAISE_HAND = 'raise_hand';
export const HAND_RAISED = 'hand_raised';

export type HandRaised = {
  roomId: string;
  userId: string;
  raised: boolean;
};

/** `raise_hand`: any member, viewers included, asks for (or gives up) the floor. */
@ActionGateway()
export class RaiseHandGateway {
  constructor(
    private readonly senders: Senders,
    private readonly messenger: RoomMessenger,
    private readonly audit: AuditLogWriter,
  ) {}

  @SubscribeMessage(RAISE_HAND)
  @RequireRoomRole('viewer')
  raiseHand(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: RaiseHandDto,
  ): { event: typeof HAND_RAISED; data: HandRaised & { requestId?: string } } {
    const { userId } = this.senders.of(socket);
    const hand: HandRaised = { roomId: body.roomId, userId, raised: body.raised ?? true };
    // The others get the event; the sender's copy is its reply, which carries the requestId.
    this.messenger.toRoom(body.roomId, HAND_RAISED, hand, userId);
    this.audit.append(HAND_RAISED, hand);
    const requestId = body.requestId !== undefined ? { requestId: body.requestId } : {};
    return { event: HAND_RAISED, data: { ...requestId, ...hand } };
  }
}
