import { Reflector } from '@nestjs/core';
import type { Role } from '../protocol/protocol.js';

/** The lowest room role allowed to run a handler; RoomRoleGuard enforces it. */
export const MinRole = Reflector.createDecorator<Role>();
