import {
  Inject,
  Injectable,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { ROOM_BUS, type RoomBus } from '../bus/room-bus.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import type { AppMessage } from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';

/** A sender's newest throwaway message in one room since the last tick. */
interface HeldPose {
  sender: Connection;
  message: AppMessage;
}

/**
 * Server ticks for throwaway broadcasts (POSE_TICK_MS > 0): each sender's newest pose per room
 * is kept and published once per tick, so every member gets one write per tick however many
 * senders its room has, and a pose that was overtaken by a newer one within the tick is never
 * serialized. A sender that sent nothing since the last tick is not resent. A tick that comes
 * late (a busy event loop) is counted and the ones it missed are skipped, never run to catch up.
 */
@Injectable()
export class PoseTicker implements OnApplicationBootstrap, OnModuleDestroy {
  readonly tickMs: number;
  private held = new Map<string, Map<string, HeldPose>>();
  private timer?: NodeJS.Timeout;
  private lastTickAt = 0;
  private skipped = 0;

  constructor(
    @Inject(ROOM_BUS) private readonly bus: RoomBus,
    @Inject(appConfig.KEY) config: AppConfig,
  ) {
    this.tickMs = config.poseTickMs;
  }

  get enabled(): boolean {
    return this.tickMs > 0;
  }

  /** Ticks that were due but did not run because the event loop was busy past them. */
  get skippedTicks(): number {
    return this.skipped;
  }

  onApplicationBootstrap(): void {
    if (!this.enabled) {
      return;
    }
    this.lastTickAt = performance.now();
    this.timer = setInterval(() => this.tick(performance.now()), this.tickMs);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
    this.held.clear();
  }

  /** Keeps the sender's newest pose for the next tick; the caller checked it is a member. */
  hold(sender: Connection, roomId: string, message: AppMessage): void {
    let room = this.held.get(roomId);
    if (!room) {
      room = new Map();
      this.held.set(roomId, room);
    }
    const pose = room.get(sender.userId);
    if (pose && pose.sender === sender) {
      pose.message = message;
      return;
    }
    room.set(sender.userId, { sender, message });
  }

  /** Publishes what was held since the last tick; `now` in performance.now() milliseconds. */
  tick(now: number): void {
    const elapsed = now - this.lastTickAt;
    this.lastTickAt = now;
    if (elapsed >= 2 * this.tickMs) {
      this.skipped += Math.floor(elapsed / this.tickMs) - 1;
    }
    if (this.held.size === 0) {
      return;
    }
    const due = this.held;
    this.held = new Map();
    for (const [roomId, poses] of due) {
      for (const { sender, message } of poses.values()) {
        // A sender that left (or was removed from) the room since must not reappear in it.
        if (!sender.rooms.has(roomId)) {
          continue;
        }
        this.bus.publishPose(roomId, sender.userId, sender.profiles.get(roomId)?.slot, message);
      }
    }
  }
}
