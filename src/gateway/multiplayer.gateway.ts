import { Inject, UseFilters } from '@nestjs/common';
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
import { AuthService } from '../auth/auth.service.js';
import { roleCapOf, type Identity } from '../auth/identity.js';
import { InvalidTokenError } from '../auth/invalid-token.error.js';
import { SessionExpiryService } from '../users/session-expiry.service.js';
import { ClientOutput } from '../bus/client-output.js';
import { Replies, withRequestId } from '../delivery/replies.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import {
  BINARY_POSES_SUBPROTOCOL,
  ClientAction,
  CloseCode,
  CloseReason,
  ErrorCode,
  MIN_ROLE,
  QUANTIZED_POSES_SUBPROTOCOL,
  ServerEvent,
  type Role,
  type ServerMessage,
} from '../protocol/protocol.js';
import { RelayService } from '../rooms/relay.service.js';
import { RoomsService, type JoinTerms, type RoomOwner } from '../rooms/rooms.service.js';
import { StateService } from '../state/state.service.js';
import type { Connection } from '../users/connection.js';
import { StructuredLogger } from '../logging/structured-logger.js';
import { truncate } from '../logging/log-fields.js';
import { traceFieldsOf } from '../logging/trace-context.js';
import { UsersService } from '../users/users.service.js';
import type { BinaryPose } from './binary-pose.parser.js';
import { checkBroadcast, type BroadcastRequest } from './app-message.validator.js';
import { REJECTED_FRAME, type RejectedFrame } from './client-frame.parser.js';
import { CreateRoomDto } from './dto/create-room.dto.js';
import { DeleteRoomDto } from './dto/delete-room.dto.js';
import { GetStateDto } from './dto/get-state.dto.js';
import { HelloDto } from './dto/hello.dto.js';
import { JoinRoomDto, pickAvatar } from './dto/join-room.dto.js';
import { KickUserDto } from './dto/kick-user.dto.js';
import { LeaveRoomDto } from './dto/leave-room.dto.js';
import { PingDto } from './dto/ping.dto.js';
import { RefreshTokenDto } from './dto/refresh-token.dto.js';
import { ResumeDto } from './dto/resume.dto.js';
import { SendMessageDto } from './dto/send-message.dto.js';
import { SetRoleDto } from './dto/set-role.dto.js';
import { UpdateStateDto } from './dto/update-state.dto.js';
import { RequestHooks, type JoinProfile } from './request-hooks.js';
import { ResumeService } from '../resume/resume.service.js';
import { RequireRoomRole } from './require-room-role.decorator.js';
import { Senders } from './senders.js';
import { ProtocolExceptionFilter } from './protocol-exception.filter.js';
import { protocolValidationPipe as validated } from './protocol-validation.pipe.js';

/**
 * The protocol's entry point: each handler validates, authorizes, runs the extensions' hooks and
 * hands the request to a service. Replies that must go out in order with room events are sent by
 * the delivery (RoomDelivery); the others are returned here.
 */
@WebSocketGateway()
@UseFilters(ProtocolExceptionFilter)
export class MultiplayerGateway implements OnGatewayConnection, OnGatewayDisconnect {
  private readonly logger = new StructuredLogger(MultiplayerGateway.name);

  constructor(
    private readonly users: UsersService,
    private readonly senders: Senders,
    private readonly requestHooks: RequestHooks,
    private readonly rooms: RoomsService,
    private readonly relay: RelayService,
    private readonly state: StateService,
    private readonly replies: Replies,
    private readonly auth: AuthService,
    private readonly expiry: SessionExpiryService,
    private readonly resume: ResumeService,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
  ) {}

