import { Injectable } from '@nestjs/common';
import type { Identity } from '../auth/identity.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import type { Avatar, ErrorCode, Role, StateOp, StatePatch } from '../protocol/protocol.js';

/** A join about to be admitted: who asks, for which room, with what. */
export interface BeforeJoinContext {
  readonly roomId: string;
  readonly userId: string;
  /** What the connection's upgrade proved (AUTH_MODE=jwt: `verified` and the token's claims). */
  readonly identity: Identity;
  readonly name: string;
  readonly role?: Role;
  readonly avatar?: Avatar;
}

/**
 * What a beforeJoin hook may change, checked like the client's own userInfo (an invalid value
 * fails the join with INTERNAL_ERROR, logged); the room's rules (role caps, capacity) still apply.
 */
export interface JoinEnrichment {
  name?: string;
  role?: Role;
  avatar?: Avatar;
}

/** A state change about to be committed. */
export interface BeforeStateCommitContext {
  readonly roomId: string;
  readonly userId: string;
  readonly identity: Identity;
  readonly baseVersion?: number;
  readonly patch?: StatePatch;
  readonly ops?: StateOp[];
}

/**
 * What a beforeStateCommit hook returns replaces the change's patch and ops (its baseVersion
 * stays), checked like the client's own update_state: an invalid result fails the request with
 * INTERNAL_ERROR, logged. The state's size limit still applies.
 */
export interface StateCommitEnrichment {
  patch?: StatePatch;
  ops?: StateOp[];
}

export type BeforeJoinHook = (
  context: BeforeJoinContext,
) => void | JoinEnrichment | Promise<void | JoinEnrichment>;

export type BeforeStateCommitHook = (
  context: BeforeStateCommitContext,
) => void | StateCommitEnrichment | Promise<void | StateCommitEnrichment>;

const CUSTOM_CODE = /^[A-Z][A-Z0-9_]{1,63}$/;

/**
 * A hook's veto: the request fails with this code and message (and the request's requestId), as
 * an `error` event to the sender only. The code is yours (e.g. `SEAT_LIMIT`), upper snake case.
 */
export class HookRejection extends ProtocolError {
  constructor(code: string, message: string) {
    if (!CUSTOM_CODE.test(code)) {
      throw new Error(`A hook rejection code must be UPPER_SNAKE_CASE, got "${code}"`);
    }
    // An extension's own code travels like a built-in one; the client library sees a string.
    super(code as ErrorCode, message);
    this.name = 'HookRejection';
  }
}

/**
 * Hooks that run before a change is committed, in the order they were added, each awaited and
 * seeing what the ones before it returned. Throwing (best: a HookRejection) vetoes the request;
 * returning fields enriches it. They run in the gateway, after the request's own validation and
 * role check and before the store's checks (password, capacity, version), on the instance that
 * received the request, inside the request's turn: keep them fast (cache what you look up).
 */
@Injectable()
export class RoomHooks {
  private readonly joinHooks: BeforeJoinHook[] = [];
  private readonly stateHooks: BeforeStateCommitHook[] = [];

  /** E.g. check a seat license, or set the display name from your directory. */
  beforeJoin(hook: BeforeJoinHook): void {
    this.joinHooks.push(hook);
  }

  /** E.g. check a scene URL against an allow-list. */
  beforeStateCommit(hook: BeforeStateCommitHook): void {
    this.stateHooks.push(hook);
  }

  /** Runs the beforeJoin hooks; returns the context as they left it. */
  async runBeforeJoin(context: BeforeJoinContext): Promise<BeforeJoinContext> {
    let current = context;
    for (const hook of this.joinHooks) {
      const enrichment = await hook(current);
      if (enrichment) {
        current = { ...current, ...definedFields(enrichment) };
      }
    }
    return current;
  }

  /** Runs the beforeStateCommit hooks; returns the change as they left it (see StateCommitEnrichment). */
  async runBeforeStateCommit(context: BeforeStateCommitContext): Promise<BeforeStateCommitContext> {
    let current = context;
    for (const hook of this.stateHooks) {
      const replacement = await hook(current);
      if (replacement) {
        current = { ...current, patch: replacement.patch, ops: replacement.ops };
      }
    }
    return current;
  }

  get hasJoinHooks(): boolean {
    return this.joinHooks.length > 0;
  }

  get hasStateHooks(): boolean {
    return this.stateHooks.length > 0;
  }
}

/** The fields that are set: what a merge, a spread or a DTO check should see. */
export function definedFields<T extends object>(value: T): Partial<T> {
  const defined: Partial<T> = {};
  for (const [key, field] of Object.entries(value)) {
    if (field !== undefined) {
      (defined as Record<string, unknown>)[key] = field;
    }
  }
  return defined;
}
