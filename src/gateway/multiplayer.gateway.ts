import { Logger, UseFilters } from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  type OnGatewayConnection,
  type OnGatewayDisconnect,
} from '@nestjs/websockets';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { Fanout } from '../bus/fanout.service.js';
import { withRequestId } from '../bus/reply.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import {
  ClientAction,
  ErrorCode,
  ServerEvent,
  type Avatar,
  type ServerMessage,
} from '../protocol/protocol.js';

const AVATAR_FIELDS = ['type', 'color', 'displayName', 'modelUrl'] as const;
import { RelayService } from '../rooms/relay.service.js';
import { RoomsService } from '../rooms/rooms.service.js';
import { StateService } from '../state/state.service.js';
import type { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';
import { checkBroadcast } from './app-message.validator.js';
import { REJECTED_FRAME, type RejectedFrame } from './client-frame.parser.js';
import { CreateRoomDto } from './dto/create-room.dto.js';
import { DeleteRoomDto } from './dto/delete-room.dto.js';
import { GetStateDto } from './dto/get-state.dto.js';
import { JoinRoomDto, type AvatarDto } from './dto/join-room.dto.js';
import { KickUserDto } from './dto/kick-user.dto.js';
import { LeaveRoomDto } from './dto/leave-room.dto.js';
import { PingDto } from './dto/ping.dto.js';
import { SendMessageDto } from './dto/send-message.dto.js';
import { SetRoleDto } from './dto/set-role.dto.js';
import { UpdateStateDto } from './dto/update-state.dto.js';
import { RequireRoomRole } from './require-room-role.decorator.js';
import { ProtocolExceptionFilter } from './protocol-exception.filter.js';
import { protocolValidationPipe as validated } from './protocol-validation.pipe.js';
import { credentialsOf } from '../auth/credentials.js';

/**
 * The protocol's entry point: each handler validates, authorizes and hands the request to a
 * service. Replies whose order matters are sent by the services; the rest are returned here.
 */
@WebSocketGateway()
@UseFilters(ProtocolExceptionFilter)
export class MultiplayerGateway implements OnGatewayConnection, OnGatewayDisconnect {
  private readonly logger = new Logger(MultiplayerGateway.name);

  constructor(
    private readonly users: UsersService,
    private readonly rooms: RoomsService,
    private readonly relay: RelayService,
    private readonly state: StateService,
    private readonly fanout: Fanout,
  ) {}

  handleConnection(socket: WebSocket, request: IncomingMessage): void {
    const userId = credentialsOf(request).userId ?? `user-${randomUUID()}`;
    const { connection } = this.users.connect(userId, socket, request.socket);
    this.fanout.send(connection, { event: ServerEvent.Connected, data: { userId } });
    this.logger.log(`User ${userId} connected`);
  }

  async handleDisconnect(socket: WebSocket): Promise<void> {
    const connection = this.users.disconnect(socket);
    if (!connection) {
      return;
    }
    this.logger.log(`User ${connection.userId} disconnected`);
    try {
      await this.rooms.leaveAll(connection);
    } catch (error) {
      this.logger.error(`Could not remove ${connection.userId} from its rooms: ${String(error)}`);
    }
  }

  @SubscribeMessage(ClientAction.CreateRoom)
  async createRoom(
    @MessageBody(validated) body: CreateRoomDto,
  ): Promise<ServerMessage<'room_created'>> {
    const roomId = await this.rooms.create({ roomId: body.roomId, ...body.config });
    return { event: ServerEvent.RoomCreated, data: withRequestId(body.requestId, { roomId }) };
  }

  @SubscribeMessage(ClientAction.JoinRoom)
  async joinRoom(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: JoinRoomDto,
  ): Promise<void> {
    const connection = this.connectionOf(socket);
    const userInfo = body.userInfo ?? {};
    if (userInfo.userId !== undefined && userInfo.userId !== connection.userId) {
      throw ProtocolError.forbidden('userInfo.userId must be the userId you connected with');
    }
    await this.rooms.join(
      connection,
      {
        roomId: body.roomId,
        password: body.password,
        name: userInfo.name,
        role: userInfo.role,
        avatar: userInfo.avatar && pickAvatar(userInfo.avatar),
      },
      body.requestId,
    );
  }

  @SubscribeMessage(ClientAction.LeaveRoom)
  @RequireRoomRole('viewer')
  async leaveRoom(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: LeaveRoomDto,
  ): Promise<void> {
    await this.rooms.leave(this.connectionOf(socket), body.roomId, body.requestId);
  }

  /** The pose hot path: a hand-written check instead of a DTO, nothing returned on success. */
  @SubscribeMessage(ClientAction.Broadcast)
  broadcast(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody() body: Record<string, unknown>,
  ): Promise<void> | void {
    const { roomId, message } = checkBroadcast(body);
    return this.relay.broadcast(this.connectionOf(socket), roomId, message);
  }

  @SubscribeMessage(ClientAction.SendMessage)
  async sendMessage(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: SendMessageDto,
  ): Promise<void> {
    await this.relay.sendDirect(this.connectionOf(socket), body.targetUserId, body.message);
  }

  @SubscribeMessage(ClientAction.Ping)
  ping(@MessageBody(validated) body: PingDto): ServerMessage<'pong'> {
    return {
      event: ServerEvent.Pong,
      data: withRequestId(body.requestId, { serverTime: Date.now() }),
    };
  }

  @SubscribeMessage(ClientAction.UpdateState)
  @RequireRoomRole('editor')
  async updateState(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: UpdateStateDto,
  ): Promise<void> {
    const { roomId, baseVersion, patch, ops, requestId } = body;
    await this.state.update(
      this.connectionOf(socket),
      roomId,
      { baseVersion, patch, ops },
      requestId,
    );
  }

  @SubscribeMessage(ClientAction.GetState)
  @RequireRoomRole('viewer')
  async getState(@MessageBody(validated) body: GetStateDto): Promise<ServerMessage<'state'>> {
    const state = await this.state.get(body.roomId);
    return {
      event: ServerEvent.State,
      data: withRequestId(body.requestId, { roomId: body.roomId, version: state.version, state }),
    };
  }

  @SubscribeMessage(ClientAction.SetRole)
  @RequireRoomRole('host')
  async setRole(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: SetRoleDto,
  ): Promise<void> {
    const { roomId, targetUserId, role, requestId } = body;
    await this.rooms.setRole(this.connectionOf(socket), roomId, targetUserId, role, requestId);
  }

  @SubscribeMessage(ClientAction.KickUser)
  @RequireRoomRole('host')
  async kickUser(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: KickUserDto,
  ): Promise<void> {
    const { roomId, targetUserId, requestId } = body;
    await this.rooms.kick(this.connectionOf(socket), roomId, targetUserId, requestId);
  }

  @SubscribeMessage(ClientAction.DeleteRoom)
  @RequireRoomRole('host')
  async deleteRoom(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: DeleteRoomDto,
  ): Promise<void> {
    await this.rooms.delete(this.connectionOf(socket), body.roomId, body.requestId);
  }

  /** Frames the parser refused (bad JSON, no action, unknown action): answered with an error. */
  @SubscribeMessage(REJECTED_FRAME)
  rejectFrame(@MessageBody() rejected: RejectedFrame): never {
    throw new ProtocolError(rejected.code, rejected.message, {
      ...(rejected.field !== undefined ? { field: rejected.field } : {}),
    });
  }

  private connectionOf(socket: WebSocket): Connection {
    const connection = this.users.connectionOf(socket);
    if (!connection) {
      // The socket was replaced by a newer session of the same user.
      throw new ProtocolError(ErrorCode.Forbidden, 'This session was replaced');
    }
    return connection;
  }
}

/** Keeps only the avatar fields we know, so nothing else a client adds is stored or relayed. */
function pickAvatar(avatar: AvatarDto): Avatar {
  const picked: Avatar = {};
  for (const key of AVATAR_FIELDS) {
    if (avatar[key] !== undefined) {
      picked[key] = avatar[key];
    }
  }
  return picked;
}
