import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { Fanout } from '../bus/fanout.service.js';
import { LocalDelivery } from '../bus/local-delivery.js';
import { toOutgoingFrame, type OutgoingFrame } from '../bus/outgoing-frame.js';
import type {
  LiveMemberLeftListener,
  MembershipEndedListener,
  ResyncListener,
  RoomBus,
} from '../bus/room-bus.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { Replies } from '../delivery/replies.js';
import { readEntryMessage } from '../protocol/binary-poses.js';
import { ServerEvent, type AppMessage, type ServerMessage } from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';
import { CLUSTER, historyCapOf, type Cluster } from './cluster.js';
import { withHistoryCap } from './lua/numbering.js';
import { CommitReplies } from './commit-replies.js';
import { RedisKeys } from './redis-keys.js';
import { fromRedisError, storeUnavailable } from './store-unavailable.js';
import {
  decodeEnvelope,
  envelopeSeqKey,
  historyEpochKey,
  historyKey,
  NUMBERED_ENVELOPE_LUA,
  roomChannel,
  roomIdOfChannel,
  withSeq,
  type RoomEnvelope,
} from './room-envelope.js';

/**
 * The bus of a cluster: local members get an event straight from this instance, and the others
 * through the room's Redis channel, which every instance with members of the room subscribes to.
 * An event is serialized once per instance; an instance never hears rooms it has no members in.
 *
 * An instance skips its own envelopes on the channel: it delivered them locally already. While
 * Redis is down, publishing fails quietly, so members on the same instance keep getting poses.
 *
 * With resume on, every event but poses carries the `seq` Redis gave it, so members here get
 * such an event when its echo comes back numbered, in the room's order, and exactly those it was
 * for when it was published (the audience taken then). If Redis does not number it, they get it
 * without a `seq` (a client then gets a snapshot on resume).
 */
@Injectable()
export class RedisRoomBus implements RoomBus, OnModuleInit {
  private readonly logger = new Logger(RedisRoomBus.name);
  /**
   * Own committed state updates by room and version: 'echoed' when the echo came before the
   * store's answer, a fallback timer while waiting for the echo, 'fell-back' once delivered
   * without it (a late echo is then ignored).
   */
  private readonly commits = new Map<string, 'echoed' | 'fell-back' | AwaitedEcho>();
  /** Rooms subscribed (or being subscribed) on this instance. */
  private readonly watched = new Map<string, Promise<void>>();
  private publishFailing = false;
  private membershipEnded: MembershipEndedListener = () => undefined;
  private resyncNeeded: ResyncListener = () => undefined;
  private liveMemberLeft: LiveMemberLeftListener = () => undefined;
  /** The last envelope number heard per watched room, to see a missed one. */
  private readonly lastSeq = new Map<string, number>();
  /** Set while the subscriber is disconnected: what was published meanwhile is lost to us. */
  private subscriberLost = false;
  /** With resume on: own events waiting for their numbered echo, by awaitId. */
  private readonly awaited = new Map<string, AwaitedEvent>();
  private nextAwaitId = 0;
  /** Own events awaited per room: its channel stays subscribed until their echoes came. */
  private readonly awaitedPerRoom = new Map<string, number>();
  private readonly numbering: boolean;
  private readonly keys: RedisKeys;
  /** Set from the subscriber's return until its channels are surely subscribed again. */
  private resubscribing = false;
  /** Set while RedisRecoveryService registers live members again: the store is not whole yet. */
  private resyncsHeld = false;
  /** Rooms whose members here wait to be resynced until the store and the channel can be read. */
  private readonly resyncsDue = new Set<string>();

  constructor(
    private readonly local: LocalDelivery,
    private readonly fanout: Fanout,
    private readonly users: UsersService,
    private readonly replies: Replies,
    private readonly commitReplies: CommitReplies,
    @Inject(CLUSTER) private readonly cluster: Cluster,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
  ) {
    this.numbering = historyCapOf(config) > 0;
    this.keys = new RedisKeys(cluster.keyPrefix);
  }

