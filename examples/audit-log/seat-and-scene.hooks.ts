import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import {
  HookRejection,
  RoomHooks,
  type BeforeJoinContext,
  type BeforeStateCommitContext,
} from '../../src/extension-api.js';
import { AUDIT_LOG_OPTIONS, type AuditLogOptions } from './audit-log.options.js';

/**
 * Two vetoes: a user whose seat license was revoked may not join, and a room's scene may only be
 * loaded from the hosts the organisation serves its models from (a client loads whatever
 * `sceneUrl` says, so an editor could otherwise point everyone at any server).
 */
@Injectable()
export class SeatAndSceneHooks implements OnModuleInit {
  private readonly blocked: ReadonlySet<string>;
  private readonly sceneHosts?: ReadonlySet<string>;

  constructor(
    private readonly hooks: RoomHooks,
    @Inject(AUDIT_LOG_OPTIONS) options: AuditLogOptions,
  ) {
    this.blocked = new Set(options.blockedUserIds ?? []);
    if (options.allowedSceneHosts) {
      this.sceneHosts = new Set(options.allowedSceneHosts.map((host) => host.toLowerCase()));
    }
  }

  onModuleInit(): void {
    // Added only when configured: with no hooks the services skip the hook step entirely.
    if (this.blocked.size > 0) {
      this.hooks.beforeJoin((context) => this.checkSeat(context));
    }
    if (this.sceneHosts) {
      this.hooks.beforeStateCommit((context) => this.checkScene(context));
    }
  }

  private checkSeat({ userId }: BeforeJoinContext): void {
    if (this.blocked.has(userId)) {
      throw new HookRejection('SEAT_REVOKED', `The seat license of ${userId} was revoked`);
    }
  }

  private checkScene({ patch }: BeforeStateCommitContext): void {
    const url = patch?.sceneUrl;
    // null clears the scene; ops never touch it.
    if (typeof url !== 'string' || !this.sceneHosts) {
      return;
    }
    const host = hostOf(url);
    if (host === undefined || !this.sceneHosts.has(host)) {
      throw new HookRejection(
        'SCENE_URL_NOT_ALLOWED',
        `Scenes may only be loaded from ${[...this.sceneHosts].join(', ')}`,
      );
    }
  }
}

/** The URL's host name, lower case; undefined for a relative or malformed URL. */
function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}