  handleConnection(socket: WebSocket, request: IncomingMessage): void {
    const identity = this.auth.identityOf(request);
    if (!identity) {
      // Every upgrade is authenticated first (app.setup.ts); one that was not is refused.
      this.logger.error('A socket opened without going through authentication; closing it');
      socket.close(CloseCode.InternalError, CloseReason.InternalError);
      return;
    }
    const upgradeResume = this.resume.upgradeResume(request);
    const resumedUserId = upgradeResume?.userId;
    const userId = resumedUserId ?? identity.userId ?? `user-${randomUUID()}`;
    const output = new ClientOutput(socket, request.socket);
    const resuming = resumedUserId !== undefined;
    // A resume takes the seats back itself: an earlier socket still open lets go of them first.
    const { connection, replaced } = this.users.connect(
      userId,
      socket,
      output,
      { ...identity, userId },
      !resuming,
    );
    if (upgradeResume && resuming) {
      this.resume.markClaimed(connection, upgradeResume.token);
      if (replaced) {
        void this.resume.detach(replaced);
      }
    }
    connection.logContext = traceFieldsOf(request.headers, this.config.googleCloudProject);
    connection.quantizedPoses = socket.protocol === QUANTIZED_POSES_SUBPROTOCOL;
    connection.binaryPoses =
      connection.quantizedPoses || socket.protocol === BINARY_POSES_SUBPROTOCOL;
    const token = this.resume.issueToken(userId);
    this.replies.send(connection, {
      event: ServerEvent.Connected,
      data: {
        userId,
        ...(token ? { resumeToken: token, reconnectGraceMs: this.config.resume.graceMs } : {}),
        ...(upgradeResume ? { resumed: resuming } : {}),
      },
    });
    if (identity.expiresAt !== undefined) {
      this.expiry.schedule(connection, identity.expiresAt);
    }
    this.logger.log(`User ${truncate(userId)} connected${identity.verified ? ' (verified)' : ''}`, {
      userId,
      ...connection.logContext,
    });
  }

  /**
   * A close frame from the client or a close the server started is a leave; a connection that
   * just dropped (no close frame: code 1006, or a dead heartbeat) keeps its seats for a resume.
   */
  // Nest types the second argument as a string; the ws adapter passes the close code.
  async handleDisconnect(socket: WebSocket, code?: number | string): Promise<void> {
    const connection = this.users.disconnect(socket);
    if (!connection) {
      return;
    }
    const dropped = Number(code) === ABNORMAL_CLOSURE && !connection.closedByServer;
    this.logger.log(`User ${truncate(connection.userId)} ${dropped ? 'dropped' : 'disconnected'}`, {
      userId: connection.userId,
      code: Number(code),
      ...connection.logContext,
    });
    try {
      if (dropped && this.resume.enabled) {
        await this.resume.detach(connection);
        return;
      }
      await this.rooms.leaveAll(connection);
      await this.resume.end(connection.userId);
    } catch (error) {
      this.logger.error('Could not remove a user from its rooms', error, {
        userId: connection.userId,
        ...connection.logContext,
      });
    }
  }

  /** After a dropped connection: the seats back, then what was missed (docs/resume.md). */
  @SubscribeMessage(ClientAction.Resume)
  async resumeSession(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: ResumeDto,
  ): Promise<void> {
    if (!this.resume.enabled) {
      throw new ProtocolError(ErrorCode.ResumeFailed, 'Resume is off (RECONNECT_GRACE_MS=0)');
    }
    const connection = this.connectionOf(socket);
    // A room the resume joins again passes what a join_room of it would; a held seat needs none.
    const admission = (roomId: string) =>
      this.joinTerms(connection, roomId, { name: connection.identity.name });
    await this.resume.resume(connection, body.token, body.rooms ?? [], admission, body.requestId);
  }