  onModuleInit(): void {
    this.cluster.subscriber.on('message', (channel: string, payload: string) => {
      // An error here would surface inside ioredis's reader and stop every room's delivery.
      try {
        this.receive(channel, payload);
      } catch (error) {
        this.logger.error(`Delivering a message from ${channel} failed: ${String(error)}`);
      }
    });
    this.users.membership.onRoomUnused = (roomId) => this.unwatch(roomId);
    this.cluster.publisher.defineCommand('gmsPublishNumbered', {
      numberOfKeys: 4,
      lua: withHistoryCap(NUMBERED_ENVELOPE_LUA, historyCapOf(this.config)),
    });
    this.cluster.subscriber.on('close', () => {
      this.subscriberLost = true;
    });
    this.cluster.subscriber.on('ready', () => this.subscriberBack());
  }

  publish<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    exceptUserId?: string,
  ): void {
    if (this.numbering) {
      this.publishNumbered(roomId, message, this.local.audience(roomId, exceptUserId), {
        except: exceptUserId,
      });
      return;
    }
    const frame = toOutgoingFrame(message);
    this.local.toRoom(roomId, message, frame, exceptUserId);
    this.send(
      roomId,
      envelopeJson(this.cluster.instanceId, exceptUserId, undefined, frame.json),
      true,
      endsRoom(message),
    );
  }

  /** Serialized once, for the JSON members here and the other instances alike. */
  publishPose(
    roomId: string,
    senderId: string,
    slot: number | undefined,
    message: AppMessage,
  ): void {
    const frame = this.sendPose(roomId, senderId, slot, message);
    this.local.publishPose(roomId, senderId, slot, message, frame);
  }

  /** The members here get the entry as it came; other instances the JSON pose, as any other. */
  publishPoseEntry(
    roomId: string,
    senderId: string,
    slot: number | undefined,
    entry: Buffer,
  ): void {
    const frame = this.sendPose(roomId, senderId, slot, readEntryMessage(entry, 0, senderId));
    this.local.publishPoseEntry(roomId, senderId, slot, entry, frame);
  }

  /** Sends a pose to the other instances; answers its frame, for the JSON members here. */
  private sendPose(
    roomId: string,
    senderId: string,
    slot: number | undefined,
    message: AppMessage,
  ): OutgoingFrame {
    const frame = toOutgoingFrame(
      { event: ServerEvent.Message, data: { roomId, message, senderId } },
      true,
    );
    this.send(
      roomId,
      envelopeJson(this.cluster.instanceId, senderId, undefined, frame.json, undefined, slot),
      false,
    );
    return frame;
  }

  publishWithReply<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    actorUserId: string,
    reply: (message: ServerMessage<E>) => void,
  ): void {
    if (this.numbering) {
      this.publishNumbered(roomId, message, this.local.audience(roomId, actorUserId), {
        except: actorUserId,
        reply,
      });
      return;
    }
    this.publish(roomId, message, actorUserId);
    reply(message);
  }

  /**
   * The store published it with its commit, and its echo on the room's channel delivers it here,
   * behind every update committed before it on any instance, the actor's reply included (see
   * receiveOwnCommit). This only covers a missing echo: if none came within 2 s (the subscriber
   * is reconnecting), members here get it now, possibly out of order.
   */
  deliverCommitted<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    exceptUserId: string,
    delivered: () => void,
  ): Promise<void> {
    const key = committedKey(roomId, message);
    if (this.commits.get(key) === 'echoed') {
      this.commits.delete(key);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.commits.set(key, 'fell-back');
        this.local.publish(roomId, message, exceptUserId);
        delivered();
        resolve();
      }, COMMIT_ECHO_TIMEOUT_MS);
      timer.unref();
      this.commits.set(key, { timer, resolve });
    });
  }

  sendToMember<E extends ServerEvent>(
    roomId: string,
    userId: string,
    message: ServerMessage<E>,
  ): boolean {
    const connection = this.local.memberHere(roomId, userId);
    if (connection && this.numbering) {
      this.publishNumbered(roomId, message, [connection], { to: userId });
      return true;
    }
    if (connection) {
      this.local.toMember(connection, message);
      return true;
    }
    // The store said the target is a member; the instance it is connected to delivers it.
    this.send(
      roomId,
      envelopeJson(this.cluster.instanceId, undefined, userId, JSON.stringify(message)),
      true,
    );
    return true;
  }

  /**
   * The store no longer has a member connected here, and nobody told it (a kick Redis ran after
   * its caller had given up on it): it gets `notice` (`kicked`, or `room_left`) and its membership
   * here ends, as when another instance's kick notice comes.
   */
  endMembershipHere(
    roomId: string,
    userId: string,
    notice: ServerMessage<typeof ServerEvent.Kicked | typeof ServerEvent.RoomLeft>,
  ): void {
    const connection = this.local.memberHere(roomId, userId);
    if (!connection) {
      return;
    }
    this.local.toMember(connection, notice);
    this.membershipEnded(roomId, userId);
  }

  onMembershipEnded(listener: MembershipEndedListener): void {
    this.membershipEnded = listener;
  }

  onResyncNeeded(listener: ResyncListener): void {
    this.resyncNeeded = listener;
  }

  onLiveMemberLeft(listener: LiveMemberLeftListener): void {
    this.liveMemberLeft = listener;
  }

  /** Fails with UNAVAILABLE at once while the subscriber is down, or within 1.5 s. */
  watch(roomId: string): Promise<void> {
    let subscribed = this.watched.get(roomId);
    if (!subscribed) {
      if (this.cluster.subscriber.status !== 'ready') {
        return Promise.reject(storeUnavailable());
      }
      subscribed = withDeadline(
        this.cluster.subscriber.subscribe(this.channelOf(roomId)),
        SUBSCRIBE_TIMEOUT_MS,
      ).catch((error: unknown) => {
        this.watched.delete(roomId);
        throw fromRedisError(error);
      });
      this.watched.set(roomId, subscribed);
    }
    return subscribed;
  }

  private unwatch(roomId: string): void {
    if (this.awaitedPerRoom.has(roomId)) {
      return; // Once the last awaited echo came (deliverAwaited).
    }
    if (!this.watched.delete(roomId)) {
      return;
    }
    this.lastSeq.delete(roomId);
    this.cluster.subscriber.unsubscribe(this.channelOf(roomId)).catch(() => {
      // Harmless: receive() ignores the channels of rooms that are not watched.
    });
  }

  /**
   * `numbered`: every envelope but throwaway ones, so that receivers can see a missed one.
   * `last`: the room's last event (see publishWithNumber).
   */
  private send(roomId: string, payload: string, numbered: boolean, last = false): void {
    const channel = this.channelOf(roomId);
    const published = numbered
      ? this.publishWithNumber(roomId, channel, payload, last)
      : this.cluster.publisher.publish(channel, payload);
    published.then(
      () => this.publishRecovered(),
      (error: unknown) => this.publishFailed(error),
    );
  }

  /** `last`: a deleted room's `room_deleted`, after which its numbering keys go too. */
  private publishWithNumber(
    roomId: string,
    channel: string,
    payload: string,
    last: boolean,
  ): Promise<number> {
    const { keyPrefix } = this.cluster;
    return (this.cluster.publisher as unknown as NumberedPublisher).gmsPublishNumbered(
      envelopeSeqKey(keyPrefix, roomId),
      historyEpochKey(keyPrefix, roomId),
      historyKey(keyPrefix, roomId),
      this.keys.room(roomId).meta,
      channel,
      payload,
      last ? '1' : '0',
    );
  }

  /**
   * With resume on: an own event goes to Redis first, and to `audience` here when its echo comes
   * back numbered (receiveAwaited); without a number when Redis did not take it or no echo came.
   */
  private publishNumbered<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    audience: readonly Connection[],
    target: { except?: string; to?: string; reply?: (message: ServerMessage<E>) => void },
  ): void {
    // First: data that cannot be serialized (an extension's bigint, a cycle) throws to the caller
    // here, before anything waits for an echo whose fallback would throw again, in a timer.
    const json = JSON.stringify(message);
    const awaitId = String(++this.nextAwaitId);
    const event = { roomId, message, audience, reply: target.reply } as unknown as AwaitedEvent;
    event.timer = setTimeout(() => this.deliverUnnumbered(awaitId), COMMIT_ECHO_TIMEOUT_MS);
    event.timer.unref();
    this.awaited.set(awaitId, event);
    this.awaitedPerRoom.set(roomId, (this.awaitedPerRoom.get(roomId) ?? 0) + 1);
    const payload = envelopeJson(this.cluster.instanceId, target.except, target.to, json, awaitId);
    this.publishWithNumber(roomId, this.channelOf(roomId), payload, endsRoom(message)).then(
      () => this.publishRecovered(),
      (error: unknown) => {
        this.publishFailed(error);
        this.deliverUnnumbered(awaitId);
      },
    );
  }

  /** The numbered echo of an own event: its audience here gets it, then the actor its reply. */
  private receiveAwaited(envelope: RoomEnvelope): void {
    const event = this.awaited.get(envelope.awaitId as string);
    if (!event) {
      return; // Delivered without its number already.
    }
    this.awaited.delete(envelope.awaitId as string);
    clearTimeout(event.timer);
    this.deliverAwaited(event, envelope.message);
  }

  private deliverUnnumbered(awaitId: string): void {
    const event = this.awaited.get(awaitId);
    if (!event) {
      return;
    }
    this.awaited.delete(awaitId);
    clearTimeout(event.timer);
    this.deliverAwaited(event, event.message);
  }

  private deliverAwaited(event: AwaitedEvent, message: ServerMessage): void {
    const { roomId } = event;
    this.local.toAudience(roomId, event.audience, message, toOutgoingFrame(message));
    event.reply?.(message);
    const left = (this.awaitedPerRoom.get(roomId) ?? 1) - 1;
    if (left > 0) {
      this.awaitedPerRoom.set(roomId, left);
      return;
    }
    this.awaitedPerRoom.delete(roomId);
    if (!this.local.hasAudience(roomId)) {
      this.unwatch(roomId); // Its last member here left before the echo came.
    }
  }

  private receive(channel: string, payload: string): void {
    const roomId = roomIdOfChannel(this.cluster.keyPrefix, channel);
    if (roomId === undefined || !this.watched.has(roomId)) {
      return;
    }
    let envelope: RoomEnvelope;
    try {
      envelope = decodeEnvelope(payload);
    } catch {
      this.logger.warn(`Ignoring a malformed message on ${channel}`);
      return;
    }
    if (envelope.seq !== undefined) {
      this.checkSequence(roomId, envelope.seq);
      if (this.numbering) {
        envelope.message = withSeq(envelope.message, envelope.seq);
      }
    }
    if (envelope.awaitId !== undefined && envelope.origin === this.cluster.instanceId) {
      this.receiveAwaited(envelope);
      return;
    }
    if (envelope.origin !== this.cluster.instanceId) {
      this.deliver(roomId, envelope);
      return;
    }
    // Our own events were delivered here when published, except committed state updates.
    if (envelope.message.event === ServerEvent.StateUpdated) {
      this.receiveOwnCommit(roomId, envelope);
    }
  }

  /** The echo of a state update committed here: members and the actor get it now, in order. */
  private receiveOwnCommit(roomId: string, envelope: RoomEnvelope): void {
    if (!this.commitReplies.echoIsReply(envelope.commitId)) {
      // The request was answered with an error (the store's answer was lost), but the change is
      // real: the actor gets it like any member, without the requestId, and no caller awaits it.
      this.deliver(roomId, { ...envelope, except: null });
      return;
    }
    const key = committedKey(roomId, envelope.message);
    const seen = this.commits.get(key);
    if (seen === 'fell-back') {
      this.commits.delete(key);
      return;
    }
    if (seen === undefined) {
      this.forgetStaleCommits();
      this.commits.set(key, 'echoed');
    } else if (seen !== 'echoed') {
      clearTimeout(seen.timer);
      this.commits.delete(key);
    }
    this.deliver(roomId, envelope);
    const actor =
      envelope.except === null ? undefined : this.local.memberHere(roomId, envelope.except);
    if (actor) {
      const update = envelope.message as ServerMessage<typeof ServerEvent.StateUpdated>;
      this.replies.send(actor, update, envelope.requestId);
    }
    if (typeof seen === 'object') {
      seen.resolve();
    }
  }

  /** Echoes whose store answer never came (it timed out after the commit) are not kept forever. */
  private forgetStaleCommits(): void {
    if (this.commits.size < MAX_TRACKED_COMMITS) {
      return;
    }
    for (const [key, entry] of this.commits) {
      if (typeof entry === 'string') {
        this.commits.delete(key);
      }
    }
  }

  /**
   * Another instance's event for members here. A kick notice or a deleted room also ends the
   * membership here: the room service is told after the event went out.
   */
  private deliver(roomId: string, { message, except, to, slot }: RoomEnvelope): void {
    if (to !== null) {
      const connection = this.local.memberHere(roomId, to);
      if (connection) {
        this.local.toMember(connection, message);
        if (message.event === ServerEvent.Kicked) {
          this.membershipEnded(roomId, to);
        }
      }
      return;
    }
    const throwaway = this.isThrowaway(message);
    const frame = toOutgoingFrame(message, throwaway);
    if (throwaway && message.event === ServerEvent.Message) {
      const { senderId, message: pose } = message.data;
      this.local.publishPose(roomId, senderId, slot, pose, frame);
      return;
    }
    this.local.toRoom(roomId, message, frame, except);
    if (
      message.event === ServerEvent.UserLeft &&
      this.local.memberHere(roomId, message.data.userId)
    ) {
      this.liveMemberLeft(roomId, message.data.userId);
    }
    if (message.event === ServerEvent.RoomDeleted) {
      this.fanout.forgetRoom(roomId);
      this.membershipEnded(roomId);
    }
  }

  /**
   * Envelope numbers are consecutive per room; a jump means this instance missed envelopes (a
   * `kicked`, a `room_deleted`...), a fall that the counter started over (Redis lost it): either
   * way the room's members here are brought up to date from the store.
   */
  private checkSequence(roomId: string, seq: number): void {
    const last = this.lastSeq.get(roomId);
    this.lastSeq.set(roomId, seq);
    if (last === undefined || seq === last + 1) {
      return;
    }
    this.logger.warn(`Room ${roomId}: envelopes ${last + 1}..${seq - 1} missed; resyncing`);
    this.resync(roomId);
  }

  /**
   * Brings the room's members here up to date from the store, once that says something true: not
   * while recovery is still registering the live members of an emptied Redis (a member it has not
   * reached yet would be told it left), and not before the subscriber listens to the room again
   * (what is published meanwhile would be lost). Until then the room waits, once.
   */
  resync(roomId: string): void {
    this.resyncsDue.add(roomId);
    this.resyncWhenReady();
  }

  /** Recovery begins: resyncs wait until releaseResyncs. */
  holdResyncs(): void {
    this.resyncsHeld = true;
  }

  releaseResyncs(): void {
    this.resyncsHeld = false;
    this.resyncWhenReady();
  }

  private resyncWhenReady(): void {
    if (
      this.resyncsHeld ||
      this.subscriberLost ||
      this.resubscribing ||
      this.cluster.subscriber.status !== 'ready'
    ) {
      return;
    }
    const due = [...this.resyncsDue];
    this.resyncsDue.clear();
    for (const roomId of due) {
      if (this.watched.has(roomId)) {
        this.resyncNeeded(roomId);
      }
    }
  }

  /** The subscriber reconnected: every watched room may have missed envelopes meanwhile. */
  private subscriberBack(): void {
    if (!this.subscriberLost) {
      return;
    }
    this.subscriberLost = false;
    this.resubscribing = true;
    this.lastSeq.clear();
    for (const roomId of this.watched.keys()) {
      this.resyncsDue.add(roomId);
    }
    // ioredis subscribes the channels again as it gets ready: resync once that went out.
    setTimeout(() => {
      this.resubscribing = false;
      this.resyncWhenReady();
    }, RESUBSCRIBE_SETTLE_MS).unref();
  }

  private isThrowaway(message: ServerMessage): boolean {
    if (message.event !== ServerEvent.Message) {
      return false;
    }
    return this.fanout.isThrowaway(message.data.message.type);
  }

  private channelOf(roomId: string): string {
    return roomChannel(this.cluster.keyPrefix, roomId);
  }

  private publishFailed(error: unknown): void {
    if (!this.publishFailing) {
      this.publishFailing = true;
      this.logger.warn(`Cannot publish to Redis, other instances miss events: ${String(error)}`);
    }
  }

  private publishRecovered(): void {
    if (this.publishFailing) {
      this.publishFailing = false;
      this.logger.log('Publishing to Redis again');
    }
  }
}

