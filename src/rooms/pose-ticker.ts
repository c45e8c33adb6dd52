import {
  Inject,
  Injectable,
  Optional,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { Fanout } from '../bus/fanout.service.js';
import { ROOM_BUS, type RoomBus } from '../bus/room-bus.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import {
  POSE_ENTRY_BYTES,
  writeClientEntry,
  type ClientPoseEntry,
} from '../protocol/binary-poses.js';
import type { AppMessage } from '../protocol/protocol.js';
import { ServerCounters } from '../telemetry/server-counters.js';
import type { Connection } from '../users/connection.js';

/**
 * A sender's newest throwaway message in one room, `fresh` until a tick published it: a message,
 * or (no message) a pose that came on the binary channel, kept as its entry in a buffer the
 * sender's held pose keeps from tick to tick.
 */
interface HeldPose {
  sender: Connection;
  /**
   * The sender's slot in the room when it sent the pose. A member that leaves and joins again
   * gets a new slot, so a tick that finds another one drops a pose of the earlier membership.
   */
  slot: number | undefined;
  message?: AppMessage;
  entry?: Buffer;
  fresh: boolean;
  /** Ticks in a row that found nothing new from the sender. */
  idleTicks: number;
}

/**
 * How long a sender's held pose outlives its last pose. A sender at about the tick rate misses a
 * tick now and then (jitter), and one slower than the tick misses most: dropping its held pose
 * at the first idle tick would make it (and its entry buffer) again at the next pose.
 */
const KEEP_IDLE_MS = 1000;

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
  /**
   * Per room, per sender: kept from tick to tick (a steady sender's entry is reused, not made
   * again 30 times a second), and dropped once the sender has sent nothing for KEEP_IDLE_MS.
   */
  private readonly held = new Map<string, Map<string, HeldPose>>();
  private readonly idleTicksKept: number;
  private timer?: NodeJS.Timeout;
  /** When the next tick is due (performance.now() ms): ticks keep to a fixed schedule. */
  private nextTickAt: number;
  private stopped = false;

  constructor(
    @Inject(ROOM_BUS) private readonly bus: RoomBus,
    private readonly fanout: Fanout,
    @Inject(appConfig.KEY) config: AppConfig,
    @Optional() private readonly counters: ServerCounters = new ServerCounters(),
  ) {
    this.tickMs = config.poseTickMs;
    this.nextTickAt = this.tickMs;
    this.idleTicksKept = this.enabled ? Math.ceil(KEEP_IDLE_MS / this.tickMs) : 0;
  }

  get enabled(): boolean {
    return this.tickMs > 0;
  }

  /** Ticks that were due but did not run because the event loop was busy past them. */
  get skippedTicks(): number {
    return this.counters.poseTicksSkipped;
  }

  onApplicationBootstrap(): void {
    if (!this.enabled) {
      return;
    }
    this.nextTickAt = performance.now() + this.tickMs;
    this.schedule();
  }

  onModuleDestroy(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.held.clear();
  }

  /**
   * A timeout to the next tick's due time rather than setInterval, which counts each interval
   * from when its callback ran: on a busy event loop every tick would start a little late and
   * the tick rate would sag below 1000 / POSE_TICK_MS.
   */
  private schedule(): void {
    if (this.stopped) {
      return;
    }
    this.timer = setTimeout(this.onTimer, Math.max(0, this.nextTickAt - performance.now()));
    this.timer.unref();
  }

  /**
   * The timer only says the tick is due; the tick itself runs in the check phase just after, once
   * the event loop has read what the sockets hold. A pose that arrived before the tick was due
   * but waited in the socket behind a long turn so makes this tick, instead of being overtaken in
   * the next one by its sender's newer pose, which would leave this tick without it.
   */
  private readonly onTimer = (): void => {
    setImmediate(this.onDue);
    // Queued now, behind the tick: the frames the tick builds are then written in the same check
    // phase, right after it. Asked for during the tick, the writes would wait for the next turn,
    // after one more read of every socket. Not when nothing is held: an idle server's ticks
    // should not wake the fan-out.
    if (this.held.size > 0) {
      this.fanout.scheduleFlush();
    }
  };

  private readonly onDue = (): void => {
    if (this.stopped) {
      return;
    }
    try {
      this.tick(performance.now());
    } finally {
      this.schedule();
    }
  };

  /** Keeps the sender's newest pose for the next tick; the caller checked it is a member. */
  hold(sender: Connection, roomId: string, message: AppMessage): void {
    const pose = this.heldPose(sender, roomId);
    pose.slot = sender.profiles.get(roomId)?.slot;
    pose.message = message;
    pose.fresh = true;
  }

  /** hold for a binary client frame (checked, see checkClientPose), kept in entry form. */
  holdEntry(sender: Connection, roomId: string, frame: Buffer, entry: ClientPoseEntry): void {
    const pose = this.heldPose(sender, roomId);
    pose.slot = sender.profiles.get(roomId)?.slot;
    pose.entry ??= Buffer.allocUnsafe(POSE_ENTRY_BYTES);
    writeClientEntry(pose.entry, 0, 0, frame, entry);
    pose.message = undefined;
    pose.fresh = true;
  }

  /** The sender's held pose in the room, a new one the first time (or after a reconnect). */
  private heldPose(sender: Connection, roomId: string): HeldPose {
    let room = this.held.get(roomId);
    if (!room) {
      room = new Map();
      this.held.set(roomId, room);
    }
    let pose = room.get(sender.userId);
    if (!pose || pose.sender !== sender) {
      pose = { sender, slot: undefined, fresh: false, idleTicks: 0 };
      room.set(sender.userId, pose);
    }
    return pose;
  }

  /**
   * Publishes what was held since the last tick; `now` in performance.now() milliseconds. A tick
   * that runs a whole interval or more past its due time skips (and counts) the ones it overran.
   */
  tick(now: number): void {
    const late = now - this.nextTickAt;
    const missed = late >= this.tickMs ? Math.floor(late / this.tickMs) : 0;
    this.counters.poseTickLateness.observe(Math.max(0, late) / 1000);
    this.counters.poseTicksSkipped += missed;
    this.nextTickAt += (missed + 1) * this.tickMs;
    for (const [roomId, poses] of this.held) {
      for (const [userId, pose] of poses) {
        const { sender } = pose;
        const slot = sender.profiles.get(roomId)?.slot;
        // Left (or was removed from) the room since, maybe to join it again: a pose of a
        // membership that ended must not appear in the room.
        if (!sender.rooms.has(roomId) || slot !== pose.slot) {
          poses.delete(userId);
          continue;
        }
        if (!pose.fresh) {
          if (++pose.idleTicks > this.idleTicksKept) {
            poses.delete(userId);
          }
          continue;
        }
        pose.fresh = false;
        pose.idleTicks = 0;
        if (pose.message) {
          this.bus.publishPose(roomId, sender.userId, slot, pose.message);
        } else {
          this.bus.publishPoseEntry(roomId, sender.userId, slot, pose.entry!);
        }
      }
      if (poses.size === 0) {
        this.held.delete(roomId);
      }
    }
  }
}