  @SubscribeMessage(ClientAction.CreateRoom)
  async createRoom(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: CreateRoomDto,
  ): Promise<ServerMessage<'room_created'>> {
    const { identity, userId } = this.connectionOf(socket);
    this.assertListedForCreate(identity, body.roomId);
    const roomId = await this.rooms.create({
      roomId: body.roomId,
      ...body.config,
      owner: ownerOf(identity),
      mayCreateRoom: identity.mayCreateRooms,
      createdBy: userId,
    });
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
    const { identity } = connection;
    const terms = await this.joinTerms(connection, body.roomId, {
      name: userInfo.name ?? identity.name,
      role: userInfo.role,
      avatar: userInfo.avatar && pickAvatar(userInfo.avatar),
    });
    await this.rooms.join(
      connection,
      {
        roomId: body.roomId,
        password: body.password,
        ...terms,
        mayCreateRoom: identity.mayCreateRooms,
        owner: ownerOf(identity),
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

  /**
   * The same relay for a throwaway broadcast the adapter hands over before any handler runs
   * (nothing of its connection queued before it): true when it went out; false when it needs an
   * answer (invalid, not a member, a foreign senderId), which the handler above then gives.
   */
  relayAtOnce(socket: WebSocket, body: Record<string, unknown>): boolean {
    const connection = this.users.connectionOf(socket);
    const request = connection && validBroadcast(body);
    if (!connection || !request || !connection.rooms.has(request.roomId)) {
      return false;
    }
    const { senderId } = request.message;
    if (senderId !== undefined && senderId !== connection.userId) {
      return false;
    }
    void this.relay.broadcast(connection, request.roomId, request.message);
    return true;
  }

  /**
   * relayAtOnce for a pose of the binary channel, checked already (checkClientPose): false when
   * its sender is not a member of the room, which the broadcast handler then answers.
   */
  relayBinaryPose(pose: BinaryPose): boolean {
    if (!pose.sender.rooms.has(pose.roomId)) {
      return false;
    }
    this.relay.broadcastBinaryPose(pose.sender, pose.roomId, pose.frame, pose.entry);
    return true;
  }

  @SubscribeMessage(ClientAction.SendMessage)
  async sendMessage(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: SendMessageDto,
  ): Promise<void> {
    await this.relay.sendDirect(
      this.connectionOf(socket),
      body.targetUserId,
      body.message,
      body.roomId,
    );
  }

  @SubscribeMessage(ClientAction.Ping)
  ping(@MessageBody(validated) body: PingDto): ServerMessage<'pong'> {
    return {
      event: ServerEvent.Pong,
      data: withRequestId(body.requestId, { serverTime: Date.now() }),
    };
  }

  /** Any connection, any time: it only changes how this connection's own poses travel. */
  @SubscribeMessage(ClientAction.Hello)
  hello(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: HelloDto,
  ): ServerMessage<'hello'> {
    const capabilities = this.connectionOf(socket).enableCapabilities(body.capabilities);
    return { event: ServerEvent.Hello, data: withRequestId(body.requestId, { capabilities }) };
  }

  @SubscribeMessage(ClientAction.UpdateState)
  @RequireRoomRole(MIN_ROLE[ClientAction.UpdateState])
  async updateState(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: UpdateStateDto,
  ): Promise<void> {
    const { roomId, baseVersion, patch, ops, requestId } = body;
    const connection = this.connectionOf(socket);
    const change = await this.requestHooks.stateChange(connection, roomId, {
      baseVersion,
      patch,
      ops,
    });
    await this.state.update(connection, roomId, change, requestId);
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
  @RequireRoomRole(MIN_ROLE[ClientAction.SetRole])
  async setRole(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: SetRoleDto,
  ): Promise<void> {
    const { roomId, targetUserId, role, requestId } = body;
    await this.rooms.setRole(this.connectionOf(socket), roomId, targetUserId, role, requestId);
  }

  @SubscribeMessage(ClientAction.KickUser)
  @RequireRoomRole(MIN_ROLE[ClientAction.KickUser])
  async kickUser(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: KickUserDto,
  ): Promise<void> {
    const { roomId, targetUserId, requestId } = body;
    await this.rooms.kick(this.connectionOf(socket), roomId, targetUserId, requestId);
  }

  @SubscribeMessage(ClientAction.DeleteRoom)
  @RequireRoomRole(MIN_ROLE[ClientAction.DeleteRoom])
  async deleteRoom(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: DeleteRoomDto,
  ): Promise<void> {
    await this.rooms.delete(this.connectionOf(socket), body.roomId, body.requestId);
  }

  /** AUTH_MODE=jwt: a fresh token for the same user moves the session's end; its claims apply. */
  @SubscribeMessage(ClientAction.RefreshToken)
  async refreshToken(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(validated) body: RefreshTokenDto,
  ): Promise<ServerMessage<'token_refreshed'>> {
    const connection = this.connectionOf(socket);
    if (!this.auth.jwtEnabled) {
      throw ProtocolError.forbidden('refresh_token needs AUTH_MODE=jwt');
    }
    let identity: Identity;
    try {
      identity = await this.auth.refresh(connection.identity, body.token);
    } catch (error) {
      if (error instanceof InvalidTokenError) {
        throw new ProtocolError(ErrorCode.InvalidToken, `Invalid token: ${error.message}`);
      }
      throw error;
    }
    const expiresAt = identity.expiresAt as number;
    connection.identity = identity;
    this.expiry.schedule(connection, expiresAt);
    return {
      event: ServerEvent.TokenRefreshed,
      data: withRequestId(body.requestId, { expiresAt }),
    };
  }

  /** Frames the parser refused (bad JSON, no action, unknown action): answered with an error. */
  @SubscribeMessage(REJECTED_FRAME)
  rejectFrame(@MessageBody() rejected: RejectedFrame): never {
    throw new ProtocolError(rejected.code, rejected.message, {
      ...(rejected.field !== undefined ? { field: rejected.field } : {}),
    });
  }

  private connectionOf(socket: WebSocket): Connection {
    return this.senders.of(socket);
  }

  /**
   * The checks of every join of `roomId`, a `join_room` or a room a `resume` joins again: the
   * token must list the room (JWT_ROOMS_REQUIRED), its role cap applies, and the beforeJoin hooks
   * may veto (they throw) or change the profile.
   */
  private async joinTerms(
    connection: Connection,
    roomId: string,
    asked: JoinProfile,
  ): Promise<JoinTerms> {
    const maxRole = this.listedRoleCap(connection.identity, roomId);
    const profile = await this.requestHooks.joinProfile(connection, roomId, asked);
    return { ...profile, maxRole };
  }

  /** The token's role cap in the room; FORBIDDEN for one it does not list (JWT_ROOMS_REQUIRED). */
  private listedRoleCap(identity: Identity, roomId: string): Role | undefined {
    const maxRole = roleCapOf(identity, roomId);
    if (maxRole === undefined && this.roomsRequired(identity)) {
      throw notListed(roomId);
    }
    return maxRole;
  }

  /**
   * With JWT_ROOMS_REQUIRED, a room may be created only by a token that lists it, or anyone could
   * take the id (and set its password) first. A generated id is one no token lists: its creator
   * could not even join the room.
   */
  private assertListedForCreate(identity: Identity, roomId: string | undefined): void {
    if (!this.roomsRequired(identity)) {
      return;
    }
    if (roomId === undefined) {
      throw ProtocolError.forbidden('Your token lists your rooms: create_room needs a roomId');
    }
    if (roleCapOf(identity, roomId) === undefined) {
      throw notListed(roomId);
    }
  }

  /** JWT_ROOMS_REQUIRED, for a verified identity: only the rooms of its token's claim. */
  private roomsRequired(identity: Identity): boolean {
    return identity.verified && this.config.jwt.roomsRequired;
  }
}

/** The refusal of a room the token does not list, whatever the request (JWT_ROOMS_REQUIRED). */
function notListed(roomId: string): ProtocolError {
  return ProtocolError.forbidden(`Your token does not list room ${roomId}`);
}

/** The close code `ws` reports when the connection ended without a close frame. */
const ABNORMAL_CLOSURE = 1006;

/** A verified user's rooms count against the user; anyone else's against the address. */
function ownerOf(identity: Identity): RoomOwner {
  return identity.verified && identity.userId !== undefined
    ? { kind: 'user', id: identity.userId }
    : { kind: 'ip', id: identity.address };
}

/** A broadcast as checkBroadcast accepts it, or undefined where it would refuse it. */
function validBroadcast(body: Record<string, unknown>): BroadcastRequest | undefined {
  try {
    return checkBroadcast(body);
  } catch (error) {
    if (error instanceof ProtocolError) {
      return undefined;
    }
    throw error;
  }
}