/** How long after the subscriber is back its rooms are resynced: its channels are subscribed. */
const RESUBSCRIBE_SETTLE_MS = 200;

/** The numbered publish (NUMBERED_ENVELOPE_LUA), defined on the publisher at init. */
interface NumberedPublisher {
  gmsPublishNumbered(
    seqKey: string,
    epochKey: string,
    historyKey: string,
    metaKey: string,
    channel: string,
    envelope: string,
    last: '1' | '0',
  ): Promise<number>;
}

/** An own event waiting for its numbered echo (resume on). */
interface AwaitedEvent {
  readonly roomId: string;
  readonly message: ServerMessage;
  /** Who here it is for, taken when it was published. */
  readonly audience: readonly Connection[];
  /** The actor's reply, given the event as delivered. */
  readonly reply?: (message: ServerMessage) => void;
  timer?: NodeJS.Timeout;
}

/** A `room_deleted` is the last event of its room: its numbering keys go after it. */
function endsRoom(message: { event: string }): boolean {
  return message.event === ServerEvent.RoomDeleted;
}

/** A join waits this long for its room's subscription before it fails with UNAVAILABLE. */
const SUBSCRIBE_TIMEOUT_MS = 1500;

function withDeadline(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** An own commit whose echo is awaited: the fallback's timer and the caller waiting for either. */
interface AwaitedEcho {
  timer: NodeJS.Timeout;
  resolve: () => void;
}

/** Own commits tracked at most at once before echoed ones that were never claimed are dropped. */
const MAX_TRACKED_COMMITS = 10_000;

/** The longest the actor of a state change waits for its update to come back on the channel. */
const COMMIT_ECHO_TIMEOUT_MS = 2000;

/** Identifies a committed state update: its room and version. */
function committedKey(roomId: string, message: { data: unknown }): string {
  const version = (message.data as { version?: unknown }).version;
  return `${roomId}\n${String(version)}`;
}

/**
 * A RoomEnvelope as JSON, around a message that is already JSON: the fan-out's frame text is
 * reused rather than serialized a second time.
 */
export function envelopeJson(
  origin: string,
  except: string | undefined,
  to: string | undefined,
  messageJson: string,
  awaitId?: string,
  slot?: number,
): string {
  return (
    `{"origin":${JSON.stringify(origin)},"except":${except === undefined ? 'null' : JSON.stringify(except)},` +
    `"to":${to === undefined ? 'null' : JSON.stringify(to)},` +
    (awaitId === undefined ? '' : `"awaitId":${JSON.stringify(awaitId)},`) +
    (slot === undefined ? '' : `"slot":${slot},`) +
    `"message":${messageJson}}`
  );
}
