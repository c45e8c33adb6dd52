import { Injectable } from '@nestjs/common';
import { definedFields, RoomHooks } from '../extensions/room-hooks.service.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import type { Avatar, Role } from '../protocol/protocol.js';
import type { StateChange } from '../rooms/room-store.js';
import type { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';
import { pickAvatar, UserInfoDto } from './dto/join-room.dto.js';
import { UpdateStateDto } from './dto/update-state.dto.js';
import { assertHookResultValid } from './protocol-validation.pipe.js';

export interface JoinProfile {
  name?: string;
  role?: Role;
  avatar?: Avatar;
}

/**
 * Runs the extensions' hooks on a request the gateway has validated and authorized. They may
 * veto it (they throw) or change it; what they hand back is checked like the client's own
 * request, and a connection that closed while they ran is not acted for.
 */
@Injectable()
export class RequestHooks {
  constructor(
    private readonly hooks: RoomHooks,
    private readonly users: UsersService,
  ) {}

  /** The name, role and avatar of a join as the beforeJoin hooks leave them. */
  async joinProfile(
    connection: Connection,
    roomId: string,
    asked: JoinProfile,
  ): Promise<JoinProfile> {
    if (!this.hooks.hasJoinHooks) {
      return asked;
    }
    const hooked = await this.hooks.runBeforeJoin({
      roomId,
      userId: connection.userId,
      identity: connection.identity,
      name: asked.name ?? connection.userId,
      ...definedFields({ role: asked.role, avatar: asked.avatar }),
    });
    const profile = { name: hooked.name, role: hooked.role, avatar: hooked.avatar };
    await assertHookResultValid(UserInfoDto, definedFields(profile), 'beforeJoin');
    this.assertStillConnected(connection);
    return { ...profile, avatar: profile.avatar && pickAvatar(profile.avatar) };
  }

  /** The change as the beforeStateCommit hooks leave it: a returned `{patch, ops}` replaces it. */
  async stateChange(
    connection: Connection,
    roomId: string,
    change: StateChange,
  ): Promise<StateChange> {
    if (!this.hooks.hasStateHooks) {
      return change;
    }
    const hooked = await this.hooks.runBeforeStateCommit({
      roomId,
      userId: connection.userId,
      identity: connection.identity,
      ...definedFields(change),
    });
    const result = definedFields({
      baseVersion: change.baseVersion,
      patch: hooked.patch,
      ops: hooked.ops,
    });
    await assertHookResultValid(UpdateStateDto, { roomId, ...result }, 'beforeStateCommit');
    this.assertStillConnected(connection);
    return result;
  }

  private assertStillConnected(connection: Connection): void {
    if (!this.users.isCurrent(connection)) {
      throw ProtocolError.forbidden('This connection closed while its request was checked');
    }
  }
}
